"""Semantic grid: per cell, the class id behind the cell's drivable / obstacle verdict (no ROS).

The drivable and obstacle grids say *whether* a cell is drivable or an obstacle; the semantic grid says *what* it
is, with the class ids of the model (the ``label_info`` the costmap node received). To keep the three grids
consistent, the class of a cell is taken among the points that gave the cell its verdict:

- an obstacle cell (``min_obstacle_points`` OBSTACLE points in a single frame, occupied obstacle layer when fused)
  takes the most likely class of its OBSTACLE points, leaving out classes whose ontology role is ``drivable`` (a
  "road" point 1 m above the ground is a mislabelled obstacle: it cannot say what the obstacle is; a cell with no
  other obstacle point reads -1);
- a drivable cell (drivable grid 0) the most likely class of its DRIVABLE points (depth-backed, or projected onto
  the ground by ``ground_projection`` where no depth fell);
- a not-drivable ground cell (drivable grid 100, no obstacle) the most likely class of its NOT_DRIVABLE points;
- an unknown cell (drivable grid -1) is -1, as is a cell whose class id does not fit ``OccupancyGrid``'s int8
  data (ids above ``MAX_GRID_CLASS`` = 127: such a model's classes 128 and up read -1).

"Most likely" in one frame is the class with the largest sum of point weights (confidence, or 1) in the cell,
ties to the lower id. Fused over frames, each cell keeps, per role (obstacle, drivable, not drivable), one class and
a score, updated by a weighted majority vote (Boyer and Moore, "MJRTY: a fast majority vote algorithm", 1991):
the frame's class adds its weight to the score when it is the kept class, else subtracts it, and replaces the
class when the score goes below zero; scores are capped at ``SCORE_CAP`` so a cell can change class after a few
frames. Memory is 3 x (int16 + float32) per cell whatever the class count (a per-class histogram would be
n_classes floats per cell).
"""

from __future__ import annotations

import numpy as np

from seg_perception.core.mapping.costs import FREE_SPACE, LETHAL_OBSTACLE
from seg_perception.core.mapping.grid import GridGeometry, shift_window
from seg_perception.core.mapping.ontology import PointRole, Role
from seg_perception.core.mapping.ontology import class_roles as roles_of

__all__ = ["MAX_GRID_CLASS", "SCORE_CAP", "RollingSemanticVotes", "cell_votes", "semantic_occupancy"]

MAX_GRID_CLASS = 127
"""Largest class id an ``OccupancyGrid`` (int8 data, -1 = unknown) can carry."""

SCORE_CAP = 4.0
"""Cap of a fused cell's class score [summed point-weight units]: a new class takes over after at most this much
weight of frames that vote for it."""

#: Slot of each point role in the vote arrays (-1 = not voted).
SLOTS = (PointRole.OBSTACLE, PointRole.DRIVABLE, PointRole.NOT_DRIVABLE)
_SLOT_OF_ROLE = np.full(256, -1, np.int64)
for _i, _r in enumerate(SLOTS):
    _SLOT_OF_ROLE[int(_r)] = _i


