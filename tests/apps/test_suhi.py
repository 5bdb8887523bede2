"""The suhi app in its real image on the real Docker engine, on rasters whose answer is known."""

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

LAEA = "EPSG:3035"
SIZE = 20  # LST pixels a side, 100 m each
DEFAULTS = {"urban_threshold": 50, "rural_threshold": 10, "min_rural_pixels": 10}
LST_NODATA = -9999.0


class Case:
    """An LST grid (EPSG:3035, 100 m) and an imperviousness raster staged as a job."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.x0, self.y0 = snapped_origin(LAEA, 16.30, 48.25, 1000)
        self.transform = from_origin(self.x0, self.y0, 100, 100)

    def point(self, col: float, row: float) -> tuple[float, float]:
        return self.x0 + col * 100, self.y0 - row * 100

    def roi(self, corners: list[tuple[float, float]]) -> dict[str, Any]:
        """A region whose vertices are LST pixel corners (col, row)."""
        return lonlat_polygon(LAEA, [self.point(c, r) for c, r in corners])

    def write_lst(self, lst: np.ndarray) -> Path:
        path = self.dir / "lst.tif"
        return write_raster(path, lst, crs=LAEA, transform=self.transform, nodata=LST_NODATA)

    def job(
        self, roi: dict[str, Any], *, imd: Path | None, params: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Path]]:
        files = {"inputs/lst/lst.tif": self.dir / "lst.tif"}
        lst = product("sentinel3-slstr-lst", "S3A_SL_2_LST_TEST", {"lst": "inputs/lst/lst.tif"})
        inputs = {"lst": [lst]}
        if imd is not None:
            files["inputs/imperviousness/imd.tif"] = imd
            inputs["imperviousness"] = [
                product(
                    "hrl-imperviousness", "IMD_2018_TEST", {"imd": "inputs/imperviousness/imd.tif"}
                )
            ]
        return job_document("suhi", roi, inputs, {**DEFAULTS, **(params or {})}), files


# An L-shaped region on LST pixel corners: the square (2..18, 2..18) without its north-east quarter.
L_SHAPE = [(2, 2), (10, 2), (10, 10), (18, 10), (18, 18), (2, 18)]


def l_shape_inside() -> np.ndarray:
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    square = (cols >= 2) & (cols < 18) & (rows >= 2) & (rows < 18)
    return square & ~((cols >= 10) & (rows < 10))


def known_case(tmp_path: Path) -> tuple[Case, np.ndarray, np.ndarray, Path]:
    """LST with noise, a nodata pixel and a fill value; imperviousness at 50 m in 2x2 blocks
    per LST pixel, with HRL codes 254/255 that must not count. Returns LST and the expected
    per-pixel imperviousness (NaN where none)."""
    case = Case(tmp_path)
    rng = np.random.default_rng(7)
    lst = (295 + 10 * rng.random((SIZE, SIZE))).astype("float32")
    lst[5, 5] = LST_NODATA
    lst[12, 4] = 0.0  # a fill value without the nodata tag: no surface is at 0 K
    case.write_lst(lst)

    blocks = np.zeros((SIZE, SIZE, 2, 2), dtype="uint8")
    blocks[:, :8] = 80  # urban
    blocks[:, 8:10] = [[100, 100], [0, 0]]  # averages to exactly 50: urban at the threshold
    blocks[:, 10:12] = 40  # neither urban nor rural
    blocks[:, 12:] = 5  # rural
    blocks[14, 14] = [[0, 0], [0, 254]]  # unclassifiable cell: rural, not urban
    blocks[15, 15] = [[5, 255], [5, 5]]  # outside-area cell (the nodata value)
    blocks[16, 16] = 255  # no imperviousness at all
    imd = blocks.transpose(0, 2, 1, 3).reshape(SIZE * 2, SIZE * 2)
    # A 500 m margin of rural land around the LST grid, at 50 m.
    framed = np.full((SIZE * 2 + 20, SIZE * 2 + 20), 3, dtype="uint8")
    framed[10:-10, 10:-10] = imd
    imd_path = write_raster(
        tmp_path / "imd.tif",
        framed,
        crs=LAEA,
        transform=from_origin(case.x0 - 500, case.y0 + 500, 50, 50),
        nodata=255,
    )
    cells = blocks.reshape(SIZE, SIZE, 4).astype("float64")
    counted = cells <= 100
    with np.errstate(invalid="ignore"):  # 0 / 0 where no cell counts: NaN, no imperviousness
        expected_imd = np.where(counted, cells, 0).sum(axis=2) / counted.sum(axis=2)
    return case, lst, expected_imd, imd_path


def expected_outcome(
    lst: np.ndarray, imd: np.ndarray, inside: np.ndarray, *, urban_at: float, rural_at: float
) -> tuple[np.ndarray, dict[str, Any]]:
    kelvin = lst.astype("float64")
    valid = inside & (kelvin > 150) & np.isfinite(imd)
    urban = valid & (imd >= urban_at)
    rural = valid & (imd <= rural_at)
    mean_rural = kelvin[rural].mean()
    intensity = np.where(valid, kelvin - mean_rural, np.nan)
    stats = {
        "mean_urban_lst_k": kelvin[urban].mean(),
        "mean_rural_lst_k": mean_rural,
        "mean_urban_intensity_k": intensity[urban].mean(),
        "max_urban_intensity_k": intensity[urban].max(),
        "urban_pixels": int(urban.sum()),
        "rural_pixels": int(rural.sum()),
        "valid_pixels": int(valid.sum()),
    }
    return intensity, stats


def read_on_lst_grid(path: Path, case: Case) -> tuple[np.ndarray, rasterio.profiles.Profile]:
    """The output put back on the full LST grid (NaN where it has no value or no pixel)."""
    with rasterio.open(path) as src:
        profile = src.profile
        data = src.read(1)
        transform = src.transform
    assert (transform.a, transform.b, transform.d, transform.e) == (100, 0, 0, -100)
    col_off = (transform.c - case.x0) / 100
    row_off = (case.y0 - transform.f) / 100
    assert col_off == round(col_off) and row_off == round(row_off), "not on the LST pixel grid"
    full = np.full((SIZE + 40, SIZE + 40), np.nan)
    r, c = int(round(row_off)) + 20, int(round(col_off)) + 20
    assert r >= 0 and c >= 0
    full[r : r + data.shape[0], c : c + data.shape[1]] = np.where(
        data == profile["nodata"], np.nan, data
    )
    # The output holds nothing outside the LST grid: it was cut to the region over that grid.
    outside = np.ones(full.shape, dtype=bool)
    outside[20:-20, 20:-20] = False
    assert np.isnan(full[outside]).all()
    return full[20:-20, 20:-20], profile


def assert_statistics(found: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        if isinstance(value, int):
            assert found[key] == value, key
        else:
            assert found[key] == pytest.approx(value, abs=1e-4), key


def test_intensity_and_statistics_are_right(app_engine, suhi_image, tmp_path) -> None:
    case, lst, imd, imd_path = known_case(tmp_path)
    job, files = case.job(case.roi(L_SHAPE), imd=imd_path)
    out = tmp_path / "out"
    out.mkdir()

    run = run_app(app_engine, suhi_image, "suhi", job=job, files=files, out_dir=out)

    assert run.exit_code == 0, run.stderr
    assert sorted(run.outputs) == ["statistics.json", "suhi_intensity.tif"]
    progress = run.progress()
    assert progress == sorted(progress) and progress[-1] == 100 and len(progress) >= 4
    intensity, expected_stats = expected_outcome(
        lst, imd, l_shape_inside(), urban_at=50, rural_at=10
    )
    found, profile = read_on_lst_grid(run.outputs["suhi_intensity.tif"], case)
    assert profile["crs"].to_epsg() == 3035
    assert profile["dtype"] == "float32"
    assert profile["nodata"] == -9999.0
    # Nodata exactly where the expectation has none: outside the L, no LST, no imperviousness.
    assert np.array_equal(np.isnan(found), np.isnan(intensity))
    np.testing.assert_allclose(found[~np.isnan(found)], intensity[~np.isnan(intensity)], atol=1e-4)
    assert np.isnan(found[2:10, 10:18]).all()  # the L's missing quarter
    assert_cog(run.outputs["suhi_intensity.tif"])

    stats = json.loads(run.outputs["statistics.json"].read_text())
    assert_statistics(stats, expected_stats)
    # The known answer by hand: the 50 % blocks are urban, the 254 cell does not make a pixel urban.
    # Inside the L: 8 x 16 urban pixels (columns 2..9) less the nodata and the 0 K pixel; 6 x 8
    # rural (columns 12..17, rows 10..17) less the one without imperviousness; 16 x 16 - 8 x 8 in all.
    assert (stats["urban_pixels"], stats["rural_pixels"]) == (8 * 16 - 2, 6 * 8 - 1)
    assert stats["valid_pixels"] == 192 - 3
    assert (stats["lst_source"], stats["lst_collection"]) == ("slstr", "sentinel3-slstr-lst")
    assert stats["region_pixels"] == 192
    assert stats["masked"] == {
        "outside_the_product": 0,
        "no_temperature": 2,
        "no_imperviousness": 1,
    }
    assert stats["masked_share"] == pytest.approx(3 / 192)
    assert stats["mean_rural_lst_c"] == pytest.approx(stats["mean_rural_lst_k"] - 273.15)
    assert stats["order_id"] == job["order_id"]
    assert stats["inputs"] == {"lst": "S3A_SL_2_LST_TEST", "imperviousness": "IMD_2018_TEST"}


def test_command_line_overrides_params(app_engine, suhi_image, tmp_path) -> None:
    case, lst, imd, imd_path = known_case(tmp_path)
    job, files = case.job(case.roi(L_SHAPE), imd=imd_path, params={"urban_threshold": 50})
    out = tmp_path / "out"
    out.mkdir()

    run = run_app(
        app_engine,
        suhi_image,
        "suhi",
        job=job,
        files=files,
        out_dir=out,
        args=["--urban_threshold", "60", "--rural_threshold", "5.5"],
    )

    assert run.exit_code == 0, run.stderr
    _, expected_stats = expected_outcome(lst, imd, l_shape_inside(), urban_at=60, rural_at=5.5)
    stats = json.loads(run.outputs["statistics.json"].read_text())
    assert_statistics(stats, expected_stats)
    assert stats["urban_pixels"] == 6 * 16 - 2  # the 50 % blocks are no longer urban
    assert (stats["urban_threshold_percent"], stats["rural_threshold_percent"]) == (60, 5.5)


def test_imperviousness_in_another_crs_is_averaged_onto_the_lst_grid(
    app_engine, suhi_image, tmp_path
) -> None:
    """Imperviousness in WGS84 at 0.0002 degrees: 90 % west of the middle of LST column 9,
    2 % east of it. Whole LST columns west of 9 are urban, east of 9 rural."""
    case = Case(tmp_path)
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    lst = (300 + 5 * (cols <= 9) + 0.01 * rows).astype("float32")
    case.write_lst(lst)
    boundary_x = case.x0 + 950
    west, south, east, north = rasterio.warp.transform_bounds(
        LAEA, "EPSG:4326", case.x0 - 300, case.y0 - 2300, case.x0 + 2300, case.y0 + 300
    )
    step = 0.0002
    width, height = int((east - west) / step) + 1, int((north - south) / step) + 1
    lons = west + (np.arange(width) + 0.5) * step
    lats = north - (np.arange(height) + 0.5) * step
    lon_grid, lat_grid = np.meshgrid(lons, lats)
    xs, _ = transform_points("EPSG:4326", LAEA, lon_grid.ravel(), lat_grid.ravel())
    imd = np.where(np.reshape(xs, lon_grid.shape) < boundary_x, 90, 2).astype("uint8")
    imd_path = write_raster(
        tmp_path / "imd.tif",
        imd,
        crs="EPSG:4326",
        transform=from_origin(west, north, step, step),
        nodata=255,
    )
    job, files = case.job(case.roi([(1, 1), (19, 1), (19, 19), (1, 19)]), imd=imd_path)
    out = tmp_path / "out"
    out.mkdir()

    run = run_app(app_engine, suhi_image, "suhi", job=job, files=files, out_dir=out)

    assert run.exit_code == 0, run.stderr
    stats = json.loads(run.outputs["statistics.json"].read_text())
    # Rural: columns 10..18 in rows 1..18; their mean is 300 + 0.01 * 9.5 whichever rows.
    assert stats["rural_pixels"] == 9 * 18
    assert stats["mean_rural_lst_k"] == pytest.approx(300.095, abs=1e-4)
    # Urban: columns 1..8 for sure, column 9 (half sealed) perhaps.
    assert 8 * 18 <= stats["urban_pixels"] <= 9 * 18
    assert stats["valid_pixels"] == 18 * 18
    assert stats["max_urban_intensity_k"] == pytest.approx(305.18 - 300.095, abs=1e-4)
    assert stats["mean_urban_lst_k"] == pytest.approx(305.095, abs=0.06)
    found, _ = read_on_lst_grid(run.outputs["suhi_intensity.tif"], case)
    inside = np.zeros((SIZE, SIZE), dtype=bool)
    inside[1:19, 1:19] = True
    expected = np.where(inside, lst.astype("float64") - 300.095, np.nan)
    assert np.array_equal(np.isnan(found), np.isnan(expected))
    np.testing.assert_allclose(found[inside], expected[inside], atol=1e-4)
    assert_cog(run.outputs["suhi_intensity.tif"])


def test_invalid_inputs_exit_3_with_a_reason(app_engine, suhi_image, tmp_path) -> None:
    case, _, _, imd_path = known_case(tmp_path)
    out = tmp_path / "out"
    out.mkdir()

    madrid = {
        "type": "Polygon",
        "coordinates": [[[-3.8, 40.3], [-3.6, 40.3], [-3.6, 40.5], [-3.8, 40.3]]],
    }
    job, files = case.job(madrid, imd=imd_path)
    run = run_app(app_engine, suhi_image, "suhi", job=job, files=files, out_dir=out)
    assert run.exit_code == 3
    assert (
        run.reason == "the land surface temperature raster does not overlap the region of interest"
    )
    assert run.outputs == {}

    job, files = case.job(case.roi(L_SHAPE), imd=None)
    run = run_app(app_engine, suhi_image, "suhi", job=job, files=files, out_dir=out)
    assert run.exit_code == 3
    assert run.reason == "no imperviousness product was found for this region and period"

    job, files = case.job(case.roi(L_SHAPE), imd=imd_path)
    del files["inputs/imperviousness/imd.tif"]  # listed in params.json, never staged
    run = run_app(app_engine, suhi_image, "suhi", job=job, files=files, out_dir=out)
    assert run.exit_code == 3
    assert "imperviousness asset 'imd'" in run.reason and "not staged" in run.reason

    job, files = case.job(case.roi(L_SHAPE), imd=imd_path)
    run = run_app(
        app_engine,
        suhi_image,
        "suhi",
        job=job,
        files=files,
        out_dir=out,
        args=["--min_rural_pixels", "1000"],
    )
    assert run.exit_code == 3
    assert run.reason.startswith("only 47 rural pixels") and "min_rural_pixels (1000)" in run.reason
    assert run.outputs == {}


def test_bad_arguments_exit_2(app_engine, suhi_image, tmp_path) -> None:
    case, _, _, imd_path = known_case(tmp_path)
    job, files = case.job(case.roi(L_SHAPE), imd=imd_path)
    out = tmp_path / "out"
    out.mkdir()
    run = run_app(
        app_engine, suhi_image, "suhi", job=job, files=files, out_dir=out, args=["--colour", "red"]
    )
    assert run.exit_code == 2
    assert "unrecognized arguments: --colour red" in run.reason
    run = run_app(
        app_engine,
        suhi_image,
        "suhi",
        job=job,
        files=files,
        out_dir=out,
        args=["--urban_threshold", "150"],
    )
    assert run.exit_code == 2
    assert "maximum" in run.reason
    assert run.outputs == {}


def test_a_demo_city_has_a_heat_island(app_engine, suhi_image, tmp_path) -> None:
    """The demo products (three CRSs) through the app: Vienna's core is warmer than its edge."""
    from cure.demo.rasters import city_by_name, generate

    vienna = city_by_name("Vienna")
    products = generate(tmp_path / "demo", [vienna], [date(2024, 7, 15)])
    lst = next(p for p in products if p.collection == "sentinel3-slstr-lst")
    imd = next(p for p in products if p.collection == "hrl-imperviousness")
    files = {
        "inputs/lst/LST.tif": lst.assets["lst"],
        "inputs/imperviousness/IMD.tif": imd.assets["imd"],
    }
    inputs = {
        "lst": [product(lst.collection, lst.identifier, {"lst": "inputs/lst/LST.tif"})],
        "imperviousness": [
            product(imd.collection, imd.identifier, {"imd": "inputs/imperviousness/IMD.tif"})
        ],
    }
    west, south, east, north = vienna["bbox"]
    roi = {
        "type": "Polygon",
        "coordinates": [
            [
                [west + 0.02, south + 0.02],
                [east - 0.02, south + 0.02],
                [east - 0.02, north - 0.02],
                [west + 0.02, north - 0.02],
                [west + 0.02, south + 0.02],
            ]
        ],
    }
    out = tmp_path / "out"
    out.mkdir()

    run = run_app(
        app_engine,
        suhi_image,
        "suhi",
        job=job_document("suhi", roi, inputs, DEFAULTS),
        files=files,
        out_dir=out,
    )

    assert run.exit_code == 0, run.stderr
    stats = json.loads(run.outputs["statistics.json"].read_text())
    assert stats["urban_pixels"] > 500 and stats["rural_pixels"] > 500
    assert stats["mean_urban_lst_k"] > stats["mean_rural_lst_k"] + 3
    assert stats["max_urban_intensity_k"] > stats["mean_urban_intensity_k"] > 3
    assert stats["crs"] == "EPSG:3035"
    assert_cog(run.outputs["suhi_intensity.tif"])


