"""air_quality: how often and where a region's air exceeds the WHO 2021 guidelines. Runs inside
its container.

Reads the CAMS European air quality ensemble analysis staged in /job (netCDF: one variable per
pollutant, ``no2_conc``, ``pm2p5_conc``, ``pm10_conc``, ``o3_conc``, of dimensions (time, level,
latitude, longitude), hourly surface concentrations in µg/m3 on a 0.1-degree lon/lat grid; see
read_fields for the layout it accepts). On the product's grid over the cells the region
touches, for the chosen pollutant and each of the order's UTC days:

- the daily value: the mean of the day's hourly fields (00:00 to 23:00) for NO2, PM2.5 and PM10,
  given at least min_valid_hours of them; for O3 the highest 8-hour running mean whose last
  hour falls on the day (each mean of at least 6 of its 8 hours, the day given at least
  min_valid_hours of its 24 means), as EU Directive 2008/50/EC assigns 8-hour means to the day
  they end on;
- a day exceeds when its value is above the guideline (WHO 2021: NO2 25, PM2.5 15, PM10 45
  µg/m3 as 24-hour means, O3 100 µg/m3 as the 8-hour mean), or guideline_ugm3.

Each cell is weighed by the area of it the region covers (measured on a 16 x 16 subgrid, in km2
at the cell's latitude), so a region smaller than a cell still has its air. Writes
/job/outputs/air_quality.tif (bands: period mean of the daily values, days above the guideline,
days with a value, highest daily value) and statistics.json. Exit 0 on success, 3 when the
inputs cannot give a result (see rasterkit), 2 for bad arguments.
"""

import math
import re
import sys
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.errors
import rasterio.features
import rasterio.warp
import rasterio.windows
import rasterkit as rk
from affine import Affine

APP_DIR = Path(__file__).resolve().parent
# µg/m3: below zero or above the worst dust storm is a fill value, not air.
CONCENTRATION_RANGE = (0.0, 10000.0)
NETCDF_DEFAULT_FILL = 9.9e36  # netCDF's default fill of a float variable is 9.96921e36
O3_WINDOW_HOURS, O3_MIN_HOURS = 8, 6
COVERAGE_SUBCELLS = 16
# Float32 coordinates put a 0.1-degree grid's edges a few 1e-6 degrees off: snapped to 1e-4.
SNAP_DEGREES, SNAP_TOLERANCE = 1e-4, 2e-5
MICROGRAMS_PER_M3 = {"ug/m3", "ugm-3", "ug.m-3", "ugm^-3", "microgram/m3", "micrograms/m3"}
BANDS = (
    ("mean_ugm3", "period mean of the daily values (µg/m3)", "µg/m3"),
    ("exceedance_days", "days above the guideline", "days"),
    ("valid_days", "days with a daily value", "days"),
    ("max_daily_ugm3", "highest daily value (µg/m3)", "µg/m3"),
)


@dataclass(frozen=True)
class Pollutant:
    variable: str
    label: str
    guideline: float  # WHO 2021 air quality guideline, µg/m3
    averaging: str

    @property
    def is_ozone(self) -> bool:
        return self.variable == "o3_conc"


POLLUTANTS = {
    "no2": Pollutant("no2_conc", "NO2", 25.0, "24-hour mean"),
    "pm2p5": Pollutant("pm2p5_conc", "PM2.5", 15.0, "24-hour mean"),
    "pm10": Pollutant("pm10_conc", "PM10", 45.0, "24-hour mean"),
    "o3": Pollutant("o3_conc", "O3", 100.0, "daily maximum 8-hour mean"),
}


@dataclass(frozen=True)
class Fields:
    """One pollutant's hourly fields over the region: values (fields, rows, cols) in µg/m3 on
    the lattice of the product's cells that the region's box touches (see region_lattice), NaN
    where there is none; each field's time (UTC); the product's whole grid, and where the
    lattice lies on it (offset: row, col)."""

    values: np.ndarray
    times: list[datetime]
    grid: rk.Grid
    lattice: rk.Grid
    offset: tuple[int, int]
    units: str
    attributes: dict[str, str]


