"""heat_exposure: how many people live where the surface urban heat island is strong. Runs
inside its container.

Reads two staged inputs:

- ``suhi``: the SUHI intensity map of a product of CURE's own suhi app (its ``data`` asset: a
  float32 Cloud-Optimized GeoTIFF of land surface temperature minus the mean rural one, kelvin,
  nodata -9999), on the temperature product's grid;
- ``population``: a population grid in the layout of the GHSL's GHS-POP (R2023A, e.g.
  GHS_POP_E2020_GLOBE_R2023A_54009_100_V1_0): one float32 band of persons per cell (a count,
  not a density), World Mollweide (ESRI:54009) at 100 m, nodata -200 (no land); any grid with a
  CRS is read.

The stages, each a function of arrays, in the order ``main`` runs them:

1. ``align_population``: the persons onto the SUHI map's grid, conserving them: GDAL's ``sum``
   resampling (rasterio's ``Resampling.sum``, GDAL 3.1 and later) adds up the source cells
   each target cell covers, weighted by the share of each it covers, so a coarser grid gets
   whole sums and a finer one shares each cell out (tests/apps/test_heat_exposure.py checks the
   total over grids of other CRSs and sizes). Population nodata is no land: 0 persons; beyond
   the population grid the population is not known (NaN).
2. ``classify_heat``: each pixel's heat class from its intensity: below ``moderate_k`` (0),
   from ``moderate_k`` (1), from ``strong_k`` (2); -1 without an intensity.
3. ``combine``: the heat exposure, persons x intensity above 0 K (person-kelvin), per pixel.
4. ``exposure_statistics``: the region's persons, those at or above each threshold and in each
   class, the population-weighted and the area mean intensity.

The app is a workflow of three steps (its manifest's ``steps``), each a container of this image:
``align`` (stage 1, into /job/work/population.npy) and ``classify`` (stage 2, the intensity and
its classes into /job/work) run side by side; ``combine`` (stages 3 and 4) needs both. Without a
step name on the command line the three run in order in one container (``cure apps try`` runs
the steps as the worker does).

Writes /job/outputs/heat_exposure.tif, population.tif and statistics.json. Exit 0 on success,
3 when the inputs cannot give a result (see rasterkit), 2 for bad arguments.
"""

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio.warp
import rasterkit as rk
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling

APP_DIR = Path(__file__).resolve().parent
# Kelvin: a SUHI intensity beyond this is a fill value, not a temperature difference.
INTENSITY_RANGE = (-50.0, 50.0)
CLASSES = ("below_moderate", "moderate", "strong")


# --- 1. the population on the SUHI grid ----------------------------------------------------------


def align_population(
    persons: np.ndarray, src_transform: Affine, src_crs: CRS, grid: rk.Grid
) -> np.ndarray:
    """Persons per cell of ``grid`` from a grid of persons per cell, their total conserved:
    GDAL's sum of the source cells each target cell covers, each weighted by the share of it
    the target cell covers (a coarser grid adds whole cells up, a finer one shares a cell out
    among those it spans). NaN and negative source values count as 0 persons; target cells the
    source does not reach are NaN."""
    counts = np.where(np.isfinite(persons) & (persons > 0), persons, 0.0).astype("float64")
    moved = np.full(grid.shape, np.nan, dtype="float64")
    rasterio.warp.reproject(
        source=counts,
        destination=moved,
        src_transform=src_transform,
        src_crs=src_crs,
        dst_transform=grid.transform,
        dst_crs=grid.crs,
        dst_nodata=np.nan,
        resampling=Resampling.sum,
    )
    return moved


# --- 2. heat classes ------------------------------------------------------------------------------


def classify_heat(intensity: np.ndarray, thresholds: tuple[float, float]) -> np.ndarray:
    """Each pixel's class: 0 below the first threshold, 1 from it, 2 from the second (kelvin,
    at or above); -1 where there is no intensity."""
    classes = np.digitize(np.nan_to_num(intensity, nan=-np.inf), thresholds).astype("int8")
    classes[~np.isfinite(intensity)] = -1
    return classes


# --- 3. exposure ----------------------------------------------------------------------------------


