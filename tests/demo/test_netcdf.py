"""The netCDF classic writer of the demo data, read back by GDAL (rasterio): dimensions,
coordinates, record variables, attributes and fill values as written."""

import numpy as np
import pytest
import rasterio

from cure.demo.netcdf import Variable, write_classic


def coordinates(hours: int) -> list[Variable]:
    return [
        Variable("longitude", ("longitude",), np.array([10.05, 10.15, 10.25], "float32")),
        Variable("latitude", ("latitude",), np.array([50.15, 50.05], "float32")),
        Variable("level", ("level",), np.zeros(1, "float32"), {"units": "m"}),
        Variable(
            "time",
            ("time",),
            np.arange(hours, dtype="float32"),
            {"long_name": "ANALYSIS time from 20240715", "units": "hours"},
        ),
    ]


@pytest.mark.parametrize("variables", [1, 2])
def test_records_read_back_in_order_with_their_times(tmp_path, variables) -> None:
    """One record variable is stored without padding between records, several with: either
    way each hour holds its own field and its own time."""
    hours = 4
    fields = [
        (np.arange(hours * 6, dtype="float32") + 100 * n).reshape(hours, 1, 2, 3)
        for n in range(variables)
    ]
    names = ["no2_conc", "o3_conc"][:variables]
    path = write_classic(
        tmp_path / "air.nc",
        {"longitude": 3, "latitude": 2, "level": 1, "time": None},
        [
            *coordinates(hours),
            *(
                Variable(
                    name, ("time", "level", "latitude", "longitude"), field, {"units": "µg/m3"}
                )
                for name, field in zip(names, fields, strict=True)
            ),
        ],
        {"title": "a test", "version": np.int16(3)},
    )
    for name, field in zip(names, fields, strict=True):
        with rasterio.open(f"NETCDF:{path}:{name}") as src:
            assert src.count == hours and (src.height, src.width) == (2, 3)
            assert src.transform.c == pytest.approx(10.0) and src.transform.f == pytest.approx(50.2)
            assert [float(src.tags(b)["NETCDF_DIM_time"]) for b in range(1, hours + 1)] == [
                0.0,
                1.0,
                2.0,
                3.0,
            ]
            tags = src.tags()
            assert tags[f"{name}#units"] == "µg/m3" and tags["time#units"] == "hours"
            assert tags["NC_GLOBAL#title"] == "a test" and tags["NC_GLOBAL#version"] == "3"
            assert np.array_equal(src.read(), field[:, 0])


def test_a_fill_value_is_the_nodata_and_mistakes_are_refused(tmp_path) -> None:
    field = np.full((2, 1, 2, 3), 7.5, dtype="float32")
    field[1, 0, 0, 0] = -999
    path = write_classic(
        tmp_path / "fill.nc",
        {"longitude": 3, "latitude": 2, "level": 1, "time": None},
        [
            *coordinates(2),
            Variable(
                "pm10_conc",
                ("time", "level", "latitude", "longitude"),
                field,
                {"_FillValue": np.float32(-999)},
            ),
        ],
    )
    with rasterio.open(f"NETCDF:{path}:pm10_conc") as src:
        assert src.nodata == -999
        read = src.read(2, masked=True)
    assert read.mask.sum() == 1 and read.mask[0, 0]

    with pytest.raises(ValueError, match="shape"):
        write_classic(
            tmp_path / "bad.nc", {"x": 3}, [Variable("v", ("x",), np.zeros(4, "float32"))]
        )
    with pytest.raises(ValueError, match="unlimited dimension must come first"):
        write_classic(
            tmp_path / "bad.nc",
            {"x": 2, "t": None},
            [Variable("v", ("x", "t"), np.zeros((2, 2), "float32"))],
        )
