"""Synthetic but realistic input products for the demo: small georeferenced GeoTIFFs over a few
European cities, in the forms CURE's raster apps read.

Per city, one imperviousness product (the Copernicus HRL is a 2018 status layer, not daily) and
per date one Sentinel-3 SLSTR land surface temperature and one Sentinel-2 L2A reflectance product.
Every raster is drawn from the same city model (urban core, suburbs, parks, a river, fields), so
the products agree with each other. They come in different grids on purpose, as real products do:

- LST: EPSG:3035 at 100 m, float32 kelvin (-32768 where clouds hide the surface);
- imperviousness: EPSG:4326 at 0.0002 degrees, uint8 percent (255: no data);
- Sentinel-2 L2A as the catalogues publish it, in the city's UTM zone: red (B04) and
  near-infrared (B08) at 10 m, uint16 digital numbers of processing baseline 05.10
  (reflectance = DN * 0.0001 - 0.1, the scale and offset in the raster's metadata and the
  baseline in the product's properties; 0: no data), and the scene classification (SCL) at 20 m
  with a few clouds, their shadows and thin cirrus.

Everything is seeded by city, date and layer, so a run gives the same files every time.
"""

from __future__ import annotations

import argparse
import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform as transform_points
from rasterio.warp import transform_bounds

from cure.demo import netcdf

WGS84 = "EPSG:4326"
LAEA_EUROPE = "EPSG:3035"
LST_NODATA = -32768.0
IMPERVIOUSNESS_NODATA = 255
REFLECTANCE_NODATA = 0
REFLECTANCE_SCALE = 1e-4
# Processing baseline 04.00 and later: reflectance = DN * 1e-4 - 0.1 (BOA_ADD_OFFSET -1000).
S2_BASELINE = "05.10"
REFLECTANCE_OFFSET = -0.1
# Sen2Cor's scene classification codes the demo draws.
SCL_NO_DATA, SCL_CLOUD_SHADOWS, SCL_VEGETATION, SCL_NOT_VEGETATED, SCL_WATER = 0, 3, 4, 5, 6
SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_THIN_CIRRUS = 8, 9, 10
SCL_CLOUDY = (SCL_CLOUD_SHADOWS, SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_THIN_CIRRUS)

LST_COLLECTION, LST_PRODUCT_TYPE = "sentinel3-slstr-lst", "SL_2_LST"
IMD_COLLECTION, IMD_PRODUCT_TYPE = "hrl-imperviousness", "IMD"
S2_COLLECTION, S2_PRODUCT_TYPE = "sentinel2-l2a", "S2MSI2A"
HRL_REFERENCE_DAY = datetime(2018, 1, 1, tzinfo=UTC)
DEM_COLLECTION, DEM_PRODUCT_TYPE = "copernicus-dem-glo-30", "DEM"
DEM_NODATA = -32767.0
DEM_STEP = 1 / 3600  # one arc-second north-south, as GLO-30
# GLO-30's east-west spacing widens towards the poles (arc-seconds, by the tile's latitude).
DEM_X_SPACING = ((50, 1.0), (60, 1.5), (70, 2.0), (80, 3.0), (85, 5.0), (90, 10.0))
# The Copernicus DEM's elevations come from TanDEM-X acquisitions of 2011 to 2015.
DEM_ACQUIRED = (datetime(2011, 1, 1, tzinfo=UTC), datetime(2015, 1, 1, tzinfo=UTC))
# The GHSL's population grid (GHS-POP R2023A): persons per 100 m cell in World Mollweide, in
# tiles of 1000 km from x -18,041,000 m and y 9,000,000 m; the demo's epoch is 2020.
POP_COLLECTION, POP_PRODUCT_TYPE = "ghs-pop", "GHS_POP"
MOLLWEIDE = "ESRI:54009"
POP_NODATA = -200.0
POP_STEP = 100.0
POP_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
POP_TILE_ORIGIN, POP_TILE_SIZE = (-18_041_000.0, 9_000_000.0), 1_000_000.0


class City(TypedDict):
    name: str
    bbox: tuple[float, float, float, float]  # WGS84: west, south, east, north
    summer_lst_k: float  # the countryside's usual land surface temperature at a summer noon
    greenness: float  # 0-1: how green its open land stays in summer (dry climates: low)


def _city(name: str, lon: float, lat: float, summer_lst_k: float, greenness: float) -> City:
    return {
        "name": name,
        "bbox": (
            round(lon - 0.1, 6),
            round(lat - 0.075, 6),
            round(lon + 0.1, 6),
            round(lat + 0.075, 6),
        ),
        "summer_lst_k": summer_lst_k,
        "greenness": greenness,
    }


CITIES: tuple[City, ...] = (
    _city("Vienna", 16.3738, 48.2082, 303.0, 0.85),
    _city("Berlin", 13.4050, 52.5200, 301.0, 0.9),
    _city("Madrid", -3.7038, 40.4168, 314.0, 0.35),
    _city("Copenhagen", 12.5683, 55.6761, 296.0, 1.0),
)
DATES: tuple[date, ...] = (date(2024, 6, 21), date(2024, 7, 15), date(2024, 8, 12))


