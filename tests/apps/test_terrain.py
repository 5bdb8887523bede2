"""Terrain analysis (cure/apps/_shared/terrain.py) on small DEMs whose answers are known by hand:
a pit filled to its spill level, a flat given a way out, flow down a plane and along a valley,
cells without data left out, the slope of a plane."""

import math

import numpy as np
import pytest

from cure.apps._shared.terrain import (
    NEIGHBOURS,
    OUTLET,
    fill_depressions,
    flow_accumulation,
    flow_directions,
    slope_degrees,
)

EAST = NEIGHBOURS.index((0, 1))
SOUTH = NEIGHBOURS.index((1, 0))


def test_a_pit_is_filled_to_its_spill_level_and_nothing_else_moves() -> None:
    dem = np.array(
        [
            [9.0, 9.0, 9.0, 9.0, 9.0],
            [9.0, 5.0, 5.0, 5.0, 9.0],
            [9.0, 5.0, 1.0, 5.0, 9.0],
            [9.0, 5.0, 5.0, 5.0, 4.0],  # the rim's lowest cell: the bowl spills here, at 4
            [9.0, 9.0, 9.0, 9.0, 9.0],
        ]
    )
    filled = fill_depressions(dem)
    # The floor (1) rises to its walls (5, above the spill level 4, so they stay), a few units
    # in the last place above them: the epsilon that gives a flat its way out.
    assert filled[2, 2] == pytest.approx(5.0, abs=1e-9) and filled[2, 2] > 5.0
    assert filled[1:4, 1:4] == pytest.approx(np.full((3, 3), 5.0), abs=1e-9)
    assert np.array_equal(filled[0], dem[0]) and filled[3, 4] == 4.0
    assert (filled >= dem).all()


def test_a_closed_basin_fills_to_the_lowest_pass_out_of_it() -> None:
    dem = np.full((5, 5), 10.0)
    dem[1:4, 1:4] = 2.0  # a basin of nine cells at 2
    dem[2, 0] = 6.0  # the lowest notch in its wall, on the raster's edge
    filled = fill_depressions(dem)
    inside = filled[1:4, 1:4]
    assert np.allclose(inside, 6.0, atol=1e-9) and (inside > 6.0).all()
    assert filled[2, 0] == 6.0
    # Every cell now drains: following the directions from any cell reaches an outlet.
    direction = flow_directions(filled)
    for start in np.ndindex(dem.shape):
        r, c = start
        for _ in range(dem.size):
            step = int(direction[r, c])
            if step == OUTLET:
                break
            dr, dc = NEIGHBOURS[step]
            r, c = r + dr, c + dc
        else:
            pytest.fail(f"the flow from {start} never leaves the raster")


def test_flow_down_a_plane_goes_east_and_gathers_along_each_row() -> None:
    # Falling 1 m per cell eastwards: every cell drains to its east neighbour, and the cells of
    # a row gather: the n-th cell from the west carries n cells of flow.
    dem = np.tile(np.arange(6, 0, -1, dtype=float), (4, 1))
    filled = fill_depressions(dem)
    assert np.array_equal(filled, dem)
    direction = flow_directions(filled)
    assert (direction[:, :-1] == EAST).all()
    accumulation = flow_accumulation(filled, direction)
    assert np.array_equal(accumulation, np.tile(np.arange(1, 7, dtype=float), (4, 1)))


def test_a_valley_gathers_its_slopes_into_its_channel() -> None:
    # A V: both sides fall 1 m per cell towards the middle column, which falls 0.1 m per cell
    # southwards. Each side cell drains straight into the channel (the steepest drop: 1 m over
    # one cell against 1.1 m over sqrt(2) diagonally), and the channel carries everything above.
    rows = 5
    side = np.array([2.0, 1.0, 0.0, 1.0, 2.0])
    dem = np.array([side + 10 - 0.1 * r for r in range(rows)])
    assert np.array_equal(fill_depressions(dem), dem)  # nothing to fill: a valley drains
    direction = flow_directions(fill_depressions(dem))
    assert (direction[:, 2][:-1] == SOUTH).all()
    accumulation = flow_accumulation(fill_depressions(dem), direction)
    # Row r's channel cell: its own 5 cells (two on each side and itself) for every row above
    # and including r.
    assert np.array_equal(accumulation[:, 2], 5.0 * np.arange(1, rows + 1))
    assert accumulation[0, 0] == 1.0 and accumulation[0, 1] == 2.0


