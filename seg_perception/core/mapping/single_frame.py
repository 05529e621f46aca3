"""Single-frame grids: semantic point cloud -> drivable-area grid and obstacle costmap, Nav2 conventions (no ROS).

Pipeline (every step is vectorised numpy; OpenCV only for the Euclidean distance transform):

1. ``camera_to_base`` / ``transform_points``: points from the camera optical frame (z forward, x right, y down) into
   ``base_frame`` (REP-103: x forward, y left, z up).
2. ``classify_points``: class role from the ontology (``Ontology.roles_lut``) + height band above the ground plane
   (the flat ``ground_height_m``, or a per-frame ``ground.GroundPlane`` from ``ground.fit_ground_plane``) -> one
   ``PointRole`` per point.
3. ``build_grids``: per-cell evidence counts (``np.bincount``) -> a drivable grid and an obstacle grid inflated with
   Nav2's exponential decay (``nav2_costmap_2d::InflationLayer::computeCost``), with optional per-class obstacle cost
   and inflation radius (``Ontology.cost_lut`` / ``Ontology.inflation_lut``).
4. ``to_occupancy``: internal uint8 costs -> ``nav_msgs/OccupancyGrid`` values through Nav2's
   ``Costmap2DPublisher::cost_translation_table_``.

Grids are row-major from cell (0, 0) (row = y, column = x). ``GridGeometry.origin_x/origin_y`` is the outer corner of
cell (0, 0), as ``OccupancyGrid.info.origin``. Costs use Nav2's names: ``FREE_SPACE`` 0, ``INSCRIBED_INFLATED_OBSTACLE``
253, ``LETHAL_OBSTACLE`` 254, ``NO_INFORMATION`` 255.
"""

from __future__ import annotations

import math

import numpy as np

from seg_perception.core.geometry.ground import GroundPlane
from seg_perception.core.mapping.costs import FREE_SPACE, LETHAL_OBSTACLE, NO_INFORMATION, inflate
from seg_perception.core.mapping.grid import CostmapConfig, GridGeometry
from seg_perception.core.mapping.ontology import PointRole, Role, class_roles