def main() -> int:
    warnings.filterwarnings("ignore", category=rasterio.errors.NotGeoreferencedWarning)
    job = rk.load_job()
    params = rk.parse_params(rk.load_schema(APP_DIR), job, sys.argv[1:])
    pollutant = POLLUTANTS[str(params["pollutant"])]
    given = params.get("guideline_ugm3")
    guideline = float(given) if given is not None else pollutant.guideline
    if guideline <= 0:
        raise rk.InvalidInput(f"guideline_ugm3 ({guideline:g}) must be above 0")
    min_valid_hours = int(params["min_valid_hours"])
    min_valid_share = float(params["min_valid_share"])
    roi = rk.read_roi(job)
    first_day, last_day = order_days(job)
    days = [first_day + timedelta(days=n) for n in range((last_day - first_day).days + 1)]

    rk.progress(10, "reading the concentrations")
    path = rk.input_path(job, "concentrations", "concentrations")
    product = rk.input_product(job, "concentrations")
    fields = read_fields(path, pollutant.variable, roi=roi)

    rk.progress(40, "computing the daily values")
    lattice = fields.lattice
    hourly, hours_found = hourly_series(fields, first_day, len(days))
    daily = daily_values(hourly, ozone=pollutant.is_ozone, min_valid_hours=min_valid_hours)
    weights = cell_weights(roi, lattice)
    in_region = weights > 0
    inside_product = has_product(fields.grid, lattice, fields.offset)

    rk.progress(70, "counting the days above the guideline")
    valid = np.isfinite(daily) & in_region
    total = float(weights.sum()) * len(days)
    valid_share = float((valid * weights).sum()) / total if total else 0.0
    masked = masked_shares(
        weights, inside_product=inside_product, hours_found=hours_found, valid=valid, total=total
    )
    if valid_share <= 0 or valid_share < min_valid_share:
        raise rk.InvalidInput(
            too_little_data(
                valid_share,
                min_valid_share,
                masked,
                label=pollutant.label,
                days=len(days),
                cells=int(in_region.sum()),
            )  # fmt: skip
        )
    bands = cell_bands(daily, in_region, guideline)
    statistics = _statistics(
        job, params, product, pollutant=pollutant, guideline=guideline, days=days, daily=daily,
        bands=bands, weights=weights, grid=lattice, fields=fields, valid_share=valid_share,
        masked=masked,
    )  # fmt: skip

    rk.progress(90, "writing outputs")
    outputs = rk.JOB_DIR / "outputs"
    write_bands(outputs / "air_quality.tif", bands, lattice)
    rk.write_json(outputs / "statistics.json", statistics)
    rk.progress(100, "done")
    print(
        f"{pollutant.label}: region mean {statistics['mean_ugm3']:.1f} µg/m3,"
        f" {statistics['exceedance_days']} of {len(days)} day(s) above {guideline:g} µg/m3"
        f" somewhere in the region, {statistics['exceedance_area_share']:.0%} of its area"
        " on at least one day"
    )
    return 0


# --- the order ------------------------------------------------------------------------------------


def order_days(job: dict[str, Any]) -> tuple[date, date]:
    """The order's first and last day (UTC)."""
    try:
        first = date.fromisoformat(str(job["start_date"])[:10])
        last = date.fromisoformat(str(job.get("end_date") or job["start_date"])[:10])
    except (KeyError, ValueError) as exc:
        raise rk.InvalidInput("params.json has no valid start_date and end_date") from exc
    if last < first:
        raise rk.InvalidInput(f"end_date {last} is before start_date {first}")
    return first, last


# --- reading the CAMS netCDF ----------------------------------------------------------------------