def test_cells_without_data_take_no_part() -> None:
    dem = np.tile(np.arange(5, 0, -1, dtype=float), (3, 1))  # falling 1 m per cell eastwards
    dem[1, 2] = np.nan  # a hole in the middle of the plane
    filled = fill_depressions(dem)
    assert np.isnan(filled[1, 2]) and np.array_equal(filled[0], dem[0])
    direction = flow_directions(filled)
    accumulation = flow_accumulation(filled, direction)
    # Flow never enters the hole: the cell west of it turns north-east (drop 1 over sqrt(2),
    # the first of the two equal diagonals), bringing its row's two cells into the north row.
    assert NEIGHBOURS[int(direction[1, 1])] == (-1, 1)
    assert np.array_equal(
        accumulation,
        np.array([[1.0, 2.0, 5.0, 6.0, 7.0], [1.0, 2.0, 0.0, 1.0, 2.0], [1.0, 2.0, 3.0, 4.0, 5.0]]),
    )


def test_the_slope_of_a_plane_is_its_angle() -> None:
    pixel = 30.0
    rise = math.tan(math.radians(10)) * pixel  # 10 degrees eastwards
    dem = np.tile(np.arange(8) * rise, (6, 1))
    assert np.allclose(slope_degrees(dem, pixel_size=pixel), 10.0)
    assert np.allclose(slope_degrees(np.zeros((4, 4)), pixel_size=pixel), 0.0)


def test_on_a_rough_dem_every_cell_drains_out_and_no_flow_is_lost() -> None:
    rng = np.random.default_rng(7)
    dem = rng.normal(0, 1, (60, 80)).cumsum(0).cumsum(1) / 20 + rng.normal(0, 0.5, (60, 80))
    dem[20:25, 30:34] = np.nan  # a hole of no data
    valid = np.isfinite(dem)
    filled = fill_depressions(dem)
    assert (filled[valid] >= dem[valid]).all()
    direction = flow_directions(filled)
    # Cells away from an edge: inside the raster, with data all around.
    around = np.pad(valid, 1, constant_values=False)
    interior = valid.copy()
    for dr, dc in NEIGHBOURS:
        interior &= around[1 + dr : 61 + dr, 1 + dc : 81 + dc]
    # No valid cell away from an edge is a sink after filling.
    assert not (interior & (direction == OUTLET)).any()
    # Every cell's flow ends at exactly one outlet: the outlets carry all the valid cells.
    accumulation = flow_accumulation(filled, direction)
    outlets = valid & (direction == OUTLET)
    assert accumulation[outlets].sum() == valid.sum()


def test_oblong_pixels_do_not_bend_the_flow() -> None:
    """One arc-second at 48 degrees north is about 31 m tall and 21 m wide. On a plane falling
    1 % eastwards and 0.4 % northwards the steepest way is east (0.01 m/m, against 0.0089 to the
    north-east); counted in cells, north-east would win (0.33 m over 1.41 cells, 0.21 over 1)."""
    dy, dx = 30.9, 20.6
    rows, cols = np.mgrid[0:6, 0:8]
    dem = 100 - 0.01 * cols * dx + 0.004 * rows * dy  # rows run south: north is lower
    assert (flow_directions(dem, pixel_size=(dy, dx))[1:-1, :-1] == EAST).all()
    assert (flow_directions(dem)[1:-1, :-1] == NEIGHBOURS.index((-1, 1))).all()


def test_slope_next_to_no_data_and_along_a_single_row() -> None:
    dem = np.array([[1.0, 2.0, np.nan, 4.0, 6.0]])
    slope = slope_degrees(dem, pixel_size=1.0)
    # one row: no north-south slope; next to the hole, the one-sided difference
    expected = np.degrees(np.arctan([1.0, 1.0, np.nan, 2.0, 2.0]))
    assert np.allclose(slope, expected, equal_nan=True)
    assert slope_degrees(np.array([[5.0]]), pixel_size=30.0)[0, 0] == 0.0
