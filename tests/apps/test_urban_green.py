"""The urban_green app in its real image on the real Docker engine, on Sentinel-2 L2A inputs in
the catalogues' layout (B04 and B08 digital numbers at 10 m, SCL at 20 m) whose NDVI is known."""

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
SIZE = 30  # red pixels a side, 10 m each; the SCL has 15 a side at 20 m
RED = "inputs/reflectance/red.tif"
NIR = "inputs/reflectance/nir.tif"
SCL = "inputs/reflectance/scl.tif"
IDENTIFIER = "S2B_MSIL2A_20240715T100559_N0510_R022_T33UXP_TEST"
# A triangle on red pixel corners (col, row); no pixel centre lies on its long edge.
TRIANGLE = [(2, 2), (28, 2), (2, 27)]
# What the app masks by default: no data, saturated or defective, cloud shadows, cloud medium
# and high probability, thin cirrus, snow.
MASKED_CLASSES = {
    0: "no_data",
    1: "saturated_or_defective",
    3: "cloud_shadows",
    8: "cloud_medium_probability",
    9: "cloud_high_probability",
    10: "thin_cirrus",
    11: "snow_or_ice",
}
S2_VALUES = {"scale": 0.0001, "offset": -0.1, "nodata": 0}


def triangle_inside() -> np.ndarray:
    rows, cols = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    return (cols > 2) & (rows > 2) & ((cols - 2) / 26 + (rows - 2) / 25 < 1)


