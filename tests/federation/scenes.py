"""Real-format scenes over Vienna, made once per test session: what the public COG catalogues
publish, small enough for CI.

- Sentinel-2 L2A as Earth Search's sentinel-cogs lay it out: one Cloud-Optimized GeoTIFF per band
  (B04 red and B08 nir at 10 m, uint16, nodata 0, digital numbers of processing baseline 04.00
  and later, so reflectance = DN * 0.0001 - 0.1; SCL at 20 m, uint8 classes 0..11; TCI at 10 m,
  3 x uint8), plus a thumbnail and the product metadata XML with BOA_ADD_OFFSET.
- Landsat Collection 2 Level-2 as USGS publishes it: ST_B10 (uint16, kelvin = DN * 0.00341802 +
  149.0, nodata 0) and QA_PIXEL (uint16 bit flags) at 30 m, COGs, plus the MTL.json.

Both are in UTM zone 33N (EPSG:32633) on tile-like grids (the Sentinel-2 one 3072 x 3072 pixels,
30.7 km, 512-pixel tiles and overviews), so a district is a small part of a file. Every pixel is
a deterministic function of its place (land cover by block, a river, clouds, shadows, cirrus,
snow, a no-data wedge; seeded noise), so a test can compute NDVI and LST by hand from the files
(``ndvi_by_hand``, ``lst_by_hand``) over the named ``DISTRICTS``.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.io import MemoryFile
from rasterio.transform import Affine, from_origin
from rasterio.warp import transform as transform_points
from rasterio.warp import transform_bounds
from rasterio.windows import Window

CRS = "EPSG:32633"
EPSG = 32633

# Sentinel-2: a 30.72 km "tile" at 10 m; its SCL at 20 m.
S2_ORIGIN = (585000.0, 5360000.0)  # upper-left corner
S2_SIZE = 3072
SCL_SIZE = S2_SIZE // 2
S2_BLOCK = 512
S2_SCALE = 0.0001
S2_OFFSET = -0.1  # BOA_ADD_OFFSET -1000 of processing baseline 04.00 and later, times the scale
S2_NODATA = 0

# Landsat: 30 m pixels whose corners fall on odd multiples of 15 m, as USGS grids them.
LANDSAT_ORIGIN = (584985.0, 5360015.0)
LANDSAT_SIZE = 1026
LANDSAT_BLOCK = 256
ST_SCALE = 0.00341802
ST_OFFSET = 149.0
ST_NODATA = 0
QA_FILL = 1  # QA_PIXEL's no-data: bit 0, fill

# Sentinel-2 SCL classes.
SCL_NO_DATA, SCL_SATURATED, SCL_DARK, SCL_SHADOW, SCL_VEGETATION = 0, 1, 2, 3, 4
SCL_NOT_VEGETATED, SCL_WATER, SCL_UNCLASSIFIED, SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH = 5, 6, 7, 8, 9
SCL_CIRRUS, SCL_SNOW = 10, 11
# What an NDVI masks: no data, saturated/defective, cloud shadows, clouds, cirrus, snow.
SCL_MASKED = (
    SCL_NO_DATA,
    SCL_SATURATED,
    SCL_SHADOW,
    SCL_CLOUD_MEDIUM,
    SCL_CLOUD_HIGH,
    SCL_CIRRUS,
    SCL_SNOW,
)

# Landsat QA_PIXEL bits, and the values USGS writes for common cases.
QA_BIT_FILL, QA_BIT_DILATED, QA_BIT_CIRRUS, QA_BIT_CLOUD, QA_BIT_SHADOW = 0, 1, 2, 3, 4
QA_BIT_SNOW, QA_BIT_CLEAR, QA_BIT_WATER = 5, 6, 7
QA_MASKED_BITS = (QA_BIT_FILL, QA_BIT_DILATED, QA_BIT_CIRRUS, QA_BIT_CLOUD, QA_BIT_SHADOW)
QA_CLEAR_LAND = 21824  # clear, low confidence of cloud, shadow, snow and cirrus
QA_CLEAR_WATER = 21952
QA_CLOUD = 22280  # cloud, high confidence
QA_DILATED = 21762
QA_SHADOW = 23824
QA_CIRRUS = 54532

# Reflectance (red, nir) of each SCL class; vegetation's nir varies by block.
RADIOMETRY = {
    SCL_SATURATED: (0.0, 0.0),  # written as 65535
    SCL_DARK: (0.02, 0.03),
    SCL_SHADOW: (0.02, 0.08),
    SCL_VEGETATION: (0.04, 0.30),
    SCL_NOT_VEGETATED: (0.15, 0.22),
    SCL_WATER: (0.03, 0.01),
    SCL_CLOUD_MEDIUM: (0.45, 0.50),
    SCL_CLOUD_HIGH: (0.55, 0.60),
    SCL_CIRRUS: (0.12, 0.30),
    SCL_SNOW: (0.85, 0.75),
}
NOISE_DN = 150  # +- digital numbers of seeded noise on each 10 m pixel
SEED = 19

# Places in the SCL grid (20 m rows and columns from the tile's upper-left): [row0, row1) x
# [col0, col1). The Landsat scene has the same clouds, shadow and cirrus at the same places.
FEATURES = {
    "cloud_high": ((300, 420), (1000, 1180)),
    "cloud_medium": ((300, 420), (1180, 1260)),
    "cloud_shadow": ((420, 480), (1000, 1180)),
    "cirrus": ((600, 700), (1250, 1400)),
    "snow": ((1300, 1320), (200, 240)),
    "saturated": ((760, 764), (760, 764)),
}


def _utm_box(rows: tuple[int, int], cols: tuple[int, int]) -> tuple[float, float, float, float]:
    west, north = S2_ORIGIN
    return (west + cols[0] * 20, north - rows[1] * 20, west + cols[1] * 20, north - rows[0] * 20)


@dataclass(frozen=True)
class District:
    """A region a test orders: a box in EPSG:32633 on the 20 m grid, and as GeoJSON."""

    name: str
    utm_bounds: tuple[float, float, float, float]  # west, south, east, north in EPSG:32633

    @property
    def geometry(self) -> dict[str, Any]:
        """The box as a GeoJSON Polygon in EPSG:4326 (its four corners, counter-clockwise)."""
        west, south, east, north = self.utm_bounds
        xs, ys = transform_points(
            CRS, "EPSG:4326", [west, east, east, west], [south, south, north, north]
        )
        ring = [[round(x, 9), round(y, 9)] for x, y in zip(xs, ys, strict=True)]
        return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        ring = self.geometry["coordinates"][0]
        xs, ys = [p[0] for p in ring], [p[1] for p in ring]
        return (min(xs), min(ys), max(xs), max(ys))

    @property
    def area_m2(self) -> float:
        west, south, east, north = self.utm_bounds
        return (east - west) * (north - south)


DISTRICTS = {
    # Vienna's centre, 1.6 km square: vegetation and built-up blocks, no cloud, no water.
    "clear": District("clear", _utm_box((940, 1020), (810, 890))),
    # Wholly under high-probability cloud (SCL 9; Landsat: cloud).
    "cloudy": District("cloudy", _utm_box((320, 400), (1020, 1160))),
    # Its western half clear, its eastern half under cloud.
    "half_cloudy": District("half_cloudy", _utm_box((320, 400), (940, 1060))),
    # Wholly under thin cirrus (SCL 10; Landsat: cirrus).
    "cirrus": District("cirrus", _utm_box((620, 680), (1270, 1380))),
}


# -- the land cover, as a function of the place -----------------------------------------------


def _block_hash(rows: np.ndarray, cols: np.ndarray, salt: int) -> np.ndarray:
    """A deterministic pseudo-random 0..99 per 320 m block (16 x 16 SCL pixels), anywhere."""
    bi, bj = np.floor_divide(rows, 16).astype(np.int64), np.floor_divide(cols, 16).astype(np.int64)
    mixed = (bi * 73856093) ^ (bj * 19349663) ^ (salt * 83492791)
    return np.mod(np.abs(mixed), 100)


def classify(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The SCL class at SCL-grid rows and columns (which may lie beyond the tile)."""
    classes = np.where(_block_hash(rows, cols, 1) < 55, SCL_VEGETATION, SCL_NOT_VEGETATED)
    classes = np.where(_block_hash(rows, cols, 2) < 4, SCL_DARK, classes)
    river = np.abs(rows - (0.6 * cols + 200)) < 8
    classes = np.where(river, SCL_WATER, classes)
    codes = {
        "cloud_high": SCL_CLOUD_HIGH,
        "cloud_medium": SCL_CLOUD_MEDIUM,
        "cloud_shadow": SCL_SHADOW,
        "cirrus": SCL_CIRRUS,
        "snow": SCL_SNOW,
        "saturated": SCL_SATURATED,
    }
    for name, ((r0, r1), (c0, c1)) in FEATURES.items():
        inside = (rows >= r0) & (rows < r1) & (cols >= c0) & (cols < c1)
        classes = np.where(inside, codes[name], classes)
    return classes.astype(np.uint8)


