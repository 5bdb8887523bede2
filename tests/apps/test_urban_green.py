"""The urban_green app in its real image on the real Docker engine, on rasters whose NDVI is known."""

import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.warp import transform as transform_points

from tests.apps.conftest import (
    assert_cog,
    job_document,
    lonlat_polygon,
    product,
    run_app,
    snapped_origin,
    write_raster,
)

UTM33 = "EPSG:32633"
SIZE = 30  # red pixels a side, 20 m each
RED = "inputs/reflectance/B04.tif"
NIR = "inputs/reflectance/B08.tif"
# A triangle on red pixel corners (col, row); no pixel centre lies on its long edge.
TRIANGLE = [(2, 2), (28, 2), (2, 27)]


def triangle_inside() -> np.ndarray:
    rows, cols = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    return (cols > 2) & (rows > 2) & ((cols - 2) / 26 + (rows - 2) / 25 < 1)


class Case:
    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.x0, self.y0 = snapped_origin(UTM33, 16.37, 48.21, 100)
        self.transform = from_origin(self.x0, self.y0, 20, 20)

    def roi(self, corners: list[tuple[float, float]]) -> dict[str, Any]:
        points = [(self.x0 + c * 20, self.y0 - r * 20) for c, r in corners]
        return lonlat_polygon(UTM33, points)

    def job(
        self, roi: dict[str, Any], red: Path, nir: Path | None, params: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Path]]:
        files = {RED: red}
        assets = {"red": RED}
        if nir is not None:
            files[NIR] = nir
            assets["nir"] = NIR
        identifier = "S2B_MSIL2A_20240715T100559_TEST"
        inputs = {"reflectance": [product("sentinel2-l2a", identifier, assets)]}
        return job_document(
            "urban_green", roi, inputs, {"green_threshold": 0.4, **(params or {})}
        ), files


def known_case(tmp_path: Path) -> tuple[Case, Path, Path, np.ndarray]:
    """Red as float reflectance; nir as Sentinel-2 digital numbers with the scale and the
    -0.1 offset of processing baseline 04.00 in its metadata. Returns the expected NDVI without
    the region (NaN where undefined)."""
    case = Case(tmp_path)
    rng = np.random.default_rng(11)
    red = (0.02 + 0.2 * rng.random((SIZE, SIZE))).astype("float32")
    nir_dn = (1200 + 5000 * rng.random((SIZE, SIZE))).astype("uint16")
    red[10, 3] = -1  # nodata
    nir_dn[11, 3] = 0  # nodata
    nir_dn[12, 3] = 900  # -0.01 reflectance: not a valid value
    red[13, 3], nir_dn[13, 3] = 0.0, 1000  # both zero: NDVI undefined
    red_path = write_raster(
        tmp_path / "red.tif", red, crs=UTM33, transform=case.transform, nodata=-1
    )
    nir_path = write_raster(
        tmp_path / "nir.tif",
        nir_dn,
        crs=UTM33,
        transform=case.transform,
        nodata=0,
        scale=1e-4,
        offset=-0.1,
    )
    red_r = red.astype("float64")
    nir_r = nir_dn.astype("float64") * 1e-4 - 0.1
    valid = (red >= 0) & (nir_dn > 0) & (nir_r >= 0) & (red_r + nir_r > 0)
    with np.errstate(all="ignore"):
        ndvi = np.where(valid, (nir_r - red_r) / (nir_r + red_r), np.nan)
    return case, red_path, nir_path, ndvi


def read_on_red_grid(path: Path, case: Case) -> tuple[np.ndarray, rasterio.profiles.Profile]:
    with rasterio.open(path) as src:
        profile = src.profile
        data = src.read(1)
    transform = profile["transform"]
    assert (transform.a, transform.b, transform.d, transform.e) == (20, 0, 0, -20)
    col_off, row_off = (transform.c - case.x0) / 20, (case.y0 - transform.f) / 20
    assert col_off == round(col_off) and row_off == round(row_off), "not on the red pixel grid"
    col_off, row_off = round(col_off), round(row_off)
    assert col_off >= 0 and row_off >= 0
    assert row_off + data.shape[0] <= SIZE and col_off + data.shape[1] <= SIZE
    full = np.full((SIZE, SIZE), np.nan)
    full[row_off : row_off + data.shape[0], col_off : col_off + data.shape[1]] = np.where(
        data == profile["nodata"], np.nan, data
    )
    return full, profile


def expected_statistics(ndvi: np.ndarray, threshold: float) -> dict[str, Any]:
    valid = ~np.isnan(ndvi)
    green = valid & (ndvi > threshold)
    return {
        "mean_ndvi": ndvi[valid].mean(),
        "green_share": green.sum() / valid.sum(),
        "valid_pixels": int(valid.sum()),
        "green_pixels": int(green.sum()),
    }