def read_fields(path: Path, variable: str, *, roi: dict[str, Any]) -> Fields:
    """One variable's fields through GDAL's netCDF driver: every band (one per time and level)
    of the lowest level (the surface), its time from the time axis's units.

    The ensemble's files give ``time`` in ``hours`` from the first day's midnight, the day in
    its long_name (``ANALYSIS time from 20240715``, or FORECAST) and in the global attribute
    named ANALYSIS or FORECAST (``Europe, 20240715+[0H_23H]``); CF units (``hours since
    2024-07-15 00:00:00``) are read too. Longitudes may run from 0 to 360 (the ensemble's files:
    335.05 to 44.95); the grid is put on the side of the region. No values: the variable's
    _FillValue or missing_value, netCDF's default fill, NaN, and anything outside
    CONCENTRATION_RANGE. Only the window of the region's cells is read: a file of the whole
    domain for a month holds 700 x 420 cells an hour."""
    name = _subdataset(path, variable)
    try:
        src = rasterio.open(name)
    except rasterio.errors.RasterioIOError as exc:
        raise rk.InvalidInput(f"the {variable} variable cannot be read: {exc}") from exc
    with src:
        tags = src.tags()
        crs = src.crs
        if crs is None:
            if not _is_lonlat(tags):
                raise rk.InvalidInput(f"{variable} has no coordinate reference system")
            crs = rk.WGS84
        if src.transform.is_identity:  # GDAL found no regular grid in the coordinates
            raise rk.InvalidInput(
                f"{variable} is not on a regular lon/lat grid (a single row or column of cells"
                " cannot tell its spacing)"
            )
        transform = _snapped(src.transform)
        time_name, level_names = _dimensions(tags)
        reference, step = _time_axis(tags, time_name, variable)
        keep: list[int] = []
        times: list[datetime] = []
        levels: dict[int, float] = {}
        for band in range(1, src.count + 1):
            band_tags = src.tags(band)
            value = _number(band_tags.get(f"NETCDF_DIM_{time_name}"))
            if value is None:
                raise rk.InvalidInput(f"band {band} of {variable} has no {time_name}")
            levels[band] = sum(
                abs(_number(band_tags.get(f"NETCDF_DIM_{n}")) or 0.0) for n in level_names
            )
            keep.append(band)
            times.append(reference + value * step)
        surface = min(levels.values()) if levels else 0.0
        chosen = [(b, t) for b, t in zip(keep, times) if levels[b] == surface]
        grid = _beside(rk.Grid(crs, transform, src.width, src.height), roi)
        lattice, (row0, col0) = region_lattice(grid, roi)
        values = np.full((len(chosen), lattice.height, lattice.width), np.nan)
        # the part of the lattice that the product holds, in the product's rows and columns
        r0, c0 = max(row0, 0), max(col0, 0)
        r1 = min(row0 + lattice.height, grid.height)
        c1 = min(col0 + lattice.width, grid.width)
        if r1 > r0 and c1 > c0:
            window = rasterio.windows.Window(c0, r0, c1 - c0, r1 - r0)
            data = src.read([b for b, _ in chosen], window=window, masked=True)
            values[:, r0 - row0 : r1 - row0, c0 - col0 : c1 - col0] = data.astype("float64").filled(
                np.nan
            )
        missing = _number(tags.get(f"{variable}#missing_value"))
    if missing is not None:
        values[values == missing] = np.nan
    low, high = CONCENTRATION_RANGE
    with np.errstate(invalid="ignore"):
        values[(values < low) | (values > high) | (values >= NETCDF_DEFAULT_FILL)] = np.nan
    units = _units(tags.get(f"{variable}#units"), variable)
    attributes = {
        key.split("#", 1)[1]: value
        for key, value in tags.items()
        if key.startswith("NC_GLOBAL#")
        and key.split("#", 1)[1] in ("source", "history", "institution", "title")
    }
    times = [t for _, t in chosen]
    return Fields(values, times, grid, lattice, (row0, col0), units, attributes)


def _subdataset(path: Path, variable: str) -> str:
    """GDAL's name of the variable in the file (a file of one variable has no subdatasets)."""
    try:
        with rasterio.open(path) as top:
            names = [name.rsplit(":", 1)[-1] for name in top.subdatasets]
            if not names and top.count:
                names = [top.tags(1).get("NETCDF_VARNAME", "")]
    except rasterio.errors.RasterioIOError as exc:
        raise rk.InvalidInput(f"the concentrations file cannot be read as netCDF: {exc}") from exc
    if variable not in names:
        found = ", ".join(sorted(n for n in names if n)) or "none"
        raise rk.InvalidInput(
            f"the concentrations product has no {variable} variable (it has: {found})"
        )
    return f'NETCDF:"{path}":{variable}'


def _is_lonlat(tags: dict[str, str]) -> bool:
    units = {value.strip().lower() for key, value in tags.items() if key.endswith("#units")}
    return bool(units & {"degrees_east", "degree_east", "degrees_e"}) and bool(
        units & {"degrees_north", "degree_north", "degrees_n"}
    )


def _snapped(transform: Affine) -> Affine:
    def snap(value: float) -> float:
        nearest = round(value / SNAP_DEGREES) * SNAP_DEGREES
        return nearest if abs(value - nearest) < SNAP_TOLERANCE else value

    return Affine(
        snap(transform.a),
        transform.b,
        snap(transform.c),
        transform.d,
        snap(transform.e),
        snap(transform.f),
    )


