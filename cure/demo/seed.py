"""`cure demo seed`: generate the demo inputs, upload them to storage, register them in the
catalogue. Idempotent: products the catalogue holds already are left as they are, except demo
Sentinel-2 products of an earlier layout, which are replaced."""

import asyncio
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from cure.ccsi import repository as ccsi_repository
from cure.ccsi import service as ccsi_service
from cure.ccsi.schemas import AssetCreate, ProductCreate, ProductCriteria
from cure.demo.rasters import CITIES, DATES, S2_COLLECTION, City, GeneratedProduct, generate
from cure.kit.files import size_and_sha256
from cure.kit.resources import Resources
from cure.storage.service import make_storage

GEOTIFF = "image/tiff; application=geotiff"
NETCDF = "application/x-netcdf"  # the CAMS air quality product (the air_quality app's input)
# The demo products' layout: 2 has Sentinel-2 as the catalogues publish it (B04 and B08 at 10 m
# with the baseline 04.00 offset, SCL at 20 m). Demo products of another layout are replaced.
DEMO_LAYOUT = 2


@dataclass(frozen=True)
class SeedReport:
    added: int
    present: int


def _key(product: GeneratedProduct, path: Path) -> str:
    return f"inputs/{product.collection}/{product.identifier}/{path.name}"


async def _drop_earlier_layouts(session: AsyncSession, product: GeneratedProduct) -> None:
    """Remove the demo products of an earlier layout for the product's city, collection and day,
    so the apps never pick one of those instead of it."""
    day = product.start.date()
    criteria = ProductCriteria(
        collections=(product.collection,),
        bbox=product.bbox,
        time_start=datetime.combine(day, time.min, UTC),
        time_end=datetime.combine(day, time.max, UTC),
    )
    for found in await ccsi_service.find_products(session, None, criteria, limit=50):
        properties = found.properties or {}
        earlier = properties.get("demo_layout", 1) != DEMO_LAYOUT
        if properties.get("demo") and properties.get("city") == product.city and earlier:
            await ccsi_service.remove(
                session, collection=found.collection, identifier=found.identifier
            )


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
                if product.collection == S2_COLLECTION:
                    await _drop_earlier_layouts(session, product)
                found = await ccsi_repository.get_by_identifier(
                    session, product.collection, product.identifier
                )
                if found is not None:
                    present += 1
                    continue
                assets = {}
                for key, path in product.assets.items():
                    media_type = NETCDF if path.suffix == ".nc" else GEOTIFF
                    await storage.put_file(_key(product, path), path, media_type=media_type)
                    assets[key] = AssetCreate(
                        href=_key(product, path),
                        type=media_type,
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
                    properties={
                        **product.properties,
                        "city": product.city,
                        "demo": True,
                        "demo_layout": DEMO_LAYOUT,
                    },
                    assets=assets,
                )
                await ccsi_service.register(session, collection=product.collection, data=data)
                added += 1
    return SeedReport(added=added, present=present)
