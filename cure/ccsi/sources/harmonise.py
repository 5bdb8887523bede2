"""A remote item as one of CURE's products: the same fields, geometry, times, product type and
asset roles as a product of the local catalogue, naming the source that holds it.

The item is a STAC item (the OpenSearch client turns its entries into that shape first). What
cannot be read as a product (no footprint, no time) gives None: the item is left out of the
answer, never an error.
"""

import json
import logging
import re
import uuid
from datetime import datetime
from typing import Any

import shapely
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from cure.ccsi.schemas import MAX_ASSETS, MAX_PROPERTIES_BYTES, AssetRead, ProductRead
from cure.ccsi.sources.remote import cloud_of, number, parse_time
from cure.ccsi.sources.schemas import CollectionMapping
from cure.kit.geo import parse_roi, to_geojson

log = logging.getLogger(__name__)

# uuid5 namespace of remote products: the same item of the same source always has the same id.
NAMESPACE = uuid.UUID("5d1e4b7a-2f0c-5b8e-9a51-3c0e5f2d7c11")
DEFAULT_MEDIA_TYPE = "application/octet-stream"
# file:checksum is a multihash in hex: code 0x12 (sha2-256) with 32 bytes, 0x13 (sha2-512) with 64.
_MULTIHASH = re.compile(r"^(?:1220([0-9a-fA-F]{64})|1340([0-9a-fA-F]{128}))$")
_MAX_IDENTIFIER = 255


