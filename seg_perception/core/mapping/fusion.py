"""Temporal fusion of obstacle and drivable evidence in the odom frame: a rolling log-odds grid (no ROS imports).

A single frame's grid flickers (label noise, sparse LiDAR rows, a pedestrian crossing). This module keeps a
robot-centred window in the ``odom`` frame, as Nav2's rolling-window costmap does, and fuses every frame into two
log-odds layers (occupancy-grid mapping: Thrun, Burgard, Fox, "Probabilistic Robotics", ch. 9; the clamping policy
of OctoMap, Hornung et al. 2013):

- obstacle layer: ``L = clamp(L + hit_log_odds * w)`` at cells that hold an obstacle point this frame; ``L = clamp(L +
  miss_log_odds * w)`` at cells a sensor ray passes through before reaching its endpoint (Nav2 ObstacleLayer
  ``raytraceFreespace``) and at endpoint cells of ground points (seen free of obstacles). A cell gets at most one
  update per frame; a hit wins over a miss in the same frame (Nav2 clears first, then marks). This is what removes a
  car that drove away: rays to the road behind it, and the road points where it stood, lower its log-odds until the
  cell reads free.
- drivable layer: ``D = clamp(D + drivable_evidence_log_odds * w)`` at cells whose drivable points outweigh their
  not-drivable points this frame, ``D = clamp(D + not_drivable_evidence_log_odds * w)`` at the other cells with
  ground points
  (ties are not drivable, as ``costmap.build_grids``).

Weights ``w`` are 1, or with ``confidence_weighting`` the segmentation confidence in [0, 1] (the max over the
points of a cell; a ray carries the weight of its endpoint cell). With ``decay_time_constant_s = tau > 0`` every
cell that was not updated at a stamp decays toward unknown: ``L *= exp(-(now - t_last) / tau)`` (exact under any
call frequency, since the factors multiply). Nav2's ``observation_persistence`` instead keeps whole observations
for a fixed time; the exponential form needs no observation buffer.

Frames: every position is in ``odom`` (metres, REP-105), projected to the x-y plane. The grid is row-major (row =
y, column = x) and its origin (outer corner of cell (0, 0)) is always a whole multiple of the resolution, so a cell
stays at the same odom position while the window rolls (Nav2 ``Costmap2D::updateOrigin``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from seg_perception.core.mapping.costs import FREE_SPACE, LETHAL_OBSTACLE, NO_INFORMATION, inflate
from seg_perception.core.mapping.grid import CostmapConfig, FusionConfig, GridGeometry, shift_window
from seg_perception.core.mapping.ontology import PointRole
from seg_perception.core.mapping.raycast import ray_misses

__all__ = ["RollingLogOddsGrid"]

def _xy(name: str, a: np.ndarray | None) -> np.ndarray:
    if a is None:
        return np.zeros((0, 2), np.float64)
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] not in (2, 3):
        raise ValueError(f"{name} must be (N, 2) or (N, 3) positions [m], got {a.shape}")
    return a[:, :2]


def _weights(name: str, w: np.ndarray | None, n: int, use: bool) -> np.ndarray:
    if w is None or not use:
        return np.ones(n, np.float64)
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    if w.size != n:
        raise ValueError(f"{name} has {w.size} values but there are {n} points")
    return np.clip(np.nan_to_num(w, nan=0.0), 0.0, 1.0)


class RollingLogOddsGrid:
    """Robot-centred obstacle + drivable log-odds grids in odom, updated per frame (see the module docstring).

    Args:
        cfg: parameters.
        center_xy: initial robot position in odom [m]; the window starts centred on it.
    Attributes:
        cfg: the configuration.
    """

    def __init__(self, cfg: FusionConfig, center_xy: Sequence[float] = (0.0, 0.0)) -> None:
        self.cfg = cfg
        shape = (cfg.height_cells, cfg.width_cells)
        self._obstacle = np.zeros(shape, np.float32)
        self._drivable = np.zeros(shape, np.float32)
        self._obstacle_stamp = np.full(shape, np.nan, np.float64)
        self._drivable_stamp = np.full(shape, np.nan, np.float64)
        self._ox, self._oy = self._origin_cells(center_xy)

    # --- placement ---------------------------------------------------------------------------------------------------
    def _origin_cells(self, center_xy: Sequence[float]) -> tuple[int, int]:
        x, y = float(center_xy[0]), float(center_xy[1])
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"robot position must be finite, got {(x, y)}")
        res = self.cfg.resolution
        # The robot's cell is column width_cells // 2, row height_cells // 2 (+1e-9: 0.3 / 0.1 = 2.9999999999999996).
        return (math.floor(x / res + 1e-9) - self.cfg.width_cells // 2,
                math.floor(y / res + 1e-9) - self.cfg.height_cells // 2)

    @property
    def geometry(self) -> GridGeometry:
        """Placement of the grids in odom (origin = outer corner of cell (0, 0), a multiple of the resolution)."""
        res = self.cfg.resolution
        return GridGeometry(origin_x=self._ox * res, origin_y=self._oy * res, resolution=res,
                            width_cells=self.cfg.width_cells, height_cells=self.cfg.height_cells)

    @property
    def origin_cells(self) -> tuple[int, int]:
        """Origin as whole cells of the odom lattice: origin_x = origin_cells[0] * resolution."""
        return (self._ox, self._oy)

    @property
    def obstacle_log_odds(self) -> np.ndarray:
        """(H, W) float32 obstacle log-odds (a read-only view; 0 = unknown)."""
        v = self._obstacle.view()
        v.flags.writeable = False
        return v

    @property
    def drivable_log_odds(self) -> np.ndarray:
        """(H, W) float32 drivable log-odds (a read-only view; 0 = unknown)."""
        v = self._drivable.view()
        v.flags.writeable = False
        return v

    def recenter(self, robot_xy: Sequence[float]) -> tuple[int, int]:
        """Roll the window so the robot is in its centre cell (Nav2 ``Costmap2D::updateOrigin``).

        The origin moves by whole cells; cells that stay in the window keep their odom position and content, cells
        that leave are dropped and cells that enter are unknown (log-odds 0, never updated).

        Args:
            robot_xy: robot position in odom [m].
        Returns:
            (dx, dy): the shift of the origin in cells.
        Raises:
            ValueError: if the position is not finite.
        """
        ox, oy = self._origin_cells(robot_xy)
        dx, dy = ox - self._ox, oy - self._oy
        if dx or dy:
            self._obstacle = shift_window(self._obstacle, dx, dy, 0.0)
            self._drivable = shift_window(self._drivable, dx, dy, 0.0)
            self._obstacle_stamp = shift_window(self._obstacle_stamp, dx, dy, np.nan)
            self._drivable_stamp = shift_window(self._drivable_stamp, dx, dy, np.nan)
            self._ox, self._oy = ox, oy
        return dx, dy

    def reset(self) -> None:
        """Forget everything (all cells unknown); keeps the placement. Call after an odometry jump or time reset."""
        self._obstacle.fill(0.0)
        self._drivable.fill(0.0)
        self._obstacle_stamp.fill(np.nan)
        self._drivable_stamp.fill(np.nan)

    # --- updates -----------------------------------------------------------------------------------------------------
    def _flat_cells(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows, cols, keep = self.geometry.cell_indices(xy[:, 0], xy[:, 1])
        return rows * self.cfg.width_cells + cols, keep

    def update_obstacles(
        self,
        sensor_xy: Sequence[float],
        hit_xy: np.ndarray | None,
        hit_weight: np.ndarray | None,
        free_xy: np.ndarray | None,
        free_weight: np.ndarray | None,
        stamp_s: float,
    ) -> None:
        """Fuse one frame into the obstacle layer: ray-cast clearing, free endpoints, then hits.

        1. Endpoints: hit and free points (non-finite rows dropped). A free endpoint farther than
           ``raytrace_max_range_m`` from the sensor is not marked, and its ray is cut at that range (Nav2).
        2. Rays from ``sensor_xy`` to the centre of each unique endpoint cell (at most ``max_rays``, a seeded random
           subset), sampled every <= resolution / 2; the cells a ray visits strictly before its endpoint cell, inside
           the window, get a miss weighted by the endpoint cell's max weight (a cell crossed by several rays takes
           the max).
        3. Free endpoint cells get a miss; cells with a hit get ``hit_log_odds * w`` instead of any miss this frame.
        4. Clamp to [clamp_min_log_odds, clamp_max_log_odds]; updated cells get ``stamp_s``; with
           ``decay_time_constant_s > 0``, every other cell decays (``decay(stamp_s)``).

        Args:
            sensor_xy: camera position in odom projected to the ground plane (x, y) [m].
            hit_xy: (N, 2) or (N, 3) obstacle points in odom [m] (z ignored), or None.
            hit_weight: (N,) confidence in [0, 1] (NaN = 0), or None = 1; ignored unless ``confidence_weighting``.
            free_xy: (M, 2) or (M, 3) points seen free of obstacles (ground / drivable points) in odom [m], or None.
            free_weight: (M,) as ``hit_weight``.
            stamp_s: time of the frame [s] (the cloud's stamp; no clock is read).
        Raises:
            ValueError: on wrong shapes or a non-finite sensor position or stamp.
        """
        cfg = self.cfg
        sx, sy = float(sensor_xy[0]), float(sensor_xy[1])
        if not (math.isfinite(sx) and math.isfinite(sy) and math.isfinite(stamp_s)):
            raise ValueError(f"sensor_xy and stamp_s must be finite, got {(sx, sy)} and {stamp_s}")
        hit = _xy("hit_xy", hit_xy)
        free = _xy("free_xy", free_xy)
        w_hit = _weights("hit_weight", hit_weight, hit.shape[0], cfg.confidence_weighting)
        w_free = _weights("free_weight", free_weight, free.shape[0], cfg.confidence_weighting)
        ok_hit = np.isfinite(hit).all(axis=1)
        ok_free = np.isfinite(free).all(axis=1)
        hit, w_hit, free, w_free = hit[ok_hit], w_hit[ok_hit], free[ok_free], w_free[ok_free]

        n_cells = cfg.width_cells * cfg.height_cells
        miss_w = np.zeros(n_cells, np.float64)  # 0 = no miss this frame

        # 2. Rays. Endpoints beyond the raytrace range are pulled back onto it.
        pts = np.concatenate([hit, free])
        w_pts = np.concatenate([w_hit, w_free])
        if pts.shape[0]:
            flat, w = ray_misses((sx, sy), pts, w_pts, (self._ox, self._oy), cfg)
            np.maximum.at(miss_w, flat, w)

        # 3. Free endpoints (within range) and hits.
        in_range = (free[:, 0] - sx) ** 2 + (free[:, 1] - sy) ** 2 <= cfg.raytrace_max_range_m ** 2
        flat_free, keep = self._flat_cells(free[in_range])
        np.maximum.at(miss_w, flat_free, w_free[in_range][keep])
        flat_hit, keep = self._flat_cells(hit)
        hit_w = np.full(n_cells, -1.0, np.float64)  # -1 = no hit this frame
        np.maximum.at(hit_w, flat_hit, w_hit[keep])
        is_hit = hit_w >= 0
        is_miss = (miss_w > 0) & ~is_hit

        lo = self._obstacle.reshape(-1)
        lo[is_hit] += np.float32(cfg.hit_log_odds) * hit_w[is_hit].astype(np.float32)
        lo[is_miss] += np.float32(cfg.miss_log_odds) * miss_w[is_miss].astype(np.float32)
        np.clip(lo, cfg.clamp_min_log_odds, cfg.clamp_max_log_odds, out=lo)
        self._obstacle_stamp.reshape(-1)[is_hit | is_miss] = stamp_s
        if cfg.decay_time_constant_s > 0:
            self.decay(stamp_s)

    def update_drivable(
        self,
        drivable_xy: np.ndarray | None,
        drivable_weight: np.ndarray | None,
        not_drivable_xy: np.ndarray | None,
        not_drivable_weight: np.ndarray | None,
        stamp_s: float,
    ) -> None:
        """Fuse one frame's ground evidence into the drivable layer.

        Per cell, the weighted sums of drivable and not-drivable points decide the frame's vote (strict majority =
        drivable, ties = not drivable, as ``costmap.build_grids``); the winner adds its evidence times the max weight
        of its points in the cell. Clamped; updated cells get ``stamp_s``; other cells decay as in
        ``update_obstacles``.

        Args:
            drivable_xy: (N, 2) or (N, 3) odom positions of DRIVABLE points [m], or None.
            drivable_weight: (N,) confidence in [0, 1], or None = 1; ignored unless ``confidence_weighting``.
            not_drivable_xy: (M, 2) or (M, 3) odom positions of NOT_DRIVABLE points [m], or None.
            not_drivable_weight: (M,) as ``drivable_weight``.
            stamp_s: time of the frame [s].
        Raises:
            ValueError: on wrong shapes or a non-finite stamp.
        """
        cfg = self.cfg
        if not math.isfinite(stamp_s):
            raise ValueError(f"stamp_s must be finite, got {stamp_s}")
        n_cells = cfg.width_cells * cfg.height_cells
        sums, maxw = [], []
        for name, xy, w in (("drivable", drivable_xy, drivable_weight),
                            ("not_drivable", not_drivable_xy, not_drivable_weight)):
            p = _xy(f"{name}_xy", xy)
            wt = _weights(f"{name}_weight", w, p.shape[0], cfg.confidence_weighting)
            flat, keep = self._flat_cells(p)  # NaN rows are dropped by cell_indices
            wk = wt[keep]
            sums.append(np.bincount(flat, weights=wk, minlength=n_cells))
            m = np.full(n_cells, -1.0)
            np.maximum.at(m, flat, wk)
            maxw.append(m)
        seen = (maxw[0] >= 0) | (maxw[1] >= 0)
        yes = seen & (sums[0] > sums[1])
        no = seen & ~yes
        dv = self._drivable.reshape(-1)
        dv[yes] += np.float32(cfg.drivable_evidence_log_odds) * maxw[0][yes].astype(np.float32)
        dv[no] += np.float32(cfg.not_drivable_evidence_log_odds) * np.maximum(maxw[1][no], 0).astype(np.float32)
        np.clip(dv, cfg.clamp_min_log_odds, cfg.clamp_max_log_odds, out=dv)
        self._drivable_stamp.reshape(-1)[seen] = stamp_s
        if cfg.decay_time_constant_s > 0:
            self.decay(stamp_s)

    def update_roles(
        self,
        sensor_xy: Sequence[float],
        points_odom: np.ndarray,
        roles: np.ndarray,
        confidence: np.ndarray | None,
        stamp_s: float,
    ) -> None:
        """Both updates from one classified cloud (``costmap.classify_points`` roles).

        OBSTACLE points are hits; DRIVABLE and NOT_DRIVABLE points are free endpoints of the obstacle layer and the
        two kinds of evidence of the drivable layer; IGNORE points are not used (not even as rays).

        Args:
            sensor_xy: camera position in odom (x, y) [m].
            points_odom: (N, 3) or (N, 2) points in odom [m]; NaN = invalid.
            roles: (N,) uint8 ``PointRole``.
            confidence: (N,) float in [0, 1], or None.
            stamp_s: time of the frame [s].
        Raises:
            ValueError: on mismatched lengths.
        """
        p = _xy("points_odom", np.asarray(points_odom).reshape(-1, np.asarray(points_odom).shape[-1]))
        roles = np.asarray(roles).reshape(-1)
        if roles.size != p.shape[0]:
            raise ValueError(f"roles has {roles.size} values but points_odom has {p.shape[0]} points")
        conf = None if confidence is None else np.asarray(confidence, dtype=np.float64).reshape(-1)
        if conf is not None and conf.size != p.shape[0]:
            raise ValueError(f"confidence has {conf.size} values but points_odom has {p.shape[0]} points")

        def sel(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
            return p[mask], None if conf is None else conf[mask]

        obstacle = roles == PointRole.OBSTACLE
        drivable = roles == PointRole.DRIVABLE
        not_drivable = roles == PointRole.NOT_DRIVABLE
        self.update_obstacles(sensor_xy, *sel(obstacle), *sel(drivable | not_drivable), stamp_s)
        self.update_drivable(*sel(drivable), *sel(not_drivable), stamp_s)

    def add_drivable_evidence(self, weight: np.ndarray, stamp_s: float) -> None:
        """Weighted drivable evidence without a point per cell (ground projection, ``ground_projection.py``):
        ``D = clamp(D + drivable_evidence_log_odds * weight)`` where weight > 0 and the obstacle layer is not occupied.

        Args:
            weight: (height_cells, width_cells) float weights in [0, 1) of this window; 0 = no evidence.
            stamp_s: time of the frame [s].
        Raises:
            ValueError: on a wrong shape.
        """
        w = np.asarray(weight, dtype=np.float32)
        if w.shape != self._drivable.shape:
            raise ValueError(f"weight must be {self._drivable.shape}, got {w.shape}")
        use = (w > 0) & ~self.occupied_mask()
        self._drivable[use] += np.float32(self.cfg.drivable_evidence_log_odds) * w[use]
        np.clip(self._drivable, self.cfg.clamp_min_log_odds, self.cfg.clamp_max_log_odds, out=self._drivable)
        self._drivable_stamp[use] = stamp_s

    def decay(self, now_s: float) -> None:
        """Decay both layers toward unknown: ``L *= exp(-(now_s - t_last) / tau)`` for cells last updated before
        ``now_s`` (their ``t_last`` becomes ``now_s``); a no-op when ``decay_time_constant_s`` is 0.

        Cells whose last update is after ``now_s`` (time went backwards) are left alone; call ``reset`` then.
        """
        tau = self.cfg.decay_time_constant_s
        if tau <= 0:
            return
        for layer, stamp in ((self._obstacle, self._obstacle_stamp), (self._drivable, self._drivable_stamp)):
            old = stamp < now_s  # NaN (never updated) -> False
            layer[old] *= np.exp(-(now_s - stamp[old]) / tau).astype(np.float32)
            stamp[old] = now_s

    # --- outputs -----------------------------------------------------------------------------------------------------
    def occupied_mask(self) -> np.ndarray:
        """(H, W) bool: obstacle log-odds > occupied_threshold_log_odds."""
        return self._obstacle > np.float32(self.cfg.occupied_threshold_log_odds)

    def obstacle_cost(self, inflation: CostmapConfig | None = None) -> np.ndarray:
        """Obstacle layer as Nav2 uint8 costs.

        LETHAL_OBSTACLE where L > occupied_threshold_log_odds, FREE_SPACE where L < free_threshold_log_odds,
        NO_INFORMATION else; then, if ``inflation`` is given, ``costmap.inflate`` with its radius / scaling / inscribed
        radius / inflate_unknown.

        Args:
            inflation: inflation parameters (its resolution must equal this grid's), or None for no inflation.
        Returns:
            (height_cells, width_cells) uint8, row = y, placed by ``geometry``.
        Raises:
            ValueError: if ``inflation.resolution`` differs from ``cfg.resolution``.
        """
        occupied = self.occupied_mask()
        out = np.full(occupied.shape, NO_INFORMATION, np.uint8)
        out[self._obstacle < np.float32(self.cfg.free_threshold_log_odds)] = FREE_SPACE
        out[occupied] = LETHAL_OBSTACLE
        if inflation is not None:
            if not math.isclose(inflation.resolution, self.cfg.resolution, rel_tol=1e-9):
                raise ValueError(f"inflation resolution {inflation.resolution} does not match the fused grid's "
                                 f"{self.cfg.resolution}")
            out = inflate(out, occupied, inflation)
        return out

    def drivable_cost(self) -> np.ndarray:
        """Drivable layer as Nav2 uint8 costs, combined with the obstacle layer ("any obstacle wins").

        LETHAL_OBSTACLE where the obstacle layer is occupied or D < -drivable_threshold_log_odds; FREE_SPACE where
        D > drivable_threshold_log_odds; NO_INFORMATION else.

        Returns:
            (height_cells, width_cells) uint8, placed by ``geometry``.
        """
        thr = np.float32(self.cfg.drivable_threshold_log_odds)
        out = np.full(self._drivable.shape, NO_INFORMATION, np.uint8)
        out[self._drivable > thr] = FREE_SPACE
        out[(self._drivable < -thr) | self.occupied_mask()] = LETHAL_OBSTACLE
        return out
