"""The air quality app in its real image on the real Docker engine, on tiny netCDF files in the
CAMS European ensemble analysis's layout whose answers are known by hand: 24-hour means of NO2
against 25 µg/m3, the daily maximum 8-hour mean of ozone against 100 µg/m3, hours missing,
longitudes from 0 to 360, and regions the product cannot serve."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

from cure.demo.netcdf import Variable, write_classic
from tests.apps.conftest import assert_cog, job_document, product, run_app

STEP = 0.1
FILL = -999.0


def cams_file(
    path: Path,
    *,
    west: float,
    north: float,
    fields: dict[str, np.ndarray],
    first_day: str = "20240715",
    time_units: str = "hours",
    fill: float | None = None,
) -> Path:
    """A netCDF in the ensemble analysis's layout: fields (hours, rows, cols) per variable,
    cell centres half a step in from (west, north), longitudes stored from 0 to 360."""
    hours, rows, cols = next(iter(fields.values())).shape
    lons = (west + STEP * (np.arange(cols) + 0.5)) % 360
    lats = north - STEP * (np.arange(rows) + 0.5)
    variables = [
        Variable("longitude", ("longitude",), lons.astype("float32"), {"units": "degrees_east"}),
        Variable("latitude", ("latitude",), lats.astype("float32"), {"units": "degrees_north"}),
        Variable("level", ("level",), np.zeros(1, "float32"), {"units": "m"}),
        Variable(
            "time",
            ("time",),
            np.arange(hours, dtype="float32"),
            {"long_name": f"ANALYSIS time from {first_day}", "units": time_units},
        ),
    ]
    for name, values in fields.items():
        attributes: dict[str, Any] = {"units": "µg/m3", "value": "hourly values"}
        if fill is not None:
            attributes["_FillValue"] = np.float32(fill)
        variables.append(
            Variable(
                name,
                ("time", "level", "latitude", "longitude"),
                values.astype("float32")[:, np.newaxis],
                attributes,
            )
        )
    return write_classic(
        path,
        {"longitude": cols, "latitude": rows, "level": 1, "time": None},
        variables,
        {"source": "Data from ENSEMBLE model"},
    )


def box(west: float, south: float, east: float, north: float) -> dict[str, Any]:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def run(  # type: ignore[no-untyped-def]
    app_engine,
    image,
    tmp_path: Path,
    netcdf: Path,
    roi: dict[str, Any],
    *,
    start: str = "2024-07-15",
    end: str = "2024-07-15",
    params: dict[str, Any] | None = None,
):
    staged = "inputs/concentrations/concentrations.nc"
    inputs = {
        "concentrations": [
            product("cams-europe-air-quality", "CAMS_TEST", {"concentrations": staged})
        ]
    }
    job = job_document("air_quality", roi, inputs, params or {})
    job |= {"start_date": start, "end_date": end}
    out = tmp_path / "out"
    out.mkdir(parents=True)
    return run_app(app_engine, image, "air_quality", job=job, files={staged: netcdf}, out_dir=out)


def bands(path: Path) -> dict[str, np.ndarray]:
    with rasterio.open(path) as src:
        names = [src.tags(b)["name"] for b in range(1, src.count + 1)]
        return {name: src.read(b + 1, masked=True) for b, name in enumerate(names)}


def cell_areas(north: float, rows: int) -> np.ndarray:
    """Each row's cell area (relative): the WGS84 lengths of a degree at its middle latitude."""
    phi = np.radians(north - STEP * (np.arange(rows) + 0.5))
    along = 111_132.92 - 559.82 * np.cos(2 * phi) + 1.175 * np.cos(4 * phi)
    across = 111_412.84 * np.cos(phi) - 93.5 * np.cos(3 * phi)
    return along * across


