"""A region of interest from what people have at hand: a GeoJSON file, a bbox or WKT.

Only Polygon and MultiPolygon in WGS84 longitude/latitude, as the API takes them; no GIS library
is needed for that.
"""

import json
import re
from pathlib import Path
from typing import Any

from cure_client.errors import RegionError

Geometry = dict[str, Any]


def from_bbox(value: str | list[float] | tuple[float, ...]) -> Geometry:
    """``min_lon,min_lat,max_lon,max_lat`` as a Polygon."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        x0, y0, x1, y1 = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise RegionError("a bbox is four numbers: min_lon,min_lat,max_lon,max_lat") from None
    if not (x0 < x1 and y0 < y1):
        raise RegionError("a bbox's minimum must be below its maximum on both axes")
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return {"type": "Polygon", "coordinates": [ring]}


def from_geojson(document: Any) -> Geometry:
    """The polygon(s) of a GeoJSON geometry, Feature or FeatureCollection (several polygons
    become one MultiPolygon)."""
    polygons = list(_polygons(document))
    if not polygons:
        raise RegionError("the GeoJSON holds no Polygon or MultiPolygon")
    if len(polygons) == 1:
        return {"type": "Polygon", "coordinates": polygons[0]}
    return {"type": "MultiPolygon", "coordinates": polygons}


def _polygons(document: Any) -> Any:
    if not isinstance(document, dict):
        raise RegionError("not a GeoJSON object")
    kind = document.get("type")
    if kind == "FeatureCollection":
        for feature in document.get("features") or []:
            yield from _polygons(feature)
    elif kind == "Feature":
        if document.get("geometry"):
            yield from _polygons(document["geometry"])
    elif kind == "GeometryCollection":
        for geometry in document.get("geometries") or []:
            yield from _polygons(geometry)
    elif kind == "Polygon":
        yield document["coordinates"]
    elif kind == "MultiPolygon":
        yield from document["coordinates"]
    else:
        raise RegionError(f"a region must be a Polygon or MultiPolygon, not {kind!r}")


def from_file(path: str | Path) -> Geometry:
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise RegionError(f"cannot read GeoJSON from {path}: {exc}") from None
    return from_geojson(document)


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def from_wkt(text: str) -> Geometry:
    """POLYGON or MULTIPOLYGON well-known text (2D; a Z or M value is dropped)."""
    match = re.fullmatch(
        r"\s*(MULTIPOLYGON|POLYGON)\s*(?:Z|M|ZM)?\s*(\(.*\))\s*", text, re.I | re.S
    )
    if not match:
        raise RegionError("WKT must be a POLYGON or MULTIPOLYGON")
    kind, body = match.group(1).upper(), match.group(2)
    try:
        nested = _parse(_tokens(body))
    except (ValueError, IndexError):
        raise RegionError("the WKT is not well formed") from None
    if kind == "POLYGON":
        return {"type": "Polygon", "coordinates": nested}
    return {"type": "MultiPolygon", "coordinates": nested}


def _tokens(body: str) -> list[str]:
    return re.findall(rf"\(|\)|,|{_NUMBER}(?:\s+{_NUMBER})+", body)


def _parse(tokens: list[str]) -> Any:
    """Nested lists from "(" ... ")" groups; leaves are positions (lists of two floats)."""
    position = 0

    def group() -> list[Any]:
        nonlocal position
        if tokens[position] != "(":
            raise ValueError("expected (")
        position += 1
        items: list[Any] = []
        while tokens[position] != ")":
            part = tokens[position]
            if part == ",":
                position += 1
                continue
            if part == "(":
                items.append(group())
            else:
                numbers = [float(n) for n in part.split()]
                items.append(numbers[:2])
                position += 1
        position += 1
        return items

    result = group()
    if position != len(tokens):
        raise ValueError("trailing text")
    return result


def parse_region(value: str) -> Geometry:
    """A region from one command-line value: a GeoJSON file's path, a bbox, WKT or GeoJSON text."""
    text = value.strip()
    if re.fullmatch(rf"\s*{_NUMBER}(\s*,\s*{_NUMBER}){{3}}\s*", text):
        return from_bbox(text)
    if text.startswith("{"):
        try:
            return from_geojson(json.loads(text))
        except ValueError:
            raise RegionError("the GeoJSON text is not valid JSON") from None
    if re.match(r"\s*(MULTI)?POLYGON", text, re.I):
        return from_wkt(text)
    return from_file(text)
