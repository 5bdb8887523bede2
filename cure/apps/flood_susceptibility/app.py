"""flood_susceptibility: where heavy rain gathers. Runs inside its container.

Reads the elevation model (the Copernicus DEM's layout: one float32 band of metres above the
geoid, any CRS; geographic grids are measured in metres at the region's latitude) and the
imperviousness (percent) staged in /job. The Copernicus DEM is a surface model: its heights
include buildings and trees, so at 30 m a courtyard or the land behind an embankment can read as
a depression. On the DEM's grid over the region's bounding box:

- depressions filled by priority-flood (terrain.fill_depressions); depth = filled - DEM;
- D8 flow directions (drops over distances in metres) and flow accumulation on the filled DEM;
  the upslope area A (m2) of a cell
  is its accumulation times the cell's area, and a = A / w per unit contour width, w the cell's
  width (the geometric mean of its sides);
- slope from the DEM (degrees), at least min_slope_degrees;
- topographic wetness index TWI = ln(a / tan slope) (Beven and Kirkby, 1979);
- wetness = (TWI - twi_low) / (twi_high - twi_low), ponding = depth / ponding_depth_m and
  sealing = imperviousness / 100, each cut to [0, 1];
- index = (wetness_weight * wetness + ponding_weight * ponding + sealing_weight * sealing) /
  (the weights' sum).

Writes /job/outputs/flood_susceptibility.tif (the index, 0-1) and statistics.json. Exit 0 on
success, 3 when the inputs cannot give a result (see rasterkit), 2 for bad arguments.
"""

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import rasterkit as rk
import terrain
from rasterio.enums import Resampling

APP_DIR = Path(__file__).resolve().parent
# Metres: below the Dead Sea or above Everest is a fill value, not the ground.
ELEVATION_RANGE = (-500.0, 9000.0)
IMPERVIOUSNESS_RANGE = (0.0, 100.0)
SINK_MIN_DEPTH_M = 0.05  # a filled depth that counts as a depression in the statistics


def degree_metres(latitude: float) -> tuple[float, float]:
    """The length in metres of a degree of latitude and of longitude at ``latitude`` on the
    WGS84 ellipsoid (the usual series, good to a centimetre)."""
    phi = math.radians(latitude)
    north = 111_132.92 - 559.82 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)
    east = 111_412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi)
    return north, east


def pixel_metres(grid: rk.Grid) -> tuple[float, float]:
    """The grid's pixel height and width in metres (at the grid's middle latitude when the grid
    is geographic)."""
    width, height = grid.resolution
    if not grid.crs.is_geographic:
        return height, width
    north, east = degree_metres((grid.transform * (grid.width / 2, grid.height / 2))[1])
    return height * north, width * east


def unit(values: np.ndarray) -> np.ndarray:
    return np.clip(values, 0.0, 1.0)


