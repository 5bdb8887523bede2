"""The flood susceptibility app in its real image on the real Docker engine, on a DEM whose
answer is known by hand: a plane falling 1 m per 10 m pixel eastwards, with a pit 1 m below its
spill level, and imperviousness at 50 % everywhere (EPSG:3035, the same grid)."""

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from tests.apps.conftest import (
    assert_cog,
    job_document,
    lonlat_polygon,
    product,
    run_app,
    snapped_origin,
    write_raster,
)

LAEA = "EPSG:3035"
ROWS, COLS, PIXEL = 6, 8, 10.0
PIT = (2, 3)
DEFAULT_WEIGHTS = {"wetness": 0.5, "ponding": 0.3, "sealing": 0.2}


class Case:
    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.x0, self.y0 = snapped_origin(LAEA, 16.30, 48.25, 1000)
        self.transform = from_origin(self.x0, self.y0, PIXEL, PIXEL)

    def roi(self) -> dict[str, Any]:
        corners = [(0, 0), (COLS, 0), (COLS, ROWS), (0, ROWS)]
        points = [(self.x0 + c * PIXEL, self.y0 - r * PIXEL) for c, r in corners]
        return lonlat_polygon(LAEA, points)

    def job(
        self, dem: np.ndarray, imd: np.ndarray, params: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Path]]:
        files = {
            "inputs/dem/dem.tif": write_raster(
                self.dir / "dem.tif", dem, crs=LAEA, transform=self.transform, nodata=-32767.0
            ),
            "inputs/imperviousness/imd.tif": write_raster(
                self.dir / "imd.tif", imd, crs=LAEA, transform=self.transform, nodata=255
            ),
        }
        inputs = {
            "dem": [product("copernicus-dem-glo-30", "DEM_TEST", {"dem": "inputs/dem/dem.tif"})],
            "imperviousness": [
                product("hrl-imperviousness", "IMD_TEST", {"imd": "inputs/imperviousness/imd.tif"})
            ],
        }
        return job_document("flood_susceptibility", self.roi(), inputs, params or {}), files


def plane_with_a_pit() -> np.ndarray:
    dem = np.tile(100.0 - np.arange(COLS, dtype=np.float32), (ROWS, 1)).astype(np.float32)
    dem[PIT] = 95.0  # its lowest neighbours stand at 96: it fills to 96, 1 m deep
    return dem


def run(app_engine, flood_image, tmp_path, dem, imd, params=None):  # type: ignore[no-untyped-def]
    tmp_path.mkdir(parents=True, exist_ok=True)
    job, files = Case(tmp_path).job(dem, imd, params)
    out = tmp_path / "out"
    out.mkdir()
    return run_app(
        app_engine, flood_image, "flood_susceptibility", job=job, files=files, out_dir=out
    )


def test_the_index_is_what_the_method_gives_by_hand(app_engine, flood_image, tmp_path) -> None:  # type: ignore[no-untyped-def]
    imd = np.full((ROWS, COLS), 50, dtype=np.uint8)
    result = run(app_engine, flood_image, tmp_path, plane_with_a_pit(), imd)
    assert result.exit_code == 0, result.stderr
    assert result.progress()[-1] == 100
    assert_cog(result.outputs["flood_susceptibility.tif"])
    with rasterio.open(result.outputs["flood_susceptibility.tif"]) as src:
        index = src.read(1)
    # The south row drains east along itself: the n-th cell from the west gathers n cells
    # (upslope area n * 100 m2, a = 10 n m) on a slope of tan = 0.1, so TWI = ln(100 n).
    total = sum(DEFAULT_WEIGHTS.values())
    for col in range(COLS):
        twi = math.log(100 * (col + 1))
        wetness = min(max((twi - 4) / 12, 0), 1)
        expected = (DEFAULT_WEIGHTS["wetness"] * wetness + DEFAULT_WEIGHTS["sealing"] * 0.5) / total
        assert index[ROWS - 1, col] == pytest.approx(expected, abs=1e-5), col
    # The pit ponds fully (1 m deep, over ponding_depth_m 0.5): its index has the whole ponding
    # weight on top of its wetness and sealing.
    assert index[PIT] >= (DEFAULT_WEIGHTS["ponding"] + DEFAULT_WEIGHTS["sealing"] * 0.5) / total
    statistics = json.loads(result.outputs["statistics.json"].read_text())
    assert statistics["max_sink_depth_m"] == pytest.approx(1.0, abs=1e-6)
    assert statistics["sink_pixels"] == 1 and statistics["sink_area_km2"] == pytest.approx(1e-4)
    assert statistics["valid_pixels"] == statistics["region_pixels"] == ROWS * COLS
    assert statistics["mean_imperviousness_percent"] == pytest.approx(50.0)
    assert statistics["mean_index"] == pytest.approx(float(np.mean(index)), abs=1e-5)


