"""urban_green: NDVI over the region from red and near-infrared reflectance. Runs inside its container.

Reads the red and nir assets of the reflectance product staged in /job, in physical reflectance
(the raster's scale and offset, else 1/10000 for integer data), puts nir on the red band's grid when
it differs, and writes /job/outputs/ndvi.tif and statistics.json.
Exit 0 on success, 3 when the inputs cannot give a result (see rasterkit), 2 for bad arguments.
"""

import sys
from pathlib import Path

import numpy as np
import rasterkit as rk
from rasterio.enums import Resampling

APP_DIR = Path(__file__).resolve().parent
# Sentinel-2 L2A digital numbers are reflectance times 10000 when a raster does not say otherwise.
INTEGER_SCALE = 1e-4
# Reflectance below 0 is noise around the offset; far above 1 is a fill value.
REFLECTANCE_RANGE = (0.0, 2.0)


def main() -> int:
    job = rk.load_job()
    params = rk.parse_params(rk.load_schema(APP_DIR), job, sys.argv[1:])
    green_threshold = float(params["green_threshold"])
    roi = rk.read_roi(job)

    rk.progress(10, "reading inputs")
    red_path = rk.input_path(job, "reflectance", "red")
    nir_path = rk.input_path(job, "reflectance", "nir")
    grid = rk.grid_over_roi(red_path, roi, label="red reflectance")
    red = rk.read_onto(
        red_path,
        grid,
        label="red reflectance",
        resampling=Resampling.nearest,
        valid_range=REFLECTANCE_RANGE,
        integer_scale=INTEGER_SCALE,
    )

    rk.progress(40, "reprojecting near-infrared")
    nir = rk.read_onto(
        nir_path,
        grid,
        label="near-infrared reflectance",
        resampling=Resampling.average,
        valid_range=REFLECTANCE_RANGE,
        integer_scale=INTEGER_SCALE,
    )
    inside = rk.roi_mask(roi, grid)

    rk.progress(70, "computing")
    total = nir + red
    valid = inside & np.isfinite(total) & (total > 0)
    ndvi = np.full(grid.shape, np.nan)
    ndvi[valid] = (nir[valid] - red[valid]) / total[valid]
    valid_pixels = int(valid.sum())
    if not valid_pixels:
        raise rk.InvalidInput("no pixel of the region has both red and near-infrared reflectance")
    green = valid & (ndvi > green_threshold)
    green_pixels = int(green.sum())
    statistics = {
        "app_id": "urban_green",
        "order_id": job.get("order_id"),
        "mean_ndvi": float(ndvi[valid].mean()),
        "green_share": green_pixels / valid_pixels,
        "valid_pixels": valid_pixels,
        "green_pixels": green_pixels,
        "green_threshold": green_threshold,
        "crs": grid.crs.to_string(),
        "pixel_size": list(grid.resolution),
        "inputs": {"reflectance": rk.input_identifier(job, "reflectance")},
    }

    rk.progress(90, "writing outputs")
    outputs = rk.JOB_DIR / "outputs"
    rk.write_cog(
        outputs / "ndvi.tif",
        ndvi,
        grid,
        description="normalized difference vegetation index",
        units="1",
    )
    rk.write_json(outputs / "statistics.json", statistics)
    rk.progress(100, "done")
    print(f"mean NDVI {statistics['mean_ndvi']:.3f}; {green_pixels} of {valid_pixels} pixels green")
    return 0


if __name__ == "__main__":
    sys.exit(rk.run(main))
