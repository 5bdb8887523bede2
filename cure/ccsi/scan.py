"""Input products from GeoTIFF files: footprint, acquisition time and type read from the file.

Reading is synchronous (rasterio, hashing): async callers run it in a thread, as
``register_folder`` does.
"""

import asyncio
import re
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import rasterio
from rasterio.warp import transform_bounds
from shapely.geometry import MultiPolygon, box
from shapely.geometry.base import BaseGeometry
from sqlalchemy.ext.asyncio import AsyncSession

from cure.ccsi import repository
from cure.ccsi import service as ccsi_service
from cure.ccsi.models import Product
from cure.ccsi.schemas import AssetCreate, ProductCreate, check_collection, is_url
from cure.config import Settings
from cure.kit.files import size_and_sha256
from cure.kit.geo import to_geojson
from cure.storage.service import make_storage

GEOTIFF_TYPE = "image/tiff; application=geotiff"
GEOTIFF_SUFFIXES = (".tif", ".tiff")
DOWNLOAD_TIMEOUT = 60.0
_CHUNK = 1024 * 1024

Upload = Callable[[Path, str], Awaitable[None]]
Period = tuple[datetime, datetime]  # acquisition start and end, aware


def period_of(start: str, end: str | None = None) -> Period:
    """The period from ISO 8601 texts: a date starts at its first moment, and an end date (or a
    start date given alone) ends at its last (2018-01-01 to 2018-12-31 is the whole year);
    naive times are UTC."""
    first = _parse_time(start, "--start")
    last = _parse_time(end, "--end") if end else first
    if _is_date(end if end else start):  # a date: to its last moment
        last = last.replace(hour=23, minute=59, second=59)
    if last < first:
        raise ValueError("--end is before --start")
    return first, last


@dataclass(frozen=True)
class ScannedProduct:
    """What a GeoTIFF says about itself; ``as_product`` makes it a registration."""

    identifier: str
    product_type: str
    footprint: dict[str, Any]
    start: datetime
    end: datetime
    size: int
    checksum: str
    properties: dict[str, Any] = field(default_factory=dict)

    def as_product(
        self, href: str, *, title: str | None = None, asset_key: str = "data"
    ) -> ProductCreate:
        """A registration whose one asset, ``asset_key``, is the file at ``href`` (key or URL).
        Name it as the app that reads it expects (e.g. ``lst`` for suhi's temperature)."""
        asset = AssetCreate(
            href=href,
            type=GEOTIFF_TYPE,
            size=self.size,
            checksum=self.checksum,
            roles=["data"],
            title=title,
        )
        return ProductCreate(
            identifier=self.identifier,
            product_type=self.product_type,
            footprint=self.footprint,
            start=self.start,
            end=self.end,
            properties=self.properties,
            assets={asset_key: asset},
        )


def read_geotiff_product(
    path_or_url: str | Path,
    *,
    product_type: str | None = None,
    period: Period | None = None,
    densify_points: int = 21,
) -> ScannedProduct:
    """Read a local GeoTIFF, or download an http(s) one, and describe it as a product.

    The footprint is the raster's bounds in EPSG:4326 (densified edges, so a projected raster's
    curved sides stay inside); times come from the tags ACQUISITION_START and ACQUISITION_END
    (or TIFFTAG_DATETIME), else ``period`` (for files that carry no time, such as the
    Copernicus Land Monitoring Service's layers); the type from the tag PRODUCT_TYPE, else
    ``product_type``. Raises ValueError for a file that does not say enough.
    """
    source = str(path_or_url)
    if is_url(source):
        with tempfile.TemporaryDirectory(prefix="cure-scan-") as folder:
            local = Path(folder) / "product.tif"
            _download(source, local)
            name = _name_of(source)
            return _read(
                local, name=name, product_type=product_type, period=period, densify=densify_points
            )
    local = Path(source)
    return _read(
        local, name=local.name, product_type=product_type, period=period, densify=densify_points
    )


def _read(
    path: Path, *, name: str, product_type: str | None, period: Period | None, densify: int
) -> ScannedProduct:
    size, checksum = size_and_sha256(path)
    with rasterio.open(path) as src:
        if src.crs is None:
            raise ValueError(f"{name} has no coordinate reference system")
        tags = src.tags()
        bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=densify)
        properties = {
            "crs": src.crs.to_string(),
            "width": src.width,
            "height": src.height,
            "bands": src.count,
            "file": name,
        }
    start, end = _acquisition(tags, name, period)
    kind = tags.get("PRODUCT_TYPE") or product_type
    if not kind:
        raise ValueError(f"{name} has no PRODUCT_TYPE tag and no product type was given")
    return ScannedProduct(
        identifier=identifier_of(name),
        product_type=kind,
        footprint=to_geojson(_footprint(*bounds)),
        start=start,
        end=end,
        size=size,
        checksum=checksum,
        properties=properties,
    )


def identifier_of(name: str) -> str:
    """A catalogue identifier from a file name: its stem, other characters replaced by '_'."""
    stem = name.rsplit("/", 1)[-1]
    for suffix in GEOTIFF_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    cleaned = re.sub(r"[^A-Za-z0-9_.:+\-]", "_", stem).lstrip("_.:+-")[:255]
    if not cleaned:
        raise ValueError(f"{name!r} gives no usable identifier")
    return cleaned


