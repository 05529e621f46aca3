"""Temporal stability metrics of label images and grids (no ROS imports).

Flicker is what a planner sees as phantom obstacles: a cell that is lethal in one frame and free in the next. These
metrics compare two consecutive outputs of the same pipeline (or a single-frame and a fused grid) without ground
truth. Every function returns NaN when nothing is comparable (no valid pixel / no cell known in both), so means over
a sequence are taken with ``np.nanmean``.

Grid conventions (``costmap``): uint8 grids hold Nav2 costs (FREE_SPACE 0 .. LETHAL_OBSTACLE 254, NO_INFORMATION 255
= unknown); int8 grids hold ``OccupancyGrid.data`` values (0..100, -1 = unknown, after Nav2's cost translation table,
where 253 -> 99 and 254 -> 100).
"""

from __future__ import annotations

import numpy as np

from seg_perception.core.mapping.costs import INSCRIBED_INFLATED_OBSTACLE, NO_INFORMATION
from seg_perception.core.mapping.grid import GridGeometry

__all__ = ["IGNORE_LABEL", "label_flicker", "grid_known", "grid_occupied", "grid_flicker", "grid_agreement"]

IGNORE_LABEL = 255
"""Label id that is never compared (``labels`` convention)."""

_OCCUPIED_MIN = {np.dtype(np.uint8): INSCRIBED_INFLATED_OBSTACLE, np.dtype(np.int8): 99}


def _same_shape(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what}: shapes differ, {a.shape} vs {b.shape}")


def label_flicker(prev_labels: np.ndarray, labels: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Fraction of valid pixels whose class changed between two label images.

    Args:
        prev_labels: (H, W) integer class ids of the previous frame (255 = ignore).
        labels: (H, W) class ids of the current frame.
        valid: optional (H, W) bool mask of pixels to compare (e.g. valid depth, or pixels that see the same surface
            after motion compensation). Pixels where either image is 255 are never compared.
    Returns:
        changed / compared in [0, 1]; NaN if no pixel is compared.
    Raises:
        ValueError: if the shapes differ.
    """
    a, b = np.asarray(prev_labels), np.asarray(labels)
    _same_shape(a, b, "label_flicker")
    ok = (a != IGNORE_LABEL) & (b != IGNORE_LABEL)
    if valid is not None:
        v = np.asarray(valid, dtype=bool)
        _same_shape(a, v, "label_flicker valid")
        ok &= v
    n = int(np.count_nonzero(ok))
    if n == 0:
        return float("nan")
    return float(np.count_nonzero(a[ok] != b[ok])) / n


def grid_known(grid: np.ndarray) -> np.ndarray:
    """Bool mask of known cells: uint8 != NO_INFORMATION (255), int8 != -1.

    Raises:
        TypeError: for any other dtype.
    """
    g = np.asarray(grid)
    if g.dtype == np.uint8:
        out: np.ndarray = g != NO_INFORMATION
        return out
    if g.dtype == np.int8:
        out = g != -1
        return out
    raise TypeError(f"grid must be uint8 Nav2 costs or int8 OccupancyGrid values, got {g.dtype}")


def grid_occupied(grid: np.ndarray, occupied_min: int | None = None) -> np.ndarray:
    """Bool mask of known cells with value >= ``occupied_min``.

    Default threshold: INSCRIBED_INFLATED_OBSTACLE (253) for uint8 costs, 99 for int8 occupancy (the same cells after
    the cost translation): "the robot centre cannot be there". Inflation costs below it count as free.

    Raises:
        TypeError: for a dtype other than uint8 / int8.
    """
    g = np.asarray(grid)
    known = grid_known(g)
    thr = _OCCUPIED_MIN[g.dtype] if occupied_min is None else int(occupied_min)
    out: np.ndarray = known & (g.astype(np.int16) >= thr)
    return out


def grid_flicker(prev: np.ndarray, cur: np.ndarray) -> float:
    """Fraction of cells known in both grids whose value changed (any change, including inflation levels).

    Both grids must be in the same frame and placement (for rolling grids, compare after shifting to a common
    origin). Cells unknown in either grid are not compared (appearing / disappearing knowledge is not flicker).

    Args:
        prev, cur: (H, W) grids of the same dtype: uint8 Nav2 costs or int8 OccupancyGrid values.
    Returns:
        changed / known-in-both in [0, 1]; NaN if no cell is known in both.
    Raises:
        ValueError: if shapes differ. TypeError: if dtypes differ or are not uint8 / int8.
    """
    a, b = np.asarray(prev), np.asarray(cur)
    _same_shape(a, b, "grid_flicker")
    if a.dtype != b.dtype:
        raise TypeError(f"grid_flicker: dtypes differ, {a.dtype} vs {b.dtype}")
    both = grid_known(a) & grid_known(b)
    n = int(np.count_nonzero(both))
    if n == 0:
        return float("nan")
    return float(np.count_nonzero(a[both] != b[both])) / n


def grid_agreement(a: np.ndarray, b: np.ndarray, occupied_min: int | None = None) -> float:
    """Fraction of cells known in both grids that have the same state, free or occupied (see ``grid_occupied``).

    Unlike ``grid_flicker`` this ignores changes within a state (an inflation cost 186 -> 120 is still free), so it
    measures decisions a planner would make differently. The grids may have different dtypes (uint8 vs int8), each
    thresholded with its own default.

    Args:
        a, b: (H, W) uint8 Nav2 costs or int8 OccupancyGrid values, same frame and placement.
        occupied_min: threshold for both grids, or None for the per-dtype default.
    Returns:
        agreeing / known-in-both in [0, 1]; NaN if no cell is known in both.
    Raises:
        ValueError: if shapes differ. TypeError: for a dtype other than uint8 / int8.
    """
    a, b = np.asarray(a), np.asarray(b)
    _same_shape(a, b, "grid_agreement")
    both = grid_known(a) & grid_known(b)
    n = int(np.count_nonzero(both))
    if n == 0:
        return float("nan")
    same = grid_occupied(a, occupied_min) == grid_occupied(b, occupied_min)
    return float(np.count_nonzero(same & both)) / n


def aligned_overlap(
    a: np.ndarray, geo_a: GridGeometry, b: np.ndarray, geo_b: GridGeometry
) -> tuple[np.ndarray, np.ndarray] | None:
    """The parts of two grids that cover the same cells (rolling windows move between frames).

    Args:
        a, b: (H, W) grids placed by ``geo_a`` / ``geo_b`` (row = y, column = x).
    Returns:
        (a_sub, b_sub) of equal shape, cell for cell the same place; None when the grids are not on one lattice
        (resolution or a sub-cell origin offset differ) or do not overlap.
    """
    res = geo_b.resolution
    dx = (geo_b.origin_x - geo_a.origin_x) / res
    dy = (geo_b.origin_y - geo_a.origin_y) / res
    if geo_a.resolution != res or abs(dx - round(dx)) > 1e-3 or abs(dy - round(dy)) > 1e-3:
        return None
    dx, dy = round(dx), round(dy)
    h, w = b.shape
    r0, r1 = max(0, -dy), min(h, a.shape[0] - dy)
    c0, c1 = max(0, -dx), min(w, a.shape[1] - dx)
    if r1 <= r0 or c1 <= c0:
        return None
    return a[r0 + dy : r1 + dy, c0 + dx : c1 + dx], b[r0:r1, c0:c1]