@dataclass(frozen=True)
class GeneratedProduct:
    """One product as a catalogue would list it, with its files."""

    collection: str
    identifier: str
    product_type: str
    start: datetime
    end: datetime
    assets: dict[str, Path]
    bbox: tuple[float, float, float, float]
    city: str
    properties: dict[str, Any] = field(default_factory=dict)  # catalogue properties (STAC names)

    def footprint(self) -> dict[str, Any]:
        """The product's bounding box as a GeoJSON Polygon (WGS84)."""
        west, south, east, north = self.bbox
        ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
        return {"type": "Polygon", "coordinates": [ring]}


def city_by_name(name: str) -> City:
    for city in CITIES:
        if city["name"].lower() == name.lower():
            return city
    raise KeyError(f"no demo city named {name!r}")


def generate(
    out_dir: Path, cities: Iterable[City] = CITIES, dates: Iterable[date] = DATES
) -> list[GeneratedProduct]:
    """Write every city's imperviousness, elevation and population and, per date, its LST,
    reflectance and air quality products."""
    days = sorted(set(dates))
    products: list[GeneratedProduct] = []
    for city in cities:
        model = CityModel(city)
        products.append(_imperviousness_product(out_dir, model))
        products.append(_dem_product(out_dir, model))
        products.append(_population_product(out_dir, model))
        for day in days:
            products.append(_lst_product(out_dir, model, day))
            products.append(_reflectance_product(out_dir, model, day))
            products.append(_air_quality_product(out_dir, model, day))
    return products


# --- the city model ------------------------------------------------------------------------------


def _seed(*parts: object) -> int:
    """A seed that is the same in every process (unlike hash())."""
    return zlib.crc32("/".join(str(p) for p in parts).encode())


@dataclass(frozen=True)
class _Blob:
    x: float
    y: float
    radius: float


