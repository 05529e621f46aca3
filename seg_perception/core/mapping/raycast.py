"""Ray casting on a grid window: the cells a sensor ray passes before its endpoint (free-space clearing, no ROS).

The analogue of Nav2's ``ObstacleLayer::raytraceFreespace`` (Bresenham in ``costmap_2d``), vectorised: every ray is
sampled at steps of at most half a cell and the visited cells are collected in one pass over all samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from seg_perception.core.mapping.grid import FusionConfig


def ray_misses(
    sensor_xy: Sequence[float],
    endpoints: np.ndarray,
    weights: np.ndarray,
    origin_cells: tuple[int, int],
    cfg: FusionConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Cells crossed by rays from the sensor to the unique endpoint cells, strictly before each endpoint cell.

    1. Endpoints farther than ``cfg.raytrace_max_range_m`` from the sensor are pulled back onto that range (Nav2).
    2. One ray per unique endpoint cell (at most ``cfg.max_rays``, a seeded random subset), aimed at the cell
       centre and weighted by the max weight of that cell's endpoints.
    3. Each ray is sampled every <= resolution / 2; samples inside the window and outside the endpoint cell count.

    Args:
        sensor_xy: sensor position (x, y) in the grid frame [m], finite.
        endpoints: (N, 2) finite endpoint positions in the grid frame [m].
        weights: (N,) weight of each endpoint in [0, 1].
        origin_cells: (column, row) of the window's cell (0, 0) in the frame's lattice (origin / resolution).
        cfg: ``resolution``, window size (``width_cells``, ``height_cells``), ``raytrace_max_range_m``, ``max_rays``.
    Returns:
        (flat, w): (M,) int64 flat cell indices (row * width_cells + column) of the crossed cells, one per sample (a
        cell may repeat), and (M,) float64 weights of their rays; reduce with ``np.maximum.at``.
    """
    ox, oy = origin_cells
    sx, sy = float(sensor_xy[0]), float(sensor_xy[1])
    res = cfg.resolution
    pts = np.asarray(endpoints, dtype=np.float64)
    d = pts - (sx, sy)
    dist = np.hypot(d[:, 0], d[:, 1])
    far = dist > cfg.raytrace_max_range_m
    if far.any():
        pts = pts.copy()
        pts[far] = (sx, sy) + d[far] * (cfg.raytrace_max_range_m / dist[far])[:, None]
    # Endpoint cells in the frame's lattice relative to the window origin (may lie outside the window).
    ec = np.floor(pts[:, 0] / res + 1e-9).astype(np.int64) - ox
    er = np.floor(pts[:, 1] / res + 1e-9).astype(np.int64) - oy
    span = int(math.ceil(cfg.raytrace_max_range_m / res)) + 2  # |cells from the sensor| < span after the cut
    off_c = math.floor(sx / res) - ox - span
    off_r = math.floor(sy / res) - oy - span
    side = 2 * span + 1
    ukey, inv = np.unique((er - off_r) * side + (ec - off_c), return_inverse=True)
    w_ray = np.zeros(ukey.size, np.float64)
    np.maximum.at(w_ray, inv.reshape(-1), np.asarray(weights, dtype=np.float64))
    if ukey.size > cfg.max_rays:
        pick = np.sort(np.random.default_rng(0).choice(ukey.size, cfg.max_rays, replace=False))
        ukey, w_ray = ukey[pick], w_ray[pick]
    end_r = ukey // side + off_r
    end_c = ukey % side + off_c
    # Continuous coordinates in cell units relative to the window origin.
    us, vs = sx / res - ox, sy / res - oy
    ue, ve = end_c + 0.5, end_r + 0.5
    n = np.maximum(1, np.ceil(2.0 * np.hypot(ue - us, ve - vs))).astype(np.int64)  # steps <= 0.5 cell
    ray = np.repeat(np.arange(n.size), n)
    t = (np.arange(ray.size) - (np.cumsum(n) - n)[ray]) / n[ray]  # [0, 1)
    c = np.floor(us + t * (ue[ray] - us)).astype(np.int64)
    r = np.floor(vs + t * (ve[ray] - vs)).astype(np.int64)
    keep = (c >= 0) & (c < cfg.width_cells) & (r >= 0) & (r < cfg.height_cells)
    keep &= (c != end_c[ray]) | (r != end_r[ray])  # strictly before the endpoint cell
    return r[keep] * cfg.width_cells + c[keep], w_ray[ray[keep]]