def test_sealing_alone_is_the_imperviousness(app_engine, flood_image, tmp_path) -> None:  # type: ignore[no-untyped-def]
    imd = np.tile(np.array([0, 10, 20, 40, 60, 80, 90, 100], dtype=np.uint8), (ROWS, 1))
    params = {"wetness_weight": 0, "ponding_weight": 0, "sealing_weight": 1}
    result = run(app_engine, flood_image, tmp_path, plane_with_a_pit(), imd, params)
    assert result.exit_code == 0, result.stderr
    with rasterio.open(result.outputs["flood_susceptibility.tif"]) as src:
        index = src.read(1)
    assert np.allclose(index, imd / 100.0, atol=1e-6)
    statistics = json.loads(result.outputs["statistics.json"].read_text())
    assert statistics["high_pixels"] == 4 * ROWS  # 60, 80, 90 and 100 % reach 0.6


def test_inputs_that_cannot_give_an_index_make_the_order_invalid(
    app_engine, flood_image, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    imd = np.full((ROWS, COLS), 255, dtype=np.uint8)  # the HRL's no data everywhere
    imd[:, :2] = 30
    result = run(app_engine, flood_image, tmp_path, plane_with_a_pit(), imd)
    assert result.exit_code == 3
    assert "have an elevation and an imperviousness" in result.reason
    assert "36 no imperviousness" in result.reason
    weightless = {"wetness_weight": 0, "ponding_weight": 0, "sealing_weight": 0}
    result = run(app_engine, flood_image, tmp_path / "w", plane_with_a_pit(), imd, weightless)
    assert result.exit_code == 3 and "weights are all 0" in result.reason


def test_a_geographic_grid_is_measured_in_metres(app_engine, flood_image, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """One arc-second in EPSG:4326 near 48.2 N (GLO-30's grid): pixels about 31 m tall and
    21 m wide. On a plane falling 0.5 m per pixel eastwards, the south row's n-th cell gathers
    n cells, and with wetness alone over a TWI range of 0-40 the index is TWI / 40 with
    TWI = ln(n * dy * dx / sqrt(dy * dx) / (0.5 / dx)), dy and dx the pixel's metres."""
    step, west, north = 1 / 3600, 16.30, 48.21
    rows, cols = ROWS, COLS
    dem = np.tile(100.0 - 0.5 * np.arange(cols), (rows, 1)).astype(np.float32)
    transform = from_origin(west, north, step, step)
    files = {
        "inputs/dem/dem.tif": write_raster(
            tmp_path / "dem.tif", dem, crs="EPSG:4326", transform=transform, nodata=-32767.0
        ),
        "inputs/imperviousness/imd.tif": write_raster(
            tmp_path / "imd.tif",
            np.zeros((rows, cols), dtype=np.uint8),
            crs="EPSG:4326",
            transform=transform,
            nodata=255,
        ),
    }
    east, south = west + cols * step, north - rows * step
    roi = {
        "type": "Polygon",
        "coordinates": [
            [[west, south], [east, south], [east, north], [west, north], [west, south]]
        ],
    }
    inputs = {
        "dem": [product("copernicus-dem-glo-30", "DEM_TEST", {"dem": "inputs/dem/dem.tif"})],
        "imperviousness": [
            product("hrl-imperviousness", "IMD_TEST", {"imd": "inputs/imperviousness/imd.tif"})
        ],
    }
    params = {"wetness_weight": 1, "ponding_weight": 0, "sealing_weight": 0}
    params |= {"twi_low": 0, "twi_high": 40}
    job = job_document("flood_susceptibility", roi, inputs, params)
    out = tmp_path / "out"
    out.mkdir()
    result = run_app(
        app_engine, flood_image, "flood_susceptibility", job=job, files=files, out_dir=out
    )
    assert result.exit_code == 0, result.stderr
    with rasterio.open(result.outputs["flood_susceptibility.tif"]) as src:
        index = src.read(1)
    # WGS84 degree lengths at the grid's middle latitude (the usual series).
    phi = math.radians(north - rows * step / 2)
    dy = step * (111_132.92 - 559.82 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi))
    dx = step * (111_412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi))
    assert 30.8 < dy < 31.0 and 20.5 < dx < 20.8
    for col in range(cols):
        twi = math.log((col + 1) * dy * dx / math.sqrt(dy * dx) / (0.5 / dx))
        assert index[rows - 1, col] == pytest.approx(twi / 40, rel=1e-4), col