def _dimensions(tags: dict[str, str]) -> tuple[str, list[str]]:
    """The time dimension's name and the others' (levels) of a variable's bands."""
    extra = tags.get("NETCDF_DIM_EXTRA", "").strip("{}")
    names = [n.strip() for n in extra.split(",") if n.strip()]
    times = [n for n in names if "time" in n.lower()]
    if not times:
        raise rk.InvalidInput("the concentrations have no time dimension")
    return times[0], [n for n in names if n != times[0]]


_CF_TIME = re.compile(r"^\s*(second|minute|hour|day)s?\s+since\s+(\S+)(?:[ T](\S+))?", re.I)
_FROM_DAY = re.compile(r"(?:ANALYSIS|FORECAST)\s+time\s+from\s+(\d{8})", re.I)
_SPAN = re.compile(r"(\d{8})\+\[")
_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def _time_axis(tags: dict[str, str], name: str, variable: str) -> tuple[datetime, timedelta]:
    """The time axis's reference moment and unit."""
    units = tags.get(f"{name}#units", "").strip()
    cf = _CF_TIME.match(units)
    if cf:
        unit, day, clock = cf.group(1).lower(), cf.group(2), cf.group(3) or "00:00:00"
        try:
            moment = datetime.fromisoformat(f"{day}T{clock.rstrip('Z')}")
        except ValueError as exc:
            raise rk.InvalidInput(f"the time axis's units cannot be read: {units!r}") from exc
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        return moment, timedelta(seconds=_UNITS[unit])
    unit = units.lower().rstrip("s")
    if unit in _UNITS:
        found = _FROM_DAY.search(tags.get(f"{name}#long_name", ""))
        if not found:
            spans = [tags.get(f"NC_GLOBAL#{key}", "") for key in ("ANALYSIS", "FORECAST")]
            found = next((m for m in map(_SPAN.search, spans) if m), None)
        if found:
            moment = datetime.strptime(found.group(1), "%Y%m%d").replace(tzinfo=UTC)
            return moment, timedelta(seconds=_UNITS[unit])
    raise rk.InvalidInput(
        f"the times of {variable} cannot be told: its time axis says {units or 'no units'!r}"
        " and names no day"
    )


def _units(units: str | None, variable: str) -> str:
    if units is None:
        return "µg/m3 (assumed: the file gives no units)"
    plain = units.strip().lower().replace("µ", "u").replace("μ", "u").replace(" ", "")
    plain = plain.replace("**", "^").replace("³", "3")
    if plain not in MICROGRAMS_PER_M3:
        raise rk.InvalidInput(f"{variable} is in {units!r}, not in µg/m3")
    return units


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _beside(grid: rk.Grid, roi: dict[str, Any]) -> rk.Grid:
    """A lon/lat grid moved by 360 degrees when that puts it where the region is (longitudes
    from 0 to 360 against a region west of Greenwich)."""
    if not grid.crs.is_geographic:
        return grid
    west, _, east, _ = rasterio.features.bounds(roi)
    left = grid.transform.c
    right = left + grid.transform.a * grid.width

    def overlap(shift: float) -> float:
        return min(east, right + shift) - max(west, left + shift)

    shift = max((0.0, -360.0, 360.0), key=overlap)
    if shift == 0.0 or overlap(shift) <= overlap(0.0):
        return grid
    return rk.Grid(grid.crs, Affine.translation(shift, 0) * grid.transform, grid.width, grid.height)


# --- the region on the product's grid -------------------------------------------------------------


def region_lattice(grid: rk.Grid, roi: dict[str, Any]) -> tuple[rk.Grid, tuple[int, int]]:
    """The cells of the product's lattice that the region's bounding box touches (beyond the
    product too; at least 2 x 2), and the lattice's offset (row, col) from the product's first cell."""
    left, bottom, right, top = rasterio.warp.transform_bounds(
        rk.WGS84, grid.crs, *rasterio.features.bounds(roi), densify_pts=21
    )
    inverse = ~grid.transform
    corners = [inverse * (x, y) for x in (left, right) for y in (bottom, top)]
    col0 = math.floor(min(c for c, _ in corners) + 1e-9)
    row0 = math.floor(min(r for _, r in corners) + 1e-9)
    # At least 2 x 2 cells (the others outside the region): a GeoTIFF of one pixel can have no
    # overview, and a Cloud-Optimized GeoTIFF here always has one.
    col1 = max(math.ceil(max(c for c, _ in corners) - 1e-9), col0 + 2)
    row1 = max(math.ceil(max(r for _, r in corners) - 1e-9), row0 + 2)
    lattice = rk.Grid(
        crs=grid.crs,
        transform=grid.transform * Affine.translation(col0, row0),
        width=col1 - col0,
        height=row1 - row0,
    )
    return lattice, (row0, col0)


