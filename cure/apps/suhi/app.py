"""suhi: surface urban heat island intensity. Runs inside its container.

Reads the land surface temperature and imperviousness (percent) products staged in /job. The
temperature comes in one of two formats, named by the manifest's lst input:

- slstr: Sentinel-3 SLSTR land surface temperature, in kelvin (clouds are its nodata);
- landsat: Landsat Collection 2 Level-2 surface temperature, ST_B10 as the ``lst`` asset (uint16,
  kelvin = DN * 0.00341802 + 149.0, nodata 0, unless the input description or the raster says
  otherwise) with QA_PIXEL as the ``qa`` asset: fill, dilated cloud, cirrus, cloud and cloud
  shadow (bits 0 to 4) are masked.

Puts both on the temperature product's grid over the region (imperviousness averaged), and writes
/job/outputs/suhi_intensity.tif (LST minus the mean rural LST, kelvin) and statistics.json.
Exit 0 on success, 3 when the inputs cannot give a result (see rasterkit), 2 for bad arguments.
"""

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import rasterkit as rk
from rasterio.enums import Resampling

APP_DIR = Path(__file__).resolve().parent
# Kelvin: anything outside is a fill value, not a surface temperature.
LST_RANGE = (150.0, 400.0)
# Percent sealed: the HRL's codes 254 (unclassifiable) and 255 (outside its area) drop out.
IMPERVIOUSNESS_RANGE = (0.0, 100.0)
KELVIN_AT_0_C = 273.15
SLSTR, LANDSAT = "slstr", "landsat"
# Landsat Collection 2 Level-2 surface temperature (ST_B10): kelvin = DN * scale + offset.
LANDSAT_ST_DEFAULTS = {
    "scale": (0.00341802, "Landsat Collection 2 Level-2 surface temperature"),
    "offset": (149.0, "Landsat Collection 2 Level-2 surface temperature"),
    "nodata": (0.0, "Landsat Collection 2 Level-2 surface temperature"),
}
# QA_PIXEL bits that mean no clear view of the surface, in the order the statistics count them.
QA_MASKED_BITS = {0: "fill", 3: "cloud", 1: "dilated_cloud", 2: "cirrus", 4: "cloud_shadow"}