class CityModel:
    """Land cover fields of one city over lon/lat, in km east/north of its centre."""

    def __init__(self, city: City) -> None:
        self.city = city
        west, south, east, north = city["bbox"]
        self.lon0, self.lat0 = (west + east) / 2, (south + north) / 2
        rng = np.random.default_rng(_seed(city["name"], "layout"))
        self.core_axes = (rng.uniform(3.0, 4.5), rng.uniform(2.5, 4.0))
        self.core_angle = rng.uniform(0, math.pi)
        self.parks = [
            _Blob(rng.uniform(-5, 5), rng.uniform(-4, 4), rng.uniform(0.3, 1.0)) for _ in range(6)
        ]
        self.villages = [
            _Blob(rng.uniform(-7.5, 7.5), rng.uniform(-8, 8), rng.uniform(0.4, 0.8))
            for _ in range(5)
        ]
        self.river_angle = rng.uniform(0, math.pi)
        self.river_phase = rng.uniform(0, 2 * math.pi)
        self.river_width = rng.uniform(0.15, 0.35)
        self.waves = [
            (rng.uniform(0.5, 3.0), rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi))
            for _ in range(6)
        ]
        self.fields = rng.random((64, 64))
        # Terrain: a base height, a regional tilt, hills, a valley along the river and a few
        # hollows where rain ponds.
        self.base_m = rng.uniform(30, 600)
        self.tilt = (rng.uniform(-2.5, 2.5), rng.uniform(-2.5, 2.5))  # metres per km east, north
        self.hollows = [
            _Blob(rng.uniform(-6, 6), rng.uniform(-5, 5), rng.uniform(0.2, 0.5)) for _ in range(8)
        ]
        self.hollow_depths = rng.uniform(1.0, 3.0, len(self.hollows))

    def local_km(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Kilometres east and north of the centre (a local approximation, fine at city scale)."""
        east = (lon - self.lon0) * 111.32 * math.cos(math.radians(self.lat0))
        north = (lat - self.lat0) * 110.57
        return east, north

    def layers(self, lon: np.ndarray, lat: np.ndarray) -> dict[str, np.ndarray]:
        """Sealing 0-1, park 0-1, water (bool) and field index at the given points."""
        x, y = self.local_km(lon, lat)
        cos_a, sin_a = math.cos(self.core_angle), math.sin(self.core_angle)
        u, v = x * cos_a + y * sin_a, -x * sin_a + y * cos_a
        core = np.exp(-((u / self.core_axes[0]) ** 2 + (v / self.core_axes[1]) ** 2))
        suburbs = np.exp(-((x**2 + y**2) / 7.0**2))
        texture = sum(
            np.sin(k * (x * math.cos(d) + y * math.sin(d)) + p) for k, d, p in self.waves
        ) / len(self.waves)
        villages = np.max([_bump(x, y, b) for b in self.villages], axis=0)
        sealing = 0.9 * core + 0.35 * suburbs + 0.45 * villages + 0.08 * texture
        park = np.max([_bump(x, y, b) for b in self.parks], axis=0)
        sealing = np.clip(sealing * (1 - 0.95 * park), 0, 1)

        water = np.abs(self._across_river(x, y)) < self.river_width / 2
        fields = (np.floor(x / 0.6).astype(int) % 64, np.floor(y / 0.45).astype(int) % 64)
        return {"sealing": sealing, "park": park, "water": water, "field": self.fields[fields]}

    def _across_river(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Kilometres from the river's centre line (signed)."""
        cos_r, sin_r = math.cos(self.river_angle), math.sin(self.river_angle)
        along, across = x * cos_r + y * sin_r, -x * sin_r + y * cos_r
        return across - 1.2 * np.sin(along / 3.0 + self.river_phase)

    def elevation(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Metres above the geoid: the base and tilt, a valley 15 m deep around the river (its
        channel 2 m lower), hills of the land cover's waves and hollows up to 3 m deep."""
        x, y = self.local_km(lon, lat)
        distance = np.abs(self._across_river(x, y))
        height = self.base_m + self.tilt[0] * x + self.tilt[1] * y
        height = height + 15.0 * (1 - np.exp(-((distance / 2.0) ** 2)))
        height = height - 2.0 * (distance < self.river_width / 2)
        height = height + 6.0 * sum(
            np.sin(0.5 * k * (x * math.cos(d) + y * math.sin(d)) + p) for k, d, p in self.waves
        ) / len(self.waves)
        for hollow, depth in zip(self.hollows, self.hollow_depths, strict=True):
            height = height - depth * _bump(x, y, hollow)
        return height

    def summer_lst(self, day: date) -> float:
        """The countryside's LST on a day: a seasonal curve peaking mid-July plus the weather."""
        season = 2.5 * math.cos(2 * math.pi * (day.timetuple().tm_yday - 197) / 365)
        weather = np.random.default_rng(_seed(self.city["name"], day, "weather")).normal(0, 1.5)
        return self.city["summer_lst_k"] + season + float(weather)


def _bump(x: np.ndarray, y: np.ndarray, blob: _Blob) -> np.ndarray:
    """A smooth round patch: 1 in its middle, fading out past its radius."""
    distance2 = (x - blob.x) ** 2 + (y - blob.y) ** 2
    return np.exp(-((distance2 / blob.radius**2) ** 2))


# --- grids and files -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Grid:
    crs: str
    transform: Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)


def _grid(
    bbox: tuple[float, float, float, float], crs: str, step: float, x_step: float | None = None
) -> _Grid:
    """A grid of crs, step units a pixel (x_step wide, if given), snapped to whole steps,
    covering a WGS84 bbox."""
    x_step = x_step or step
    left, bottom, right, top = transform_bounds(WGS84, crs, *bbox, densify_pts=21)
    # Outward to whole steps, a step more where rounding could leave an edge just inside.
    left, right = (
        math.floor(left / x_step - 1e-6) * x_step,
        math.ceil(right / x_step + 1e-6) * x_step,
    )
    bottom, top = (math.floor(bottom / step - 1e-6) * step, math.ceil(top / step + 1e-6) * step)
    width, height = round((right - left) / x_step), round((top - bottom) / step)
    return _Grid(crs, Affine(x_step, 0, left, 0, -step, top), width, height)


def _lonlat_centres(grid: _Grid) -> tuple[np.ndarray, np.ndarray]:
    cols, rows = np.meshgrid(np.arange(grid.width) + 0.5, np.arange(grid.height) + 0.5)
    t = grid.transform
    xs, ys = t.c + cols * t.a + rows * t.b, t.f + cols * t.d + rows * t.e
    if CRS.from_user_input(grid.crs) == CRS.from_user_input(WGS84):
        return xs, ys
    lons, lats = transform_points(grid.crs, WGS84, xs.ravel(), ys.ravel())
    return np.reshape(lons, xs.shape), np.reshape(lats, xs.shape)


def utm_crs(lon: float, lat: float) -> str:
    zone = int((lon + 180) // 6) + 1
    return f"EPSG:{32600 + zone if lat >= 0 else 32700 + zone}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write(
    path: Path,
    data: np.ndarray,
    grid: _Grid,
    *,
    nodata: float,
    tags: dict[str, str],
    description: str,
    units: str,
    scale: float | None = None,
    offset: float = 0.0,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    floating = np.issubdtype(data.dtype, np.floating)
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": 1,
        "dtype": data.dtype.name,
        "crs": grid.crs,
        "transform": grid.transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "predictor": 3 if floating else 2,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
        dst.update_tags(**tags)
        dst.set_band_description(1, description)
        dst.set_band_unit(1, units)
        if scale is not None:
            dst.scales = (scale,)
            dst.offsets = (offset,)
    return path


def _tags(
    collection: str, product_type: str, identifier: str, start: datetime, end: datetime
) -> dict[str, str]:
    return {
        "ACQUISITION_START": _iso(start),
        "ACQUISITION_END": _iso(end),
        "PRODUCT_TYPE": product_type,
        "COLLECTION": collection,
        "IDENTIFIER": identifier,
        "TIFFTAG_DATETIME": start.astimezone(UTC).strftime("%Y:%m:%d %H:%M:%S"),
    }


def _slug(city: City) -> str:
    return city["name"].upper().replace(" ", "_")


# --- the three products --------------------------------------------------------------------------


def _imperviousness_product(out_dir: Path, model: CityModel) -> GeneratedProduct:
    city = model.city
    grid = _grid(city["bbox"], WGS84, 0.0002)
    layers = model.layers(*_lonlat_centres(grid))
    noise = np.random.default_rng(_seed(city["name"], "imperviousness")).normal(
        0, 4, (grid.height, grid.width)
    )
    percent = np.clip(np.round(100 * layers["sealing"] + noise), 0, 100)
    percent[layers["water"]] = 0
    data = percent.astype("uint8")

    identifier = f"IMD_2018_010m_CURE_DEMO_{_slug(city)}"
    start = end = HRL_REFERENCE_DAY
    folder = out_dir / IMD_COLLECTION / identifier
    tags = _tags(IMD_COLLECTION, IMD_PRODUCT_TYPE, identifier, start, end)
    path = _write(
        folder / "IMD.tif",
        data,
        grid,
        nodata=IMPERVIOUSNESS_NODATA,
        tags=tags,
        description="imperviousness density",
        units="%",
    )
    return GeneratedProduct(
        IMD_COLLECTION,
        identifier,
        IMD_PRODUCT_TYPE,
        start,
        end,
        {"imd": path},
        city["bbox"],
        city["name"],
    )


def _dem_tile(lon: float, lat: float) -> str:
    """The Copernicus DEM's name of the 1-degree tile holding a point, e.g. N48_00_E016_00."""
    south, west = math.floor(lat), math.floor(lon)
    return (
        f"{'N' if south >= 0 else 'S'}{abs(south):02d}_00_"
        f"{'E' if west >= 0 else 'W'}{abs(west):03d}_00"
    )


def _dem_product(out_dir: Path, model: CityModel) -> GeneratedProduct:
    """Elevation in the Copernicus DEM GLO-30's layout (float32 metres in EPSG:4326, one
    arc-second north-south and as wide as GLO-30 at the tile's latitude, named by its 1-degree
    tile), cut to the city's box. Like GLO-30 it is a surface model; the demo's has no
    buildings."""
    city = model.city
    spacing = next(s for limit, s in DEM_X_SPACING if abs(math.floor(model.lat0)) < limit)
    grid = _grid(city["bbox"], WGS84, DEM_STEP, DEM_STEP * spacing)
    lons, lats = _lonlat_centres(grid)
    noise = np.random.default_rng(_seed(city["name"], "dem")).normal(0, 0.15, lons.shape)
    data = (model.elevation(lons, lats) + noise).astype("float32")
    identifier = (
        f"Copernicus_DSM_COG_10_{_dem_tile(model.lon0, model.lat0)}_DEM_CURE_DEMO_{_slug(city)}"
    )
    start, end = DEM_ACQUIRED
    tags = _tags(DEM_COLLECTION, DEM_PRODUCT_TYPE, identifier, start, end)
    path = _write(
        out_dir / DEM_COLLECTION / identifier / f"{identifier}.tif",
        data,
        grid,
        nodata=DEM_NODATA,
        tags=tags,
        description="elevation above the EGM2008 geoid",
        units="m",
    )
    return GeneratedProduct(
        DEM_COLLECTION,
        identifier,
        DEM_PRODUCT_TYPE,
        start,
        end,
        {"dem": path},
        city["bbox"],
        city["name"],
    )


def _population_tile(lon: float, lat: float) -> str:
    """The GHS-POP tile holding a point, e.g. R4_C20 (rows from the north, columns from the
    west, counted from 1)."""
    (x,), (y,) = transform_points(WGS84, MOLLWEIDE, [lon], [lat])
    (x0, y0), size = POP_TILE_ORIGIN, POP_TILE_SIZE
    return f"R{int((y0 - y) // size) + 1}_C{int((x - x0) // size) + 1}"


def _population_product(out_dir: Path, model: CityModel) -> GeneratedProduct:
    """Residents in the GHSL's GHS-POP layout (R2023A, epoch 2020): float32 persons per 100 m
    cell of World Mollweide (ESRI:54009), nodata -200, named by its 1000 km tile, cut to the
    city's box. People live where the city model is sealed, fewer in the suburbs and villages,
    none in the parks and the river."""
    city = model.city
    grid = _grid(city["bbox"], MOLLWEIDE, POP_STEP)
    layers = model.layers(*_lonlat_centres(grid))
    rng = np.random.default_rng(_seed(city["name"], "population"))
    # About 120 residents a hectare in the densest blocks (12,000 a km2), a few in the country.
    persons = 120.0 * layers["sealing"] ** 1.5 * (1 - layers["park"]) + 0.5
    persons = np.minimum(persons * rng.lognormal(0.0, 0.25, grid.shape), 300.0)
    persons[layers["water"]] = 0.0
    data = np.round(persons, 1).astype("float32")
    tile = _population_tile(model.lon0, model.lat0)
    identifier = f"GHS_POP_E2020_GLOBE_R2023A_54009_100_V1_0_{tile}_CURE_DEMO_{_slug(city)}"
    start = end = POP_EPOCH
    tags = _tags(POP_COLLECTION, POP_PRODUCT_TYPE, identifier, start, end)
    path = _write(
        out_dir / POP_COLLECTION / identifier / f"{identifier}.tif",
        data,
        _Grid(grid.crs, grid.transform, grid.width, grid.height),
        nodata=POP_NODATA,
        tags=tags,
        description="residential population",
        units="persons",
    )
    return GeneratedProduct(
        POP_COLLECTION,
        identifier,
        POP_PRODUCT_TYPE,
        start,
        end,
        {"pop": path},
        city["bbox"],
        city["name"],
    )


def _lst_product(out_dir: Path, model: CityModel, day: date) -> GeneratedProduct:
    city = model.city
    grid = _grid(city["bbox"], LAEA_EUROPE, 100.0)
    lon, lat = _lonlat_centres(grid)
    layers = model.layers(lon, lat)
    rng = np.random.default_rng(_seed(city["name"], day, "lst"))
    kelvin = (
        model.summer_lst(day)
        + 9.0 * layers["sealing"]
        - 3.5 * layers["park"]
        - 7.0 * layers["water"]
        - 1.5 * (layers["field"] < 0.4) * (1 - layers["sealing"])  # irrigated or leafy crops
        + rng.normal(0, 0.6, grid.shape)
    )
    x, y = model.local_km(lon, lat)
    for _ in range(int(rng.integers(0, 3))):  # a few clouds: no surface temperature there
        cloud = _Blob(rng.uniform(-8, 8), rng.uniform(-7, 7), rng.uniform(0.5, 1.5))
        kelvin[_bump(x, y, cloud) > 0.5] = LST_NODATA
    data = kelvin.astype("float32")

    platform = str(rng.choice(["S3A", "S3B"]))
    start = datetime.combine(day, time(9, 40), UTC) + timedelta(minutes=int(rng.integers(0, 40)))
    end = start + timedelta(minutes=3)
    identifier = (
        f"{platform}_SL_2_LST____{start:%Y%m%dT%H%M%S}_{end:%Y%m%dT%H%M%S}_CURE_DEMO_{_slug(city)}"
    )
    folder = out_dir / LST_COLLECTION / identifier
    tags = _tags(LST_COLLECTION, LST_PRODUCT_TYPE, identifier, start, end)
    path = _write(
        folder / "LST.tif",
        data,
        grid,
        nodata=LST_NODATA,
        tags=tags,
        description="land surface temperature",
        units="K",
    )
    return GeneratedProduct(
        LST_COLLECTION,
        identifier,
        LST_PRODUCT_TYPE,
        start,
        end,
        {"lst": path},
        city["bbox"],
        city["name"],
    )


def _reflectance_product(out_dir: Path, model: CityModel, day: date) -> GeneratedProduct:
    """Sentinel-2 L2A as the catalogues publish it: B04 and B08 at 10 m, SCL at 20 m."""
    city = model.city
    west, south, east, north = city["bbox"]
    crs = utm_crs((west + east) / 2, (south + north) / 2)
    grid = _grid(city["bbox"], crs, 10.0)
    # The 20 m grid shares the 10 m grid's origin, as in a Sentinel-2 tile.
    t = grid.transform
    scl_grid = _Grid(
        crs, Affine(20.0, 0, t.c, 0, -20.0, t.f), (grid.width + 1) // 2, (grid.height + 1) // 2
    )
    timing = np.random.default_rng(_seed(city["name"], day, "acquisition"))
    start = datetime.combine(day, time(10, 10), UTC) + timedelta(
        minutes=int(timing.integers(0, 30))
    )
    end = start
    platform = str(timing.choice(["S2A", "S2B"]))
    identifier = (
        f"{platform}_MSIL2A_{start:%Y%m%dT%H%M%S}_N{S2_BASELINE.replace('.', '')}"
        f"_CURE_DEMO_{_slug(city)}"
    )
    sky = _Sky(model, day)

    lon, lat = _lonlat_centres(grid)
    layers = model.layers(lon, lat)
    surface = _surface_reflectance(model, day, layers)
    x, y = model.local_km(lon, lat)
    cloud = sky.cloud(x, y)
    rng = np.random.default_rng(_seed(city["name"], day, "reflectance"))
    red = np.where(cloud > 0, 0.25 + 0.2 * cloud, surface["red"]) + rng.normal(0, 0.002, grid.shape)
    nir = np.where(cloud > 0, 0.28 + 0.2 * cloud, surface["nir"]) + rng.normal(0, 0.002, grid.shape)
    # Classified at 10 m, kept at every other pixel: the 20 m layer, nearest to its centres.
    classes = _scene_classes(surface, layers, sky, x, y)[::2, ::2]

    folder = out_dir / S2_COLLECTION / identifier
    tags = _tags(S2_COLLECTION, S2_PRODUCT_TYPE, identifier, start, end)
    tags["PROCESSING_BASELINE"] = S2_BASELINE
    assets: dict[str, Path] = {}
    for key, band, values, description in (
        ("red", "B04", red, "B04 red reflectance"),
        ("nir", "B08", nir, "B08 near-infrared reflectance"),
    ):
        numbers = np.round((values - REFLECTANCE_OFFSET) / REFLECTANCE_SCALE)
        assets[key] = _write(
            folder / f"{band}_10m.tif",
            np.clip(numbers, 1, 65535).astype("uint16"),
            grid,
            nodata=REFLECTANCE_NODATA,
            tags={**tags, "BAND": band},
            description=description,
            units="1",
            scale=REFLECTANCE_SCALE,
            offset=REFLECTANCE_OFFSET,
        )
    assets["scl"] = _write(
        folder / "SCL_20m.tif",
        classes,
        scl_grid,
        nodata=SCL_NO_DATA,
        tags={**tags, "BAND": "SCL"},
        description="scene classification",
        units="",
    )
    masked = np.isin(classes, list(SCL_CLOUDY))
    properties = {
        "s2:processing_baseline": S2_BASELINE,
        "eo:cloud_cover": round(float(masked.mean()) * 100, 2),
        "platform": "sentinel-2a" if platform == "S2A" else "sentinel-2b",
    }
    return GeneratedProduct(
        S2_COLLECTION,
        identifier,
        S2_PRODUCT_TYPE,
        start,
        end,
        assets,
        city["bbox"],
        city["name"],
        properties,
    )


def _surface_reflectance(
    model: CityModel, day: date, layers: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Red and near-infrared surface reflectance of the city's land cover on a day."""
    sealing, park, water = layers["sealing"], layers["park"], layers["water"]
    # Fields turn from green crops to stubble and bare soil over the summer.
    harvested = layers["field"] < (day.timetuple().tm_yday - 160) / 90
    open_land = (1 - sealing) * (1 - park)
    green = np.where(harvested, 0.25, 1.0) * model.city["greenness"]
    vegetation = park + open_land * green
    soil = open_land * (1 - green)
    red = 0.035 * vegetation + 0.13 * sealing + 0.16 * soil
    nir = 0.38 * vegetation + 0.17 * sealing + 0.24 * soil
    return {"red": np.where(water, 0.03, red), "nir": np.where(water, 0.015, nir)}


class _Sky:
    """A day's few small clouds over the city, their shadows (cast to the north-west by a late
    morning sun) and a veil of thin cirrus, in km from the centre."""

    def __init__(self, model: CityModel, day: date) -> None:
        rng = np.random.default_rng(_seed(model.city["name"], day, "sky"))
        self.clouds = [
            _Blob(rng.uniform(-6, 6), rng.uniform(-5, 5), rng.uniform(0.4, 0.9))
            for _ in range(int(rng.integers(1, 4)))
        ]
        self.cirrus = _Blob(rng.uniform(-6, 6), rng.uniform(-5, 5), rng.uniform(0.6, 1.2))
        self.shadow_shift = (-0.5, 0.6)

    def cloud(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """0 where the sky is clear, up to 1 in a cloud's thick middle."""
        density = np.max([_bump(x, y, blob) for blob in self.clouds], axis=0)
        return np.where(density > 0.3, density, 0.0)

    def shadow(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        dx, dy = self.shadow_shift
        return (self.cloud(x - dx, y - dy) > 0) & ~(self.cloud(x, y) > 0)

    def thin_cirrus(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return _bump(x, y, self.cirrus) > 0.5


def _scene_classes(
    surface: dict[str, np.ndarray],
    layers: dict[str, np.ndarray],
    sky: _Sky,
    x: np.ndarray,
    y: np.ndarray,
) -> np.ndarray:
    """Sen2Cor's scene classification: vegetation, not vegetated, water, then what the sky
    hides (cirrus, cloud shadows, cloud of medium and high probability)."""
    ndvi = (surface["nir"] - surface["red"]) / (surface["nir"] + surface["red"])
    classes = np.where(ndvi > 0.3, SCL_VEGETATION, SCL_NOT_VEGETATED)
    classes = np.where(layers["water"], SCL_WATER, classes)
    classes = np.where(sky.thin_cirrus(x, y), SCL_THIN_CIRRUS, classes)
    classes = np.where(sky.shadow(x, y), SCL_CLOUD_SHADOWS, classes)
    cloud = sky.cloud(x, y)
    classes = np.where(cloud > 0, SCL_CLOUD_MEDIUM, classes)
    classes = np.where(cloud > 0.7, SCL_CLOUD_HIGH, classes)
    return classes.astype("uint8")


# --- CAMS European air quality (the air_quality app's input) ---------------------------------------
#
# The CAMS regional (European) ensemble analysis as the Atmosphere Data Store delivers an area
# of it in netCDF: hourly surface concentrations (µg/m3) on a regular 0.1-degree lon/lat grid
# with cell centres at x.x5 degrees, longitudes from 0 to 360 east (west of Greenwich above
# 335), latitudes from north to south; dimensions longitude, latitude, level (one, 0 m) and time
# (unlimited: hours from the first day's midnight, UTC, as its long_name "ANALYSIS time from
# YYYYMMDD" says); one variable (time, level, latitude, longitude) per pollutant. Per demo date
# one product: the day before to the day after, over the city's box snapped outward to whole
# cells (an area the Data Store cuts by whole cells too; about 3 x 2 cells of 10 km).

AQ_COLLECTION, AQ_PRODUCT_TYPE = "cams-europe-air-quality", "ENSEMBLE_ANALYSIS"
AQ_STEP = 0.1
AQ_DAYS_BEFORE_AND_AFTER = 1
# variable: species and CF standard name, as the ensemble's files name them
AQ_VARIABLES = {
    "no2_conc": ("Nitrogen Dioxide", "mass_concentration_of_nitrogen_dioxide_in_air"),
    "pm2p5_conc": ("PM2.5 Aerosol", "mass_concentration_of_pm2p5_ambient_aerosol_in_air"),
    "pm10_conc": ("PM10 Aerosol", "mass_concentration_of_pm10_ambient_aerosol_in_air"),
    "o3_conc": ("Ozone", "mass_concentration_of_ozone_in_air"),
}


def _air_quality_product(out_dir: Path, model: CityModel, day: date) -> GeneratedProduct:
    """Three days of hourly NO2, PM2.5, PM10 and O3 over the city in the CAMS European ensemble
    analysis's netCDF layout. The city's sealing drives its traffic and heating emissions: NO2
    and particles peak in the core at the rush hours, ozone builds up in the afternoon sun and
    is lower in the core, where traffic's NO takes it up; each day has its own weather."""
    city = model.city
    west, south, east, north = city["bbox"]
    x0 = math.floor(round(west / AQ_STEP, 6)) * AQ_STEP
    x1 = math.ceil(round(east / AQ_STEP, 6)) * AQ_STEP
    y0 = math.floor(round(south / AQ_STEP, 6)) * AQ_STEP
    y1 = math.ceil(round(north / AQ_STEP, 6)) * AQ_STEP
    width, height = round((x1 - x0) / AQ_STEP), round((y1 - y0) / AQ_STEP)
    lons = x0 + AQ_STEP * (np.arange(width) + 0.5)
    lats = y1 - AQ_STEP * (np.arange(height) + 0.5)  # north to south, as the ensemble's files
    urban = _cell_sealing(model, lons, lats)

    first = day - timedelta(days=AQ_DAYS_BEFORE_AND_AFTER)
    days = [first + timedelta(days=n) for n in range(2 * AQ_DAYS_BEFORE_AND_AFTER + 1)]
    fields = _hourly_air(model, days, urban)
    hours = len(days) * 24

    identifier = (
        f"CAMS_EUROPE_AQ_ENSEMBLE_ANALYSIS_{days[0]:%Y%m%d}_{days[-1]:%Y%m%d}"
        f"_CURE_DEMO_{_slug(city)}"
    )
    variables = [
        netcdf.Variable(
            "longitude",
            ("longitude",),
            np.round(lons % 360.0, 6).astype("float32"),
            {"long_name": "longitude", "units": "degrees_east"},
        ),
        netcdf.Variable(
            "latitude",
            ("latitude",),
            np.round(lats, 6).astype("float32"),
            {"long_name": "latitude", "units": "degrees_north"},
        ),
        netcdf.Variable(
            "level", ("level",), np.zeros(1, "float32"), {"long_name": "level", "units": "m"}
        ),
        netcdf.Variable(
            "time",
            ("time",),
            np.arange(hours, dtype="float32"),
            {"long_name": f"ANALYSIS time from {days[0]:%Y%m%d}", "units": "hours"},
        ),
    ]
    for name, (species, standard_name) in AQ_VARIABLES.items():
        attributes = {
            "species": species,
            "units": "µg/m3",
            "value": "hourly values",
            "standard_name": standard_name,
        }
        data = fields[name].astype("float32")[:, np.newaxis]  # (time, level, latitude, longitude)
        variables.append(
            netcdf.Variable(name, ("time", "level", "latitude", "longitude"), data, attributes)
        )
    span = f"{days[0]:%Y%m%d}+[0H_{hours - 1}H]"
    path = netcdf.write_classic(
        out_dir / AQ_COLLECTION / identifier / f"{identifier}.nc",
        {"longitude": width, "latitude": height, "level": 1, "time": None},
        variables,
        {
            "title": "NO2 PM25 PM10 O3 Air Pollutant ANALYSIS at the Surface",
            "institution": "Data produced by Meteo France",
            "source": "Data from ENSEMBLE model",
            "history": "Model ENSEMBLE ANALYSIS",
            "ANALYSIS": f"Europe, {span}",
            "summary": (
                f"ENSEMBLE model hourly ANALYSIS of NO2 PM25 PM10 O3 concentration at the"
                f" Surface from {span} on Europe"
            ),
            "project": "MACC-RAQ (http://macc-raq.gmes-atmosphere.eu)",
            "comment": "CURE demo data: synthetic fields in the ensemble analysis's layout",
        },
    )
    start = datetime.combine(days[0], time(0), UTC)
    end = datetime.combine(days[-1], time(23), UTC)
    return GeneratedProduct(
        AQ_COLLECTION,
        identifier,
        AQ_PRODUCT_TYPE,
        start,
        end,
        {"concentrations": path},
        (round(x0, 6), round(y0, 6), round(x1, 6), round(y1, 6)),
        city["name"],
        {"cams:model": "ENSEMBLE", "cams:type": "analysis", "cams:level_m": 0},
    )


def _cell_sealing(model: CityModel, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    """The mean sealing (0-1) of each 0.1-degree cell, from 10 x 10 points in it."""
    offsets = AQ_STEP * ((np.arange(10) + 0.5) / 10 - 0.5)
    lon = lons[np.newaxis, :, np.newaxis, np.newaxis] + offsets[np.newaxis, np.newaxis, np.newaxis]
    lat = (
        lats[:, np.newaxis, np.newaxis, np.newaxis] + offsets[np.newaxis, np.newaxis, :, np.newaxis]
    )
    lon, lat = np.broadcast_arrays(lon, lat)
    sealing = model.layers(lon.reshape(-1), lat.reshape(-1))["sealing"]
    return sealing.reshape(lon.shape).mean(axis=(2, 3))


def _hourly_air(model: CityModel, days: list[date], urban: np.ndarray) -> dict[str, np.ndarray]:
    """Hourly concentrations (µg/m3) of each variable over the days, shape (hours, rows, cols).

    A day's weather sets how well the air mixes (calm days hold the city's emissions) and how
    much ozone the sun makes; hours follow local solar time."""
    utc_offset = round(model.lon0 / 15)
    local = (np.arange(24) + utc_offset) % 24
    rush = 0.4 + np.exp(-(((local - 8) / 1.5) ** 2)) + 0.9 * np.exp(-(((local - 18) / 2) ** 2))
    rush = rush / rush.mean()
    sun = np.clip(np.sin(np.pi * (local - 6) / 14), 0, None) ** 1.5  # 0 at night, 1 mid-afternoon
    warmth = (model.city["summer_lst_k"] - 296.0) / 18.0  # 0: Copenhagen, 1: Madrid
    fields: dict[str, list[np.ndarray]] = {name: [] for name in AQ_VARIABLES}
    for day in days:
        rng = np.random.default_rng(_seed(model.city["name"], day, "air"))
        stagnation = float(rng.lognormal(0.0, 0.3))  # above 1: calm, the city's air stays put
        sunshine = float(rng.uniform(0.7, 1.2))
        dust = float(rng.uniform(0, 12) * warmth)  # Saharan dust reaches the south more often
        for hour in range(24):
            noise = rng.normal(0, 1, (4, *urban.shape))
            traffic = urban * rush[hour] * stagnation
            no2 = 9 + 4 * warmth + 52 * traffic + 1.5 * noise[0]
            pm25 = 5 + 2 * warmth + 4 * stagnation + 8 * traffic + 0.6 * noise[1]
            pm10 = 1.4 * pm25 + 3 + dust + 4 * traffic + 1.0 * noise[2]
            ozone = (70 + 35 * warmth) * (0.6 + 0.65 * sun[hour] * sunshine) - 30 * traffic
            fields["no2_conc"].append(no2)
            fields["pm2p5_conc"].append(pm25)
            fields["pm10_conc"].append(pm10)
            fields["o3_conc"].append(ozone + 2 * noise[3])
    return {name: np.clip(np.stack(values), 0.5, None) for name, values in fields.items()}


def main(argv: Sequence[str] | None = None) -> None:
    """Write the demo products into a folder: python -m cure.demo.rasters OUT_DIR."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--city", action="append", help="only these cities (repeatable)")
    args = parser.parse_args(argv)
    cities = [city_by_name(name) for name in args.city] if args.city else list(CITIES)
    for made in generate(args.out_dir, cities):
        print(f"{made.collection}\t{made.identifier}\t{_iso(made.start)}")


if __name__ == "__main__":
    main()