class Case:
    """A Sentinel-2 L2A window over Vienna: B04 and B08 at 10 m, SCL at 20 m, one origin."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.x0, self.y0 = snapped_origin(UTM33, 16.37, 48.21, 100)
        self.transform = from_origin(self.x0, self.y0, 10, 10)

    def roi(self, corners: list[tuple[float, float]]) -> dict[str, Any]:
        points = [(self.x0 + c * 10, self.y0 - r * 10) for c, r in corners]
        return lonlat_polygon(UTM33, points)

    def band(self, name: str, dn: np.ndarray, *, tagged: tuple[float, float] | None) -> Path:
        """uint16 digital numbers, nodata 0; with a scale/offset in the GeoTIFF when tagged."""
        scale, offset = tagged if tagged is not None else (None, None)
        return write_raster(
            self.dir / f"{name}.tif",
            dn.astype("uint16"),
            crs=UTM33,
            transform=self.transform,
            nodata=0,
            scale=scale,
            offset=offset,
        )

    def scl(self, classes: np.ndarray) -> Path:
        return write_raster(
            self.dir / "scl.tif",
            classes.astype("uint8"),
            crs=UTM33,
            transform=from_origin(self.x0, self.y0, 20, 20),
            nodata=0,
        )

    def job(
        self,
        roi: dict[str, Any],
        *,
        red: Path,
        nir: Path | None,
        scl: Path | None,
        params: dict[str, Any] | None = None,
        **described: Any,
    ) -> tuple[dict[str, Any], dict[str, Path]]:
        files = {RED: red}
        assets = {"red": RED}
        for key, name, path in (("nir", NIR, nir), ("scl", SCL, scl)):
            if path is not None:
                files[name] = path
                assets[key] = name
        inputs = {"reflectance": [product("sentinel2-l2a", IDENTIFIER, assets, **described)]}
        job = job_document("urban_green", roi, inputs, {"green_threshold": 0.4, **(params or {})})
        return job, files


def known_bands(rng_seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """Digital numbers of reflectance 0.02 to 0.52 (with the -0.1 offset), one red nodata
    pixel, one near-infrared number below the offset (a negative reflectance) and one pixel
    whose red and near-infrared reflectance are both 0."""
    rng = np.random.default_rng(rng_seed)
    red = (1200 + 2000 * rng.random((SIZE, SIZE))).astype("uint16")
    nir = (1200 + 5000 * rng.random((SIZE, SIZE))).astype("uint16")
    red[20, 4] = 0  # nodata
    nir[21, 4] = 500  # -0.05 reflectance: not a valid value
    red[22, 4], nir[22, 4] = 1000, 1000  # both 0: NDVI undefined
    return red, nir


def known_scene_classes() -> np.ndarray:
    """Vegetation and bare ground, with a patch of every class inside the triangle."""
    scl = np.full((SIZE // 2, SIZE // 2), 4, dtype="uint8")  # vegetation
    scl[:, 8:] = 5  # not vegetated
    scl[2, 2], scl[2, 3], scl[2, 4] = 0, 1, 3  # no data, saturated, cloud shadow
    scl[3, 2:5] = 8  # cloud, medium probability
    scl[4, 2:5] = 9  # cloud, high probability
    scl[5, 2:4] = 10  # thin cirrus
    scl[6, 2] = 11  # snow
    scl[6, 3], scl[6, 4], scl[7, 2] = 6, 2, 7  # water, dark area, unclassified: all kept
    return scl


def by_hand(
    red_dn: np.ndarray,
    nir_dn: np.ndarray,
    scl: np.ndarray,
    inside: np.ndarray,
    *,
    offset: float,
    masked_classes: set[int] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """NDVI (NaN where masked or undefined) and the statistics, from the same numbers."""
    masked_classes = set(MASKED_CLASSES) if masked_classes is None else masked_classes
    scl10 = np.repeat(np.repeat(scl, 2, axis=0), 2, axis=1)  # 20 m onto 10 m, nearest
    red = red_dn.astype("float64") * 1e-4 + offset
    nir = nir_dn.astype("float64") * 1e-4 + offset
    clear = inside & ~np.isin(scl10, list(masked_classes))
    has_values = (red_dn != 0) & (nir_dn != 0) & (red >= 0) & (nir >= 0) & (red <= 2) & (nir <= 2)
    valid = clear & has_values & (red + nir > 0)
    with np.errstate(all="ignore"):
        ndvi = np.where(valid, (nir - red) / (nir + red), np.nan)
    green = valid & (ndvi > 0.4)
    masked = {"outside_the_product": 0}
    for code, name in MASKED_CLASSES.items():
        if code in masked_classes:
            masked[name] = int((inside & (scl10 == code)).sum())
    masked["no_reflectance"] = int((clear & ~valid).sum())
    region = int(inside.sum())
    stats = {
        "mean_ndvi": float(np.nanmean(ndvi)),
        "green_share": green.sum() / valid.sum(),
        "valid_pixels": int(valid.sum()),
        "green_pixels": int(green.sum()),
        "region_pixels": region,
        "masked_pixels": region - int(valid.sum()),
        "masked_share": (region - valid.sum()) / region,
        "masked": masked,
    }
    return ndvi, stats


def read_on_red_grid(path: Path, case: Case) -> tuple[np.ndarray, rasterio.profiles.Profile]:
    with rasterio.open(path) as src:
        profile = src.profile
        data = src.read(1)
    transform = profile["transform"]
    assert (transform.a, transform.b, transform.d, transform.e) == (10, 0, 0, -10)
    col_off, row_off = (transform.c - case.x0) / 10, (case.y0 - transform.f) / 10
    assert col_off == round(col_off) and row_off == round(row_off), "not on the red pixel grid"
    col_off, row_off = round(col_off), round(row_off)
    assert col_off >= 0 and row_off >= 0
    assert row_off + data.shape[0] <= SIZE and col_off + data.shape[1] <= SIZE
    full = np.full((SIZE, SIZE), np.nan)
    full[row_off : row_off + data.shape[0], col_off : col_off + data.shape[1]] = np.where(
        data == profile["nodata"], np.nan, data
    )
    return full, profile


def assert_statistics(found: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        if isinstance(value, int | dict):
            assert found[key] == value, key
        else:
            assert found[key] == pytest.approx(value, abs=1e-6), key


def assert_ndvi(found: np.ndarray, expected: np.ndarray) -> None:
    assert np.array_equal(np.isnan(found), np.isnan(expected))
    np.testing.assert_allclose(found[~np.isnan(found)], expected[~np.isnan(expected)], atol=1e-6)


def test_ndvi_masks_clouds_shadows_cirrus_and_no_data_by_the_scene_classification(
    app_engine, urban_green_image, tmp_path
) -> None:
    """Bands without metadata of their own, the scale and offset in the input description (as
    a STAC item's raster:bands gives them)."""
    case = Case(tmp_path)
    red_dn, nir_dn = known_bands()
    scl = known_scene_classes()
    job, files = case.job(
        case.roi(TRIANGLE),
        red=case.band("red", red_dn, tagged=None),
        nir=case.band("nir", nir_dn, tagged=None),
        scl=case.scl(scl),
        values={"red": S2_VALUES, "nir": S2_VALUES},
        properties={"s2:processing_baseline": "05.10"},
        source="earth-search",
        cloud_cover=12.5,
    )
    out = tmp_path / "out"
    out.mkdir()

    run = run_app(app_engine, urban_green_image, "urban_green", job=job, files=files, out_dir=out)

    assert run.exit_code == 0, run.stderr
    assert sorted(run.outputs) == ["ndvi.tif", "statistics.json"]
    progress = run.progress()
    assert progress == sorted(progress) and progress[-1] == 100 and len(progress) >= 4
    expected, expected_stats = by_hand(red_dn, nir_dn, scl, triangle_inside(), offset=-0.1)
    found, profile = read_on_red_grid(run.outputs["ndvi.tif"], case)
    assert profile["crs"].to_epsg() == 32633
    assert (profile["dtype"], profile["nodata"]) == ("float32", -9999.0)
    assert_ndvi(found, expected)
    # Every masked class is NaN over its 20 m cell; the kept ones (water, dark, unclassified) not.
    assert np.isnan(found[4:6, 4:10]).all()  # no data, saturated, cloud shadow
    assert np.isnan(found[6:10, 4:10]).all()  # cloud, medium and high probability
    assert np.isnan(found[10:12, 4:8]).all() and np.isnan(found[12:14, 4:6]).all()  # cirrus, snow
    assert not np.isnan(found[12:14, 6:10]).any() and not np.isnan(found[14:16, 4:6]).any()
    assert np.isnan(found[20:23, 4]).all()  # nodata, negative reflectance, 0 / 0
    assert_cog(run.outputs["ndvi.tif"])

    stats = json.loads(run.outputs["statistics.json"].read_text())
    assert_statistics(stats, expected_stats)
    # The known answer by hand: 325 pixel centres in the triangle; 4 pixels per masked 20 m
    # cell (1 no data, 1 saturated, 1 shadow, 3 + 3 cloud, 2 cirrus, 1 snow), 3 without values.
    assert stats["region_pixels"] == 25 * 26 // 2
    assert stats["masked"] == {
        "outside_the_product": 0,
        "no_data": 4,
        "saturated_or_defective": 4,
        "cloud_shadows": 4,
        "cloud_medium_probability": 12,
        "cloud_high_probability": 12,
        "thin_cirrus": 8,
        "snow_or_ice": 4,
        "no_reflectance": 3,
    }
    assert stats["valid_pixels"] == 325 - 48 - 3
    assert stats["masked_share"] == pytest.approx(51 / 325)
    assert stats["masked_scene_classes"] == [0, 1, 3, 8, 9, 10, 11]
    assert stats["reflectance"]["red"] == {
        "scale": 0.0001,
        "offset": -0.1,
        "nodata": 0,
        "from": {"scale": "description", "offset": "description", "nodata": "description"},
    }
    assert (stats["source"], stats["cloud_cover"]) == ("earth-search", 12.5)
    assert stats["order_id"] == job["order_id"]
    assert stats["inputs"] == {"reflectance": IDENTIFIER}


@pytest.mark.parametrize(
    ("tagged", "described", "offset", "offset_from"),
    [
        # The GeoTIFFs' own scale and offset, nothing in the description.
        ((1e-4, -0.1), {}, -0.1, "raster"),
        # Only the processing baseline: from 04.00 the offset is -0.1 ...
        (None, {"properties": {"s2:processing_baseline": "05.10"}}, -0.1, "processing baseline"),
        # ... and before 04.00 there is none.
        (None, {"properties": {"s2:processing_baseline": "03.01"}}, 0.0, "processing baseline"),
        # A description's offset wins over the baseline's.
        (
            None,
            {
                "values": {"red": {"offset": 0}, "nir": {"offset": 0}},
                "properties": {"s2:processing_baseline": "05.10"},
            },
            0.0,
            "description",
        ),
    ],
)
def test_scale_and_offset_come_from_the_description_the_raster_or_the_baseline(
    app_engine, urban_green_image, tmp_path, tagged, described, offset, offset_from
) -> None:
    case = Case(tmp_path)
    red_dn, nir_dn = known_bands(rng_seed=5)
    scl = np.full((SIZE // 2, SIZE // 2), 4, dtype="uint8")
    job, files = case.job(
        case.roi(TRIANGLE),
        red=case.band("red", red_dn, tagged=tagged),
        nir=case.band("nir", nir_dn, tagged=tagged),
        scl=case.scl(scl),
        **described,
    )
    out = tmp_path / "out"
    out.mkdir()

    run = run_app(app_engine, urban_green_image, "urban_green", job=job, files=files, out_dir=out)

    assert run.exit_code == 0, run.stderr
    expected, expected_stats = by_hand(red_dn, nir_dn, scl, triangle_inside(), offset=offset)
    found, _ = read_on_red_grid(run.outputs["ndvi.tif"], case)
    assert_ndvi(found, expected)
    stats = json.loads(run.outputs["statistics.json"].read_text())
    assert_statistics(stats, expected_stats)
    values = stats["reflectance"]["nir"]
    assert (values["scale"], values["offset"], values["nodata"]) == (1e-4, offset, 0)
    assert values["from"]["offset"].startswith(offset_from)
    if offset == 0.0:  # without the offset the near-infrared number 500 is a valid 0.05
        assert not np.isnan(found[21, 4])


def test_an_scl_window_off_the_red_window_by_one_pixel(
    app_engine, urban_green_image, tmp_path
) -> None:
    """Windows cut from a tile's COGs start where each band's own pixels do: here the SCL's
    starts one 10 m pixel west and north of the red band's, so red pixel (row, col) lies in SCL
    cell ((row + 1) // 2, (col + 1) // 2)."""
    case = Case(tmp_path)
    red_dn, nir_dn = known_bands()
    scl = np.full((SIZE // 2 + 1, SIZE // 2 + 1), 4, dtype="uint8")
    scl[3, 3] = 9  # red rows 5-6, columns 5-6
    scl[5, 2:4] = 3  # red rows 9-10, columns 3-6
    scl_path = write_raster(
        tmp_path / "scl.tif",
        scl,
        crs=UTM33,
        transform=from_origin(case.x0 - 10, case.y0 + 10, 20, 20),
        nodata=0,
    )
    job, files = case.job(
        case.roi(TRIANGLE),
        red=case.band("red", red_dn, tagged=(1e-4, -0.1)),
        nir=case.band("nir", nir_dn, tagged=(1e-4, -0.1)),
        scl=scl_path,
    )
    out = tmp_path / "out"
    out.mkdir()

    run = run_app(app_engine, urban_green_image, "urban_green", job=job, files=files, out_dir=out)

    assert run.exit_code == 0, run.stderr
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    scl10 = scl[(rows + 1) // 2, (cols + 1) // 2]
    cloud, shadow = scl10 == 9, scl10 == 3
    assert (cloud.sum(), shadow.sum()) == (4, 8)
    assert cloud[5:7, 5:7].all() and shadow[9:11, 3:7].all()
    found, _ = read_on_red_grid(run.outputs["ndvi.tif"], case)
    inside = triangle_inside()
    assert np.isnan(found[cloud | shadow]).all()
    stats = json.loads(run.outputs["statistics.json"].read_text())
    assert stats["masked"]["cloud_high_probability"] == int((inside & cloud).sum()) == 4
    assert stats["masked"]["cloud_shadows"] == int((inside & shadow).sum()) == 8
    assert stats["valid_pixels"] == 325 - 12 - 3


def test_command_line_overrides_params(app_engine, urban_green_image, tmp_path) -> None:
    """--green_threshold 0.2 and --mask_snow false: snow counts as a surface."""
    case = Case(tmp_path)
    red_dn, nir_dn = known_bands()
    scl = known_scene_classes()
    job, files = case.job(
        case.roi(TRIANGLE),
        red=case.band("red", red_dn, tagged=(1e-4, -0.1)),
        nir=case.band("nir", nir_dn, tagged=(1e-4, -0.1)),
        scl=case.scl(scl),
        params={"green_threshold": 0.4},
    )
    out = tmp_path / "out"
    out.mkdir()

    run = run_app(
        app_engine,
        urban_green_image,
        "urban_green",
        job=job,
        files=files,
        out_dir=out,
        args=["--green_threshold", "0.2", "--mask_snow=false"],
    )

    assert run.exit_code == 0, run.stderr
    stats = json.loads(run.outputs["statistics.json"].read_text())
    ndvi, _ = by_hand(
        red_dn, nir_dn, scl, triangle_inside(), offset=-0.1, masked_classes={0, 1, 3, 8, 9, 10}
    )
    valid = ~np.isnan(ndvi)
    assert stats["valid_pixels"] == int(valid.sum()) == 325 - 44 - 3
    assert stats["green_pixels"] == int((ndvi[valid] > 0.2).sum())
    assert stats["mean_ndvi"] == pytest.approx(ndvi[valid].mean(), abs=1e-6)
    assert stats["green_threshold"] == 0.2
    assert "snow_or_ice" not in stats["masked"] and 11 not in stats["masked_scene_classes"]


def test_too_few_clear_pixels_make_the_order_invalid(
    app_engine, urban_green_image, tmp_path
) -> None:
    case = Case(tmp_path)
    red_dn, nir_dn = known_bands()
    red, nir = case.band("red", red_dn, tagged=None), case.band("nir", nir_dn, tagged=None)
    out = tmp_path / "out"
    out.mkdir()

    # Clouds over all but the south-west corner of the triangle: 22 of its 325 pixels are
    # clear, and one of those (red nodata) has no reflectance. Without a baseline or values
    # there is no offset, so the other two special pixels are valid.
    scl = np.full((SIZE // 2, SIZE // 2), 9, dtype="uint8")
    scl[10:, :3] = 4
    job, files = case.job(case.roi(TRIANGLE), red=red, nir=nir, scl=case.scl(scl))
    run = run_app(app_engine, urban_green_image, "urban_green", job=job, files=files, out_dir=out)
    assert int(triangle_inside()[20:, :6].sum()) == 22
    assert run.exit_code == 3, run.stdout
    assert run.reason == (
        "only 21 of the region's 325 pixels (6.5%) are clear and valid, fewer than"
        " min_valid_share (20%); masked: 303 cloud high probability, 1 no reflectance"
    )
    assert run.outputs == {}

    # The same order accepts what little is clear when asked to.
    run = run_app(
        app_engine,
        urban_green_image,
        "urban_green",
        job=job,
        files=files,
        out_dir=out,
        args=["--min_valid_share", "0.05"],
    )
    assert run.exit_code == 0, run.stderr
    stats = json.loads(run.outputs["statistics.json"].read_text())
    assert (stats["valid_pixels"], stats["masked_pixels"]) == (21, 304)
    assert stats["masked"]["cloud_high_probability"] == 303

    # A region half beyond the product's east edge: the part outside counts as masked.
    job, files = case.job(
        case.roi([(20, 0), (40, 0), (40, 10), (20, 10)]),
        red=red,
        nir=nir,
        scl=case.scl(np.full((SIZE // 2, SIZE // 2), 4, dtype="uint8")),
        params={"min_valid_share": 0.6},
    )
    run = run_app(app_engine, urban_green_image, "urban_green", job=job, files=files, out_dir=out)
    assert run.exit_code == 3
    assert run.reason == (
        "only 100 of the region's 200 pixels (50.0%) are clear and valid, fewer than"
        " min_valid_share (60%); masked: 100 outside the product"
    )


def test_inputs_missing_or_elsewhere_exit_3_with_a_reason(
    app_engine, urban_green_image, tmp_path
) -> None:
    case = Case(tmp_path)
    red_dn, nir_dn = known_bands()
    red, nir = case.band("red", red_dn, tagged=None), case.band("nir", nir_dn, tagged=None)
    scl = case.scl(known_scene_classes())
    out = tmp_path / "out"
    out.mkdir()

    for missing, kwargs in (("nir", {"nir": None, "scl": scl}), ("scl", {"nir": nir, "scl": None})):
        job, files = case.job(case.roi(TRIANGLE), red=red, **kwargs)
        run = run_app(
            app_engine, urban_green_image, "urban_green", job=job, files=files, out_dir=out
        )
        assert run.exit_code == 3
        assert run.reason == f"the reflectance product {IDENTIFIER} has no '{missing}' asset"

    berlin = {
        "type": "Polygon",
        "coordinates": [[[13.3, 52.4], [13.5, 52.4], [13.5, 52.6], [13.3, 52.6], [13.3, 52.4]]],
    }
    job, files = case.job(berlin, red=red, nir=nir, scl=scl)
    run = run_app(app_engine, urban_green_image, "urban_green", job=job, files=files, out_dir=out)
    assert run.exit_code == 3
    assert run.reason == "the red reflectance raster does not overlap the region of interest"
    assert run.outputs == {}


def test_nir_in_another_crs_and_resolution(app_engine, urban_green_image, tmp_path) -> None:
    """Red as digital numbers without scale or baseline (so 1/10000 and no offset); nir as
    float reflectance in EPSG:3035 at 5 m. Vegetation west of red column 10, buildings east of
    it. The region is a MultiPolygon."""
    case = Case(tmp_path)
    cols = np.mgrid[0:SIZE, 0:SIZE][1]
    red_path = case.band("red", np.where(cols < 10, 400, 1200), tagged=None)
    boundary = case.x0 + 10 * 10
    west, south, east, north = rasterio.warp.transform_bounds(
        UTM33, "EPSG:3035", case.x0 - 50, case.y0 - 350, case.x0 + 350, case.y0 + 50
    )
    x0, y0 = np.floor(west / 5) * 5, np.ceil(north / 5) * 5
    width, height = int((east - x0) / 5) + 1, int((y0 - south) / 5) + 1
    xs, ys = np.meshgrid(x0 + (np.arange(width) + 0.5) * 5, y0 - (np.arange(height) + 0.5) * 5)
    utm_x, _ = transform_points("EPSG:3035", UTM33, xs.ravel(), ys.ravel())
    nir = np.where(np.reshape(utm_x, xs.shape) < boundary, 0.40, 0.16).astype("float32")
    nir_path = write_raster(
        tmp_path / "nir.tif", nir, crs="EPSG:3035", transform=from_origin(x0, y0, 5, 5)
    )
    # Two parts, either side of a two-pixel gap (columns 14 and 15).
    west_part = case.roi([(1, 1), (14, 1), (14, 29), (1, 29)])["coordinates"]
    east_part = case.roi([(16, 1), (29, 1), (29, 29), (16, 29)])["coordinates"]
    roi = {"type": "MultiPolygon", "coordinates": [west_part, east_part]}
    scl = case.scl(np.full((SIZE // 2, SIZE // 2), 5, dtype="uint8"))
    job, files = case.job(roi, red=red_path, nir=nir_path, scl=scl)
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
    assert stats["valid_pixels"] == stats["region_pixels"] == 28 * 26
    assert stats["masked_share"] == 0
    assert 8 * 28 <= stats["green_pixels"] <= 10 * 28
    assert stats["mean_ndvi"] == pytest.approx(np.nanmean(found), abs=1e-5)
    assert stats["reflectance"]["red"]["from"]["offset"] == "no processing baseline given"
    assert_cog(run.outputs["ndvi.tif"])


def test_a_demo_city_is_greener_at_its_edge(app_engine, urban_green_image, tmp_path) -> None:
    """The demo's Sentinel-2 product, in the catalogues' layout, through the app."""
    from cure.demo.rasters import city_by_name, generate

    berlin = city_by_name("Berlin")
    products = generate(tmp_path / "demo", [berlin], [date(2024, 6, 21)])
    s2 = next(p for p in products if p.collection == "sentinel2-l2a")
    files = {RED: s2.assets["red"], NIR: s2.assets["nir"], SCL: s2.assets["scl"]}
    assets = {"red": RED, "nir": NIR, "scl": SCL}
    inputs = {
        "reflectance": [
            product(s2.collection, s2.identifier, assets, properties=dict(s2.properties))
        ]
    }
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
    assert core["pixel_size"] == [10.0, 10.0]
    assert -1 <= core["mean_ndvi"] < whole["mean_ndvi"] <= 1
    assert core["green_share"] < whole["green_share"]
    assert whole["valid_pixels"] > 10 * core["valid_pixels"]
    # The demo's clouds are masked, and its scale and offset are the raster's own.
    assert 0 < whole["masked_share"] < 0.5
    assert whole["masked"]["cloud_high_probability"] > 0
    assert whole["reflectance"]["red"]["offset"] == pytest.approx(-0.1)