def has_product(grid: rk.Grid, lattice: rk.Grid, offset: tuple[int, int]) -> np.ndarray:
    """True for the lattice's cells that the product's grid holds."""
    row0, col0 = offset
    rows = np.arange(lattice.height)[:, None] + row0
    cols = np.arange(lattice.width)[None, :] + col0
    return (rows >= 0) & (rows < grid.height) & (cols >= 0) & (cols < grid.width)


def cell_weights(roi: dict[str, Any], lattice: rk.Grid) -> np.ndarray:
    """The area (km2) of each cell that the region covers: the share of a 16 x 16 subgrid of
    the cell whose centres lie in the region, times the cell's area at its latitude."""
    n = COVERAGE_SUBCELLS
    fine = rk.Grid(
        lattice.crs,
        lattice.transform * Affine.scale(1 / n),
        lattice.width * n,
        lattice.height * n,
    )
    inside = rk.roi_mask(roi, fine).astype("float64")
    share = inside.reshape(lattice.height, n, lattice.width, n).mean(axis=(1, 3))
    return share * cell_area_km2(lattice)


def cell_area_km2(grid: rk.Grid) -> np.ndarray:
    """Each cell's area in km2: on a lon/lat grid from the WGS84 lengths of a degree of
    latitude and longitude at the cell's middle latitude (the usual series)."""
    width, height = grid.resolution
    if not grid.crs.is_geographic:
        return np.full(grid.shape, width * height / 1e6)
    rows = np.arange(grid.height) + 0.5
    latitudes = np.array([(grid.transform * (0.5, r))[1] for r in rows])
    phi = np.radians(latitudes)
    north = 111_132.92 - 559.82 * np.cos(2 * phi) + 1.175 * np.cos(4 * phi)
    east = 111_412.84 * np.cos(phi) - 93.5 * np.cos(3 * phi)
    areas = height * north * width * east / 1e6
    return np.repeat(areas[:, None], grid.width, axis=1)


# --- hours to days --------------------------------------------------------------------------------


def hourly_series(fields: Fields, first_day: date, days: int) -> tuple[np.ndarray, np.ndarray]:
    """The fields on the lattice, one per hour from 7 hours before the first day's midnight to
    the last day's 23:00 (NaN where there is none; of two fields of one hour, the first), and
    for each day whether the product has any field of it."""
    lead = O3_WINDOW_HOURS - 1
    start = datetime.combine(first_day, datetime.min.time(), UTC) - timedelta(hours=lead)
    lattice = fields.lattice
    hourly = np.full((lead + 24 * days, lattice.height, lattice.width), np.nan)
    filled = np.zeros(hourly.shape[0], dtype=bool)
    found_days = np.zeros(days, dtype=bool)
    for index, moment in enumerate(fields.times):
        hours = (moment - start).total_seconds() / 3600
        hour = round(hours)
        if abs(hours - hour) > 1 / 60:
            raise rk.InvalidInput(
                f"the fields are not hourly: one is valid at {moment:%Y-%m-%d %H:%M}"
            )
        if not 0 <= hour < hourly.shape[0] or filled[hour]:
            continue
        if hour >= lead:
            found_days[(hour - lead) // 24] = True
        hourly[hour] = fields.values[index]
        filled[hour] = True
    return hourly, found_days


def running_means(hourly: np.ndarray, *, window: int, min_hours: int) -> np.ndarray:
    """Means over ``window`` consecutive hours, given at least ``min_hours`` values: element j
    ends at hour j + window - 1."""
    finite = np.isfinite(hourly)
    zeros = np.zeros((1, *hourly.shape[1:]))
    sums = np.concatenate([zeros, np.cumsum(np.where(finite, hourly, 0.0), axis=0)])
    counts = np.concatenate([zeros, np.cumsum(finite, axis=0)])
    total = sums[window:] - sums[:-window]
    count = counts[window:] - counts[:-window]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count >= min_hours, total / count, np.nan)