def cell_votes(
    geometry: GridGeometry, points: np.ndarray, labels: np.ndarray, roles: np.ndarray, weights: np.ndarray | None,
    class_roles: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Per role slot (``SLOTS``: obstacle, drivable, not drivable) and cell, the class of largest summed weight.

    Args:
        geometry: the grid.
        points: (N, 3) or (N, 2) points in the grid frame [m]; NaN or outside the grid = not counted.
        labels: (N,) integer class ids (>= 0; ids of IGNORE points are not read).
        roles: (N,) uint8 ``PointRole``; IGNORE points are not counted.
        weights: (N,) float weights in [0, 1] (confidence; NaN = 0), or None = 1 each.
        class_roles: (C,) ``Role`` per class id (``Ontology.roles_lut``): OBSTACLE points of ``DRIVABLE`` classes
            count in ``count`` but do not vote for the class; None = every class votes.
    Returns:
        (cls, score, count): (3, height_cells, width_cells) int16 class id (-1 = no point of that role in the cell),
        float32 summed weight of that class, int64 number of points of that role in the cell.
    Raises:
        ValueError: on mismatched lengths.
    """
    n_cells = geometry.width_cells * geometry.height_cells
    shape = (len(SLOTS), *geometry.shape)
    roles = np.asarray(roles).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    if not (roles.size == labels.size == len(points)) or (weights is not None and np.size(weights) != roles.size):
        raise ValueError(f"{len(points)} points, {labels.size} labels, {roles.size} roles and weights must match")
    slot = _SLOT_OF_ROLE[roles]
    used = slot >= 0
    rows, cols, keep = geometry.cell_indices(points[used, 0], points[used, 1])
    group = slot[used][keep] * n_cells + rows * geometry.width_cells + cols  # (slot, cell) in [0, 3 n_cells)
    lab = labels[used][keep].astype(np.int64)
    w = np.ones(lab.size) if weights is None else np.nan_to_num(np.asarray(weights, np.float64)[used][keep], nan=0.0)
    count = np.bincount(group, minlength=3 * n_cells)
    if class_roles is not None:
        vote = (group >= n_cells) | (roles_of(lab, class_roles) != Role.DRIVABLE)  # slot 0 = obstacle
        group, lab, w = group[vote], lab[vote], w[vote]
    cls = np.full(3 * n_cells, -1, np.int16)
    score = np.zeros(3 * n_cells, np.float32)
    if lab.size:
        span = int(lab.max()) + 1
        pairs, inv = np.unique(group * span + lab, return_inverse=True)  # one entry per (slot, cell, class)
        sums = np.bincount(inv.reshape(-1), weights=w)
        g, c = pairs // span, pairs % span
        order = np.lexsort((c, -sums, g))  # per group: largest sum first, then the lower id
        first = order[np.r_[True, g[order][1:] != g[order][:-1]]]
        cls[g[first]] = np.minimum(c[first], np.iinfo(np.int16).max)
        score[g[first]] = sums[first]
    return cls.reshape(shape), score.reshape(shape), count.reshape(shape)


def semantic_occupancy(cls: np.ndarray, drivable_cost: np.ndarray, occupied: np.ndarray) -> np.ndarray:
    """The semantic grid's ``OccupancyGrid`` data from the kept classes and the cell verdicts (module docstring).

    Args:
        cls: (3, H, W) integer class per role slot (``cell_votes`` or ``RollingSemanticVotes.cls``), -1 = none.
        drivable_cost: (H, W) uint8 Nav2 costs of the drivable grid (FREE_SPACE drivable, LETHAL_OBSTACLE not
            drivable or obstacle, NO_INFORMATION unknown).
        occupied: (H, W) bool obstacle cells.
    Returns:
        (H, W) int8: class id 0..127, -1 = unknown or an id above ``MAX_GRID_CLASS``.
    """
    out = np.full(drivable_cost.shape, -1, np.int16)
    lethal = drivable_cost == LETHAL_OBSTACLE
    free = drivable_cost == FREE_SPACE
    out[free] = cls[1][free]
    out[lethal & occupied] = cls[0][lethal & occupied]
    out[lethal & ~occupied] = cls[2][lethal & ~occupied]
    out[out > MAX_GRID_CLASS] = -1
    return out.astype(np.int8)


class RollingSemanticVotes:
    """Fused per-cell classes of a rolling window (module docstring): per role slot, the kept class and its score.

    Args:
        shape: (height_cells, width_cells) of the fused window.
    Attributes:
        cls: (3, H, W) int16 kept class per slot, -1 = none yet.
        score: (3, H, W) float32 score of the kept class, in [0, ``SCORE_CAP``].
    """

    def __init__(self, shape: tuple[int, int]) -> None:
        self.cls = np.full((len(SLOTS), *shape), -1, np.int16)
        self.score = np.zeros((len(SLOTS), *shape), np.float32)

    def update(self, cls: np.ndarray, score: np.ndarray) -> None:
        """One frame's votes (``cell_votes``: class -1 = no vote in that slot and cell) by the weighted majority."""
        vote = cls >= 0
        same = vote & (cls == self.cls)
        other = vote & ~same
        self.score[same] += score[same]
        self.score[other] -= score[other]
        flip = other & (self.score < 0)
        self.cls[flip] = cls[flip]
        self.score[flip] = -self.score[flip]
        np.clip(self.score, 0.0, SCORE_CAP, out=self.score)

    def shift(self, dx: int, dy: int) -> None:
        """Roll with the fused window (``grid.shift_window``): cells that enter have no class."""
        if dx or dy:
            self.cls = np.stack([shift_window(c, dx, dy, -1) for c in self.cls])
            self.score = np.stack([shift_window(s, dx, dy, 0.0) for s in self.score])

    def reset(self) -> None:
        """Forget every class (with the fused grids' reset)."""
        self.cls.fill(-1)
        self.score.fill(0.0)
