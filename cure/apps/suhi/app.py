"""suhi: surface urban heat island intensity. Runs inside its container.

Reads the land surface temperature (kelvin) and imperviousness (percent) products staged in /job,
puts both on the temperature product's grid over the region (imperviousness averaged), and writes
/job/outputs/suhi_intensity.tif (LST minus the mean rural LST, kelvin) and statistics.json.
Exit 0 on success, 3 when the inputs cannot give a result (see rasterkit), 2 for bad arguments.
"""

import sys
from pathlib import Path

import numpy as np
import rasterkit as rk
from rasterio.enums import Resampling

APP_DIR = Path(__file__).resolve().parent
# Kelvin: anything outside is a fill value, not a surface temperature.
LST_RANGE = (150.0, 400.0)
# Percent sealed: the HRL's codes 254 (unclassifiable) and 255 (outside its area) drop out.
IMPERVIOUSNESS_RANGE = (0.0, 100.0)


def main() -> int:
    job = rk.load_job()
    params = rk.parse_params(rk.load_schema(APP_DIR), job, sys.argv[1:])
    urban_threshold = float(params["urban_threshold"])
    rural_threshold = float(params["rural_threshold"])
    min_rural_pixels = int(params["min_rural_pixels"])
    if rural_threshold >= urban_threshold:
        raise rk.InvalidInput(
            f"rural_threshold ({rural_threshold:g}%) must be below"
            f" urban_threshold ({urban_threshold:g}%)"
        )
    roi = rk.read_roi(job)

    rk.progress(10, "reading inputs")
    lst_path = rk.input_path(job, "lst", "lst")
    imd_path = rk.input_path(job, "imperviousness", "imd")
    grid = rk.grid_over_roi(lst_path, roi, label="land surface temperature")
    lst = rk.read_onto(
        lst_path,
        grid,
        label="land surface temperature",
        resampling=Resampling.nearest,
        valid_range=LST_RANGE,
    )

    rk.progress(40, "reprojecting imperviousness")
    imperviousness = rk.read_onto(
        imd_path,
        grid,
        label="imperviousness",
        resampling=Resampling.average,
        valid_range=IMPERVIOUSNESS_RANGE,
    )
    inside = rk.roi_mask(roi, grid)

    rk.progress(70, "computing")
    valid = inside & np.isfinite(lst) & np.isfinite(imperviousness)
    valid_pixels = int(valid.sum())
    if not valid_pixels:
        raise rk.InvalidInput(
            "no pixel of the region has both a land surface temperature and an imperviousness"
        )
    urban = valid & (imperviousness >= urban_threshold)
    rural = valid & (imperviousness <= rural_threshold)
    rural_pixels = int(rural.sum())
    if rural_pixels < min_rural_pixels:
        raise rk.InvalidInput(
            f"only {rural_pixels} rural pixels (imperviousness <= {rural_threshold:g}%) in the"
            f" region, fewer than min_rural_pixels ({min_rural_pixels})"
        )
    urban_pixels = int(urban.sum())
    mean_rural = float(lst[rural].mean())
    intensity = np.where(valid, lst - mean_rural, np.nan)
    urban_intensity = intensity[urban]
    statistics = {
        "app_id": "suhi",
        "order_id": job.get("order_id"),
        "mean_urban_lst_k": rk.finite_or_none(lst[urban].mean()) if urban_pixels else None,
        "mean_rural_lst_k": mean_rural,
        "mean_urban_intensity_k": (
            rk.finite_or_none(urban_intensity.mean()) if urban_pixels else None
        ),
        "max_urban_intensity_k": rk.finite_or_none(urban_intensity.max()) if urban_pixels else None,
        "urban_pixels": urban_pixels,
        "rural_pixels": rural_pixels,
        "valid_pixels": valid_pixels,
        "urban_threshold_percent": urban_threshold,
        "rural_threshold_percent": rural_threshold,
        "crs": grid.crs.to_string(),
        "pixel_size": list(grid.resolution),
        "inputs": {
            "lst": rk.input_identifier(job, "lst"),
            "imperviousness": rk.input_identifier(job, "imperviousness"),
        },
    }

    rk.progress(90, "writing outputs")
    outputs = rk.JOB_DIR / "outputs"
    rk.write_cog(
        outputs / "suhi_intensity.tif",
        intensity,
        grid,
        description="surface urban heat island intensity (LST minus mean rural LST)",
        units="K",
    )
    rk.write_json(outputs / "statistics.json", statistics)
    rk.progress(100, "done")
    print(
        f"{urban_pixels} urban and {rural_pixels} rural of {valid_pixels} pixels;"
        f" mean rural LST {mean_rural:.2f} K"
    )
    return 0


if __name__ == "__main__":
    sys.exit(rk.run(main))