def daily_values(hourly: np.ndarray, *, ozone: bool, min_valid_hours: int) -> np.ndarray:
    """The daily values (days, rows, cols), NaN where a day has too few hours: the 24-hour mean,
    or for ozone the daily maximum 8-hour running mean (the means that end on the day).
    ``hourly`` starts 7 hours before the first day (see hourly_series)."""
    lead = O3_WINDOW_HOURS - 1
    if ozone:
        hours = running_means(hourly, window=O3_WINDOW_HOURS, min_hours=O3_MIN_HOURS)
    else:
        hours = hourly[lead:]
    days = hours.shape[0] // 24
    by_day = hours[: days * 24].reshape(days, 24, *hours.shape[1:])
    count = np.isfinite(by_day).sum(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN days
        value = np.nanmax(by_day, axis=1) if ozone else np.nanmean(by_day, axis=1)
    return np.where(count >= min_valid_hours, value, np.nan)


def cell_bands(daily: np.ndarray, in_region: np.ndarray, guideline: float) -> dict[str, np.ndarray]:
    """Per cell: the mean of its daily values, the days above the guideline, the days with a
    value and the highest daily value; NaN outside the region (and where it has no day)."""
    has = np.isfinite(daily)
    valid_days = has.sum(axis=0).astype("float64")
    some = (valid_days > 0) & in_region
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(daily, axis=0)
        highest = np.nanmax(daily, axis=0)
        above = (has & (daily > guideline)).sum(axis=0).astype("float64")
    return {
        "mean_ugm3": np.where(some, mean, np.nan),
        "exceedance_days": np.where(some, above, np.nan),
        "valid_days": np.where(in_region, valid_days, np.nan),
        "max_daily_ugm3": np.where(some, highest, np.nan),
    }


def masked_shares(
    weights: np.ndarray,
    *,
    inside_product: np.ndarray,
    hours_found: np.ndarray,
    valid: np.ndarray,
    total: float,
) -> dict[str, float]:
    """What kept the region's area-days from a daily value, each as a share of them all: cells
    beyond the product, days the product does not reach, days with too few hours."""
    if not total:
        return {}
    days = len(hours_found)
    beyond = float(weights[~inside_product].sum()) * days
    outside_days = float(weights[inside_product].sum()) * int((~hours_found).sum())
    day_reached = hours_found[:, None, None] & inside_product[None]
    too_few = float(((~valid & day_reached) * weights[None]).sum())
    return {
        "outside_the_product": beyond / total,
        "days_outside_the_product": outside_days / total,
        "too_few_hours": too_few / total,
    }


def too_little_data(
    share: float, minimum: float, masked: dict[str, float], *, label: str, days: int, cells: int
) -> str:
    causes = ", ".join(
        f"{value:.1%} {name.replace('_', ' ')}"
        for name, value in sorted(masked.items(), key=lambda item: -item[1])
        if value > 0
    )
    return (
        f"only {share:.1%} of the region's area and days ({days} day(s), {cells} cell(s) of the"
        f" product's grid) have a daily {label} value, fewer than min_valid_share"
        f" ({minimum:.0%}); missing: {causes or 'none'}"
    )


# --- statistics and outputs -----------------------------------------------------------------------


def _statistics(
    job: dict[str, Any],
    params: dict[str, Any],
    product: dict[str, Any],
    *,
    pollutant: Pollutant,
    guideline: float,
    days: list[date],
    daily: np.ndarray,
    bands: dict[str, np.ndarray],
    weights: np.ndarray,
    grid: rk.Grid,
    fields: Fields,
    valid_share: float,
    masked: dict[str, float],
) -> dict[str, Any]:
    with_data = np.isfinite(bands["mean_ugm3"]) & (weights > 0)
    w = np.where(with_data, weights, 0.0)
    area = float(w.sum())
    exceeding = with_data & (bands["exceedance_days"] >= 1)
    per_day = [_day_summary(day, daily[n], weights, guideline) for n, day in enumerate(days)]
    exceedance_dates = [
        d["date"] for d in per_day if d["max_ugm3"] is not None and d["max_ugm3"] > guideline
    ]
    scored = [d for d in per_day if d["mean_ugm3"] is not None]
    worst = max(scored, key=lambda d: d["mean_ugm3"]) if scored else None
    region_daily = np.where(np.isfinite(daily) & (weights > 0)[None], daily, -np.inf)
    day, row, col = np.unravel_index(int(np.argmax(region_daily)), region_daily.shape)
    lon, lat = grid.transform * (col + 0.5, row + 0.5)
    return {
        "app_id": "air_quality",
        "order_id": job.get("order_id"),
        "pollutant": str(params["pollutant"]),
        "variable": pollutant.variable,
        "units": "µg/m3",
        "units_in_file": fields.units,
        "daily_value": pollutant.averaging,
        "guideline_ugm3": guideline,
        "guideline_source": (
            f"WHO 2021 air quality guideline ({pollutant.averaging})"
            if params.get("guideline_ugm3") is None
            else "guideline_ugm3 of the order"
        ),
        "who_2021_guideline_ugm3": pollutant.guideline,
        "period": {"start": days[0].isoformat(), "end": days[-1].isoformat(), "days": len(days)},
        "mean_ugm3": float((bands["mean_ugm3"] * w)[with_data].sum() / area),
        "max_daily_ugm3": float(region_daily[day, row, col]),
        "max_daily_at": {"date": days[day].isoformat(), "lon": round(lon, 4), "lat": round(lat, 4)},
        "exceedance_days": len(exceedance_dates),
        "exceedance_dates": exceedance_dates,
        "mean_exceedance_days": float((bands["exceedance_days"] * w)[with_data].sum() / area),
        "max_exceedance_days": int(np.nanmax(bands["exceedance_days"][with_data])),
        "exceedance_area_share": float(weights[exceeding].sum()) / area,
        "exceedance_area_km2": float(weights[exceeding].sum()),
        "worst_day": worst,
        "daily": per_day,
        "valid_share": valid_share,
        "min_valid_share": float(params["min_valid_share"]),
        "min_valid_hours": int(params["min_valid_hours"]),
        "masked": masked,
        "region_area_km2": float(weights.sum()),
        "region_cells": int((weights > 0).sum()),
        "cells_with_data": int(with_data.sum()),
        "bands": [name for name, _, _ in BANDS],
        "parameters": params,
        "crs": grid.crs.to_string(),
        "pixel_size": list(grid.resolution),
        "source": fields.attributes.get("source"),
        "institution": fields.attributes.get("institution"),
        "inputs": {
            "concentrations": product.get("identifier"),
            "collection": product.get("collection"),
        },
    }


def _day_summary(
    day: date, values: np.ndarray, weights: np.ndarray, guideline: float
) -> dict[str, Any]:
    """One day over the region: the area-weighted mean, the highest cell, the share of the
    area with a value that is above the guideline, and the share that has a value."""
    has = np.isfinite(values) & (weights > 0)
    area = float(weights[has].sum())
    summary: dict[str, Any] = {"date": day.isoformat(), "valid_share": area / float(weights.sum())}
    if not area:
        return {**summary, "mean_ugm3": None, "max_ugm3": None, "exceedance_area_share": None}
    return {
        **summary,
        "mean_ugm3": float((values[has] * weights[has]).sum() / area),
        "max_ugm3": float(values[has].max()),
        "exceedance_area_share": float(weights[has & (values > guideline)].sum()) / area,
    }


def write_bands(path: Path, bands: dict[str, np.ndarray], grid: rk.Grid) -> None:
    """The bands as a float32 Cloud-Optimized GeoTIFF (NaN becomes rasterkit's OUTPUT_NODATA),
    each with its name, description and unit; at least one internal overview."""
    data = np.stack([bands[name] for name, _, _ in BANDS])
    data = np.where(np.isfinite(data), data, rk.OUTPUT_NODATA).astype("float32")
    longest = max(grid.width, grid.height)
    levels = max(1, math.ceil(math.log2(longest / rk.COG_BLOCKSIZE))) if longest > 1 else 1
    profile = {
        "driver": "COG",
        "width": grid.width,
        "height": grid.height,
        "count": len(BANDS),
        "dtype": "float32",
        "crs": grid.crs,
        "transform": grid.transform,
        "nodata": rk.OUTPUT_NODATA,
        "BLOCKSIZE": rk.COG_BLOCKSIZE,
        "COMPRESS": "DEFLATE",
        "PREDICTOR": "YES",
        "OVERVIEW_RESAMPLING": "NEAREST",
        "OVERVIEW_COUNT": levels,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for index, (name, description, unit) in enumerate(BANDS, start=1):
            dst.set_band_description(index, description)
            dst.set_band_unit(index, unit)
            dst.update_tags(index, name=name)


if __name__ == "__main__":
    sys.exit(rk.run(main))
