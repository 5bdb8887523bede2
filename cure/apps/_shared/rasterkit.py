"""Raster helpers shared by CURE's raster apps. Runs inside the app images (Debian's python3 3.11,
numpy 1.24, rasterio 1.3.5), next to each app's app.py; see cure/apps/build_context.py.

The container contract: /job/params.json holds the order (region, dates, parameters, staged
inputs); every parameter may also come as ``--<name> <value>`` on the command line (JSON for
non-strings), which wins. Outputs go to /job/outputs. Exit 0 is success, EXIT_INVALID means the
inputs cannot give a result (the reason is the last line on stderr), anything else is a failure.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.errors
import rasterio.features
import rasterio.transform
import rasterio.warp
import rasterio.windows
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling

JOB_DIR = Path("/job")
EXIT_INVALID = 3
WGS84 = CRS.from_epsg(4326)
OUTPUT_NODATA = -9999.0
COG_BLOCKSIZE = 512


class InvalidInput(Exception):
    """The inputs or parameters cannot give a result: the order is INVALID, not FAILED."""


@dataclass(frozen=True)
class Grid:
    """A north-up (or any affine) pixel grid: where every array of one computation lives."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def resolution(self) -> tuple[float, float]:
        return (abs(self.transform.a), abs(self.transform.e))


def progress(percent: int, step: str) -> None:
    """A progress line the worker turns into an order event."""
    print(f"CURE_PROGRESS {percent} {step}", flush=True)


def run(main: Callable[[], int]) -> int:
    """Run an app's main: InvalidInput becomes EXIT_INVALID with its reason as stderr's last line."""
    try:
        return main()
    except InvalidInput as exc:
        reason = " ".join(str(exc).split())  # one line, whatever the message held
        print(reason, file=sys.stderr, flush=True)
        return EXIT_INVALID


# --- the job and its parameters ------------------------------------------------------------------


def load_job(job_dir: Path = JOB_DIR) -> dict[str, Any]:
    try:
        job = json.loads((job_dir / "params.json").read_text())
    except FileNotFoundError as exc:
        raise InvalidInput("params.json is missing from the job") from exc
    if not isinstance(job, dict):
        raise InvalidInput("params.json is not a JSON object")
    return job


def load_schema(app_dir: Path) -> dict[str, Any]:
    """The parameters' JSON Schema from the app's manifest (copied next to app.py in the image)."""
    schema = json.loads((app_dir / "manifest.json").read_text())["parameters"]
    if not isinstance(schema, dict):
        raise ValueError("the manifest's parameters are not a JSON Schema object")
    return schema


def parse_params(
    schema: dict[str, Any], job: dict[str, Any], argv: Sequence[str] | None = None
) -> dict[str, Any]:
    """The parameters: schema defaults, then params.json, then the command line (which wins).

    Unknown command-line arguments and values the schema refuses end the program with exit 2.
    """
    properties: dict[str, dict[str, Any]] = schema.get("properties", {})
    parser = argparse.ArgumentParser(
        prog=str(job.get("app_id") or "app"), allow_abbrev=False, description=schema.get("title")
    )
    for name, prop in properties.items():
        parser.add_argument(f"--{name}", dest=name, metavar="VALUE", help=prop.get("description"))
    given = parser.parse_args(argv)

    from_job = job.get("params") or {}
    if not isinstance(from_job, dict):
        parser.error("params in params.json is not an object")
    unknown = sorted(set(from_job) - set(properties))
    if unknown:
        parser.error(f"params.json has unknown parameters: {', '.join(unknown)}")

    params: dict[str, Any] = {}
    for name, prop in properties.items():
        raw = getattr(given, name)
        if raw is not None:
            value: Any = raw if prop.get("type") == "string" else _json_value(parser, name, raw)
        elif name in from_job:
            value = from_job[name]
        elif "default" in prop:
            value = prop["default"]
        else:
            continue
        problem = _check_value(prop, value)
        if problem:
            parser.error(f"--{name}: {problem}")
        params[name] = value
    missing = [name for name in schema.get("required", []) if name not in params]
    if missing:
        parser.error(f"missing required parameters: {', '.join(missing)}")
    return params


def _json_value(parser: argparse.ArgumentParser, name: str, raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        parser.error(f"--{name}: {raw!r} is not a JSON value")


_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v),
}