def main() -> int:
    job = rk.load_job()
    params = rk.parse_params(rk.load_schema(APP_DIR), job, sys.argv[1:])
    weights = {name: float(params[f"{name}_weight"]) for name in ("wetness", "ponding", "sealing")}
    if sum(weights.values()) <= 0:
        raise rk.InvalidInput("the weights are all 0: give at least one a positive weight")
    twi_low, twi_high = float(params["twi_low"]), float(params["twi_high"])
    if twi_high <= twi_low:
        raise rk.InvalidInput(f"twi_high ({twi_high:g}) must be above twi_low ({twi_low:g})")
    ponding_depth = float(params["ponding_depth_m"])
    min_slope = float(params["min_slope_degrees"])
    high_threshold = float(params["high_threshold"])
    min_valid_share = float(params["min_valid_share"])
    roi = rk.read_roi(job)

    rk.progress(10, "reading inputs")
    dem_path = rk.input_path(job, "dem", "dem")
    imd_path = rk.input_path(job, "imperviousness", "imd")
    grid = rk.grid_over_roi(dem_path, roi, label="elevation")
    dem = rk.read_onto(
        dem_path, grid, label="elevation", resampling=Resampling.nearest,
        valid_range=ELEVATION_RANGE,
    )  # fmt: skip
    imperviousness = rk.read_onto(
        imd_path, grid, label="imperviousness", resampling=Resampling.average,
        valid_range=IMPERVIOUSNESS_RANGE,
    )  # fmt: skip
    inside = rk.roi_mask(roi, grid)
    region_pixels = rk.roi_pixels(dem_path, roi, label="elevation")

    rk.progress(30, "filling depressions")
    has_elevation = np.isfinite(dem)
    filled = terrain.fill_depressions(dem, has_elevation)
    depth = np.where(has_elevation, filled - dem, np.nan)

    rk.progress(60, "tracing the flow")
    dy, dx = pixel_metres(grid)
    direction = terrain.flow_directions(filled, has_elevation, pixel_size=(dy, dx))
    accumulation = terrain.flow_accumulation(filled, direction, has_elevation)
    cell_area, cell_width = dy * dx, math.sqrt(dy * dx)
    upslope_m2 = accumulation * cell_area
    slope = terrain.slope_degrees(dem, pixel_size=(dy, dx))
    slope = np.maximum(np.nan_to_num(slope, nan=min_slope), min_slope)
    with np.errstate(divide="ignore", invalid="ignore"):
        twi = np.log((upslope_m2 / cell_width) / np.tan(np.radians(slope)))

    rk.progress(80, "computing the index")
    valid = inside & has_elevation & np.isfinite(imperviousness)
    total = sum(weights.values())
    index = (
        weights["wetness"] * unit((twi - twi_low) / (twi_high - twi_low))
        + weights["ponding"] * unit(depth / ponding_depth)
        + weights["sealing"] * unit(imperviousness / 100.0)
    ) / total
    index = np.where(valid, index, np.nan)
    masked = {
        "outside_the_product": region_pixels - int(inside.sum()),
        "no_elevation": int((inside & ~has_elevation).sum()),
        "no_imperviousness": int((inside & has_elevation & ~np.isfinite(imperviousness)).sum()),
    }
    valid_pixels = int(valid.sum())
    if not valid_pixels or valid_pixels / region_pixels < min_valid_share:
        raise rk.InvalidInput(
            rk.too_few_valid(
                valid_pixels,
                region_pixels,
                min_valid_share,
                masked,
                what="have an elevation and an imperviousness",
            )  # fmt: skip
        )
    statistics = _statistics(
        job, params, grid=grid, index=index, valid=valid, depth=depth, twi=twi,
        upslope_m2=upslope_m2, imperviousness=imperviousness, cell_area=cell_area,
        pixels=(valid_pixels, region_pixels), masked=masked, high_threshold=high_threshold,
    )  # fmt: skip

    rk.progress(90, "writing outputs")
    outputs = rk.JOB_DIR / "outputs"
    rk.write_cog(
        outputs / "flood_susceptibility.tif", index, grid,
        description="pluvial flood susceptibility index (0-1)", units="1",
    )  # fmt: skip
    rk.write_json(outputs / "statistics.json", statistics)
    rk.progress(100, "done")
    print(
        f"mean index {statistics['mean_index']:.3f};"
        f" {statistics['high_share']:.1%} of {valid_pixels} pixels at or above {high_threshold:g};"
        f" depressions over {statistics['sink_area_km2']:.3f} km2"
    )
    return 0


def _statistics(
    job: dict[str, Any],
    params: dict[str, Any],
    *,
    grid: rk.Grid,
    index: np.ndarray,
    valid: np.ndarray,
    depth: np.ndarray,
    twi: np.ndarray,
    upslope_m2: np.ndarray,
    imperviousness: np.ndarray,
    cell_area: float,
    pixels: tuple[int, int],
    masked: dict[str, int],
    high_threshold: float,
) -> dict[str, Any]:
    valid_pixels, region_pixels = pixels
    high = valid & (index >= high_threshold)
    sinks = valid & (depth >= SINK_MIN_DEPTH_M)
    return {
        "app_id": "flood_susceptibility",
        "order_id": job.get("order_id"),
        "mean_index": float(index[valid].mean()),
        "max_index": float(index[valid].max()),
        "high_threshold": high_threshold,
        "high_pixels": int(high.sum()),
        "high_share": int(high.sum()) / valid_pixels,
        "high_area_km2": int(high.sum()) * cell_area / 1e6,
        "sink_pixels": int(sinks.sum()),
        "sink_area_km2": int(sinks.sum()) * cell_area / 1e6,
        "max_sink_depth_m": float(depth[valid].max()),
        "max_upslope_area_km2": float(upslope_m2[valid].max()) / 1e6,
        "mean_twi": rk.finite_or_none(float(twi[valid].mean())),
        "mean_imperviousness_percent": float(imperviousness[valid].mean()),
        "valid_pixels": valid_pixels,
        "region_pixels": region_pixels,
        "masked_pixels": region_pixels - valid_pixels,
        "masked_share": (region_pixels - valid_pixels) / region_pixels,
        "masked": masked,
        "parameters": params,
        "cell_area_m2": cell_area,
        "crs": grid.crs.to_string(),
        "pixel_size": list(grid.resolution),
        "inputs": {
            "dem": rk.input_identifier(job, "dem"),
            "imperviousness": rk.input_identifier(job, "imperviousness"),
        },
    }


if __name__ == "__main__":
    sys.exit(rk.run(main))