def product_id(source: str, collection: str, identifier: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{source}/{collection}/{identifier}")


def harmonise(
    item: dict[str, Any],
    *,
    source: str,
    collection: str,
    mapping: CollectionMapping,
    remote_collection: dict[str, Any] | None = None,
) -> ProductRead | None:
    """The product an item of ``source`` stands for in CURE's ``collection``, or None when the
    item has no usable id, footprint or acquisition time."""
    identifier = item.get("id")
    if not isinstance(identifier, str) or not identifier or len(identifier) > _MAX_IDENTIFIER:
        return None
    properties = item.get("properties")
    if not isinstance(properties, dict):
        return None
    footprint = _footprint(item.get("geometry"), item.get("bbox"))
    times = _times(properties)
    if footprint is None or times is None:
        log.debug("item %s of source %s left out: no footprint or time", identifier[:80], source)
        return None
    start, end = times
    created = parse_time(properties.get("created")) or parse_time(properties.get("updated"))
    kept = _bounded(properties)
    page = _self_link(item.get("links"))
    if page is not None:
        kept["cure:remote_href"] = page
    return ProductRead(
        id=product_id(source, collection, identifier),
        collection=collection,
        identifier=identifier,
        product_type=mapping.product_type,
        footprint=footprint,
        start=start,
        end=end,
        properties=kept,
        assets=_assets(item.get("assets"), mapping, _item_assets(remote_collection)),
        owner_id=None,
        order_id=None,
        published=True,
        created_at=created or start,
        source=source,
        cloud_cover=cloud_of(item, mapping.cloud_cover_property),
    )


def _self_link(links: Any) -> str | None:
    """The item's own page at the source (its ``self`` link), when it is an http(s) URL."""
    for link in links if isinstance(links, list) else []:
        if isinstance(link, dict) and link.get("rel") == "self":
            href = link.get("href")
            if (
                isinstance(href, str)
                and href.startswith(("https://", "http://"))
                and len(href) < 2048
            ):
                return href
    return None


def _footprint(geometry: Any, bbox: Any) -> dict[str, Any] | None:
    """The item's geometry as a valid WGS84 (Multi)Polygon; repaired when it is not valid, its
    bbox when it is no polygon at all."""
    try:
        return to_geojson(parse_roi(geometry))
    except ValueError:
        pass
    shaped = _shape(geometry)
    if shaped is not None:
        repaired = shapely.make_valid(shaped)
        polygons = [
            part
            for part in getattr(repaired, "geoms", [repaired])
            if part.geom_type in ("Polygon", "MultiPolygon") and not part.is_empty
        ]
        if polygons:
            merged = shapely.union_all(polygons)
            if merged.geom_type in ("Polygon", "MultiPolygon") and _in_bounds(merged):
                return to_geojson(merged)
    if isinstance(bbox, list) and len(bbox) in (4, 6):
        values = [number(v) for v in bbox]
        if all(v is not None for v in values):
            low = values[:2]
            high = values[3:5] if len(values) == 6 else values[2:]
            west, south, east, north = (float(v) for v in (*low, *high) if v is not None)
            if west < east and south < north:
                outline = box(west, south, east, north)
                if _in_bounds(outline):
                    return to_geojson(outline)
    return None


def _shape(geometry: Any) -> BaseGeometry | None:
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        return None
    try:
        shaped = shape(geometry)
    except (
        ValueError,
        TypeError,
        AttributeError,
        KeyError,
        IndexError,
        shapely.errors.ShapelyError,
    ):
        return None
    return shapely.force_2d(shaped) if not shaped.is_empty else None


def _in_bounds(geometry: BaseGeometry) -> bool:
    west, south, east, north = geometry.bounds
    return -180 <= west <= east <= 180 and -90 <= south <= north <= 90 and geometry.area > 0


def _times(properties: dict[str, Any]) -> tuple[datetime, datetime] | None:
    start = parse_time(properties.get("start_datetime"))
    end = parse_time(properties.get("end_datetime"))
    moment = parse_time(properties.get("datetime"))
    start = start or moment or end
    end = end or moment or start
    if start is None or end is None:
        return None
    return (start, end) if start <= end else (end, start)


def _bounded(properties: dict[str, Any]) -> dict[str, Any]:
    """The remote properties, at most MAX_PROPERTIES_BYTES as JSON: the largest are left out
    first, and values that are not JSON (NaN) are dropped."""
    sizes: dict[str, int] = {}
    for key, value in properties.items():
        try:
            sizes[key] = len(json.dumps({key: value}, allow_nan=False))
        except (ValueError, TypeError, RecursionError):
            continue
    kept: dict[str, Any] = {}
    total = 2
    for key in sorted(sizes, key=lambda k: sizes[k]):
        if total + sizes[key] > MAX_PROPERTIES_BYTES:
            break
        kept[key] = properties[key]
        total += sizes[key]
    return {key: kept[key] for key in properties if key in kept}  # in the source's order


def _item_assets(collection: dict[str, Any] | None) -> dict[str, Any]:
    found = collection.get("item_assets") if isinstance(collection, dict) else None
    return found if isinstance(found, dict) else {}


def _assets(
    assets: Any, mapping: CollectionMapping, item_assets: dict[str, Any]
) -> dict[str, AssetRead]:
    """Only the mapped roles, keyed by CURE's role; an asset the item lacks is left out."""
    if not isinstance(assets, dict):
        return {}
    found: dict[str, AssetRead] = {}
    for role, key in list(mapping.assets.items())[:MAX_ASSETS]:
        asset = assets.get(key)
        if not isinstance(asset, dict):
            continue
        read = _asset(asset, item_assets.get(key))
        if read is not None:
            found[role] = read
    return found


def _asset(asset: dict[str, Any], template: Any) -> AssetRead | None:
    href = asset.get("href")
    if not isinstance(href, str) or not _usable_href(href):
        return None
    template = template if isinstance(template, dict) else {}
    media_type = asset.get("type") or template.get("type")
    roles = asset.get("roles") or template.get("roles") or []
    title = asset.get("title") or template.get("title")
    scale, offset, nodata = _raster(asset)
    if scale is None and offset is None and nodata is None:
        scale, offset, nodata = _raster(template)
    size = asset.get("file:size")
    return AssetRead(
        href=href,
        type=media_type if isinstance(media_type, str) and media_type else DEFAULT_MEDIA_TYPE,
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        checksum=_checksum(asset.get("file:checksum")),
        roles=[r for r in roles if isinstance(r, str)][:10] if isinstance(roles, list) else [],
        title=title[:200] if isinstance(title, str) else None,
        scale=scale,
        offset=offset,
        nodata=nodata,
    )


def _usable_href(href: str) -> bool:
    lowered = href[:8].lower()
    return (
        lowered.startswith(("http://", "https://", "s3://"))
        and len(href) <= 4096
        and not any(ord(c) < 32 for c in href)
    )


def _raster(asset: dict[str, Any]) -> tuple[float | None, float | None, float | None]:
    """(scale, offset, nodata) of an asset's first band: STAC raster extension v1
    (``raster:bands``), or v2 / STAC 1.1 (``bands`` with ``raster:scale``..., or on the asset)."""
    bands = asset.get("raster:bands")
    if not isinstance(bands, list):
        bands = asset.get("bands")
    band = bands[0] if isinstance(bands, list) and bands and isinstance(bands[0], dict) else {}

    def pick(*names: str) -> float | None:
        for where in (band, asset):
            for name in names:
                if name in where:
                    found = number(where[name])
                    if found is not None:
                        return found
        return None

    return (
        pick("scale", "raster:scale"),
        pick("offset", "raster:offset"),
        pick("nodata"),
    )


def _checksum(value: Any) -> str | None:
    """``file:checksum`` (a multihash in hex) as CURE writes a checksum: sha256:<hex> (or
    sha512:<hex>); another hash is left out."""
    if not isinstance(value, str):
        return None
    found = _MULTIHASH.match(value)
    if found is None:
        return None
    return f"sha256:{found[1].lower()}" if found[1] else f"sha512:{found[2].lower()}"
