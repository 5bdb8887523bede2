"""GeoJSON at the edges: parse and check a region of interest, convert to and from PostGIS."""

import functools
import json
import math
import re
from typing import Any

import shapely.wkb
from geoalchemy2 import WKBElement
from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

ROI_TYPES = ("Polygon", "MultiPolygon")
WGS84_NAMES = {
    "urn:ogc:def:crs:OGC:1.3:CRS84",
    "urn:ogc:def:crs:OGC::CRS84",
    "urn:ogc:def:crs:EPSG::4326",
    "EPSG:4326",
    "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    "http://www.opengis.net/def/crs/EPSG/0/4326",
}
MAX_VERTICES = 100_000


Box = tuple[float, float, float, float]


def parse_bbox(value: str) -> Box:
    """``minlon,minlat,maxlon,maxlat`` in WGS84 (the one parser of a box given as text: the
    catalogue, the orders' listing, the portal and the source check); ValueError saying what is
    wrong, which each caller answers as its 4xx naming the parameter."""
    parts = value.split(",")
    message = "must be four numbers: minlon,minlat,maxlon,maxlat"
    if len(parts) != 4:
        raise ValueError(message)
    try:
        min_lon, min_lat, max_lon, max_lat = (float(p) for p in parts)
    except ValueError:
        raise ValueError(message) from None
    if not all(math.isfinite(n) for n in (min_lon, min_lat, max_lon, max_lat)):
        raise ValueError(message)
    if not (-180 <= min_lon <= 180 and -180 <= max_lon <= 180):
        raise ValueError("longitudes must lie within -180..180")
    if not (-90 <= min_lat <= 90 and -90 <= max_lat <= 90):
        raise ValueError("latitudes must lie within -90..90")
    if min_lon > max_lon or min_lat > max_lat:
        raise ValueError("the minimum must not exceed the maximum on either axis")
    return min_lon, min_lat, max_lon, max_lat


def _check_crs(crs: Any) -> None:
    # RFC 7946 dropped "crs": coordinates are WGS84. Accept only a member that says so (and any
    # other shape of it is a reason to refuse, never an error of ours).
    properties = crs.get("properties") if isinstance(crs, dict) else None
    name = properties.get("name") if isinstance(properties, dict) else None
    if not isinstance(name, str) or name not in WGS84_NAMES:
        raise ValueError("roi must be in WGS84 (EPSG:4326 / CRS84) longitude, latitude")


def _positions(geo_type: str, coordinates: Any) -> list[list[list[Any]]]:
    """The rings of the geometry, after checking the nesting GeoJSON prescribes; positions are
    counted ring by ring as they are found, so an oversized region is refused before any of
    its coordinates is examined."""
    polygons = [coordinates] if geo_type == "Polygon" else coordinates
    if not isinstance(polygons, list) or not polygons:
        raise ValueError("roi.coordinates must be a non-empty array")
    rings: list[list[list[Any]]] = []
    vertices = 0
    for polygon in polygons:
        if not isinstance(polygon, list) or not polygon:
            raise ValueError("each polygon must be a non-empty array of linear rings")
        for ring in polygon:
            if not isinstance(ring, list) or len(ring) < 4:
                raise ValueError("each linear ring needs at least 4 positions")
            vertices += len(ring)
            if vertices > MAX_VERTICES:
                raise ValueError(
                    f"roi has more than {MAX_VERTICES} positions; at most that many are accepted"
                )
            rings.append(ring)
    return rings


def _check_position(position: Any) -> None:
    if (
        not isinstance(position, list)
        or len(position) not in (2, 3)
        or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in position)
    ):
        raise ValueError("each position must be [longitude, latitude] numbers")
    try:
        lon, lat = float(position[0]), float(position[1])
    except OverflowError:
        raise ValueError(
            f"position {position[:2]} holds a number too large to be a coordinate"
        ) from None
    if (
        not (math.isfinite(lon) and math.isfinite(lat))
        or not -180 <= lon <= 180
        or not -90 <= lat <= 90
    ):
        raise ValueError(
            f"position {position[:2]} is outside WGS84 bounds (longitude -180..180, latitude -90..90)"
        )