def combine(population: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    """Heat exposure per pixel: persons x the intensity above 0 K (person-kelvin); NaN where
    either is unknown. Places cooler than the rural reference add nothing."""
    return population * np.maximum(intensity, 0.0)


# --- 4. statistics --------------------------------------------------------------------------------


def exposure_statistics(
    population: np.ndarray,
    intensity: np.ndarray,
    classes: np.ndarray,
    valid: np.ndarray,
    thresholds: tuple[float, float],
) -> dict[str, Any]:
    """The region's figures over its ``valid`` pixels (an intensity and a population)."""
    persons = population[valid]
    heat = intensity[valid]
    total = float(persons.sum())
    at_or_above = {
        name: float(persons[heat >= threshold].sum())
        for name, threshold in zip(CLASSES[1:], thresholds, strict=True)
    }
    by_class = {
        name: float(persons[classes[valid] == number].sum()) for number, name in enumerate(CLASSES)
    }
    weighted = float((persons * heat).sum() / total) if total > 0 else None
    exposure = combine(persons, heat)
    return {
        "population": total,
        "persons_at_or_above_moderate": at_or_above["moderate"],
        "persons_at_or_above_strong": at_or_above["strong"],
        "share_at_or_above_moderate": at_or_above["moderate"] / total if total > 0 else None,
        "share_at_or_above_strong": at_or_above["strong"] / total if total > 0 else None,
        "persons_by_class": by_class,
        "population_weighted_mean_intensity_k": weighted,
        "mean_intensity_k": float(heat.mean()) if heat.size else None,
        "heat_exposure_person_k": float(exposure.sum()),
        "max_heat_exposure_person_k": float(exposure.max()) if exposure.size else None,
        "moderate_k": thresholds[0],
        "strong_k": thresholds[1],
    }


# --- the app --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """What every step knows: the job, its parameters and the SUHI map's grid over the region."""

    job: dict[str, Any]
    params: dict[str, Any]
    thresholds: tuple[float, float]
    roi: Any
    suhi_path: Path
    grid: rk.Grid
    report: Callable[[int, str], None]


def _prepare(argv: list[str], report: Callable[[int, str], None]) -> Run:
    job = rk.load_job()
    params = rk.parse_params(rk.load_schema(APP_DIR), job, argv)
    thresholds = (float(params["moderate_k"]), float(params["strong_k"]))
    if thresholds[1] <= thresholds[0]:
        raise rk.InvalidInput(
            f"strong_k ({thresholds[1]:g} K) must be above moderate_k ({thresholds[0]:g} K)"
        )
    roi = rk.read_roi(job)
    suhi_path = rk.input_path(job, "suhi", "data")
    grid = rk.grid_over_roi(suhi_path, roi, label="SUHI intensity")
    return Run(job, params, thresholds, roi, suhi_path, grid, report)


def _work(name: str) -> Path:
    return rk.JOB_DIR / "work" / name


def step_align(run: Run) -> None:
    """Step align: the population onto the SUHI grid (work/population.npy and its source)."""
    run.report(20, "reading the population grid")
    population_path = rk.input_path(run.job, "population", "pop")
    persons, src_transform, src_crs = rk.read_under(population_path, run.grid, label="population")
    run.report(60, "moving the population onto the SUHI grid")
    np.save(_work("population.npy"), align_population(persons, src_transform, src_crs, run.grid))
    source = {
        "method": "sum",
        "source_crs": src_crs.to_string(),
        "source_pixel_size": [abs(src_transform.a), abs(src_transform.e)],
    }
    rk.write_json(_work("population.json"), source)
    run.report(100, "population aligned")


def step_classify(run: Run) -> None:
    """Step classify: the SUHI intensity on its grid and each pixel's heat class (work/)."""
    run.report(30, "reading the SUHI intensity")
    intensity = rk.read_onto(
        run.suhi_path, run.grid, label="SUHI intensity", resampling=Resampling.nearest,
        valid_range=INTENSITY_RANGE,
    )  # fmt: skip
    np.save(_work("intensity.npy"), intensity)
    np.save(_work("classes.npy"), classify_heat(intensity, run.thresholds))
    run.report(100, "heat classified")


def step_combine(run: Run) -> None:
    """Step combine: what the two steps before left in work/ into the outputs and statistics."""
    population = _load("population.npy", run.grid)
    intensity = _load("intensity.npy", run.grid)
    run.report(10, "checking the valid pixels")
    min_valid_share = float(run.params["min_valid_share"])
    inside = rk.roi_mask(run.roi, run.grid)
    region_pixels = rk.roi_pixels(run.suhi_path, run.roi, label="SUHI intensity")
    has_intensity = np.isfinite(intensity)
    valid = inside & has_intensity & np.isfinite(population)
    masked = {
        "outside_the_product": region_pixels - int(inside.sum()),
        "no_intensity": int((inside & ~has_intensity).sum()),
        "no_population": int((inside & has_intensity & ~np.isfinite(population)).sum()),
    }
    valid_pixels = int(valid.sum())
    if not valid_pixels or valid_pixels / region_pixels < min_valid_share:
        raise rk.InvalidInput(
            rk.too_few_valid(
                valid_pixels,
                region_pixels,
                min_valid_share,
                masked,
                what="have a SUHI intensity and a population",
            )  # fmt: skip
        )
    classes = np.where(valid, _load("classes.npy", run.grid), -1).astype("int8")

    run.report(40, "combining population and heat")
    exposure = np.where(valid, combine(population, intensity), np.nan)
    figures = exposure_statistics(population, intensity, classes, valid, run.thresholds)
    in_region = inside & np.isfinite(population)
    statistics = {
        "app_id": "heat_exposure",
        "order_id": run.job.get("order_id"),
        **figures,
        "population_without_intensity": float(population[in_region & ~has_intensity].sum()),
        "valid_pixels": valid_pixels,
        "region_pixels": region_pixels,
        "masked_pixels": region_pixels - valid_pixels,
        "masked_share": (region_pixels - valid_pixels) / region_pixels,
        "masked": masked,
        "min_valid_share": min_valid_share,
        "parameters": run.params,
        "population_resampling": json.loads(_work("population.json").read_text()),
        "crs": run.grid.crs.to_string(),
        "pixel_size": list(run.grid.resolution),
        "inputs": {
            "suhi": rk.input_identifier(run.job, "suhi"),
            "population": rk.input_identifier(run.job, "population"),
        },
    }

    run.report(80, "writing outputs")
    outputs = rk.JOB_DIR / "outputs"
    rk.write_cog(
        outputs / "heat_exposure.tif", exposure, run.grid,
        description="heat exposure: persons x SUHI intensity above 0 K", units="person K",
    )  # fmt: skip
    rk.write_cog(
        outputs / "population.tif", np.where(in_region, population, np.nan), run.grid,
        description="population on the SUHI grid", units="persons",
    )  # fmt: skip
    rk.write_json(outputs / "statistics.json", statistics)
    run.report(100, "done")
    share = figures["share_at_or_above_strong"]
    print(
        f"{figures['population']:.0f} persons in {valid_pixels} pixels;"
        f" {figures['persons_at_or_above_strong']:.0f}"
        f" ({(share or 0):.1%}) where the SUHI is at or above {run.thresholds[1]:g} K"
    )


def _load(name: str, grid: rk.Grid) -> np.ndarray:
    values = np.load(_work(name), allow_pickle=False)
    if values.shape != grid.shape:
        raise RuntimeError(f"work/{name} is {values.shape}, the grid {grid.shape}")
    return values


# The manifest's steps: align and classify side by side, then combine (which needs both).
STEPS: dict[str, Callable[[Run], None]] = {
    "align": step_align,
    "classify": step_classify,
    "combine": step_combine,
}


def main() -> int:
    """``app.py <step> --params…`` runs one step of the workflow (as the worker does);
    ``app.py --params…`` runs the three in order in one container, each its share of the
    progress, through the same files in /job/work."""
    argv = sys.argv[1:]
    names = [argv.pop(0)] if argv and argv[0] in STEPS else list(STEPS)
    for index, name in enumerate(names):

        def report(percent: int, message: str, index: int = index) -> None:
            rk.progress((100 * index + percent) // len(names), message)

        STEPS[name](_prepare(argv, report))
    return 0


if __name__ == "__main__":
    sys.exit(rk.run(main))
