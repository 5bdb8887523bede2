"""The heat exposure app: its stages on small arrays whose answers are known by hand (loaded from
cure/apps/heat_exposure/app.py, as the image runs them), the sum-conserving move of a population
grid onto another grid, and the app in its real image on the real Docker engine."""

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.warp import transform as transform_points
from rasterio.warp import transform_bounds

from tests.apps.conftest import (
    APPS_DIR,
    assert_cog,
    job_document,
    lonlat_polygon,
    product,
    run_app,
    snapped_origin,
    write_raster,
)

LAEA = "EPSG:3035"
MOLLWEIDE = "ESRI:54009"
NAN = float("nan")


def _load_app() -> ModuleType:
    """app.py as the image holds it: next to rasterkit.py, imported by its plain name."""
    shared = str(APPS_DIR / "_shared")
    if shared not in sys.path:
        sys.path.insert(0, shared)
    spec = importlib.util.spec_from_file_location(
        "heat_exposure_app", APPS_DIR / "heat_exposure" / "app.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


app = _load_app()
rk = sys.modules["rasterkit"]

# The SUHI map (kelvin) and the residents of each of its 100 m pixels, by hand.
INTENSITY = np.array(
    [
        [-1.0, 0.5, 2.0, 3.0],
        [4.0, 5.0, NAN, 1.0],
        [2.5, 4.5, 0.0, 6.0],
    ]
)
PERSONS = np.array(
    [
        [10.0, 20.0, 30.0, 40.0],
        [50.0, 60.0, 70.0, 80.0],
        [5.0, 0.0, 15.0, 25.0],
    ]
)
VALID = np.isfinite(INTENSITY)
# Persons where the intensity is at or above 2 K: 30 + 40 + 50 + 60 + 5 + 0 + 25; at or above
# 4 K: 50 + 60 + 0 + 25; of the 335 persons of the pixels with an intensity (70 have none).
AT_2K, AT_4K, TOTAL = 210.0, 135.0, 335.0
# Sum of persons x intensity: -10 + 10 + 60 + 120 + 200 + 300 + 80 + 12.5 + 0 + 0 + 150.
WEIGHTED_SUM = 922.5


def grid_at(crs: str, transform: Affine, height: int, width: int) -> Any:
    return rk.Grid(crs=CRS.from_user_input(crs), transform=transform, width=width, height=height)


# --- the stages, by hand --------------------------------------------------------------------------


def test_heat_classes_follow_the_thresholds_at_or_above() -> None:
    classes = app.classify_heat(INTENSITY, (2.0, 4.0))
    assert classes.tolist() == [[0, 0, 1, 1], [2, 2, -1, 0], [1, 2, 0, 2]]


def test_exposure_is_persons_times_the_heat_above_zero() -> None:
    exposure = app.combine(PERSONS, INTENSITY)
    assert exposure[0].tolist() == [0.0, 10.0, 60.0, 120.0]  # cooler than rural counts 0
    assert math.isnan(exposure[1, 2]) and exposure[2, 3] == 150.0


def test_the_statistics_are_what_the_method_gives_by_hand() -> None:
    classes = app.classify_heat(INTENSITY, (2.0, 4.0))
    figures = app.exposure_statistics(PERSONS, INTENSITY, classes, VALID, (2.0, 4.0))
    assert figures["population"] == TOTAL
    assert figures["persons_at_or_above_moderate"] == AT_2K
    assert figures["persons_at_or_above_strong"] == AT_4K
    assert figures["share_at_or_above_strong"] == pytest.approx(AT_4K / TOTAL)
    assert figures["persons_by_class"] == {
        "below_moderate": TOTAL - AT_2K,  # 10 + 20 + 80 + 15
        "moderate": AT_2K - AT_4K,  # 30 + 40 + 5
        "strong": AT_4K,
    }
    assert figures["population_weighted_mean_intensity_k"] == pytest.approx(WEIGHTED_SUM / TOTAL)
    assert figures["mean_intensity_k"] == pytest.approx(27.5 / 11)
    assert figures["heat_exposure_person_k"] == pytest.approx(WEIGHTED_SUM + 10.0)
    assert figures["max_heat_exposure_person_k"] == 300.0


# --- moving persons onto another grid ---------------------------------------------------------------


def test_a_coarser_aligned_grid_gets_each_blocks_sum() -> None:
    x0, y0 = 4_790_000.0, 2_810_000.0
    persons = np.arange(16, dtype=float).reshape(4, 4)
    grid = grid_at(LAEA, from_origin(x0, y0, 200, 200), 2, 2)
    moved = app.align_population(
        persons, from_origin(x0, y0, 100, 100), CRS.from_user_input(LAEA), grid
    )
    assert moved.tolist() == [[0 + 1 + 4 + 5, 2 + 3 + 6 + 7], [8 + 9 + 12 + 13, 10 + 11 + 14 + 15]]


def test_a_finer_aligned_grid_shares_each_cell_equally() -> None:
    x0, y0 = 4_790_000.0, 2_810_000.0
    persons = np.array([[40.0, 8.0], [NAN, 4.0]])  # no data: nobody lives there
    grid = grid_at(LAEA, from_origin(x0, y0, 50, 50), 4, 4)
    moved = app.align_population(
        persons, from_origin(x0, y0, 100, 100), CRS.from_user_input(LAEA), grid
    )
    assert moved.tolist() == [
        [10.0, 10.0, 2.0, 2.0],
        [10.0, 10.0, 2.0, 2.0],
        [0.0, 0.0, 1.0, 1.0],
        [0.0, 0.0, 1.0, 1.0],
    ]


def _covering_grid(crs: str, step: float, src_bounds: tuple[float, ...]) -> Any:
    """A north-up grid of ``step`` in ``crs`` over the source's bounds and a margin."""
    west, south, east, north = transform_bounds(MOLLWEIDE, crs, *src_bounds, densify_pts=21)
    margin = 3 * step
    left, top = math.floor((west - margin) / step) * step, math.ceil((north + margin) / step) * step
    width = math.ceil((east + margin - left) / step)
    height = math.ceil((top - (south - margin)) / step)
    return grid_at(crs, from_origin(left, top, step, step), height, width)


@pytest.mark.parametrize(
    ("crs", "step"),
    [
        (LAEA, 100.0),  # the demo's SLSTR grid
        (LAEA, 1000.0),  # SLSTR's own kilometre
        ("EPSG:32633", 30.0),  # Landsat: finer than the population's 100 m
        ("EPSG:4326", 0.0002),  # a geographic grid finer still (15 m by 22 m)
        ("EPSG:4326", 0.002),
    ],
)
def test_moving_a_ghs_pop_grid_onto_another_grid_keeps_every_person(crs: str, step: float) -> None:
    """A GHS-POP window (World Mollweide, 100 m) over Vienna onto grids of other CRSs and sizes
    that hold it whole: the total is the same to a millionth, the people stay where they were
    (the centre of mass moves less than a source cell)."""
    x0, y0 = snapped_origin(MOLLWEIDE, 16.37, 48.21, 100)
    persons = np.random.default_rng(7).gamma(0.8, 40.0, (40, 50))
    src_transform = from_origin(x0, y0, 100, 100)
    grid = _covering_grid(crs, step, (x0, y0 - 4000, x0 + 5000, y0))
    moved = app.align_population(persons, src_transform, CRS.from_user_input(MOLLWEIDE), grid)
    assert np.nansum(moved) == pytest.approx(persons.sum(), rel=1e-6)

    def centre(values: np.ndarray, transform: Affine, from_crs: str) -> tuple[float, float]:
        rows, cols = np.indices(values.shape) + 0.5
        xs, ys = transform * (cols.ravel(), rows.ravel())
        (mx,), (my,) = (
            [np.average(xs, weights=np.nan_to_num(values.ravel()))],
            [np.average(ys, weights=np.nan_to_num(values.ravel()))],
        )
        (lx,), (ly,) = transform_points(from_crs, MOLLWEIDE, [mx], [my])
        return lx, ly

    before, after = centre(persons, src_transform, MOLLWEIDE), centre(moved, grid.transform, crs)
    assert math.dist(before, after) < 100


# --- the app in its image ------------------------------------------------------------------------


class Case:
    """The SUHI map above as the suhi app writes it (EPSG:3035, 100 m, nodata -9999) and the
    persons on a 50 m grid of the same CRS, each 100 m pixel's residents in its four quarters."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.x0, self.y0 = snapped_origin(LAEA, 16.37, 48.21, 1000)

    def roi(self) -> dict[str, Any]:
        rows, cols = INTENSITY.shape
        corners = [(0, 0), (cols, 0), (cols, rows), (0, rows)]
        points = [(self.x0 + c * 100, self.y0 - r * 100) for c, r in corners]
        return lonlat_polygon(LAEA, points)

    def job(self, *, population_origin: tuple[float, float] | None = None) -> tuple[dict, dict]:
        suhi = np.where(np.isfinite(INTENSITY), INTENSITY, -9999.0).astype("float32")
        quarters = np.repeat(np.repeat(PERSONS / 4, 2, axis=0), 2, axis=1).astype("float32")
        px, py = population_origin or (self.x0, self.y0)
        files = {
            "inputs/suhi/data.tif": write_raster(
                self.dir / "suhi.tif", suhi, crs=LAEA,
                transform=from_origin(self.x0, self.y0, 100, 100), nodata=-9999.0,
            ),
            "inputs/population/pop.tif": write_raster(
                self.dir / "pop.tif", quarters, crs=LAEA, transform=from_origin(px, py, 50, 50),
                nodata=-200.0,
            ),
        }  # fmt: skip
        inputs = {
            "suhi": [product("cure-suhi", "suhi-test-order", {"data": "inputs/suhi/data.tif"})],
            "population": [
                product("ghs-pop", "GHS_POP_TEST", {"pop": "inputs/population/pop.tif"})
            ],
        }
        return job_document("heat_exposure", self.roi(), inputs, {}), files


def test_the_app_counts_the_exposed_residents_by_hand(
    app_engine, heat_exposure_image, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    job, files = Case(tmp_path).job()
    out = tmp_path / "out"
    out.mkdir()
    result = run_app(
        app_engine, heat_exposure_image, "heat_exposure", job=job, files=files, out_dir=out
    )
    assert result.exit_code == 0, result.stderr
    assert set(result.outputs) == {"heat_exposure.tif", "population.tif", "statistics.json"}
    statistics = json.loads(result.outputs["statistics.json"].read_text())
    assert statistics["population"] == pytest.approx(TOTAL)
    assert statistics["persons_at_or_above_moderate"] == pytest.approx(AT_2K)
    assert statistics["persons_at_or_above_strong"] == pytest.approx(AT_4K)
    assert statistics["population_weighted_mean_intensity_k"] == pytest.approx(WEIGHTED_SUM / TOTAL)
    assert statistics["population_without_intensity"] == pytest.approx(70.0)
    assert (statistics["valid_pixels"], statistics["region_pixels"]) == (11, 12)
    assert statistics["masked"] == {"outside_the_product": 0, "no_intensity": 1, "no_population": 0}
    assert statistics["inputs"] == {"suhi": "suhi-test-order", "population": "GHS_POP_TEST"}
    for name in ("heat_exposure.tif", "population.tif"):
        assert_cog(result.outputs[name])
    with rasterio.open(result.outputs["heat_exposure.tif"]) as raster:
        assert raster.crs.to_epsg() == 3035 and raster.units == ("person K",)
        exposure = raster.read(1, masked=True)
    assert exposure.filled(np.nan)[1].tolist()[:2] == [200.0, 300.0]
    assert exposure.mask[1, 2] and float(exposure.sum()) == pytest.approx(WEIGHTED_SUM + 10.0)
    with rasterio.open(result.outputs["population.tif"]) as raster:
        assert raster.read(1).tolist() == PERSONS.tolist()
    assert result.progress() == sorted(result.progress()) and result.progress()[-1] == 100


def test_a_population_grid_beside_the_region_makes_the_order_invalid(
    app_engine, heat_exposure_image, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    case = Case(tmp_path)
    job, files = case.job(population_origin=(case.x0 + 50_000, case.y0))
    out = tmp_path / "out"
    out.mkdir()
    result = run_app(
        app_engine, heat_exposure_image, "heat_exposure", job=job, files=files, out_dir=out
    )
    assert result.exit_code == 3
    assert result.reason == "the population raster does not overlap the region of interest"
    assert not result.outputs