def assert_statistics(found: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        if isinstance(value, int):
            assert found[key] == value, key
        else:
            assert found[key] == pytest.approx(value, abs=1e-4), key


def test_ndvi_and_statistics_are_right(app_engine, urban_green_image, tmp_path) -> None:
    case, red, nir, ndvi = known_case(tmp_path)
    job, files = case.job(case.roi(TRIANGLE), red, nir)
    out = tmp_path / "out"
    out.mkdir()

    run = run_app(app_engine, urban_green_image, "urban_green", job=job, files=files, out_dir=out)

    assert run.exit_code == 0, run.stderr
    assert sorted(run.outputs) == ["ndvi.tif", "statistics.json"]
    progress = run.progress()
    assert progress == sorted(progress) and progress[-1] == 100 and len(progress) >= 4
    expected = np.where(triangle_inside(), ndvi, np.nan)
    found, profile = read_on_red_grid(run.outputs["ndvi.tif"], case)
    assert profile["crs"].to_epsg() == 32633
    assert profile["dtype"] == "float32"
    assert profile["nodata"] == -9999.0
    assert np.array_equal(np.isnan(found), np.isnan(expected))
    np.testing.assert_allclose(found[~np.isnan(found)], expected[~np.isnan(expected)], atol=1e-5)
    assert np.isnan(found[10:14, 3]).all()  # nodata, invalid reflectance, 0 / 0
    assert_cog(run.outputs["ndvi.tif"])

    stats = json.loads(run.outputs["statistics.json"].read_text())
    assert_statistics(stats, expected_statistics(expected, 0.4))
    # 25 + 24 + ... + 1 pixel centres inside the triangle, less the four made undefined.
    assert stats["valid_pixels"] == 25 * 26 // 2 - 4
    assert 0 < stats["green_pixels"] < stats["valid_pixels"]
    assert stats["order_id"] == job["order_id"]
    assert stats["inputs"] == {"reflectance": "S2B_MSIL2A_20240715T100559_TEST"}


def test_command_line_overrides_params(app_engine, urban_green_image, tmp_path) -> None:
    case, red, nir, ndvi = known_case(tmp_path)
    job, files = case.job(case.roi(TRIANGLE), red, nir, params={"green_threshold": 0.4})
    out = tmp_path / "out"
    out.mkdir()

    run = run_app(
        app_engine,
        urban_green_image,
        "urban_green",
        job=job,
        files=files,
        out_dir=out,
        args=["--green_threshold", "0.2"],
    )

    assert run.exit_code == 0, run.stderr
    stats = json.loads(run.outputs["statistics.json"].read_text())
    expected = np.where(triangle_inside(), ndvi, np.nan)
    assert_statistics(stats, expected_statistics(expected, 0.2))
    assert stats["green_threshold"] == 0.2
    assert stats["green_pixels"] > expected_statistics(expected, 0.4)["green_pixels"]


def test_nir_in_another_crs_and_resolution(app_engine, urban_green_image, tmp_path) -> None:
    """Red as digital numbers without a recorded scale (so 1/10000); nir as float reflectance in
    EPSG:3035 at 10 m. Vegetation west of red column 10, buildings east of it. The region is a
    MultiPolygon."""
    case = Case(tmp_path)
    cols = np.mgrid[0:SIZE, 0:SIZE][1]
    red = np.where(cols < 10, 400, 1200).astype("uint16")
    red_path = write_raster(tmp_path / "red.tif", red, crs=UTM33, transform=case.transform)
    boundary = case.x0 + 10 * 20
    west, south, east, north = rasterio.warp.transform_bounds(
        UTM33, "EPSG:3035", case.x0 - 100, case.y0 - 700, case.x0 + 700, case.y0 + 100
    )
    x0, y0 = np.floor(west / 10) * 10, np.ceil(north / 10) * 10
    width, height = int((east - x0) / 10) + 1, int((y0 - south) / 10) + 1
    xs, ys = np.meshgrid(x0 + (np.arange(width) + 0.5) * 10, y0 - (np.arange(height) + 0.5) * 10)
    utm_x, _ = transform_points("EPSG:3035", UTM33, xs.ravel(), ys.ravel())
    nir = np.where(np.reshape(utm_x, xs.shape) < boundary, 0.40, 0.16).astype("float32")
    nir_path = write_raster(
        tmp_path / "nir.tif", nir, crs="EPSG:3035", transform=from_origin(x0, y0, 10, 10)
    )
    # Two parts, either side of a two-pixel gap (columns 14 and 15).
    west_part = case.roi([(1, 1), (14, 1), (14, 29), (1, 29)])["coordinates"]
    east_part = case.roi([(16, 1), (29, 1), (29, 29), (16, 29)])["coordinates"]
    roi = {"type": "MultiPolygon", "coordinates": [west_part, east_part]}
    job, files = case.job(roi, red_path, nir_path)
    out = tmp_path / "out"
    out.mkdir()

    run = run_app(app_engine, urban_green_image, "urban_green", job=job, files=files, out_dir=out)

    assert run.exit_code == 0, run.stderr
    found, profile = read_on_red_grid(run.outputs["ndvi.tif"], case)
    assert profile["crs"].to_epsg() == 32633
    inside = np.zeros((SIZE, SIZE), dtype=bool)
    inside[1:29, 1:29] = True
    inside[:, 14:16] = False
    assert np.array_equal(~np.isnan(found), inside)
    vegetation, built = (0.40 - 0.04) / (0.40 + 0.04), (0.16 - 0.12) / (0.16 + 0.12)
    np.testing.assert_allclose(found[1:29, 1:9], vegetation, atol=1e-5)
    np.testing.assert_allclose(found[1:29, 11:14], built, atol=1e-5)
    np.testing.assert_allclose(found[1:29, 16:29], built, atol=1e-5)
    # The columns on the boundary mix the two, nothing else.
    assert ((found[1:29, 9:11] >= built - 1e-5) & (found[1:29, 9:11] <= vegetation + 1e-5)).all()
    stats = json.loads(run.outputs["statistics.json"].read_text())
    assert stats["valid_pixels"] == 28 * 26
    assert 8 * 28 <= stats["green_pixels"] <= 10 * 28
    assert stats["mean_ndvi"] == pytest.approx(np.nanmean(found), abs=1e-5)
    assert_cog(run.outputs["ndvi.tif"])


def test_invalid_inputs_exit_3_with_a_reason(app_engine, urban_green_image, tmp_path) -> None:
    case, red, nir, _ = known_case(tmp_path)
    out = tmp_path / "out"
    out.mkdir()

    job, files = case.job(case.roi(TRIANGLE), red, None)
    run = run_app(app_engine, urban_green_image, "urban_green", job=job, files=files, out_dir=out)
    assert run.exit_code == 3
    assert (
        run.reason == "the reflectance product S2B_MSIL2A_20240715T100559_TEST has no 'nir' asset"
    )

    berlin = {
        "type": "Polygon",
        "coordinates": [[[13.3, 52.4], [13.5, 52.4], [13.5, 52.6], [13.3, 52.6], [13.3, 52.4]]],
    }
    job, files = case.job(berlin, red, nir)
    run = run_app(app_engine, urban_green_image, "urban_green", job=job, files=files, out_dir=out)
    assert run.exit_code == 3
    assert run.reason == "the red reflectance raster does not overlap the region of interest"
    assert run.outputs == {}


def test_a_demo_city_is_greener_at_its_edge(app_engine, urban_green_image, tmp_path) -> None:
    from cure.demo.rasters import city_by_name, generate

    berlin = city_by_name("Berlin")
    products = generate(tmp_path / "demo", [berlin], [date(2024, 6, 21)])
    s2 = next(p for p in products if p.collection == "sentinel2-l2a")
    files = {RED: s2.assets["red"], NIR: s2.assets["nir"]}
    inputs = {"reflectance": [product(s2.collection, s2.identifier, {"red": RED, "nir": NIR})]}
    west, south, east, north = berlin["bbox"]
    lon, lat = (west + east) / 2, (south + north) / 2

    def run_over(half_width: float, name: str) -> dict[str, Any]:
        roi = {
            "type": "Polygon",
            "coordinates": [
                [
                    [lon - half_width, lat - half_width],
                    [lon + half_width, lat - half_width],
                    [lon + half_width, lat + half_width],
                    [lon - half_width, lat + half_width],
                    [lon - half_width, lat - half_width],
                ]
            ],
        }
        out = tmp_path / name
        out.mkdir()
        job = job_document("urban_green", roi, inputs, {"green_threshold": 0.4})
        run = run_app(
            app_engine, urban_green_image, "urban_green", job=job, files=files, out_dir=out
        )
        assert run.exit_code == 0, run.stderr
        assert_cog(run.outputs["ndvi.tif"])
        return json.loads(run.outputs["statistics.json"].read_text())

    core, whole = run_over(0.01, "core"), run_over(0.07, "whole")
    assert core["crs"] == whole["crs"] == "EPSG:32633"
    assert -1 <= core["mean_ndvi"] < whole["mean_ndvi"] <= 1
    assert core["green_share"] < whole["green_share"]
    assert whole["valid_pixels"] > 10 * core["valid_pixels"]