def _check_value(prop: dict[str, Any], value: Any) -> str | None:
    """What the (simple, flat) schema says is wrong with value, or None."""
    kind = prop.get("type")
    check = _JSON_TYPES.get(kind) if isinstance(kind, str) else None
    if check is not None and not check(value):
        return f"{value!r} is not of type {kind}"
    if "enum" in prop and value not in prop["enum"]:
        return f"{value!r} is not one of {prop['enum']}"
    if "minimum" in prop and value < prop["minimum"]:
        return f"{value!r} is less than the minimum of {prop['minimum']}"
    if "maximum" in prop and value > prop["maximum"]:
        return f"{value!r} is greater than the maximum of {prop['maximum']}"
    return None


def read_roi(job: dict[str, Any]) -> dict[str, Any]:
    """The region of interest: a GeoJSON Polygon or MultiPolygon in WGS84 lon/lat."""
    roi = job.get("roi")
    if not isinstance(roi, dict) or roi.get("type") not in ("Polygon", "MultiPolygon"):
        raise InvalidInput("the region of interest is not a GeoJSON Polygon or MultiPolygon")
    if not roi.get("coordinates"):
        raise InvalidInput("the region of interest has no coordinates")
    return roi


def input_path(job: dict[str, Any], role: str, asset: str, job_dir: Path = JOB_DIR) -> Path:
    """The staged file of one asset of the first product of an input role."""
    products = (job.get("inputs") or {}).get(role) or []
    if not products:
        raise InvalidInput(f"no {role} product was found for this region and period")
    product = products[0]
    relative = (product.get("assets") or {}).get(asset)
    if not relative:
        name = product.get("identifier", "?")
        raise InvalidInput(f"the {role} product {name} has no '{asset}' asset")
    path = (job_dir / relative).resolve()
    if not path.is_relative_to(job_dir.resolve()):
        raise InvalidInput(f"the {role} asset '{asset}' lies outside the job directory")
    if not path.is_file():
        raise InvalidInput(f"the {role} asset '{asset}' ({relative}) was not staged")
    return path


def input_identifier(job: dict[str, Any], role: str) -> str | None:
    products = (job.get("inputs") or {}).get(role) or []
    return products[0].get("identifier") if products else None


def input_product(job: dict[str, Any], role: str) -> dict[str, Any]:
    """The description of the first product of an input role (see docs/apps.md)."""
    products = (job.get("inputs") or {}).get(role) or []
    if not products or not isinstance(products[0], dict):
        raise InvalidInput(f"no {role} product was found for this region and period")
    return products[0]


def has_asset(product: dict[str, Any], asset: str) -> bool:
    return bool((product.get("assets") or {}).get(asset))


def described_values(product: dict[str, Any], asset: str) -> dict[str, float | None]:
    """What the input description says of an asset's stored values: scale, offset, nodata (each
    None when it does not say). Physical value = stored * scale + offset."""
    values = product.get("values") or {}
    given = values.get(asset) if isinstance(values, dict) else None
    if not isinstance(given, dict):
        return {"scale": None, "offset": None, "nodata": None}
    found = {key: _number_or_none(given.get(key)) for key in ("scale", "offset", "nodata")}
    for key in ("scale", "offset"):  # a nodata may be NaN ("nan" in STAC), a scale may not
        number = found[key]
        if number is not None and math.isnan(number):
            found[key] = None
    return found


def product_property(product: dict[str, Any], *names: str) -> Any:
    """The first of ``names`` the product's description holds, in its properties or beside them."""
    properties = product.get("properties") or {}
    for name in names:
        for where in (properties, product):
            if isinstance(where, dict) and where.get(name) is not None:
                return where[name]
    return None


def _number_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return None if math.isinf(number) else number


# --- grids, reading and masking ------------------------------------------------------------------


def _open(path: Path, label: str) -> rasterio.DatasetReader:
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InvalidInput(f"the {label} raster cannot be read: {exc}") from exc


def _bounds_in(roi: dict[str, Any], crs: CRS) -> tuple[float, float, float, float]:
    """The region's lon/lat bounds, carried into crs with densified edges."""
    return rasterio.warp.transform_bounds(
        WGS84, crs, *rasterio.features.bounds(roi), densify_pts=21
    )


def _pixel_window(
    bounds: tuple[float, float, float, float], transform: Affine, width: int, height: int
) -> rasterio.windows.Window | None:
    """Whole pixels of a raster that cover bounds, cut to the raster; None when they miss it."""
    left, bottom, right, top = bounds
    inverse = ~transform
    corners = [inverse * (x, y) for x in (left, right) for y in (bottom, top)]
    cols = [c for c, _ in corners]
    rows = [r for _, r in corners]
    col0 = max(0, math.floor(min(cols)))
    row0 = max(0, math.floor(min(rows)))
    col1 = min(width, math.ceil(max(cols)))
    row1 = min(height, math.ceil(max(rows)))
    if col1 <= col0 or row1 <= row0:
        return None
    return rasterio.windows.Window(col0, row0, col1 - col0, row1 - row0)