def test_no2_daily_means_against_the_who_guideline(app_engine, air_quality_image, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two days over 2 x 3 cells. Day one: means 10, 20, 26 (half the hours 0, half 52), 30,
    24 and 40, cell (1, 1) also missing 7 hours (17 of 24: no value that day); day two: 15
    everywhere but 50 in cell (0, 0). NO2 above 25 µg/m3: cells (0, 0), (0, 2), (1, 0) and
    (1, 2) on one day each; the region (the whole grid) exceeds on both days."""
    west, north = 16.3, 48.3
    day_one = np.array([[10.0, 20.0, 26.0], [30.0, 24.0, 40.0]])
    day_two = np.array([[50.0, 15.0, 15.0], [15.0, 15.0, 15.0]])
    hourly = np.concatenate([np.repeat(day_one[None], 24, 0), np.repeat(day_two[None], 24, 0)])
    hourly[:12, 0, 2], hourly[12:24, 0, 2] = 0.0, 52.0
    hourly[3:10, 1, 1] = FILL
    netcdf = cams_file(
        tmp_path / "no2.nc", west=west, north=north, fields={"no2_conc": hourly}, fill=FILL
    )
    roi = box(west, north - 2 * STEP, west + 3 * STEP, north)
    result = run(
        app_engine, air_quality_image, tmp_path, netcdf, roi, start="2024-07-15", end="2024-07-16"
    )
    assert result.exit_code == 0, result.stderr
    assert result.progress()[-1] == 100
    assert_cog(result.outputs["air_quality.tif"])
    with rasterio.open(result.outputs["air_quality.tif"]) as src:
        assert src.count == 4 and src.crs.to_epsg() == 4326
        assert (src.transform.c, src.transform.f) == pytest.approx((west, north), abs=1e-4)
        assert src.res == pytest.approx((STEP, STEP), abs=1e-4)
    found = bands(result.outputs["air_quality.tif"])
    assert found["valid_days"].tolist() == [[2, 2, 2], [2, 1, 2]]
    assert found["exceedance_days"].tolist() == [[1, 0, 1], [1, 0, 1]]
    expected_mean = (day_one + day_two) / 2
    expected_mean[1, 1] = 15.0  # its first day has too few hours
    assert np.allclose(found["mean_ugm3"], expected_mean)
    assert np.allclose(found["max_daily_ugm3"], [[50, 20, 26], [30, 15, 40]])

    statistics = json.loads(result.outputs["statistics.json"].read_text())
    area = np.repeat(cell_areas(north, 2)[:, None], 3, axis=1)
    assert statistics["guideline_ugm3"] == 25.0 and statistics["daily_value"] == "24-hour mean"
    assert statistics["exceedance_days"] == 2
    assert statistics["exceedance_dates"] == ["2024-07-15", "2024-07-16"]
    exceeding = np.array([[1, 0, 1], [1, 0, 1]], dtype=bool)
    assert statistics["exceedance_area_share"] == pytest.approx(
        area[exceeding].sum() / area.sum(), rel=1e-3
    )
    assert statistics["mean_ugm3"] == pytest.approx(
        (expected_mean * area).sum() / area.sum(), rel=1e-3
    )
    assert statistics["max_daily_ugm3"] == 50.0
    assert statistics["max_daily_at"] == {"date": "2024-07-16", "lon": 16.35, "lat": 48.25}
    first, second = statistics["daily"]
    assert first["valid_share"] == pytest.approx(1 - area[1, 1] / area.sum(), rel=1e-3)
    assert second["exceedance_area_share"] == pytest.approx(area[0, 0] / area.sum(), rel=1e-3)
    assert statistics["worst_day"]["date"] == "2024-07-15"  # about 25 µg/m3 on average, against 21
    assert statistics["valid_share"] == pytest.approx(1 - area[1, 1] / area.sum() / 2, rel=1e-3)
    assert statistics["masked"]["too_few_hours"] == pytest.approx(
        area[1, 1] / area.sum() / 2, rel=1e-3
    )


def test_ozone_takes_the_daily_maximum_8_hour_mean(app_engine, air_quality_image, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """2 x 2 cells west of Greenwich (longitudes stored from 0 to 360), a region inside the
    north-west one, three days of 90 µg/m3 there with: one hour at 150 (8-hour maximum 97.5),
    two at 130 (exactly 100: not above) and six at 110 (105: above); CF time units."""
    hourly = np.full((72, 2, 2), 90.0)
    hourly[:, 1, :] = hourly[:, :, 1] = 200.0  # the other cells: far above, but not the region's
    hourly[14, 0, 0] = 150.0
    hourly[24 + 12 : 24 + 14, 0, 0] = 130.0
    hourly[48 + 10 : 48 + 16, 0, 0] = 110.0
    netcdf = cams_file(
        tmp_path / "o3.nc",
        west=-3.8,
        north=40.5,
        fields={"o3_conc": hourly, "no2_conc": np.zeros_like(hourly)},
        time_units="hours since 2024-07-15 00:00:00",
    )
    # 6 x 6 of the 16 x 16 subcells the app measures a cell's coverage on: 36/256 of the cell
    roi = box(-3.775, 40.4125, -3.7375, 40.45)
    params = {"pollutant": "o3"}
    result = run(
        app_engine, air_quality_image, tmp_path, netcdf, roi, end="2024-07-17", params=params
    )
    assert result.exit_code == 0, result.stderr
    statistics = json.loads(result.outputs["statistics.json"].read_text())
    assert [day["mean_ugm3"] for day in statistics["daily"]] == pytest.approx([97.5, 100.0, 105.0])
    assert statistics["exceedance_dates"] == ["2024-07-17"]
    assert statistics["exceedance_area_share"] == 1.0 and statistics["region_cells"] == 1
    assert statistics["mean_ugm3"] == pytest.approx((97.5 + 100 + 105) / 3)
    assert statistics["region_area_km2"] == pytest.approx(
        0.0375**2 * cell_areas(40.5, 1)[0] / 1e6, rel=1e-6
    )
    # the one cell the region touches, and the one east and south of it to make 2 x 2
    found = bands(result.outputs["air_quality.tif"])
    assert found["exceedance_days"].tolist() == [[1, None], [None, None]]
    assert found["valid_days"].tolist() == [[3, None], [None, None]]
    with rasterio.open(result.outputs["air_quality.tif"]) as src:
        assert src.transform.c == pytest.approx(-3.8, abs=1e-4)  # beside the region

    # The first day's 8-hour means from 00:00 to 04:00 lack the day before: 19 of 24 are left.
    strict = {"pollutant": "o3", "min_valid_hours": 20}
    again = run(
        app_engine, air_quality_image, tmp_path / "strict", netcdf, roi, end="2024-07-17",
        params=strict,
    )  # fmt: skip
    assert again.exit_code == 0, again.stderr
    days = json.loads(again.outputs["statistics.json"].read_text())["daily"]
    assert [day["mean_ugm3"] for day in days] == [None, 100.0, 105.0]


def test_too_little_data_makes_the_order_invalid(app_engine, air_quality_image, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A product of one day for an order of four, and a product without the pollutant."""
    hourly = np.full((24, 2, 2), 12.0)
    netcdf = cams_file(tmp_path / "pm.nc", west=16.3, north=48.3, fields={"pm10_conc": hourly})
    roi = box(16.3, 48.1, 16.5, 48.3)
    result = run(
        app_engine, air_quality_image, tmp_path / "days", netcdf, roi, end="2024-07-18",
        params={"pollutant": "pm10"},
    )  # fmt: skip
    assert result.exit_code == 3
    assert "only 25.0% of the region's area and days" in result.reason
    assert "75.0% days outside the product" in result.reason
    half = run(
        app_engine, air_quality_image, tmp_path / "half", netcdf, roi, end="2024-07-16",
        params={"pollutant": "pm10", "min_valid_share": 0.5},
    )  # fmt: skip
    assert half.exit_code == 0, half.stderr  # 50 % of the area-days: just enough
    missing = run(
        app_engine, air_quality_image, tmp_path / "no2", netcdf, roi, params={"pollutant": "no2"}
    )
    assert missing.exit_code == 3
    assert "has no no2_conc variable (it has: pm10_conc)" in missing.reason
    beyond = run(
        app_engine, air_quality_image, tmp_path / "beyond", netcdf, box(16.5, 48.1, 16.9, 48.3),
        params={"pollutant": "pm10"},
    )  # fmt: skip
    assert beyond.exit_code == 3 and "100.0% outside the product" in beyond.reason
    one_row = cams_file(
        tmp_path / "row.nc", west=16.3, north=48.3, fields={"pm10_conc": hourly[:, :1]}
    )
    unplaced = run(
        app_engine, air_quality_image, tmp_path / "row", one_row, roi, params={"pollutant": "pm10"}
    )
    assert unplaced.exit_code == 3 and "not on a regular lon/lat grid" in unplaced.reason