def _s2_nodata(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The swath's edge: a wedge in the lower-left corner of the tile has no data."""
    return (rows - cols) > 1100


def scl_grid() -> np.ndarray:
    rows, cols = np.mgrid[0:SCL_SIZE, 0:SCL_SIZE]
    classes = classify(rows, cols)
    return np.where(_s2_nodata(rows, cols), SCL_NO_DATA, classes).astype(np.uint8)


def s2_digital_numbers(scl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """B04 and B08 at 10 m from the SCL at 20 m: each class's reflectance, vegetation's nir by
    block, seeded noise; DN = (reflectance + 0.1) / 0.0001."""
    classes = np.repeat(np.repeat(scl, 2, axis=0), 2, axis=1)
    rows, cols = np.mgrid[0:SCL_SIZE, 0:SCL_SIZE]
    vigour = np.repeat(np.repeat(_block_hash(rows, cols, 3) % 16, 2, axis=0), 2, axis=1) * 0.01
    rng = np.random.default_rng(SEED)
    bands = []
    for index in (0, 1):
        reflectance = np.zeros(classes.shape, dtype=np.float64)
        for code, values in RADIOMETRY.items():
            reflectance[classes == code] = values[index]
        if index == 1:
            reflectance += np.where(classes == SCL_VEGETATION, vigour, 0.0)
        noise = rng.integers(-NOISE_DN, NOISE_DN + 1, classes.shape)
        dn = np.round((reflectance - S2_OFFSET) / S2_SCALE) + noise
        dn = np.where(classes == SCL_SATURATED, 65535, dn)
        dn = np.where(classes == SCL_NO_DATA, S2_NODATA, dn)
        bands.append(np.clip(dn, 0, 65535).astype(np.uint16))
    return bands[0], bands[1]


def landsat_grids() -> tuple[np.ndarray, np.ndarray]:
    """ST_B10 and QA_PIXEL at 30 m: a heat island over the centre (296 K, up to +12 K), water
    cooler, clouds cold; QA flags from the same places as the Sentinel-2 scene's; a fill wedge
    in the upper-right corner."""
    rows30, cols30 = np.mgrid[0:LANDSAT_SIZE, 0:LANDSAT_SIZE]
    x = LANDSAT_ORIGIN[0] + (cols30 + 0.5) * 30
    y = LANDSAT_ORIGIN[1] - (rows30 + 0.5) * 30
    rows20 = np.floor((S2_ORIGIN[1] - y) / 20).astype(np.int64)
    cols20 = np.floor((x - S2_ORIGIN[0]) / 20).astype(np.int64)
    classes = classify(rows20, cols20)
    centre = (602000.0, 5340400.0)
    distance2 = (x - centre[0]) ** 2 + (y - centre[1]) ** 2
    kelvin = 296.0 + 12.0 * np.exp(-distance2 / (2 * 5000.0**2))
    kelvin = np.where(classes == SCL_VEGETATION, kelvin - 2.0, kelvin)
    kelvin = np.where(classes == SCL_WATER, 293.0, kelvin)
    kelvin = np.where(np.isin(classes, (SCL_CLOUD_HIGH, SCL_CLOUD_MEDIUM)), 265.0, kelvin)
    kelvin = np.where(classes == SCL_SNOW, 270.0, kelvin)
    kelvin = kelvin + np.random.default_rng(SEED + 1).uniform(-0.5, 0.5, kelvin.shape)
    st = np.clip(np.round((kelvin - ST_OFFSET) / ST_SCALE), 1, 65535).astype(np.uint16)

    qa = np.full(classes.shape, QA_CLEAR_LAND, dtype=np.uint16)
    qa[classes == SCL_WATER] = QA_CLEAR_WATER
    qa[classes == SCL_SHADOW] = QA_SHADOW
    qa[classes == SCL_CIRRUS] = QA_CIRRUS
    cloud = np.isin(classes, (SCL_CLOUD_HIGH, SCL_CLOUD_MEDIUM))
    # Dilated cloud: the clear pixels within two pixels of a cloud.
    near = np.zeros_like(cloud)
    for dr in range(-2, 3):
        for dc in range(-2, 3):
            near |= np.roll(np.roll(cloud, dr, axis=0), dc, axis=1)
    qa[near & ~cloud & (qa == QA_CLEAR_LAND)] = QA_DILATED
    qa[cloud] = QA_CLOUD
    fill = (cols30 - rows30) > 900
    qa[fill] = QA_FILL
    st[fill] = ST_NODATA
    return st, qa


# -- files -------------------------------------------------------------------------------------


def write_cog(
    path: Path,
    bands: list[np.ndarray],
    *,
    transform: Affine,
    nodata: float | None,
    blocksize: int,
    resampling: str = "nearest",
    photometric: str | None = None,
) -> Path:
    """A Cloud-Optimized GeoTIFF (GDAL's COG driver): deflate, tiled, with overviews."""
    height, width = bands[0].shape
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": len(bands),
        "dtype": bands[0].dtype.name,
        "crs": CRS,
        "transform": transform,
        "nodata": nodata,
    }
    options = {
        "BLOCKSIZE": blocksize,
        "COMPRESS": "DEFLATE",
        "PREDICTOR": 2,
        "OVERVIEWS": "IGNORE_EXISTING",
        "OVERVIEW_RESAMPLING": resampling.upper(),
        "RESAMPLING": resampling.upper(),
    }
    with MemoryFile() as memory, memory.open(**profile) as dataset:
        for index, band in enumerate(bands, start=1):
            dataset.write(band, index)
        if photometric:
            options["PHOTOMETRIC"] = photometric
        rasterio.shutil.copy(dataset, path, driver="COG", **options)
    return path


@dataclass(frozen=True)
class Sentinel2Files:
    red: Path  # B04.tif
    nir: Path  # B08.tif
    scl: Path  # SCL.tif
    visual: Path  # TCI.tif
    thumbnail: Path  # thumbnail.jpg
    product_metadata: Path  # product_metadata.xml (MTD_MSIL2A.xml)
    transform: Affine  # of the 10 m bands
    scl_transform: Affine


@dataclass(frozen=True)
class LandsatFiles:
    lwir11: Path  # ST_B10.TIF
    qa_pixel: Path  # QA_PIXEL.TIF
    mtl_json: Path  # MTL.json
    transform: Affine


@dataclass(frozen=True)
class SceneFiles:
    s2: Sentinel2Files
    landsat: LandsatFiles


def make_sentinel2(folder: Path) -> Sentinel2Files:
    folder.mkdir(parents=True, exist_ok=True)
    transform = from_origin(*S2_ORIGIN, 10, 10)
    scl_transform = from_origin(*S2_ORIGIN, 20, 20)
    scl = scl_grid()
    red, nir = s2_digital_numbers(scl)
    write_cog(folder / "B04.tif", [red], transform=transform, nodata=S2_NODATA, blocksize=S2_BLOCK)
    write_cog(folder / "B08.tif", [nir], transform=transform, nodata=S2_NODATA, blocksize=S2_BLOCK)
    write_cog(folder / "SCL.tif", [scl], transform=scl_transform, nodata=0, blocksize=S2_BLOCK)
    # TCI: reflectance 0..0.2 stretched to 1..255, 0 where there is no data (as ESA writes it).
    stretch = [
        np.clip((band.astype(np.float64) * S2_SCALE + S2_OFFSET) / 0.2 * 254 + 1, 1, 255)
        for band in (red, nir, red)
    ]
    stretch[1] = (stretch[0] + stretch[1]) / 2  # a green of sorts
    tci = [np.where(red == 0, 0, band).astype(np.uint8) for band in stretch]
    write_cog(
        folder / "TCI.tif",
        tci,
        transform=transform,
        nodata=0,
        blocksize=S2_BLOCK,
        photometric="RGB",
    )
    thumbnail = folder / "thumbnail.jpg"
    with rasterio.open(folder / "TCI.tif") as visual:
        small = visual.read(out_shape=(3, 343, 343))
    scaled = transform @ Affine.scale(S2_SIZE / 343)
    with (
        MemoryFile() as memory,
        memory.open(
            driver="GTiff", width=343, height=343, count=3, dtype="uint8", crs=CRS, transform=scaled
        ) as dataset,
    ):
        dataset.write(small)
        rasterio.shutil.copy(dataset, thumbnail, driver="JPEG")
    metadata = folder / "product_metadata.xml"
    metadata.write_text(_mtd_msil2a())
    return Sentinel2Files(
        red=folder / "B04.tif",
        nir=folder / "B08.tif",
        scl=folder / "SCL.tif",
        visual=folder / "TCI.tif",
        thumbnail=thumbnail,
        product_metadata=metadata,
        transform=transform,
        scl_transform=scl_transform,
    )


def _mtd_msil2a() -> str:
    """The part of a Level-2A product's MTD_MSIL2A.xml that says how to read the numbers."""
    offsets = "\n".join(
        f'          <BOA_ADD_OFFSET band_id="{band}">-1000</BOA_ADD_OFFSET>' for band in range(13)
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<n1:Level-2A_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd">
  <n1:General_Info>
    <Product_Info>
      <PROCESSING_LEVEL>Level-2A</PROCESSING_LEVEL>
      <PRODUCT_TYPE>S2MSI2A</PRODUCT_TYPE>
      <PROCESSING_BASELINE>05.11</PROCESSING_BASELINE>
    </Product_Info>
    <Product_Image_Characteristics>
      <QUANTIFICATION_VALUES_LIST>
        <BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE>
        <AOT_QUANTIFICATION_VALUE unit="none">1000.0</AOT_QUANTIFICATION_VALUE>
        <WVP_QUANTIFICATION_VALUE unit="cm">1000.0</WVP_QUANTIFICATION_VALUE>
      </QUANTIFICATION_VALUES_LIST>
      <BOA_ADD_OFFSET_VALUES_LIST>
{offsets}
      </BOA_ADD_OFFSET_VALUES_LIST>
    </Product_Image_Characteristics>
  </n1:General_Info>
</n1:Level-2A_User_Product>
"""


def make_landsat(folder: Path, display_id: str) -> LandsatFiles:
    folder.mkdir(parents=True, exist_ok=True)
    transform = from_origin(*LANDSAT_ORIGIN, 30, 30)
    st, qa = landsat_grids()
    lwir11 = write_cog(
        folder / f"{display_id}_ST_B10.TIF",
        [st],
        transform=transform,
        nodata=ST_NODATA,
        blocksize=LANDSAT_BLOCK,
    )
    qa_pixel = write_cog(
        folder / f"{display_id}_QA_PIXEL.TIF",
        [qa],
        transform=transform,
        nodata=QA_FILL,
        blocksize=LANDSAT_BLOCK,
    )
    mtl = folder / f"{display_id}_MTL.json"
    mtl.write_text(json.dumps(_mtl(display_id), indent=2))
    return LandsatFiles(lwir11=lwir11, qa_pixel=qa_pixel, mtl_json=mtl, transform=transform)


def _mtl(display_id: str) -> dict[str, Any]:
    return {
        "LANDSAT_METADATA_FILE": {
            "PRODUCT_CONTENTS": {
                "LANDSAT_PRODUCT_ID": display_id,
                "PROCESSING_LEVEL": "L2SP",
                "COLLECTION_NUMBER": "02",
                "FILE_NAME_BAND_ST_B10": f"{display_id}_ST_B10.TIF",
                "FILE_NAME_QUALITY_L1_PIXEL": f"{display_id}_QA_PIXEL.TIF",
            },
            "PROJECTION_ATTRIBUTES": {
                "MAP_PROJECTION": "UTM",
                "UTM_ZONE": "33",
                "GRID_CELL_SIZE_THERMAL": "30.00",
                "THERMAL_LINES": str(LANDSAT_SIZE),
                "THERMAL_SAMPLES": str(LANDSAT_SIZE),
            },
            "LEVEL2_SURFACE_TEMPERATURE_PARAMETERS": {
                "TEMPERATURE_MAXIMUM_BAND_ST_B10": "372.999941",
                "TEMPERATURE_MINIMUM_BAND_ST_B10": "149.003418",
                "TEMPERATURE_MULT_BAND_ST_B10": "0.00341802",
                "TEMPERATURE_ADD_BAND_ST_B10": "149.0",
            },
        }
    }


# -- answers by hand ---------------------------------------------------------------------------


def read_box(
    path: Path, utm_bounds: tuple[float, float, float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pixels of ``path`` whose centres lie in the box, with their centres' x and y."""
    west, south, east, north = utm_bounds
    with rasterio.open(path) as dataset:
        t = dataset.transform
        col0 = max(math.ceil((west - t.c) / t.a - 0.5), 0)
        col1 = min(math.floor((east - t.c) / t.a - 0.5), dataset.width - 1)
        row0 = max(math.ceil((t.f - north) / -t.e - 0.5), 0)
        row1 = min(math.floor((t.f - south) / -t.e - 0.5), dataset.height - 1)
        window = Window(col0, row0, col1 - col0 + 1, row1 - row0 + 1)
        values = dataset.read(1, window=window)
    rows, cols = np.mgrid[row0 : row1 + 1, col0 : col1 + 1]
    return values, t.c + (cols + 0.5) * t.a, t.f + (rows + 0.5) * t.e


def ndvi_by_hand(files: Sentinel2Files, district: District) -> dict[str, float]:
    """NDVI over the district's 10 m pixels (centres inside), clouds, shadows, cirrus, snow,
    saturated and no-data pixels masked by the SCL (nearest 20 m pixel): the mean NDVI, the
    pixel count, the masked share."""
    red, x, y = read_box(files.red, district.utm_bounds)
    nir, _, _ = read_box(files.nir, district.utm_bounds)
    with rasterio.open(files.scl) as scl_file:
        scl = scl_file.read(1)
        rows, cols = rasterio.transform.rowcol(scl_file.transform, x.ravel(), y.ravel())
    classes = scl[np.asarray(rows), np.asarray(cols)].reshape(red.shape)
    clear = ~np.isin(classes, SCL_MASKED) & (red != S2_NODATA) & (nir != S2_NODATA)
    r = red.astype(np.float64) * S2_SCALE + S2_OFFSET
    n = nir.astype(np.float64) * S2_SCALE + S2_OFFSET
    ndvi = (n - r) / (n + r)
    return {
        "mean": float(ndvi[clear].mean()) if clear.any() else math.nan,
        "pixels": int(red.size),
        "clear_pixels": int(clear.sum()),
        "masked_share": float(1 - clear.sum() / red.size),
    }


def lst_by_hand(files: LandsatFiles, district: District) -> dict[str, float]:
    """Land surface temperature (kelvin) over the district's 30 m pixels (centres inside),
    QA_PIXEL's fill, dilated cloud, cirrus, cloud and shadow masked."""
    st, _, _ = read_box(files.lwir11, district.utm_bounds)
    qa, _, _ = read_box(files.qa_pixel, district.utm_bounds)
    flags = sum(1 << bit for bit in QA_MASKED_BITS)
    valid = ((qa & flags) == 0) & (st != ST_NODATA)
    kelvin = st.astype(np.float64) * ST_SCALE + ST_OFFSET
    return {
        "mean": float(kelvin[valid].mean()) if valid.any() else math.nan,
        "pixels": int(st.size),
        "valid_pixels": int(valid.sum()),
        "masked_share": float(1 - valid.sum() / st.size),
    }


def make_scenes(folder: Path, *, landsat_id: str) -> SceneFiles:
    return SceneFiles(
        s2=make_sentinel2(folder / "s2"), landsat=make_landsat(folder / "landsat", landsat_id)
    )


def make_sentinel2_jp2(folder: Path, *, tile: str, sensed: str) -> dict[str, Path]:
    """The same Sentinel-2 scene as the Copernicus Data Space Ecosystem keeps it: the SAFE's
    JPEG 2000 granules (lossless, 1024-pixel tiles), named as in IMG_DATA (``T33UXP_<sensed>_
    B04_10m.jp2``), by asset key (B04_10m, B08_10m, SCL_20m)."""
    folder.mkdir(parents=True, exist_ok=True)
    scl = scl_grid()
    red, nir = s2_digital_numbers(scl)
    layers = {
        "B04_10m": (red, 10, S2_NODATA),
        "B08_10m": (nir, 10, S2_NODATA),
        "SCL_20m": (scl, 20, 0),
    }
    files = {}
    for key, (values, resolution, nodata) in layers.items():
        path = folder / f"T{tile}_{sensed}_{key}.jp2"
        with rasterio.open(
            path,
            "w",
            driver="JP2OpenJPEG",
            width=values.shape[1],
            height=values.shape[0],
            count=1,
            dtype=values.dtype.name,
            crs=CRS,
            transform=from_origin(*S2_ORIGIN, resolution, resolution),
            nodata=nodata,
            QUALITY=100,
            REVERSIBLE="YES",
            RESOLUTIONS=5,
            BLOCKXSIZE=1024,
            BLOCKYSIZE=1024,
        ) as dataset:
            dataset.write(values, 1)
        files[key] = path
    return files


def imperviousness_tile(
    district: District, into: Path, *, north: int, south: int | None = None
) -> Path:
    """An HRL Imperviousness Density tile as the CLMS ships it (EPSG:3035, 20 m, uint8 percent,
    255 no data, no acquisition time in the file) around the district: ``north`` percent north
    of the district's middle, ``south`` (default the same) south of it."""
    west, south_edge, east, north_edge = transform_bounds(
        "EPSG:32633", "EPSG:3035", *district.utm_bounds
    )
    x0, y0 = np.floor(west / 20) * 20 - 400, np.ceil(north_edge / 20) * 20 + 400
    width, height = int((east - x0) / 20) + 21, int((y0 - south_edge) / 20) + 21
    rows = y0 - 20 * (np.arange(height) + 0.5)
    middle = (south_edge + north_edge) / 2
    lower = north if south is None else south
    data = np.where(rows > middle, north, lower).astype("uint8")[:, np.newaxis]
    into.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        into,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=1,
        dtype="uint8",
        crs="EPSG:3035",
        transform=from_origin(x0, y0, 20, 20),
        nodata=255,
        tiled=True,
        blockxsize=256,
        blockysize=256,
    ) as dst:
        dst.write(np.broadcast_to(data, (height, width)), 1)
    return into