def _padded(
    window: rasterio.windows.Window, pixels: int, width: int, height: int
) -> rasterio.windows.Window:
    col0 = max(0, int(window.col_off) - pixels)
    row0 = max(0, int(window.row_off) - pixels)
    col1 = min(width, int(window.col_off + window.width) + pixels)
    row1 = min(height, int(window.row_off + window.height) + pixels)
    return rasterio.windows.Window(col0, row0, col1 - col0, row1 - row0)


def grid_over_roi(path: Path, roi: dict[str, Any], *, label: str) -> Grid:
    """The raster's own pixel grid (CRS and resolution), cropped to the region's bounds."""
    with _open(path, label) as src:
        if src.crs is None:
            raise InvalidInput(f"the {label} raster has no coordinate reference system")
        window = _pixel_window(_bounds_in(roi, src.crs), src.transform, src.width, src.height)
        if window is None:
            raise InvalidInput(f"the {label} raster does not overlap the region of interest")
        return Grid(
            crs=src.crs,
            transform=rasterio.windows.transform(window, src.transform),
            width=int(window.width),
            height=int(window.height),
        )


@dataclass(frozen=True)
class Scaling:
    """How a band's stored numbers become physical values, and where each number came from
    (the input description, the raster's own metadata, or the format's default)."""

    scale: float
    offset: float
    nodata: float | None
    origin: dict[str, str]

    def apply(self, stored: np.ndarray) -> np.ndarray:
        """Physical values as float64, NaN where stored is nodata (or not a finite number)."""
        values = stored.astype("float64")
        invalid = ~np.isfinite(values)
        if self.nodata is not None:
            invalid |= np.isnan(values) if math.isnan(self.nodata) else values == self.nodata
        values = values * self.scale + self.offset
        values[invalid] = np.nan
        return values

    def summary(self) -> dict[str, Any]:
        nodata = None if self.nodata is None or math.isnan(self.nodata) else self.nodata
        return {"scale": self.scale, "offset": self.offset, "nodata": nodata, "from": self.origin}


def band_scaling(
    path: Path,
    *,
    label: str,
    described: dict[str, float | None],
    integer_defaults: dict[str, tuple[float, str]] | None = None,
    band: int = 1,
) -> Scaling:
    """A band's scale, offset and nodata, each from the first that gives it: the input
    description (``described``), the raster's own metadata (its scale/offset pair when it
    records one, its nodata), then, for integer data, ``integer_defaults`` (field: (value,
    origin)). Without any: scale 1, offset 0, no nodata."""
    with _open(path, label) as src:
        recorded_scale = float(src.scales[band - 1]) if src.scales else 1.0
        recorded_offset = float(src.offsets[band - 1]) if src.offsets else 0.0
        raster_nodata = src.nodatavals[band - 1] if src.nodatavals else None
        is_integer = np.issubdtype(np.dtype(src.dtypes[band - 1]), np.integer)
    from_raster: dict[str, float | None] = {"nodata": raster_nodata}
    if (recorded_scale, recorded_offset) != (1.0, 0.0):
        from_raster.update(scale=recorded_scale, offset=recorded_offset)
    defaults = (integer_defaults or {}) if is_integer else {}
    chosen: dict[str, float | None] = {}
    origin: dict[str, str] = {}
    for key, last_resort in (("scale", 1.0), ("offset", 0.0), ("nodata", None)):
        if described.get(key) is not None:
            chosen[key], origin[key] = described[key], "description"
        elif from_raster.get(key) is not None:
            chosen[key], origin[key] = from_raster[key], "raster"
        elif key in defaults:
            chosen[key], origin[key] = defaults[key]
        else:
            chosen[key], origin[key] = last_resort, "none"
    scale, offset = chosen["scale"], chosen["offset"]
    assert scale is not None and offset is not None
    return Scaling(scale=scale, offset=offset, nodata=chosen["nodata"], origin=origin)


