"""core.mapping.raycast.ray_misses against hand-counted cells and a dense-sampling oracle."""

from __future__ import annotations

import math

import numpy as np

from seg_perception.core.mapping.grid import FusionConfig
from seg_perception.core.mapping.raycast import ray_misses

CFG = FusionConfig(resolution=1.0, width=20.0, height=20.0, raytrace_max_range_m=8.0, max_rays=100)
ORIGIN = (-10, -10)  # window cell (0, 0) is the frame's cell (-10, -10): the window spans [-10, 10) m


def _cells(flat: np.ndarray) -> set[tuple[int, int]]:
    """(column, row) in the frame's lattice."""
    w = CFG.width_cells
    return {(int(f % w) + ORIGIN[0], int(f // w) + ORIGIN[1]) for f in flat}


def test_a_ray_along_x_crosses_the_cells_before_its_endpoint() -> None:
    flat, w = ray_misses((0.5, 0.5), np.array([[5.5, 0.5]]), np.array([0.7]), ORIGIN, CFG)
    assert _cells(flat) == {(c, 0) for c in range(0, 5)}  # the sensor's cell up to the one before the endpoint
    assert np.all(w == 0.7)


def test_endpoints_beyond_the_range_are_cut_and_one_ray_per_endpoint_cell_takes_the_max_weight() -> None:
    ends = np.array([[-9.5, 0.5], [0.5, 3.2], [0.8, 3.9]])  # 10 m away (cut at 8 m); two ends in one cell
    flat, w = ray_misses((0.5, 0.5), ends, np.array([0.2, 0.4, 0.9]), ORIGIN, CFG)
    crossed = _cells(flat)
    assert {(c, 0) for c in range(-7, 1)} <= crossed and (-8, 0) not in crossed  # endpoint cell (-8, 0) after the cut
    assert {(0, r) for r in range(0, 3)} <= crossed and (0, 3) not in crossed
    by_cell: dict[tuple[int, int], float] = {}
    for f, v in zip(flat, w, strict=True):
        (cell,) = _cells(np.array([f]))
        by_cell[cell] = max(by_cell.get(cell, 0.0), float(v))
    assert by_cell[(0, 2)] == 0.9 and by_cell[(-3, 0)] == 0.2


def test_diagonal_rays_match_dense_sampling() -> None:
    rng = np.random.default_rng(5)
    sensor = (0.3, -0.6)
    ends = rng.uniform(-5.0, 5.0, (40, 2))  # all within raytrace_max_range_m of the sensor (no cut)
    flat, _ = ray_misses(sensor, ends, np.ones(len(ends)), ORIGIN, CFG)
    expected: set[tuple[int, int]] = set()
    for ex, ey in ends:
        end_cell = (math.floor(ex), math.floor(ey))
        cx, cy = end_cell[0] + 0.5, end_cell[1] + 0.5  # rays aim at the endpoint cell's centre
        for t in np.linspace(0.0, 1.0, 4001)[:-1]:
            cell = (math.floor(sensor[0] + t * (cx - sensor[0])), math.floor(sensor[1] + t * (cy - sensor[1])))
            if cell != end_cell:
                expected.add(cell)
    got = _cells(flat)
    # every sample lies on the segment, so no cell off it; half-cell steps skip corners the segment only grazes
    # (4 of these 45 cells)
    assert got <= expected
    assert len(got) >= 0.85 * len(expected)