def test_build_context_has_the_app_and_the_shared_code_at_its_root(tmp_path) -> None:
    import io
    import tarfile

    from cure.apps.build_context import build_context

    app_dir = Path(__file__).resolve().parents[2] / "cure" / "apps" / "suhi"
    context = build_context(app_dir)
    with tarfile.open(fileobj=io.BytesIO(context)) as tar:
        names = tar.getnames()
        shared = tar.extractfile("rasterkit.py")
        assert shared is not None and b"def write_cog" in shared.read()
    assert names == ["Dockerfile", "app.py", "manifest.json", "rasterkit.py", "terrain.py"]
    assert build_context(app_dir) == context  # the same files give the same bytes

    clashing = tmp_path / "clash"
    clashing.mkdir()
    (clashing / "Dockerfile").write_text("FROM scratch\n")
    (clashing / "rasterkit.py").write_text("")
    with pytest.raises(ValueError, match="clashes with the shared rasterkit.py"):
        build_context(clashing)


# --- Landsat Collection 2 Level-2 surface temperature -------------------------------------------

UTM33 = "EPSG:32633"
LANDSAT_ID = "LC09_L2SP_190026_20240715_20240716_02_T1"
ST_SCALE, ST_OFFSET = 0.00341802, 149.0
# QA_PIXEL values as USGS writes them (bits: 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud,
# 4 cloud shadow, 5 snow, 6 clear, 7 water; 8-15 confidences).
QA_CLEAR, QA_WATER, QA_SNOW = 21824, 21952, 30048
QA_FILL, QA_DILATED, QA_CIRRUS, QA_CLOUD, QA_SHADOW = 1, 21826, 54596, 22280, 23888
LANDSAT_VALUES = {
    "lst": {"scale": ST_SCALE, "offset": ST_OFFSET, "nodata": 0},
    "qa": {"scale": None, "offset": None, "nodata": 1},
}