def main() -> int:
    job = rk.load_job()
    params = rk.parse_params(rk.load_schema(APP_DIR), job, sys.argv[1:])
    urban_threshold = float(params["urban_threshold"])
    rural_threshold = float(params["rural_threshold"])
    min_rural_pixels = int(params["min_rural_pixels"])
    min_valid_share = float(params["min_valid_share"])
    if rural_threshold >= urban_threshold:
        raise rk.InvalidInput(
            f"rural_threshold ({rural_threshold:g}%) must be below"
            f" urban_threshold ({urban_threshold:g}%)"
        )
    roi = rk.read_roi(job)
    product = rk.input_product(job, "lst")
    source = lst_format(product, str(params["lst_source"]))

    rk.progress(10, "reading inputs")
    lst_path = rk.input_path(job, "lst", "lst")
    imd_path = rk.input_path(job, "imperviousness", "imd")
    qa_path = rk.input_path(job, "lst", "qa") if source == LANDSAT else None
    scaling = rk.band_scaling(
        lst_path,
        label="land surface temperature",
        described=rk.described_values(product, "lst"),
        integer_defaults=LANDSAT_ST_DEFAULTS if source == LANDSAT else None,
    )
    grid = rk.grid_over_roi(lst_path, roi, label="land surface temperature")
    lst = rk.read_onto(
        lst_path,
        grid,
        label="land surface temperature",
        resampling=Resampling.nearest,
        valid_range=LST_RANGE,
        scaling=scaling,
    )
    inside = rk.roi_mask(roi, grid)
    region_pixels = rk.roi_pixels(lst_path, roi, label="land surface temperature")
    masked: dict[str, int] = {"outside_the_product": region_pixels - int(inside.sum())}
    clear = inside.copy()
    if qa_path is not None:
        qa = rk.read_classes_onto(qa_path, grid, label="pixel quality", fill=1)
        for bit, name in QA_MASKED_BITS.items():
            hit = clear & ((qa >> bit) & 1).astype(bool)
            masked[name] = int(hit.sum())
            clear &= ~hit

    rk.progress(40, "reprojecting imperviousness")
    imperviousness = rk.read_onto(
        imd_path,
        grid,
        label="imperviousness",
        resampling=Resampling.average,
        valid_range=IMPERVIOUSNESS_RANGE,
    )

    rk.progress(70, "computing")
    with_lst = clear & np.isfinite(lst)
    masked["no_temperature"] = int((clear & ~with_lst).sum())
    valid = with_lst & np.isfinite(imperviousness)
    masked["no_imperviousness"] = int((with_lst & ~valid).sum())
    valid_pixels = int(valid.sum())
    valid_share = valid_pixels / region_pixels if region_pixels else 0.0
    if not valid_pixels or valid_share < min_valid_share:
        raise rk.InvalidInput(
            rk.too_few_valid(
                valid_pixels,
                region_pixels,
                min_valid_share,
                masked,
                what="have a land surface temperature and an imperviousness",
            )
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
    mean_urban = rk.finite_or_none(lst[urban].mean()) if urban_pixels else None
    intensity = np.where(valid, lst - mean_rural, np.nan)
    urban_intensity = intensity[urban]
    masked_pixels = region_pixels - valid_pixels
    statistics = {
        "app_id": "suhi",
        "order_id": job.get("order_id"),
        "lst_source": source,
        "lst_collection": product.get("collection"),
        "mean_urban_lst_k": mean_urban,
        "mean_rural_lst_k": mean_rural,
        "mean_urban_lst_c": None if mean_urban is None else mean_urban - KELVIN_AT_0_C,
        "mean_rural_lst_c": mean_rural - KELVIN_AT_0_C,
        "mean_urban_intensity_k": (
            rk.finite_or_none(urban_intensity.mean()) if urban_pixels else None
        ),
        "max_urban_intensity_k": rk.finite_or_none(urban_intensity.max()) if urban_pixels else None,
        "urban_pixels": urban_pixels,
        "rural_pixels": rural_pixels,
        "valid_pixels": valid_pixels,
        "region_pixels": region_pixels,
        "masked_pixels": masked_pixels,
        "masked_share": masked_pixels / region_pixels,
        "masked": masked,
        "min_valid_share": min_valid_share,
        "urban_threshold_percent": urban_threshold,
        "rural_threshold_percent": rural_threshold,
        "lst_values": scaling.summary(),
        "source": product.get("source"),
        "cloud_cover": product.get("cloud_cover"),
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
        f"{urban_pixels} urban and {rural_pixels} rural of {valid_pixels} pixels ({source});"
        f" mean rural LST {mean_rural:.2f} K; {statistics['masked_share']:.1%} of the region masked"
    )
    return 0


def lst_format(product: dict[str, Any], chosen: str) -> str:
    """The format of the staged temperature product: the one the manifest gives its collection,
    else the one lst_source names, else Landsat when it has a pixel quality band."""
    manifest = json.loads((APP_DIR / "manifest.json").read_text())
    wanted = next(i for i in manifest["inputs"] if i["role"] == "lst")
    by_collection = {f["collection"]: f["format"] for f in [wanted, *wanted["alternatives"]]}
    found = by_collection.get(product.get("collection"))
    if found is None:
        if chosen in by_collection.values():
            found = chosen
        else:
            found = LANDSAT if rk.has_asset(product, "qa") else SLSTR
    if chosen in by_collection.values() and chosen != found:
        raise rk.InvalidInput(
            f"lst_source is {chosen} but the land surface temperature product"
            f" {product.get('identifier', '?')} is {found}"
        )
    return found


if __name__ == "__main__":
    sys.exit(rk.run(main))
