"""Nav2 cost values, the exponential inflation of obstacles and the cost -> OccupancyGrid translation (no ROS imports).

Internal grids are uint8 costs with Nav2's names (``nav2_costmap_2d/cost_values.hpp``): ``FREE_SPACE`` 0,
``INSCRIBED_INFLATED_OBSTACLE`` 253, ``LETHAL_OBSTACLE`` 254, ``NO_INFORMATION`` 255. ``inflate`` follows
``nav2_costmap_2d::InflationLayer::computeCost``; ``to_occupancy`` Nav2's
``Costmap2DPublisher::cost_translation_table_``.
"""

from __future__ import annotations

import cv2
import numpy as np

from seg_perception.core.mapping.grid import CostmapConfig

# --- Nav2 cost values (nav2_costmap_2d/cost_values.hpp) ---------------------------------------------------------------
FREE_SPACE = 0
INSCRIBED_INFLATED_OBSTACLE = 253
LETHAL_OBSTACLE = 254
NO_INFORMATION = 255


# --- Inflation (nav2_costmap_2d InflationLayer) -----------------------------------------------------------------------
def inflation_cost(distance_m: np.ndarray | float, cfg: CostmapConfig) -> np.ndarray:
    """Nav2's ``InflationLayer::computeCost`` for distances to the nearest obstacle cell.

    0 -> LETHAL_OBSTACLE; <= inscribed_radius -> INSCRIBED_INFLATED_OBSTACLE; otherwise
    ``uint8((INSCRIBED_INFLATED_OBSTACLE - 1) * exp(-cost_scaling_factor * (d - inscribed_radius)))`` (truncated, as
    the C++ cast). The cut-off at the inflation radius is applied by ``inflate``, not here.

    Args:
        distance_m: distances [m] (>= 0).
        cfg: inscribed_radius and cost_scaling_factor.
    Returns:
        uint8 costs of the same shape.
    """
    d = np.asarray(distance_m, dtype=np.float64)
    decay = (INSCRIBED_INFLATED_OBSTACLE - 1) * np.exp(-cfg.cost_scaling_factor * (d - cfg.inscribed_radius))
    cost = np.where(d <= cfg.inscribed_radius, float(INSCRIBED_INFLATED_OBSTACLE), np.floor(decay))
    cost = np.where(d == 0, float(LETHAL_OBSTACLE), cost)
    return np.clip(cost, 0, LETHAL_OBSTACLE).astype(np.uint8)