def roi_pixels(path: Path, roi: dict[str, Any], *, label: str) -> int:
    """How many pixel centres of the raster's lattice lie in the region, whether the raster
    reaches them or not (the region's part beyond the product counts too)."""
    with _open(path, label) as src:
        if src.crs is None:
            raise InvalidInput(f"the {label} raster has no coordinate reference system")
        left, bottom, right, top = _bounds_in(roi, src.crs)
        inverse = ~src.transform
        corners = [inverse * (x, y) for x in (left, right) for y in (bottom, top)]
        col0 = math.floor(min(c for c, _ in corners))
        row0 = math.floor(min(r for _, r in corners))
        col1 = math.ceil(max(c for c, _ in corners))
        row1 = math.ceil(max(r for _, r in corners))
        lattice = Grid(
            crs=src.crs,
            transform=src.transform * Affine.translation(col0, row0),
            width=max(col1 - col0, 1),
            height=max(row1 - row0, 1),
        )
    return int(roi_mask(roi, lattice).sum())


def physical_scale(
    src: rasterio.DatasetReader, band: int, *, integer_scale: float | None
) -> tuple[float, float]:
    """(scale, offset) to physical units: the raster's own, else integer_scale for integer data."""
    scale = float(src.scales[band - 1]) if src.scales else 1.0
    offset = float(src.offsets[band - 1]) if src.offsets else 0.0
    recorded = scale != 1.0 or offset != 0.0
    is_integer = np.issubdtype(np.dtype(src.dtypes[band - 1]), np.integer)
    if not recorded and is_integer and integer_scale is not None:
        return integer_scale, 0.0
    return scale, offset


def read_onto(
    path: Path,
    grid: Grid,
    *,
    label: str,
    resampling: Resampling,
    band: int = 1,
    valid_range: tuple[float, float] | None = None,
    integer_scale: float | None = None,
    scaling: Scaling | None = None,
) -> np.ndarray:
    """One band in physical units on grid (float64, NaN where there is no valid value).

    Only the part of the raster under the grid is read. Nodata and values outside valid_range
    (in physical units) are dropped before resampling, so they never leak into averages. With
    ``scaling`` its scale, offset and nodata apply; without, the raster's own (integer_scale for
    integer data that records none).
    """
    with _open(path, label) as src:
        window, src_transform, src_crs = _window_under(src, grid, label)
        if scaling is not None:
            values = scaling.apply(src.read(band, window=window))
        else:
            data = src.read(band, window=window, masked=True)
            scale, offset = physical_scale(src, band, integer_scale=integer_scale)
            values = data.astype("float64").filled(np.nan) * scale + offset
    if valid_range is not None:
        low, high = valid_range
        with np.errstate(invalid="ignore"):
            values[(values < low) | (values > high)] = np.nan

    aligned = _aligned_slice(src_transform, src_crs, values.shape, grid)
    if aligned is not None:
        return values[aligned].copy()
    destination = np.full(grid.shape, np.nan, dtype="float64")
    rasterio.warp.reproject(
        source=values,
        destination=destination,
        src_transform=src_transform,
        src_crs=src_crs,
        src_nodata=np.nan,
        dst_transform=grid.transform,
        dst_crs=grid.crs,
        dst_nodata=np.nan,
        resampling=resampling,
    )
    return destination


def read_under(
    path: Path, grid: Grid, *, label: str, band: int = 1
) -> tuple[np.ndarray, Affine, CRS]:
    """The raster's own pixels under grid (with a margin of two), as stored but float64 with NaN
    at its nodata, and their transform and CRS: for resampling a computation of its own (a sum
    of counts, say) rather than ``read_onto``'s."""
    with _open(path, label) as src:
        window, src_transform, src_crs = _window_under(src, grid, label)
        data = src.read(band, window=window, masked=True)
    return data.astype("float64").filled(np.nan), src_transform, src_crs


def read_classes_onto(
    path: Path, grid: Grid, *, label: str, fill: int, band: int = 1
) -> np.ndarray:
    """A band of codes (classes, bit flags) on grid, as stored, by nearest neighbour; ``fill``
    where the raster has nothing (outside it, or at its nodata)."""
    with _open(path, label) as src:
        if not np.issubdtype(np.dtype(src.dtypes[band - 1]), np.integer):
            raise InvalidInput(f"the {label} raster does not hold integer codes")
        window, src_transform, src_crs = _window_under(src, grid, label)
        codes = src.read(band, window=window).astype("int32")
        nodata = src.nodatavals[band - 1] if src.nodatavals else None
    if nodata is not None and math.isfinite(nodata):
        codes[codes == int(nodata)] = fill
    aligned = _aligned_slice(src_transform, src_crs, codes.shape, grid)
    if aligned is not None:
        return codes[aligned].copy()
    destination = np.full(grid.shape, fill, dtype="int32")
    rasterio.warp.reproject(
        source=codes,
        destination=destination,
        src_transform=src_transform,
        src_crs=src_crs,
        src_nodata=fill,
        dst_transform=grid.transform,
        dst_crs=grid.crs,
        dst_nodata=fill,
        resampling=Resampling.nearest,
    )
    return destination


