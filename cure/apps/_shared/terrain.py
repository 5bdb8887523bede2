"""Terrain analysis on a digital elevation model, for the water and flood apps: depressions
filled, D8 flow directions and flow accumulation, slope.

Plain numpy (runs inside an app image on Debian's python3-numpy). Methods:
- depressions are filled by priority-flood with an epsilon gradient (Barnes, Lehman and Mulla,
  2014, "Priority-Flood: An optimal depression-filling and watershed-labeling algorithm for
  digital elevation models", Computers & Geosciences 62): every cell drains to the edge of the
  raster (or of its valid data) through cells no higher than itself, flats included;
- flow follows the steepest descent to one of the eight neighbours (D8, O'Callaghan and Mark,
  1984), the drop divided by the distance to it (in metres where the pixel's size is given, so
  the oblong pixels of a geographic grid do not bend the flow);
- flow accumulation counts, for each cell, the cells whose flow passes through it, itself
  included (so a cell nothing drains into has 1);
- slope is the angle of the steepest plane from central differences, one-sided next to an edge
  or a cell without data, zero along an axis with one cell.

Cells without data (``valid`` False) take no part: flow never enters them, and a valid cell next
to one (or on the raster's edge) may drain out of the raster there.
"""

import heapq
import math

import numpy as np

# The eight neighbours as (row, column) steps.
NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
OUTLET = -1  # a cell whose flow leaves the raster (or its valid data)


def _edge_cells(valid: np.ndarray) -> np.ndarray:
    """Valid cells on the raster's border or next to a cell without data."""
    rows, cols = valid.shape
    padded = np.pad(valid, 1, constant_values=False)
    surrounded = np.ones_like(valid)
    for dr, dc in NEIGHBOURS:
        surrounded &= padded[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols]
    return valid & ~surrounded


def fill_depressions(dem: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """The DEM with every depression filled to its spill level and flats given a gradient
    towards their outlet (each filled cell a few units in the last place above the cell it was
    reached from), so that every valid cell has a path down to an edge. Cells without data keep
    their value. The result is float64 and must stay so: cast to float32, the epsilon steps
    vanish and flats become sinks again."""
    dem = np.asarray(dem, dtype=np.float64)
    valid = (
        np.isfinite(dem) if valid is None else (np.asarray(valid, dtype=bool) & np.isfinite(dem))
    )
    filled = dem.copy()
    rows, cols = dem.shape
    done = ~valid  # cells without data are never entered
    heap: list[tuple[float, int, int, int]] = []
    order = 0  # ties in elevation leave in the order they were pushed
    for r, c in zip(*np.nonzero(_edge_cells(valid)), strict=True):
        heapq.heappush(heap, (float(filled[r, c]), order, int(r), int(c)))
        order += 1
        done[r, c] = True
    while heap:
        level, _, r, c = heapq.heappop(heap)
        for dr, dc in NEIGHBOURS:
            nr, nc = r + dr, c + dc
            if not (0 <= nr < rows and 0 <= nc < cols) or done[nr, nc]:
                continue
            done[nr, nc] = True
            # At least a step above the cell it drains into: raised out of a pit or a flat.
            filled[nr, nc] = max(filled[nr, nc], float(np.nextafter(level, np.inf)))
            heapq.heappush(heap, (float(filled[nr, nc]), order, nr, nc))
            order += 1
    return filled


def flow_directions(
    filled: np.ndarray,
    valid: np.ndarray | None = None,
    *,
    pixel_size: tuple[float, float] = (1.0, 1.0),
) -> np.ndarray:
    """For each cell, the index into NEIGHBOURS of its steepest descent (drop over distance,
    with ``pixel_size`` the (height, width) of a pixel), or OUTLET where it has no lower valid
    neighbour but lies on an edge, where flow leaves. On a filled DEM every other valid cell has
    a lower neighbour. Cells without data: OUTLET."""
    filled = np.asarray(filled, dtype=np.float64)
    valid = (
        np.isfinite(filled)
        if valid is None
        else (np.asarray(valid, dtype=bool) & np.isfinite(filled))
    )
    rows, cols = filled.shape
    padded = np.pad(np.where(valid, filled, np.inf), 1, constant_values=np.inf)
    best = np.zeros(filled.shape)
    direction = np.full(filled.shape, OUTLET, dtype=np.int8)
    dy, dx = pixel_size
    for index, (dr, dc) in enumerate(NEIGHBOURS):
        distance = math.hypot(dr * dy, dc * dx)
        neighbour = padded[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols]
        with np.errstate(invalid="ignore"):
            slope = (filled - neighbour) / distance
        steeper = valid & (slope > best)
        best = np.where(steeper, slope, best)
        direction = np.where(steeper, np.int8(index), direction)
    return direction


def flow_accumulation(
    filled: np.ndarray, direction: np.ndarray, valid: np.ndarray | None = None
) -> np.ndarray:
    """For each valid cell, how many valid cells drain through it (itself included), found by
    passing each cell's count to its downstream neighbour from the highest cell down."""
    filled = np.asarray(filled, dtype=np.float64)
    valid = (
        np.isfinite(filled)
        if valid is None
        else (np.asarray(valid, dtype=bool) & np.isfinite(filled))
    )
    accumulation = np.where(valid, 1.0, 0.0)
    rows, cols = filled.shape
    flat = accumulation.ravel()
    steps = np.array([dr * cols + dc for dr, dc in NEIGHBOURS])
    cells = np.flatnonzero(valid.ravel())
    for cell in cells[np.argsort(-filled.ravel()[cells], kind="stable")]:
        index = int(direction.flat[cell])
        if index != OUTLET:
            flat[cell + steps[index]] += flat[cell]
    return accumulation


def _derivative(values: np.ndarray, axis: int, step: float) -> np.ndarray:
    """d(values)/d(axis): the mean of the forward and backward differences where both exist
    (the central difference), the one that exists next to an edge or a cell without data, and
    0 where neither does."""
    forward = np.full(values.shape, np.nan)
    backward = np.full(values.shape, np.nan)
    ahead = [slice(None)] * values.ndim
    behind = [slice(None)] * values.ndim
    ahead[axis], behind[axis] = slice(1, None), slice(None, -1)
    difference = (values[tuple(ahead)] - values[tuple(behind)]) / step
    forward[tuple(behind)] = difference
    backward[tuple(ahead)] = difference
    both = np.stack([forward, backward])
    counted = np.isfinite(both).sum(axis=0)
    total = np.where(np.isfinite(both), both, 0.0).sum(axis=0)
    return np.where(counted > 0, total / np.maximum(counted, 1), 0.0)


def slope_degrees(dem: np.ndarray, *, pixel_size: float | tuple[float, float]) -> np.ndarray:
    """The terrain's slope in degrees; ``pixel_size`` in the DEM's vertical unit (metres), one
    value or (height, width). NaN where the DEM has no value."""
    dy, dx = pixel_size if isinstance(pixel_size, tuple) else (pixel_size, pixel_size)
    values = np.asarray(dem, dtype=np.float64)
    gradient_y = _derivative(values, 0, float(dy))
    gradient_x = _derivative(values, 1, float(dx))
    slope = np.degrees(np.arctan(np.hypot(gradient_x, gradient_y)))
    return np.where(np.isfinite(values), slope, np.nan)