def inflate(
    cost_u8: np.ndarray,
    obstacle_mask: np.ndarray,
    cfg: CostmapConfig,
    obstacle_cost: np.ndarray | None = None,
    obstacle_radius_m: np.ndarray | None = None,
) -> np.ndarray:
    """Inflate obstacles into a cost grid as Nav2's InflationLayer does, with an exact Euclidean distance transform.

    Each cell within ``ceil(radius / resolution)`` cells (Nav2's ``cellDistance``) of an obstacle cell gets
    ``c = inflation_cost(distance)``, merged as in ``InflationLayer::updateCosts``: a known cell keeps
    ``max(old, c)``; a NO_INFORMATION cell takes ``c`` if ``inflate_unknown`` and ``c > FREE_SPACE``, or if
    ``c >= INSCRIBED_INFLATED_OBSTACLE``, and stays unknown otherwise. Nav2 propagates a wavefront from obstacle cells;
    the exact transform (``cv2.DIST_L2`` + ``DIST_MASK_PRECISE``) gives the true nearest obstacle instead.

    Per-class rules (optional; without them every obstacle cell is LETHAL and uses ``cfg.inflation_radius``, which is
    Nav2's behaviour): obstacle cells are grouped by (radius in cells, cost); each group gets its own distance
    transform, its inflation ``min(cost, inflation_cost(d))`` is cut at its radius, and the groups are merged with
    ``max``. So a class's inflation never exceeds the class's own cost (a soft obstacle with cost 120 makes no cell
    costlier than 120), a cost-0 class neither blocks nor inflates, and the final value of an obstacle cell is
    ``max(its cost, inflation from other groups)``. Distinct groups are few (one per distinct class rule), so the
    cost is one distance transform per group.

    Args:
        cost_u8: (H, W) uint8 costs (not modified).
        obstacle_mask: (H, W) bool, True at obstacle cells (their distance is 0).
        cfg: inflation_radius, inscribed_radius, cost_scaling_factor, resolution, inflate_unknown.
        obstacle_cost: optional (H, W) uint8 cost of each obstacle cell (read where ``obstacle_mask``; default
            LETHAL_OBSTACLE).
        obstacle_radius_m: optional (H, W) float inflation radius [m] of each obstacle cell (read where
            ``obstacle_mask``; default ``cfg.inflation_radius``; must be finite and >= 0 there).
    Returns:
        (H, W) uint8 inflated costs.
    Raises:
        ValueError: if the shapes differ or an obstacle radius is negative or not finite.
    """
    if cost_u8.shape != obstacle_mask.shape or cost_u8.ndim != 2:
        raise ValueError(f"cost {cost_u8.shape} and obstacle_mask {obstacle_mask.shape} must be the same (H, W)")
    for name, arr in (("obstacle_cost", obstacle_cost), ("obstacle_radius_m", obstacle_radius_m)):
        if arr is not None and arr.shape != cost_u8.shape:
            raise ValueError(f"{name} {arr.shape} must match cost {cost_u8.shape}")
    out = cost_u8.copy()
    if not obstacle_mask.any():
        return out
    n_obs = int(np.count_nonzero(obstacle_mask))
    cell_cost = (np.full(n_obs, LETHAL_OBSTACLE, np.uint8) if obstacle_cost is None
                 else np.asarray(obstacle_cost)[obstacle_mask].astype(np.uint8))
    if obstacle_radius_m is None:
        cell_radius = np.full(n_obs, cfg.inflation_radius, np.float64)
    else:
        cell_radius = np.asarray(obstacle_radius_m, dtype=np.float64)[obstacle_mask]
        bad = ~(np.isfinite(cell_radius) & (cell_radius >= 0))
        if bad.any():
            raise ValueError("obstacle_radius_m must be finite and >= 0 [m] at obstacle cells, got "
                             f"{cell_radius[bad][:3].tolist()}")
    # 1e-4 cells of slack so a float32 radius (0.3 -> 0.30000001) still gives ceil(0.3 / 0.1) = 3 cells.
    radius_cells = np.maximum(0, np.ceil(cell_radius / cfg.resolution - 1e-4)).astype(np.int64)
    obs_rows, obs_cols = np.nonzero(obstacle_mask)

    infl = np.zeros(out.shape, dtype=np.uint8)  # max inflation over groups (0 = none)
    group_key = radius_cells * 256 + cell_cost
    for key in np.unique(group_key[(radius_cells > 0) & (cell_cost > FREE_SPACE)]):
        rc, cap = divmod(int(key), 256)
        sel = group_key == key
        src = np.full(out.shape, 255, dtype=np.uint8)
        src[obs_rows[sel], obs_cols[sel]] = 0
        dist = cv2.distanceTransform(src, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        # Exact distances between cell centres are sqrt(integer); snap to it so float32 error cannot flip a threshold.
        dist_cells = np.sqrt(np.rint(dist.astype(np.float64) ** 2))
        near = (dist_cells <= rc) & (dist_cells > 0)
        c = np.minimum(inflation_cost(dist_cells[near] * cfg.resolution, cfg), np.uint8(cap))
        infl[near] = np.maximum(infl[near], c)

    near = infl > FREE_SPACE
    near &= ~obstacle_mask
    c = infl[near]
    old = out[near]
    unknown = old == NO_INFORMATION
    threshold = FREE_SPACE + 1 if cfg.inflate_unknown else INSCRIBED_INFLATED_OBSTACLE
    new = np.maximum(old, c)
    take = unknown & (c >= threshold)
    new[take] = c[take]
    out[near] = new
    out[obs_rows, obs_cols] = np.maximum(cell_cost, infl[obs_rows, obs_cols])
    return out


# --- Publishing -------------------------------------------------------------------------------------------------------
def _translation_table() -> np.ndarray:
    table = np.empty(256, dtype=np.int8)
    table[0] = 0  # FREE_SPACE
    i = np.arange(1, INSCRIBED_INFLATED_OBSTACLE)
    table[1:INSCRIBED_INFLATED_OBSTACLE] = 1 + (97 * (i - 1)) // 251
    table[INSCRIBED_INFLATED_OBSTACLE] = 99
    table[LETHAL_OBSTACLE] = 100
    table[NO_INFORMATION] = -1
    table.flags.writeable = False
    return table


COST_TRANSLATION_TABLE = _translation_table()
"""(256,) int8: Nav2 ``Costmap2DPublisher::cost_translation_table_`` (0->0, 1..252 -> 1 + 97(i-1)//251, 253->99,
254->100, 255->-1)."""


def to_occupancy(cost_u8: np.ndarray) -> np.ndarray:
    """Translate internal uint8 costs to ``OccupancyGrid.data`` values with Nav2's cost translation table.

    Args:
        cost_u8: uint8 costs of any shape.
    Returns:
        int8 array of the same shape: 0..100, -1 = unknown.
    Raises:
        TypeError: if ``cost_u8`` is not uint8.
    """
    cost_u8 = np.asarray(cost_u8)
    if cost_u8.dtype != np.uint8:
        raise TypeError(f"cost_u8 must be uint8 Nav2 costs, got {cost_u8.dtype}")
    out: np.ndarray = COST_TRANSLATION_TABLE[cost_u8]
    return out