def _window_under(
    src: rasterio.DatasetReader, grid: Grid, label: str
) -> tuple[rasterio.windows.Window, Affine, CRS]:
    """The window of src under grid, with a margin of two pixels, its transform and CRS."""
    if src.crs is None:
        raise InvalidInput(f"the {label} raster has no coordinate reference system")
    grid_bounds = rasterio.transform.array_bounds(grid.height, grid.width, grid.transform)
    bounds = rasterio.warp.transform_bounds(grid.crs, src.crs, *grid_bounds, densify_pts=21)
    window = _pixel_window(bounds, src.transform, src.width, src.height)
    if window is None:
        raise InvalidInput(f"the {label} raster does not overlap the region of interest")
    # A margin of source pixels, so resampling kernels at the grid's edge see their neighbours.
    window = _padded(window, 2, src.width, src.height)
    return window, rasterio.windows.transform(window, src.transform), src.crs


def _aligned_slice(
    transform: Affine, crs: CRS, shape: tuple[int, int], grid: Grid
) -> tuple[slice, slice] | None:
    """The slice of an array (on transform) that is exactly grid, when grid is a subset of it."""
    if crs != grid.crs:
        return None
    same_pixels = all(
        math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
        for a, b in zip(
            transform[:2] + transform[3:5], grid.transform[:2] + grid.transform[3:5], strict=True
        )
    )
    if not same_pixels:
        return None
    col, row = ~transform * (grid.transform.c, grid.transform.f)
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    col0, row0 = round(col), round(row)
    if col0 < 0 or row0 < 0 or row0 + grid.height > shape[0] or col0 + grid.width > shape[1]:
        return None
    return (slice(row0, row0 + grid.height), slice(col0, col0 + grid.width))


def roi_mask(roi: dict[str, Any], grid: Grid) -> np.ndarray:
    """True for the grid's pixels whose centre lies inside the region."""
    geometry = rasterio.warp.transform_geom(WGS84, grid.crs, roi)
    return rasterio.features.geometry_mask(
        [geometry], out_shape=grid.shape, transform=grid.transform, invert=True
    )


def too_few_valid(
    valid: int, region: int, minimum: float, masked: dict[str, int], *, what: str
) -> str:
    """The reason of an INVALID for too few valid pixels, with what masked the others."""
    causes = ", ".join(
        f"{count} {name.replace('_', ' ')}"
        for name, count in sorted(masked.items(), key=lambda item: -item[1])
        if count
    )
    share = valid / region if region else 0.0
    return (
        f"only {valid} of the region's {region} pixels ({share:.1%}) {what},"
        f" fewer than min_valid_share ({minimum:.0%}); masked: {causes or 'none'}"
    )


# --- outputs -------------------------------------------------------------------------------------


def write_cog(path: Path, values: np.ndarray, grid: Grid, *, description: str, units: str) -> None:
    """A single-band float32 Cloud-Optimized GeoTIFF; NaN becomes OUTPUT_NODATA.

    Always at least one internal overview level, however small the raster.
    """
    data = np.where(np.isfinite(values), values, OUTPUT_NODATA).astype("float32")
    longest = max(grid.width, grid.height)
    levels = max(1, math.ceil(math.log2(longest / COG_BLOCKSIZE))) if longest > 1 else 1
    profile = {
        "driver": "COG",
        "width": grid.width,
        "height": grid.height,
        "count": 1,
        "dtype": "float32",
        "crs": grid.crs,
        "transform": grid.transform,
        "nodata": OUTPUT_NODATA,
        "BLOCKSIZE": COG_BLOCKSIZE,
        "COMPRESS": "DEFLATE",
        "PREDICTOR": "YES",
        "OVERVIEW_RESAMPLING": "AVERAGE",
        "OVERVIEW_COUNT": levels,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
        dst.set_band_description(1, description)
        dst.set_band_unit(1, units)


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")


def finite_or_none(value: float) -> float | None:
    """A statistic for JSON: None where it is undefined (no pixels)."""
    return float(value) if math.isfinite(value) else None