def _footprint(west: float, south: float, east: float, north: float) -> BaseGeometry:
    south, north = max(south, -90.0), min(north, 90.0)
    if west <= east:
        return box(max(west, -180.0), south, min(east, 180.0), north)
    # transform_bounds gives west > east for a raster across the antimeridian.
    return MultiPolygon([box(west, south, 180.0, north), box(-180.0, south, east, north)])


def _acquisition(tags: dict[str, str], name: str, period: Period | None) -> Period:
    # A file's own acquisition time wins; a period given wins over TIFFTAG_DATETIME, which
    # TIFF defines as when the file was made.
    if period is not None and not tags.get("ACQUISITION_START"):
        return period
    start_text = tags.get("ACQUISITION_START") or tags.get("TIFFTAG_DATETIME")
    if not start_text:
        raise ValueError(
            f"{name} has no ACQUISITION_START or TIFFTAG_DATETIME tag and no period was given"
        )
    start = _parse_time(start_text, name)
    end_text = tags.get("ACQUISITION_END")
    end = _parse_time(end_text, name) if end_text else start
    if end < start:
        raise ValueError(f"{name}: ACQUISITION_END is before ACQUISITION_START")
    return start, end


def _is_date(text: str) -> bool:
    """A calendar date alone (2018-12-31 or 20181231), no time of day."""
    return bool(re.fullmatch(r"\d{4}-?\d{2}-?\d{2}", text.strip()))


def _parse_time(text: str, name: str) -> datetime:
    text = text.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.strptime(text, "%Y:%m:%d %H:%M:%S")  # TIFF's DateTime form
        except ValueError:
            raise ValueError(f"{name}: {text!r} is not an ISO 8601 or TIFF date-time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _download(url: str, target: Path) -> None:
    with httpx.stream("GET", url, timeout=DOWNLOAD_TIMEOUT, follow_redirects=True) as response:
        if not response.is_success:
            raise ValueError(f"{_name_of(url)}: download answered {response.status_code}")
        with target.open("wb") as file:
            for chunk in response.iter_bytes(_CHUNK):
                file.write(chunk)


def _name_of(url: str) -> str:
    return httpx.URL(url).path.rsplit("/", 1)[-1] or "product.tif"


# --- a folder of GeoTIFFs into a collection ---------------------------------------------------


@dataclass
class FolderReport:
    added: list[Product] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # identifiers the collection already held


def geotiffs_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in GEOTIFF_SUFFIXES)


def storage_upload(settings: Settings) -> Upload:
    """Upload a file through the storage backend, streamed from disk."""
    storage = make_storage(settings)

    async def upload(path: Path, key: str) -> None:
        await storage.put_file(key, path, media_type=GEOTIFF_TYPE)

    return upload


async def register_stored(
    session: AsyncSession,
    settings: Settings,
    collection: str,
    prefix: str,
    *,
    product_type: str | None = None,
    period: Period | None = None,
    asset_key: str = "data",
) -> FolderReport:
    """Register every GeoTIFF already in the storage bucket under ``prefix`` (each read once
    from a temporary copy; the product's asset is the stored key itself). The caller commits."""
    collection = check_collection(collection)
    storage = make_storage(settings)
    report = FolderReport()
    keys = [k for k in await storage.keys(prefix) if k.lower().endswith(GEOTIFF_SUFFIXES)]
    with tempfile.TemporaryDirectory(prefix="cure-register-") as folder:
        for key in keys:
            identifier = identifier_of(key)
            if await repository.get_by_identifier(session, collection, identifier):
                report.skipped.append(identifier)
                continue
            copy = Path(folder) / key.rsplit("/", 1)[-1]
            await storage.get_file(key, copy)
            scanned = await asyncio.to_thread(
                read_geotiff_product, copy, product_type=product_type, period=period
            )
            copy.unlink()
            product = await ccsi_service.register(
                session,
                collection=collection,
                data=scanned.as_product(key, title=key, asset_key=asset_key),
            )
            report.added.append(product)
    return report


async def register_folder(
    session: AsyncSession,
    settings: Settings,
    collection: str,
    folder: Path,
    *,
    upload: Upload | None = None,
    key_prefix: str | None = None,
    product_type: str | None = None,
    period: Period | None = None,
    asset_key: str = "data",
) -> FolderReport:
    """Register every GeoTIFF under ``folder`` in ``collection``, each uploaded to
    ``{key_prefix}/{relative path}`` (default prefix ``inputs/<collection>``) first.

    Files whose identifier the collection already holds are skipped, so a rerun adds only what
    is new. The caller commits.
    """
    collection = check_collection(collection)
    upload = upload or storage_upload(settings)
    prefix = (key_prefix or f"inputs/{collection}").strip("/")
    report = FolderReport()
    for path in await asyncio.to_thread(geotiffs_in, folder):
        if await repository.get_by_identifier(session, collection, identifier_of(path.name)):
            report.skipped.append(identifier_of(path.name))
            continue
        scanned = await asyncio.to_thread(
            read_geotiff_product, path, product_type=product_type, period=period
        )
        key = f"{prefix}/{path.relative_to(folder).as_posix()}"
        await upload(path, key)
        product = await ccsi_service.register(
            session,
            collection=collection,
            data=scanned.as_product(key, title=path.name, asset_key=asset_key),
        )
        report.added.append(product)
    return report
