"""`cure demo seed`: generate the demo inputs, upload them to storage, register them in the
catalogue. Idempotent: products the catalogue holds already are left as they are."""

import asyncio
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from cure.ccsi import repository as ccsi_repository
from cure.ccsi import service as ccsi_service
from cure.ccsi.schemas import AssetCreate, ProductCreate
from cure.demo.rasters import CITIES, DATES, City, GeneratedProduct, generate
from cure.kit.files import size_and_sha256
from cure.kit.resources import Resources
from cure.storage.service import make_storage

GEOTIFF = "image/tiff; application=geotiff"


@dataclass(frozen=True)
class SeedReport:
    added: int
    present: int


def _key(product: GeneratedProduct, path: Path) -> str:
    return f"inputs/{product.collection}/{product.identifier}/{path.name}"


async def seed(
    resources: Resources, *, cities: Iterable[City] = CITIES, dates: Iterable[date] = DATES
) -> SeedReport:
    """Every demo product in storage and in the catalogue; returns how many were new."""
    storage = make_storage(resources.settings)
    added = present = 0
    with tempfile.TemporaryDirectory(prefix="cure-demo-") as folder:
        products = await asyncio.to_thread(generate, Path(folder), cities, dates)
        for product in products:
            async with resources.sessionmaker() as session, session.begin():
                found = await ccsi_repository.get_by_identifier(
                    session, product.collection, product.identifier
                )
                if found is not None:
                    present += 1
                    continue
                assets = {}
                for key, path in product.assets.items():
                    await storage.put_file(_key(product, path), path, media_type=GEOTIFF)
                    assets[key] = AssetCreate(
                        href=_key(product, path),
                        type=GEOTIFF,
                        size=path.stat().st_size,
                        checksum=(await asyncio.to_thread(size_and_sha256, path))[1],
                        roles=["data"],
                        title=key,
                    )
                data = ProductCreate(
                    identifier=product.identifier,
                    product_type=product.product_type,
                    footprint=product.footprint(),
                    start=product.start,
                    end=product.end,
                    properties={"city": product.city, "demo": True},
                    assets=assets,
                )
                await ccsi_service.register(session, collection=product.collection, data=data)
                added += 1
    return SeedReport(added=added, present=present)
