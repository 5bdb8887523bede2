"""urban_green: NDVI over the region from Sentinel-2 L2A. Runs inside its container.

Reads the reflectance product staged in /job as the catalogues publish it: the red (B04) and
near-infrared (B08) bands, digital numbers with reflectance = DN * scale + offset, and the scene
classification layer (SCL, 20 m). Scale, offset and nodata come from the input description, else
from the raster's own metadata, else from Sentinel-2's: scale 1/10000, nodata 0, and the offset
of the product's processing baseline (-0.1 from baseline 04.00, the BOA_ADD_OFFSET of -1000; 0
before). Pixels the SCL marks as no data, saturated or defective, cloud shadow, cloud (medium
and high probability), thin cirrus or (by default) snow are masked before NDVI is computed on the
red band's grid. Writes /job/outputs/ndvi.tif and statistics.json, with the masked share.
Exit 0 on success, 3 when the inputs cannot give a result (see rasterkit), 2 for bad arguments.
"""

import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import rasterkit as rk
from rasterio.enums import Resampling

APP_DIR = Path(__file__).resolve().parent
ROLE = "reflectance"
# Sentinel-2 L2A: reflectance = (DN + BOA_ADD_OFFSET) / QUANTIFICATION_VALUE.
S2_SCALE = 1e-4
S2_OFFSET_FROM_BASELINE_04 = -0.1  # BOA_ADD_OFFSET -1000, from processing baseline 04.00
S2_NODATA = 0.0
BASELINE_PROPERTIES = (
    "s2:processing_baseline",
    "processing:version",
    "processing_baseline",
    "processingBaseline",
)
# Reflectance below 0 is noise around the offset; far above 1 is a fill value.
REFLECTANCE_RANGE = (0.0, 2.0)
# Scene classification (Sen2Cor) classes that hide the surface, by their code.
SCL_MASKED = {
    0: "no_data",
    1: "saturated_or_defective",
    3: "cloud_shadows",
    8: "cloud_medium_probability",
    9: "cloud_high_probability",
    10: "thin_cirrus",
}
SCL_SNOW = {11: "snow_or_ice"}


def main() -> int:
    job = rk.load_job()
    params = rk.parse_params(rk.load_schema(APP_DIR), job, sys.argv[1:])
    green_threshold = float(params["green_threshold"])
    min_valid_share = float(params["min_valid_share"])
    masked_classes = {**SCL_MASKED, **(SCL_SNOW if params["mask_snow"] else {})}
    roi = rk.read_roi(job)
    product = rk.input_product(job, ROLE)

    rk.progress(10, "reading inputs")
    red_path = rk.input_path(job, ROLE, "red")
    nir_path = rk.input_path(job, ROLE, "nir")
    scl_path = rk.input_path(job, ROLE, "scl")
    defaults = s2_defaults(product)
    red_scaling = rk.band_scaling(
        red_path,
        label="red reflectance",
        described=rk.described_values(product, "red"),
        integer_defaults=defaults,
    )
    nir_scaling = rk.band_scaling(
        nir_path,
        label="near-infrared reflectance",
        described=rk.described_values(product, "nir"),
        integer_defaults=defaults,
    )
    grid = rk.grid_over_roi(red_path, roi, label="red reflectance")
    red = rk.read_onto(
        red_path,
        grid,
        label="red reflectance",
        resampling=Resampling.nearest,
        valid_range=REFLECTANCE_RANGE,
        scaling=red_scaling,
    )

    rk.progress(30, "reprojecting near-infrared")
    nir = rk.read_onto(
        nir_path,
        grid,
        label="near-infrared reflectance",
        resampling=Resampling.average,
        valid_range=REFLECTANCE_RANGE,
        scaling=nir_scaling,
    )

    rk.progress(50, "masking by the scene classification")
    scl = rk.read_classes_onto(scl_path, grid, label="scene classification", fill=0)
    inside = rk.roi_mask(roi, grid)
    region_pixels = rk.roi_pixels(red_path, roi, label="red reflectance")

    rk.progress(70, "computing")
    masked: dict[str, int] = {"outside_the_product": region_pixels - int(inside.sum())}
    clear = inside.copy()
    for code, name in masked_classes.items():
        hit = clear & (scl == code)
        masked[name] = int(hit.sum())
        clear &= ~hit
    total = nir + red
    valid = clear & np.isfinite(total) & (total > 0)
    masked["no_reflectance"] = int((clear & ~valid).sum())
    valid_pixels = int(valid.sum())
    masked_pixels = region_pixels - valid_pixels
    valid_share = valid_pixels / region_pixels if region_pixels else 0.0
    if not valid_pixels or valid_share < min_valid_share:
        raise rk.InvalidInput(
            rk.too_few_valid(
                valid_pixels,
                region_pixels,
                min_valid_share,
                masked,
                what="are clear and valid",
            )
        )
    ndvi = np.full(grid.shape, np.nan)
    ndvi[valid] = (nir[valid] - red[valid]) / total[valid]
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
        "region_pixels": region_pixels,
        "masked_pixels": masked_pixels,
        "masked_share": masked_pixels / region_pixels,
        "masked": masked,
        "masked_scene_classes": sorted(masked_classes),
        "min_valid_share": min_valid_share,
        "reflectance": {"red": red_scaling.summary(), "nir": nir_scaling.summary()},
        "source": product.get("source"),
        "cloud_cover": product.get("cloud_cover"),
        "crs": grid.crs.to_string(),
        "pixel_size": list(grid.resolution),
        "inputs": {ROLE: rk.input_identifier(job, ROLE)},
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
    print(
        f"mean NDVI {statistics['mean_ndvi']:.3f}; {green_pixels} of {valid_pixels} pixels green;"
        f" {statistics['masked_share']:.1%} of the region masked"
    )
    return 0


def s2_defaults(product: dict[str, Any]) -> dict[str, tuple[float, str]]:
    """Sentinel-2 L2A's scale, nodata and (from its processing baseline) offset, for bands whose
    description and metadata do not give them."""
    defaults = {
        "scale": (S2_SCALE, "Sentinel-2 L2A quantification value"),
        "nodata": (S2_NODATA, "Sentinel-2 L2A"),
        "offset": (0.0, "no processing baseline given"),
    }
    raw = rk.product_property(product, *BASELINE_PROPERTIES)
    baseline = processing_baseline(raw)
    if baseline is not None:
        offset = S2_OFFSET_FROM_BASELINE_04 if baseline >= 4.0 else 0.0
        defaults["offset"] = (offset, f"processing baseline {raw}")
    return defaults


def processing_baseline(raw: Any) -> float | None:
    """A processing baseline as a number: "05.10", "N0510", 5.1 and "5.10" all give 5.1."""
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int | float):
        return float(raw)
    text = str(raw).strip().upper().removeprefix("N")
    if re.fullmatch(r"\d{4}", text):
        return int(text[:2]) + int(text[2:]) / 100
    if re.fullmatch(r"\d{1,2}(\.\d{1,2})?", text):
        major, _, minor = text.partition(".")
        return int(major) + (int(minor.ljust(2, "0")) / 100 if minor else 0.0)
    return None


if __name__ == "__main__":
    sys.exit(rk.run(main))
