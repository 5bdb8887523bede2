"""Quicklooks: a raster drawn as a PNG in Web Mercator with its WGS84 bounds, colormap range,
histogram and statistics; rendered once and then read from storage."""

import struct
import uuid
import zlib
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from cure.portal import quicklook
from cure.portal import service as portal_service


def write_raster(path: Path, *, crs: str = "EPSG:3035") -> Path:
    """A 60 x 40 raster over Vienna in ETRS89-LAEA, warmer in the middle, no data on one edge."""
    values = np.fromfunction(lambda r, c: 10 - np.hypot(r - 20, c - 30) / 4, (40, 60)).astype(
        np.float32
    )
    values[:, :5] = -9999
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=60,
        height=40,
        count=1,
        dtype="float32",
        crs=crs,
        transform=Affine(100, 0, 4795000, 0, -100, 2810000),
        nodata=-9999,
    ) as raster:
        raster.write(values, 1)
    return path


def decode_png(data: bytes) -> np.ndarray:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    chunks, at = b"", 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        if kind == b"IDAT":
            chunks += data[at + 8 : at + 8 + length]
        at += 12 + length
    rows = np.frombuffer(zlib.decompress(chunks), dtype=np.uint8).reshape(height, width * 4 + 1)
    assert (rows[:, 0] == 0).all()  # unfiltered rows
    return rows[:, 1:].reshape(height, width, 4)


def test_a_raster_is_drawn_in_web_mercator_over_its_wgs84_bounds(tmp_path) -> None:
    png, description = quicklook.render(write_raster(tmp_path / "r.tif"), quicklook.STYLES["suhi"])
    pixels = decode_png(png)
    assert pixels.shape == (description["height"], description["width"], 4)
    west, south, east, north = description["bounds"]
    assert 16.2 < west < east < 16.5 and 48.1 < south < north < 48.3  # Vienna
    assert (pixels[..., 3] == 0).any() and (pixels[..., 3] == 255).any()  # no data is transparent
    low, high = description["range"]
    assert low == -high  # SUHI: symmetric about zero
    assert sum(description["histogram"]["counts"]) == description["statistics"]["count"] == 40 * 55
    assert len(description["histogram"]["edges"]) == quicklook.HISTOGRAM_BINS + 1
    assert description["colormap"]["stops"][0]["color"].startswith("#")


def test_ndvi_keeps_its_fixed_range_and_other_rasters_their_percentiles(tmp_path) -> None:
    path = write_raster(tmp_path / "r.tif")
    assert quicklook.render(path, quicklook.style_for("urban_green"))[1]["range"] == [-0.2, 0.9]
    low, high = quicklook.render(path, quicklook.style_for("unknown", None))[1]["range"]
    assert 0 < low < high < 10


def test_a_file_that_is_no_raster_is_refused(tmp_path) -> None:
    path = tmp_path / "not.tif"
    path.write_text("{}")
    with pytest.raises((ValueError, OSError)):
        quicklook.render(path, quicklook.DEFAULT_STYLE)


async def test_a_quicklook_is_rendered_once_then_read_from_storage(app, tmp_path) -> None:
    storage = app.state.storage
    key = f"results/{uuid.uuid4()}/1-1/suhi_intensity.tif"
    await storage.put_file(key, write_raster(tmp_path / "r.tif"), media_type="image/tiff")
    asset = portal_service.RasterAsset(key, quicklook.STYLES["suhi"], None)
    first = await portal_service.quicklook_description(storage, asset)
    png = await portal_service.quicklook_png(storage, asset)
    assert sorted(await storage.keys(key)) == [
        key,
        f"{key}.quicklook-v{quicklook.STYLE_VERSION}.json",
        f"{key}.quicklook-v{quicklook.STYLE_VERSION}.png",
    ]
    await storage.delete([key])  # from now on only the cached quicklook can answer
    assert await portal_service.quicklook_description(storage, asset) == first
    assert await portal_service.quicklook_png(storage, asset) == png
