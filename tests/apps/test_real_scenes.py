"""Both apps in their real images on the federation tests' real-format scenes (tests/federation/
scenes.py: Sentinel-2 L2A and Landsat Collection 2 Level-2 COGs over Vienna), each band cut to a
district's window as the worker's staging hands it over, against the scenes' own by-hand answers."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from tests.apps.conftest import job_document, product, run_app
from tests.federation.conftest import scene_files  # noqa: F401  (the session's scenes)
from tests.federation.scenes import (
    DISTRICTS,
    District,
    imperviousness_tile,
    lst_by_hand,
    ndvi_by_hand,
)

MARGIN = 4  # pixels around the district, as the staging cuts its windows
S2_VALUES = {"scale": 0.0001, "offset": -0.1, "nodata": 0}
ST_VALUES = {"scale": 0.00341802, "offset": 149.0, "nodata": 0}


def cut_window(source: Path, bounds: tuple[float, float, float, float], into: Path) -> Path:
    """A GeoTIFF of source's pixels under bounds plus MARGIN pixels, in its own CRS, grid, data
    type and nodata: what the staging makes of a remote Cloud-Optimized GeoTIFF."""
    west, south, east, north = bounds
    with rasterio.open(source) as src:
        inverse = ~src.transform
        col0, row0 = inverse * (west, north)
        col1, row1 = inverse * (east, south)
        c0, r0 = max(int(np.floor(col0)) - MARGIN, 0), max(int(np.floor(row0)) - MARGIN, 0)
        c1 = min(int(np.ceil(col1)) + MARGIN, src.width)
        r1 = min(int(np.ceil(row1)) + MARGIN, src.height)
        window = Window(c0, r0, c1 - c0, r1 - r0)
        profile = {
            "driver": "GTiff",
            "width": c1 - c0,
            "height": r1 - r0,
            "count": 1,
            "dtype": src.dtypes[0],
            "crs": src.crs,
            "transform": window_transform(window, src.transform),
            "nodata": src.nodata,
        }
        data = src.read(1, window=window)
    with rasterio.open(into, "w", **profile) as dst:
        dst.write(data, 1)
    return into


def run_urban_green(engine, image, scene_files, district: District, folder: Path):  # type: ignore[no-untyped-def]  # noqa: F811
    folder.mkdir()
    s2 = scene_files.s2
    files, assets = {}, {}
    for key, path in (("red", s2.red), ("nir", s2.nir), ("scl", s2.scl)):
        name = f"inputs/reflectance/{key}.tif"
        files[name] = cut_window(path, district.utm_bounds, folder / f"{key}.tif")
        assets[key] = name
    described = product(
        "sentinel2-l2a",
        "S2B_33UXP_20260714_0_L2A",
        assets,
        source="test-stac",
        cloud_cover=8.3,
        properties={"s2:processing_baseline": "05.10", "platform": "sentinel-2b"},
        values={"red": S2_VALUES, "nir": S2_VALUES, "scl": {"nodata": 0}},
    )
    job = job_document(
        "urban_green", district.geometry, {"reflectance": [described]}, {"green_threshold": 0.4}
    )
    out = folder / "out"
    out.mkdir()
    return run_app(engine, image, "urban_green", job=job, files=files, out_dir=out)


@pytest.mark.parametrize("name", ["clear", "half_cloudy"])
def test_ndvi_of_a_real_format_scene_is_the_one_computed_by_hand(
    app_engine,
    urban_green_image,
    scene_files,  # noqa: F811
    tmp_path,
    name: str,
) -> None:
    district = DISTRICTS[name]
    run = run_urban_green(app_engine, urban_green_image, scene_files, district, tmp_path / name)

    assert run.exit_code == 0, run.stderr
    stats = json.loads(run.outputs["statistics.json"].read_text())
    expected = ndvi_by_hand(scene_files.s2, district)
    assert stats["region_pixels"] == expected["pixels"]
    assert stats["valid_pixels"] == expected["clear_pixels"]
    assert stats["mean_ndvi"] == pytest.approx(expected["mean"], abs=1e-9)
    assert stats["masked_share"] == pytest.approx(expected["masked_share"], abs=1e-9)
    assert stats["reflectance"]["nir"]["offset"] == -0.1
    if name == "clear":
        assert stats["masked_share"] == 0
    else:  # its eastern half under cloud
        assert 0.3 < stats["masked_share"] < 0.7
        assert stats["masked"]["cloud_high_probability"] > 0


@pytest.mark.parametrize(
    ("name", "cause"), [("cloudy", "cloud high probability"), ("cirrus", "thin cirrus")]
)
def test_a_real_format_scene_under_cloud_or_cirrus_is_invalid(
    app_engine,
    urban_green_image,
    scene_files,  # noqa: F811
    tmp_path,
    name: str,
    cause: str,
) -> None:
    district = DISTRICTS[name]
    run = run_urban_green(app_engine, urban_green_image, scene_files, district, tmp_path / name)

    assert run.exit_code == 3
    pixels = ndvi_by_hand(scene_files.s2, district)["pixels"]
    assert run.reason == (
        f"only 0 of the region's {pixels} pixels (0.0%) are clear and valid, fewer than"
        f" min_valid_share (20%); masked: {pixels} {cause}"
    )
    assert run.outputs == {}


def run_suhi(engine, image, scene_files, district: District, folder: Path):  # type: ignore[no-untyped-def]  # noqa: F811
    folder.mkdir()
    landsat = scene_files.landsat
    files: dict[str, Path] = {
        "inputs/lst/lst.tif": cut_window(landsat.lwir11, district.utm_bounds, folder / "st.tif"),
        "inputs/lst/qa.tif": cut_window(landsat.qa_pixel, district.utm_bounds, folder / "qa.tif"),
        # All rural: the mean rural temperature is the region's mean temperature.
        "inputs/imperviousness/imd.tif": imperviousness_tile(district, folder / "imd.tif", north=5),
    }
    lst = product(
        "landsat-c2-l2",
        "LC09_L2SP_190026_20260715_02_T1",
        {"lst": "inputs/lst/lst.tif", "qa": "inputs/lst/qa.tif"},
        source="test-stac",
        cloud_cover=12.4,
        values={"lst": ST_VALUES, "qa": {"nodata": 1}},
    )
    imd = product("hrl-imperviousness", "IMD_2018", {"imd": "inputs/imperviousness/imd.tif"})
    params = {"urban_threshold": 50, "rural_threshold": 10, "min_rural_pixels": 10}
    job = job_document(
        "suhi",
        district.geometry,
        {"lst": [lst], "imperviousness": [imd]},
        {**params, "lst_source": "landsat"},
    )
    out = folder / "out"
    out.mkdir()
    return run_app(engine, image, "suhi", job=job, files=files, out_dir=out)


def test_landsat_lst_of_a_real_format_scene_is_the_one_computed_by_hand(
    app_engine,
    suhi_image,
    scene_files,  # noqa: F811
    tmp_path,
) -> None:
    district = DISTRICTS["half_cloudy"]
    run = run_suhi(app_engine, suhi_image, scene_files, district, tmp_path / "half")

    assert run.exit_code == 0, run.stderr
    stats: dict[str, Any] = json.loads(run.outputs["statistics.json"].read_text())
    expected = lst_by_hand(scene_files.landsat, district)
    assert stats["lst_source"] == "landsat" and stats["crs"] == "EPSG:32633"
    # The district's edges run through a row and a column of Landsat pixel centres (its 30 m
    # grid is offset by 15 m); the by-hand count takes them, the region may not: the means and
    # shares agree to that edge.
    rows_cols = np.sqrt(expected["pixels"])
    assert expected["pixels"] - 2 * rows_cols - 2 <= stats["region_pixels"] <= expected["pixels"]
    assert stats["mean_rural_lst_k"] == pytest.approx(expected["mean"], abs=0.2)
    assert stats["masked_share"] == pytest.approx(expected["masked_share"], abs=0.03)
    assert stats["masked"]["cloud"] > 0
    assert stats["rural_pixels"] == stats["valid_pixels"] and stats["urban_pixels"] == 0

    cloudy = run_suhi(app_engine, suhi_image, scene_files, DISTRICTS["cloudy"], tmp_path / "c")
    assert cloudy.exit_code == 3
    assert cloudy.reason.startswith("only 0 of the region's")
    assert "fewer than min_valid_share (20%)" in cloudy.reason and "cloud" in cloudy.reason