def parse_roi(value: Any) -> BaseGeometry:
    """A valid 2D Polygon or MultiPolygon in WGS84, or ValueError with a reason a person can act on."""
    if not isinstance(value, dict):
        raise ValueError("roi must be a GeoJSON geometry object")
    geo_type = value.get("type")
    if geo_type not in ROI_TYPES:
        raise ValueError(f"roi.type must be one of {', '.join(ROI_TYPES)}, not {geo_type!r}")
    unknown = set(value) - {"type", "coordinates", "crs", "bbox"}
    if unknown:
        raise ValueError(f"roi has unknown members: {', '.join(sorted(unknown))}")
    if "crs" in value:
        _check_crs(value["crs"])
    rings = _positions(geo_type, value.get("coordinates"))
    for ring in rings:
        for position in ring:
            _check_position(position)
        if ring[0][:2] != ring[-1][:2]:
            raise ValueError("each linear ring must be closed (first and last positions equal)")
    geometry = shape({"type": geo_type, "coordinates": value["coordinates"]})
    if geometry.has_z:
        geometry = shape({"type": geo_type, "coordinates": _drop_z(value["coordinates"])})
    if geometry.is_empty or geometry.area == 0:
        raise ValueError("roi has no area")
    if not geometry.is_valid:
        raise ValueError(f"roi is not a valid geometry: {explain_validity(geometry)}")
    return geometry


def _drop_z(coordinates: Any) -> Any:
    if coordinates and isinstance(coordinates[0], int | float):
        return coordinates[:2]
    return [_drop_z(c) for c in coordinates]


def to_geojson(geometry: BaseGeometry) -> dict[str, Any]:
    result: dict[str, Any] = _lists(mapping(geometry))
    return result


def checked_to_db(roi: dict[str, Any]) -> WKBElement:
    """A region that ``parse_roi`` already checked (an OrderCreate's roi), ready for PostGIS."""
    return from_shape(shape(roi), srid=4326)


def from_db(element: WKBElement) -> dict[str, Any]:
    if not element.extended and isinstance(element.data, bytes | memoryview):
        return from_wkb(bytes(element.data))  # plain WKB: a new order's, as checked_to_db made it
    return to_geojson(to_shape(element))


def from_wkb(data: bytes) -> dict[str, Any]:
    """GeoJSON of a geometry read as WKB (``ST_AsBinary``), as ``from_db`` gives it: written by
    GEOS and parsed, a third cheaper than shapely's ``mapping`` and the same values. A small
    region's text is remembered (a client polls one order's status many times); each call
    parses its own copy, so no caller shares a mutable answer."""
    text = _geojson_text(data) if len(data) <= _REMEMBERED_WKB_BYTES else _geojson_of(data)
    return json.loads(text)


# Regions up to this size (a polygon of about 250 vertices), 1,024 of them: at most 4 MiB.
_REMEMBERED_WKB_BYTES = 4096


def _geojson_of(data: bytes) -> str:
    return str(shapely.to_geojson(shapely.wkb.loads(data)))


_geojson_text = functools.lru_cache(maxsize=1024)(_geojson_of)


def _lists(value: Any) -> Any:
    # shapely's mapping() gives tuples; GeoJSON readers (and equality in tests) expect lists.
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(v) for v in value]
    return value


# A JSON string (to the end of the text when unterminated: each is scanned once), or a bracket.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


def json_text_nesting(text: str, *, limit: int) -> int:
    """How deep the arrays and objects of JSON text nest, counted on the text itself (brackets in
    strings do not count) before any parser walks it: a parser recurses once per level, so text
    nested thousands deep would exhaust it. Stops counting once past ``limit``."""
    depth = deepest = 0
    for token in _JSON_TOKEN.finditer(text):
        mark = token[0]
        if mark[0] == '"':
            continue
        depth += 1 if mark in "[{" else -1
        deepest = max(deepest, depth)
        if deepest > limit:
            break
    return deepest