class LandsatCase:
    """A Landsat Collection 2 Level-2 window (UTM 33N, 30 m): ST_B10 as the lst asset, QA_PIXEL
    as qa; imperviousness at 10 m on the same origin, constant over each 30 m pixel."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.x0, self.y0 = snapped_origin(UTM33, 16.37, 48.21, 300)

    def roi(self, corners: list[tuple[float, float]]) -> dict[str, Any]:
        return lonlat_polygon(UTM33, [(self.x0 + c * 30, self.y0 - r * 30) for c, r in corners])

    def write(self, name: str, data: np.ndarray, step: float, nodata: float) -> Path:
        return write_raster(
            self.dir / f"{name}.tif",
            data,
            crs=UTM33,
            transform=from_origin(self.x0, self.y0, step, step),
            nodata=nodata,
        )

    def job(
        self,
        roi: dict[str, Any],
        *,
        st: Path,
        qa: Path | None,
        imd: Path,
        collection: str | None = "landsat-c2-l2",
        params: dict[str, Any] | None = None,
        **described: Any,
    ) -> tuple[dict[str, Any], dict[str, Path]]:
        files = {"inputs/lst/lst.tif": st, "inputs/imperviousness/imd.tif": imd}
        assets = {"lst": "inputs/lst/lst.tif"}
        if qa is not None:
            files["inputs/lst/qa.tif"] = qa
            assets["qa"] = "inputs/lst/qa.tif"
        inputs = {
            "lst": [product(collection, LANDSAT_ID, assets, **described)],
            "imperviousness": [
                product(
                    "hrl-imperviousness", "IMD_2018_TEST", {"imd": "inputs/imperviousness/imd.tif"}
                )
            ],
        }
        return job_document("suhi", roi, inputs, {**DEFAULTS, **(params or {})}), files


def landsat_scene(case: LandsatCase) -> tuple[np.ndarray, np.ndarray, np.ndarray, Path, Path, Path]:
    """ST_B10 digital numbers of 295 to 305 K (urban columns 5 K warmer), one nodata pixel;
    QA_PIXEL with a patch of every flag; imperviousness 80 % west of column 8, 40 % in columns 8
    to 11, 5 % east of them. Returns DN, QA, imperviousness per 30 m pixel and the three files."""
    rng = np.random.default_rng(3)
    cols = np.mgrid[0:SIZE, 0:SIZE][1]
    kelvin = 295 + 5 * (cols < 8) + 5 * rng.random((SIZE, SIZE))
    dn = np.round((kelvin - ST_OFFSET) / ST_SCALE).astype("uint16")
    dn[6, 6] = 0  # nodata
    qa = np.full((SIZE, SIZE), QA_CLEAR, dtype="uint16")
    qa[3, 3:6] = QA_FILL
    qa[4, 3:6] = QA_DILATED
    qa[5, 3:6] = QA_CIRRUS
    qa[6:8, 12:15] = QA_CLOUD
    qa[8, 12:15] = QA_SHADOW
    qa[9, 3:6] = QA_SNOW  # kept: snow is a surface
    qa[10, 3:6] = QA_WATER  # kept
    imd = np.where(cols < 8, 80, np.where(cols < 12, 40, 5)).astype("uint8")
    fine = np.repeat(np.repeat(imd, 3, axis=0), 3, axis=1)
    return (
        dn,
        qa,
        imd.astype("float64"),
        case.write("st_b10", dn, 30, 0),
        case.write("qa_pixel", qa, 30, 1),
        case.write("imd", fine, 10, 255),
    )


def landsat_by_hand(
    dn: np.ndarray, qa: np.ndarray, imd: np.ndarray, inside: np.ndarray
) -> dict[str, Any]:
    kelvin = np.where(dn != 0, dn.astype("float64") * ST_SCALE + ST_OFFSET, np.nan)
    flagged = (qa & 0b11111) != 0  # fill, dilated cloud, cirrus, cloud, cloud shadow
    valid = inside & ~flagged & np.isfinite(kelvin)
    urban, rural = valid & (imd >= 50), valid & (imd <= 10)
    mean_rural = kelvin[rural].mean()
    region = int(inside.sum())
    return {
        "mean_urban_lst_k": kelvin[urban].mean(),
        "mean_rural_lst_k": mean_rural,
        "mean_urban_lst_c": kelvin[urban].mean() - 273.15,
        "mean_rural_lst_c": mean_rural - 273.15,
        "mean_urban_intensity_k": kelvin[urban].mean() - mean_rural,
        "max_urban_intensity_k": kelvin[urban].max() - mean_rural,
        "urban_pixels": int(urban.sum()),
        "rural_pixels": int(rural.sum()),
        "valid_pixels": int(valid.sum()),
        "region_pixels": region,
        "masked_pixels": region - int(valid.sum()),
        "masked_share": (region - valid.sum()) / region,
    }


SQUARE = [(1, 1), (19, 1), (19, 19), (1, 19)]


def square_inside() -> np.ndarray:
    inside = np.zeros((SIZE, SIZE), dtype=bool)
    inside[1:19, 1:19] = True
    return inside


def test_landsat_surface_temperature_with_clouds_masked_by_its_qa_band(
    app_engine, suhi_image, tmp_path
) -> None:
    case = LandsatCase(tmp_path)
    dn, qa, imd, st, qa_path, imd_path = landsat_scene(case)
    job, files = case.job(
        case.roi(SQUARE),
        st=st,
        qa=qa_path,
        imd=imd_path,
        values=LANDSAT_VALUES,
        properties={"landsat:collection_number": "02", "platform": "landsat-9"},
        source="planetary-computer",
        cloud_cover=3.2,
    )
    out = tmp_path / "out"
    out.mkdir()

    run = run_app(app_engine, suhi_image, "suhi", job=job, files=files, out_dir=out)

    assert run.exit_code == 0, run.stderr
    stats = json.loads(run.outputs["statistics.json"].read_text())
    assert_statistics(stats, landsat_by_hand(dn, qa, imd, square_inside()))
    assert (stats["lst_source"], stats["lst_collection"]) == ("landsat", "landsat-c2-l2")
    assert (stats["source"], stats["cloud_cover"]) == ("planetary-computer", 3.2)
    # 18 x 18 pixels in the square: 3 fill, 3 dilated, 3 cirrus, 6 cloud, 3 shadow and the
    # nodata pixel masked; snow and water kept.
    assert stats["masked"] == {
        "outside_the_product": 0,
        "fill": 3,
        "cloud": 6,
        "dilated_cloud": 3,
        "cirrus": 3,
        "cloud_shadow": 3,
        "no_temperature": 1,
        "no_imperviousness": 0,
    }
    assert stats["valid_pixels"] == 18 * 18 - 19
    assert stats["masked_share"] == pytest.approx(19 / 324)
    assert stats["lst_values"] == {
        "scale": ST_SCALE,
        "offset": ST_OFFSET,
        "nodata": 0,
        "from": {"scale": "description", "offset": "description", "nodata": "description"},
    }
    assert stats["crs"] == "EPSG:32633" and stats["pixel_size"] == [30.0, 30.0]
    assert stats["inputs"]["lst"] == LANDSAT_ID
    # The map: LST minus the mean rural LST, in kelvin, NaN where masked.
    with rasterio.open(run.outputs["suhi_intensity.tif"]) as src:
        assert src.transform.a == 30 and src.crs.to_epsg() == 32633
        col = round((src.transform.c - case.x0) / 30)
        row = round((case.y0 - src.transform.f) / 30)
        data = src.read(1)
        found = np.full((SIZE, SIZE), np.nan)
        found[row : row + data.shape[0], col : col + data.shape[1]] = np.where(
            data == src.nodata, np.nan, data
        )
    kelvin = np.where(dn != 0, dn * ST_SCALE + ST_OFFSET, np.nan)
    valid = square_inside() & ((qa & 0b11111) == 0) & np.isfinite(kelvin)
    expected = np.where(valid, kelvin - stats["mean_rural_lst_k"], np.nan)
    assert np.array_equal(np.isnan(found), np.isnan(expected))
    np.testing.assert_allclose(found[valid], expected[valid], atol=1e-4)
    assert_cog(run.outputs["suhi_intensity.tif"])


def test_landsat_without_a_description_uses_collection_2_scaling(
    app_engine, suhi_image, tmp_path
) -> None:
    """As `cure apps try` stages it: no collection, no values; the qa asset says Landsat."""
    case = LandsatCase(tmp_path)
    dn, qa, imd, st, qa_path, imd_path = landsat_scene(case)
    job, files = case.job(case.roi(SQUARE), st=st, qa=qa_path, imd=imd_path, collection=None)
    out = tmp_path / "out"
    out.mkdir()

    run = run_app(app_engine, suhi_image, "suhi", job=job, files=files, out_dir=out)

    assert run.exit_code == 0, run.stderr
    stats = json.loads(run.outputs["statistics.json"].read_text())
    assert_statistics(stats, landsat_by_hand(dn, qa, imd, square_inside()))
    assert stats["lst_source"] == "landsat"
    assert stats["lst_values"]["from"] == {
        "scale": "Landsat Collection 2 Level-2 surface temperature",
        "offset": "Landsat Collection 2 Level-2 surface temperature",
        "nodata": "raster",
    }


def test_a_cloudy_landsat_scene_makes_the_order_invalid(app_engine, suhi_image, tmp_path) -> None:
    case = LandsatCase(tmp_path)
    dn, qa, _, st, _, imd_path = landsat_scene(case)
    cloudy = np.full((SIZE, SIZE), QA_CLOUD, dtype="uint16")
    cloudy[15:19, 1:19] = QA_CLEAR  # 4 rows of 18 clear: 72 of 324 pixels, 22 %
    qa_path = case.write("cloudy_qa", cloudy, 30, 1)
    out = tmp_path / "out"
    out.mkdir()

    job, files = case.job(
        case.roi(SQUARE), st=st, qa=qa_path, imd=imd_path, params={"min_valid_share": 0.25}
    )
    run = run_app(app_engine, suhi_image, "suhi", job=job, files=files, out_dir=out)
    assert run.exit_code == 3
    assert run.reason == (
        "only 72 of the region's 324 pixels (22.2%) have a land surface temperature and an"
        " imperviousness, fewer than min_valid_share (25%); masked: 252 cloud"
    )
    assert run.outputs == {}

    # The default share (20 %) takes it.
    job, files = case.job(case.roi(SQUARE), st=st, qa=qa_path, imd=imd_path)
    run = run_app(app_engine, suhi_image, "suhi", job=job, files=files, out_dir=out)
    assert run.exit_code == 0, run.stderr
    stats = json.loads(run.outputs["statistics.json"].read_text())
    assert (stats["valid_pixels"], stats["masked"]["cloud"]) == (72, 252)
    assert stats["masked_share"] == pytest.approx(252 / 324)


def test_the_lst_source_must_match_the_staged_product(app_engine, suhi_image, tmp_path) -> None:
    case = LandsatCase(tmp_path)
    _, _, _, st, qa_path, imd_path = landsat_scene(case)
    out = tmp_path / "out"
    out.mkdir()

    job, files = case.job(
        case.roi(SQUARE), st=st, qa=qa_path, imd=imd_path, params={"lst_source": "slstr"}
    )
    run = run_app(app_engine, suhi_image, "suhi", job=job, files=files, out_dir=out)
    assert run.exit_code == 3
    assert (
        run.reason
        == f"lst_source is slstr but the land surface temperature product {LANDSAT_ID} is landsat"
    )

    job, files = case.job(case.roi(SQUARE), st=st, qa=None, imd=imd_path)
    run = run_app(app_engine, suhi_image, "suhi", job=job, files=files, out_dir=out)
    assert run.exit_code == 3
    assert run.reason == f"the lst product {LANDSAT_ID} has no 'qa' asset"
    assert run.outputs == {}