# --- Classification ---------------------------------------------------------------------------------------------------
def _flatten_inputs(
    points_base: np.ndarray, labels: np.ndarray, confidence: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    pts = np.asarray(points_base)
    if pts.shape[-1:] != (3,):
        raise ValueError(f"points_base must be (N, 3) or (H, W, 3), got {pts.shape}")
    pts = pts.reshape(-1, 3)
    lab = np.asarray(labels).reshape(-1)
    if lab.size != pts.shape[0]:
        raise ValueError(f"labels has {lab.size} values but points_base has {pts.shape[0]} points")
    if not np.issubdtype(lab.dtype, np.integer):
        raise TypeError(f"labels must be an integer array of class ids, got {lab.dtype}")
    conf = None
    if confidence is not None:
        conf = np.asarray(confidence).reshape(-1)
        if conf.size != pts.shape[0]:
            raise ValueError(f"confidence has {conf.size} values but points_base has {pts.shape[0]} points")
    return pts, lab, conf


def classify_points(
    points_base: np.ndarray,
    labels: np.ndarray,
    confidence: np.ndarray | None,
    roles_lut: np.ndarray,
    cfg: CostmapConfig,
    ground: GroundPlane | None = None,
) -> np.ndarray:
    """Combine each point's class role with its height above the ground plane.

    With h = ``ground.height(p)`` (signed distance above a fitted plane, ``ground.fit_ground_plane``) or, when
    ``ground`` is None, h = z - ``cfg.ground_height_m``, the rules are applied in order:

    1. IGNORE if the point is NaN, its label is out of range (255 = ignore), its confidence < min_confidence (NaN
       confidence fails too), its planar range sqrt(x^2 + y^2) > max_range_m, or its class role is IGNORE (sky is
       ignored at every height: its depth is meaningless).
    2. IGNORE if h > max_obstacle_height (overhangs the robot passes under).
    3. OBSTACLE if h >= min_obstacle_height, whatever the class (a "road" pixel 1 m up is a mislabelled obstacle).
    4. DRIVABLE if the class is DRIVABLE and |h| < min_obstacle_height: the road label is trusted over the whole band
       below the obstacle height, so small ground-plane or pitch errors (1 deg = 0.17 m at 10 m) keep roads drivable.
    5. DRIVABLE if the class is GROUND_IF_FLAT and |h| <= drivable_tolerance_m (flat, so geometrically drivable).
    6. NOT_DRIVABLE otherwise: seen, but not a driving surface (sidewalk/terrain at ground level, a curb or low step
       between drivable_tolerance_m and min_obstacle_height, a ditch below -min_obstacle_height for a road class or
       below -drivable_tolerance_m for others).

    Args:
        points_base: (N, 3) or (H, W, 3) float points in base_frame [m]; NaN = invalid.
        labels: (N,) or (H, W) integer class ids; ids >= len(roles_lut) (e.g. 255) are ignored.
        confidence: (N,) or (H, W) float in [0, 1], or None to accept every point.
        roles_lut: (C,) uint8 ``Role`` per class id (``Ontology.roles_lut``).
        cfg: thresholds.
        ground: ground plane in base_frame, or None for the flat plane z = ``cfg.ground_height_m``.
    Returns:
        (N,) uint8 ``PointRole`` values (flattened in C order for organized input).
    Raises:
        ValueError: on mismatched sizes or shapes. TypeError: if labels are not integers.
    """
    pts, lab, conf = _flatten_inputs(points_base, labels, confidence)
    cls_role = class_roles(lab, roles_lut)  # ids outside [0, C) are IGNORE

    x = pts[:, 0].astype(np.float32, copy=False)
    y = pts[:, 1].astype(np.float32, copy=False)
    if ground is None:
        h = pts[:, 2].astype(np.float32, copy=False) - np.float32(cfg.ground_height_m)
    else:
        h = ground.height(pts)
    valid = cls_role != Role.IGNORE
    valid &= np.isfinite(x) & np.isfinite(y) & np.isfinite(h)
    if conf is not None:
        valid &= conf >= cfg.min_confidence
    if math.isfinite(cfg.max_range_m):
        valid &= x * x + y * y <= np.float32(cfg.max_range_m) ** 2
    valid &= h <= np.float32(cfg.max_obstacle_height)

    out = np.full(pts.shape[0], PointRole.NOT_DRIVABLE, dtype=np.uint8)
    abs_h = np.abs(h)
    drivable = ((cls_role == Role.DRIVABLE) & (abs_h < np.float32(cfg.min_obstacle_height))) | (
        (cls_role == Role.GROUND_IF_FLAT) & (abs_h <= np.float32(cfg.drivable_tolerance_m))
    )
    out[drivable] = PointRole.DRIVABLE
    out[h >= np.float32(cfg.min_obstacle_height)] = PointRole.OBSTACLE
    out[~valid] = PointRole.IGNORE
    return out


# --- Grids ------------------------------------------------------------------------------------------------------------
def cell_class_rules(
    flat_cells: np.ndarray,
    labels: np.ndarray,
    n_cells: int,
    cost_lut: np.ndarray | None,
    inflation_lut: np.ndarray | None,
    default_radius_m: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell obstacle cost and inflation radius from the classes of the obstacle points in each cell.

    A cell takes the MAX cost and the MAX radius over the classes of its points (conservative: one car point in a
    cell of soft vegetation makes it a car cell). Cells without points get cost 0 and radius ``default_radius_m``.

    Args:
        flat_cells: (M,) int64 flat cell index (row * width + col) of each obstacle point, in [0, n_cells).
        labels: (M,) integer class ids of the same points, in [0, C).
        n_cells: number of cells.
        cost_lut: (C,) uint8 cost per class (``Ontology.cost_lut``), or None = LETHAL_OBSTACLE for all.
        inflation_lut: (C,) float radius per class [m] (``Ontology.inflation_lut``), or None = ``default_radius_m``.
        default_radius_m: radius of cells without points and of every class when ``inflation_lut`` is None [m].
    Returns:
        (cost, radius): (n_cells,) uint8 and (n_cells,) float64 [m].
    Raises:
        ValueError: if the lengths differ.
    """
    flat_cells = np.asarray(flat_cells, dtype=np.int64).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    if flat_cells.size != labels.size:
        raise ValueError(f"flat_cells has {flat_cells.size} values but labels has {labels.size}")
    cost = np.zeros(n_cells, dtype=np.uint8)
    radius = np.full(n_cells, default_radius_m, dtype=np.float64)
    if flat_cells.size == 0:
        return cost, radius
    if cost_lut is None:
        cost[flat_cells] = LETHAL_OBSTACLE
    else:
        np.maximum.at(cost, flat_cells, np.asarray(cost_lut, dtype=np.uint8)[labels])
    if inflation_lut is not None:
        r = np.full(n_cells, -np.inf, dtype=np.float64)
        np.maximum.at(r, flat_cells, np.asarray(inflation_lut, dtype=np.float64)[labels])
        seen = np.isfinite(r)
        radius[seen] = r[seen]
    return cost, radius


def build_grids(
    points_base: np.ndarray,
    labels: np.ndarray,
    confidence: np.ndarray | None,
    roles_lut: np.ndarray,
    cfg: CostmapConfig,
    geometry: GridGeometry | None = None,
    ground: GroundPlane | None = None,
    cost_lut: np.ndarray | None = None,
    inflation_lut: np.ndarray | None = None,
    roles: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Build the drivable grid and the inflated obstacle grid from one semantic point cloud.

    Points are classified by ``classify_points`` and counted per cell with ``np.bincount``. Cell rules:

    - Obstacle cell: at least ``min_obstacle_points`` OBSTACLE points.
    - Drivable grid: LETHAL_OBSTACLE at obstacle cells ("any obstacle wins"; a physical thing makes the cell not
      drivable); elsewhere, among cells with ground evidence, FREE_SPACE if DRIVABLE points are a strict majority over
      NOT_DRIVABLE points, else LETHAL_OBSTACLE (ties are not drivable). The majority keeps sparse label noise at
      class borders from punching holes into a road; NO_INFORMATION where there is neither ground evidence nor an
      obstacle.
    - Obstacle grid: obstacle cells get their class cost, FREE_SPACE at every other cell with a counted point,
      NO_INFORMATION elsewhere; then ``inflate`` (Nav2 decay; inflation also reaches unknown cells when
      ``cfg.inflate_unknown``). Per-class rules: an obstacle cell's cost is the max ``cost_lut`` value and its
      inflation radius the max ``inflation_lut`` value over the classes of its OBSTACLE points
      (``cell_class_rules``); without the tables every obstacle is LETHAL and inflated with ``cfg.inflation_radius``.
      ``inflate`` caps a class's inflation at its cost. The drivable grid ignores class costs (any obstacle is
      LETHAL there: a soft obstacle is still not a driving surface).

    Args:
        points_base: (N, 3) or (H, W, 3) float points in base_frame [m]; NaN = invalid; N may be 0.
        labels: (N,) or (H, W) integer class ids (255 / ids >= C = ignore).
        confidence: (N,) or (H, W) float in [0, 1], or None.
        roles_lut: (C,) uint8 ``Role`` per class (``Ontology.roles_lut``).
        cfg: costmap parameters.
        geometry: grid placement in base_frame; default ``GridGeometry.from_config(cfg)`` (robot-centred).
        ground: ground plane for the heights (``classify_points``); None = flat ``cfg.ground_height_m``.
        cost_lut: (C,) uint8 obstacle cost per class (``Ontology.cost_lut``), or None = LETHAL_OBSTACLE.
        inflation_lut: (C,) float inflation radius per class [m] (``Ontology.inflation_lut``), or None =
            ``cfg.inflation_radius``.
        roles: (N,) ``PointRole`` already computed by ``classify_points`` with the same inputs (saves the second
            classification per frame), or None to classify here.
    Returns:
        (drivable_cost, obstacle_cost): two (height_cells, width_cells) uint8 grids with Nav2 cost values, row = y,
        column = x, cell (0, 0) at ``geometry.origin``.
    Raises:
        ValueError / TypeError: as ``classify_points``.
    """
    geo = GridGeometry.from_config(cfg) if geometry is None else geometry
    pts, lab, conf = _flatten_inputs(points_base, labels, confidence)
    if roles is None:
        roles = classify_points(pts, lab, conf, roles_lut, cfg, ground)
    elif roles.size != pts.shape[0]:
        raise ValueError(f"roles has {roles.size} values but points_base has {pts.shape[0]} points")
    roles = roles.reshape(-1)
    n_cells = geo.width_cells * geo.height_cells

    used = roles != PointRole.IGNORE
    rows, cols, keep = geo.cell_indices(pts[used, 0], pts[used, 1])
    flat = rows * geo.width_cells + cols
    r = roles[used][keep]

    seen = np.bincount(flat, minlength=n_cells) > 0
    n_obstacle = np.bincount(flat[r == PointRole.OBSTACLE], minlength=n_cells)
    n_drivable = np.bincount(flat[r == PointRole.DRIVABLE], minlength=n_cells)
    n_not_drivable = np.bincount(flat[r == PointRole.NOT_DRIVABLE], minlength=n_cells)
    obstacle = n_obstacle >= cfg.min_obstacle_points

    drivable = np.full(n_cells, NO_INFORMATION, dtype=np.uint8)
    ground_cells = (n_drivable + n_not_drivable) > 0
    drivable[ground_cells] = np.where(
        n_drivable[ground_cells] > n_not_drivable[ground_cells], FREE_SPACE, LETHAL_OBSTACLE
    )
    drivable[obstacle] = LETHAL_OBSTACLE

    obstacle_cost = np.full(n_cells, NO_INFORMATION, dtype=np.uint8)
    obstacle_cost[seen] = FREE_SPACE
    shape = geo.shape
    if cost_lut is None and inflation_lut is None:
        obstacle_cost[obstacle] = LETHAL_OBSTACLE
        obstacle_cost = inflate(obstacle_cost.reshape(shape), obstacle.reshape(shape), cfg)
    else:
        is_obs = r == PointRole.OBSTACLE
        cell_cost, cell_radius = cell_class_rules(
            flat[is_obs], lab[used][keep][is_obs], n_cells, cost_lut, inflation_lut, cfg.inflation_radius
        )
        obstacle_cost[obstacle] = cell_cost[obstacle]
        obstacle_cost = inflate(obstacle_cost.reshape(shape), obstacle.reshape(shape), cfg,
                                cell_cost.reshape(shape), cell_radius.reshape(shape))
    return drivable.reshape(shape), obstacle_cost
