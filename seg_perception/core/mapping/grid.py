"""Grid configurations (single-frame ``CostmapConfig`` with Nav2 parameter names, fused ``FusionConfig``) and grid
geometry: size checks, placement, cell lookup, rolling-window shifts (no ROS)."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np

from seg_perception.core.config import check_declared_ranges, param, require

MAX_GRID_CELLS = 4_000_000
"""Upper bound on width_cells * height_cells (e.g. 2000 x 2000 = 200 m x 200 m at 0.1 m); ~100 MB of work arrays."""


# --- Configuration and grid geometry ----------------------------------------------------------------------------------
def check_grid_size(owner: str, resolution: float, width: float, height: float) -> tuple[int, int]:
    """Validate a grid's resolution [m/cell] and size [m]; returns (width_cells, height_cells).

    Raises:
        ValueError: non-positive values, less than one cell, or more than ``MAX_GRID_CELLS`` cells (the message
            names ``owner`` and gives the limit and the actual values).
    """
    if not resolution > 0:
        raise ValueError(f"{owner}.resolution must be > 0 [m/cell], got {resolution!r}")
    if not (width > 0 and height > 0):
        raise ValueError(f"{owner}.width and height must be > 0 [m], got {(width, height)!r}")
    w, h = int(round(width / resolution)), int(round(height / resolution))
    if w < 1 or h < 1:
        raise ValueError(f"{owner}.width/height must be at least one cell, got {(width, height)!r}")
    if w * h > MAX_GRID_CELLS:
        raise ValueError(f"{owner}: grid must have at most {MAX_GRID_CELLS} cells (width*height/resolution^2) but "
                         f"has {w}x{h} = {w * h}, got {(width, height, resolution)!r}")  # fmt: skip
    return w, h


class GridSize:
    """Cell counts of a config with ``resolution`` [m/cell], ``width`` and ``height`` [m] fields."""

    resolution: float
    width: float
    height: float

    @property
    def width_cells(self) -> int:
        """Number of columns, ``round(width / resolution)``."""
        return int(round(self.width / self.resolution))

    @property
    def height_cells(self) -> int:
        """Number of rows, ``round(height / resolution)``."""
        return int(round(self.height / self.resolution))


@dataclass(frozen=True)
class CostmapConfig(GridSize):
    """Parameters of the single-frame costmap core; each field's description, unit and range is its ``param``
    declaration (the ROS parameter descriptor and README's generated table come from it). Names follow Nav2's
    costmap_2d where the meaning is Nav2's (``resolution``, ``width``, ``height``, ``min_obstacle_height``,
    ``max_obstacle_height``, ``inflation_radius``, ``cost_scaling_factor``, ``inflate_unknown``); heights h are
    ``z - ground_height_m`` in base_frame. The grid is robot-centred (base_frame origin at the grid centre, like
    Nav2's rolling window); ``width_cells = round(width / resolution)``.

    Raises:
        ValueError: on a non-finite or out-of-range value, or a grid over ``MAX_GRID_CELLS`` cells.
    """

    resolution: float = param(0.1, "cell size [m/cell]", lo=0.001, hi=100.0)
    width: float = param(20.0, "grid size along base_frame x [m], robot-centred", lo=0.001, hi=100_000.0)
    height: float = param(20.0, "grid size along base_frame y [m], robot-centred", lo=0.001, hi=100_000.0)
    ground_height_m: float = param(0.0, "z of the flat ground plane in base_frame [m]", lo=-100.0, hi=100.0)
    drivable_tolerance_m: float = param(
        0.15, "abs(height) up to this is flat ground for ground_if_flat classes [m], <= min_obstacle_height",
        lo=0.0, hi=100.0)  # fmt: skip
    min_obstacle_height: float = param(
        0.2, "heights from this up are obstacles whatever the class (unless ignore); below it a drivable class is "
        "drivable (Nav2 min_obstacle_height) [m above ground]", lo=-100.0, hi=100.0)  # fmt: skip
    max_obstacle_height: float = param(2.0, "higher points (canopies, bridges, signs) are ignored (Nav2 "
                                       "max_obstacle_height) [m above ground]", lo=-100.0, hi=1000.0)  # fmt: skip
    min_confidence: float = param(0.0, "points with a lower segmentation confidence are ignored [0-1]", lo=0.0, hi=1.0)
    max_range_m: float = param(10.0, "points farther than this from the base_frame origin in the x-y plane are "
                               "ignored [m] (measured from base_frame, not from the sensor as Nav2's "
                               "obstacle_max_range); .inf = no limit", lo=0.001, hi=math.inf)  # fmt: skip
    inflation_radius: float = param(0.55, "inflate obstacles out to this distance (Nav2 inflation_radius) [m]",
                                    lo=0.0, hi=100.0)  # fmt: skip
    cost_scaling_factor: float = param(3.0, "exponential decay rate of the inflation cost (Nav2) [1/m]",
                                       lo=0.0, hi=1000.0)  # fmt: skip
    inscribed_radius: float = param(0.0, "cells within this distance of an obstacle get INSCRIBED_INFLATED_OBSTACLE "
                                    "(253) [m]", lo=0.0, hi=100.0)  # fmt: skip
    inflate_unknown: bool = param(True, "write inflation costs into unknown cells (Nav2 inflate_unknown); false: "
                                  "only costs >= INSCRIBED_INFLATED_OBSTACLE overwrite unknown cells")  # fmt: skip
    min_obstacle_points: int = param(1, "a cell is an obstacle only with at least this many obstacle points "
                                     "(1 = Nav2)", lo=1, hi=1_000_000)  # fmt: skip

    def __post_init__(self) -> None:
        need = functools.partial(require, self)
        finite = {k: getattr(self, k) for k in (
            "resolution", "width", "height", "ground_height_m", "drivable_tolerance_m", "min_obstacle_height",
            "max_obstacle_height", "min_confidence", "inflation_radius", "cost_scaling_factor", "inscribed_radius")}
        for k, v in finite.items():
            need(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
                 f"{k} must be a finite number", v)
        check_grid_size("CostmapConfig", self.resolution, self.width, self.height)
        need(0 <= self.drivable_tolerance_m <= self.min_obstacle_height,
             f"drivable_tolerance_m must be in [0, min_obstacle_height={self.min_obstacle_height}]",
             self.drivable_tolerance_m)
        need(self.min_obstacle_height < self.max_obstacle_height,
             f"min_obstacle_height must be < max_obstacle_height={self.max_obstacle_height}", self.min_obstacle_height)
        need(0.0 <= self.min_confidence <= 1.0, "min_confidence must be in [0, 1]", self.min_confidence)
        need(isinstance(self.max_range_m, (int, float)) and not math.isnan(self.max_range_m) and self.max_range_m > 0,
             "max_range_m must be > 0 [m] (inf allowed)", self.max_range_m)
        need(self.inflation_radius >= 0, "inflation_radius must be >= 0 [m]", self.inflation_radius)
        need(self.cost_scaling_factor >= 0, "cost_scaling_factor must be >= 0 [1/m]", self.cost_scaling_factor)
        need(self.inscribed_radius >= 0, "inscribed_radius must be >= 0 [m]", self.inscribed_radius)
        need(isinstance(self.min_obstacle_points, int) and self.min_obstacle_points >= 1,
             "min_obstacle_points must be an integer >= 1", self.min_obstacle_points)
        check_declared_ranges(self)


@dataclass(frozen=True)
class GridGeometry:
    """Placement of a grid in its frame (``nav_msgs/MapMetaData`` without the time).

    Attributes:
        origin_x, origin_y: position of the outer corner of cell (0, 0) [m] (``info.origin.position``).
        resolution: cell size [m/cell].
        width_cells, height_cells: columns (x) and rows (y); arrays are (height_cells, width_cells).
    """

    origin_x: float
    origin_y: float
    resolution: float
    width_cells: int
    height_cells: int
    _inv_res: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (self.resolution > 0 and self.width_cells >= 1 and self.height_cells >= 1):
            raise ValueError(f"need resolution > 0 and at least 1x1 cells, got resolution={self.resolution} "
                             f"size={self.width_cells}x{self.height_cells}")
        object.__setattr__(self, "_inv_res", 1.0 / self.resolution)

    @classmethod
    def from_config(cls, cfg: CostmapConfig, center_xy: Sequence[float] = (0.0, 0.0)) -> GridGeometry:
        """Grid of ``cfg``'s size centred on ``center_xy`` (default: the base_frame origin)."""
        w, h = cfg.width_cells, cfg.height_cells
        return cls(
            origin_x=float(center_xy[0]) - 0.5 * w * cfg.resolution,
            origin_y=float(center_xy[1]) - 0.5 * h * cfg.resolution,
            resolution=cfg.resolution,
            width_cells=w,
            height_cells=h,
        )

    @property
    def shape(self) -> tuple[int, int]:
        """(height_cells, width_cells)."""
        return (self.height_cells, self.width_cells)

    def cell_indices(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Map positions to cells: col = floor((x - origin_x) / resolution), row likewise with y.

        Args:
            x: (N,) positions [m] along the grid frame's x axis; NaN = invalid.
            y: (N,) positions [m] along y.
        Returns:
            (rows, cols, keep): (M,) int64 rows and columns of the points that fall inside the grid, and the (N,) bool
            mask selecting them (NaN and out-of-grid points are dropped).
        """
        fx = (np.asarray(x, dtype=np.float64) - self.origin_x) * self._inv_res
        fy = (np.asarray(y, dtype=np.float64) - self.origin_y) * self._inv_res
        keep = (fx >= 0) & (fx < self.width_cells) & (fy >= 0) & (fy < self.height_cells)  # NaN -> False
        cols = fx[keep].astype(np.int64)  # >= 0, so truncation == floor
        rows = fy[keep].astype(np.int64)
        return rows, cols, keep

    def cell_center(self, row: int, col: int) -> tuple[float, float]:
        """Centre (x, y) [m] of one cell."""
        return (self.origin_x + (col + 0.5) * self.resolution, self.origin_y + (row + 0.5) * self.resolution)


MAX_RAY_SAMPLES = 4_000_000
"""Upper bound on ``max_rays * ceil(2 * raytrace_max_range_m / resolution)`` ray samples per update (~150 MB of
work arrays)."""


@dataclass(frozen=True)
class FusionConfig(GridSize):
    """Parameters of ``RollingLogOddsGrid`` (``fusion.*``); each field's description, unit and range is its ``param``
    declaration. Log-odds quantities end in ``_log_odds`` (l = ln(p / (1 - p)): 0.85 is p 0.7, -0.4 is p 0.4); the
    clamp bounds are OctoMap's 0.12 / 0.97. With the defaults a cell seen as obstacle for a while needs
    ceil((3.5 + 0.3) / 0.4) = 10 frames of misses to read free. ``resolution``, ``width``, ``height``: the window
    (odom x / y, centred on the robot), set from the costmap's own.

    Raises:
        ValueError: on a non-finite or out-of-range value, a grid over ``MAX_GRID_CELLS`` cells or more than
            ``MAX_RAY_SAMPLES`` ray samples (the message gives the limit and the actual value).
    """

    resolution: float = param(0.1, "cell size [m/cell]", lo=0.001, hi=100.0)
    width: float = param(20.0, "window size along x [m]", lo=0.001, hi=100_000.0)
    height: float = param(20.0, "window size along y [m]", lo=0.001, hi=100_000.0)
    hit_log_odds: float = param(0.85, "added per frame at a cell holding an obstacle point [log-odds], > 0",
                                lo=0.001, hi=100.0)  # fmt: skip
    miss_log_odds: float = param(-0.4, "added per frame at a cell seen free (ray or ground) [log-odds], < 0",
                                 lo=-100.0, hi=-0.001)  # fmt: skip
    clamp_min_log_odds: float = param(-2.0, "lower bound of both layers [log-odds]", lo=-100.0, hi=-0.001)
    clamp_max_log_odds: float = param(3.5, "upper bound of both layers [log-odds]", lo=0.001, hi=100.0)
    occupied_threshold_log_odds: float = param(0.5, "obstacle layer above this = obstacle (LETHAL_OBSTACLE) "
                                               "[log-odds]", lo=0.001, hi=100.0)  # fmt: skip
    free_threshold_log_odds: float = param(-0.3, "obstacle layer below this = free (FREE_SPACE); in between = "
                                           "unknown [log-odds]", lo=-100.0, hi=-0.001)  # fmt: skip
    drivable_evidence_log_odds: float = param(0.85, "added to the drivable layer where a frame says drivable "
                                              "[log-odds]", lo=0.001, hi=100.0)  # fmt: skip
    not_drivable_evidence_log_odds: float = param(-0.85, "added to the drivable layer where a frame says seen, not "
                                                  "drivable [log-odds]", lo=-100.0, hi=-0.001)  # fmt: skip
    drivable_threshold_log_odds: float = param(0.5, "drivable layer above this = drivable, below minus this = not "
                                               "drivable [log-odds]", lo=0.001, hi=100.0)  # fmt: skip
    confidence_weighting: bool = param(True, "scale every update by the point's segmentation confidence (else 1)")
    decay_time_constant_s: float = param(0.0, "time constant tau of the exponential decay toward unknown of cells "
                                         "not updated at a stamp (l *= exp(-dt / tau)) [s]; 0 = no decay",
                                         lo=0.0, hi=1e6)  # fmt: skip
    raytrace_max_range_m: float = param(10.0, "rays clear cells up to this distance from the sensor (Nav2 "
                                        "raytrace_max_range) [m]", lo=0.001, hi=100_000.0)  # fmt: skip
    max_rays: int = param(5000, "at most this many rays per update (a seeded random subset of the endpoint cells; "
                          "endpoint hits and free marks apply to all points)", lo=1, hi=4_000_000)  # fmt: skip

    def __post_init__(self) -> None:
        need = functools.partial(require, self)
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(f.default, float):
                need(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
                     f"{f.name} must be a finite number", v)
        check_grid_size("FusionConfig", self.resolution, self.width, self.height)
        need(self.hit_log_odds > 0, "hit_log_odds must be > 0", self.hit_log_odds)
        need(self.miss_log_odds < 0, "miss_log_odds must be < 0", self.miss_log_odds)
        lo, free, occ, hi = (self.clamp_min_log_odds, self.free_threshold_log_odds, self.occupied_threshold_log_odds,
                             self.clamp_max_log_odds)  # fmt: skip
        need(lo < free < 0 < occ < hi, "the log-odds must satisfy clamp_min_log_odds < free_threshold_log_odds < 0 < "
             f"occupied_threshold_log_odds < clamp_max_log_odds ({lo}, {free}, {occ}, {hi})", (free, occ))
        need(self.drivable_evidence_log_odds > 0 > self.not_drivable_evidence_log_odds,
             "drivable_evidence_log_odds must be > 0 and not_drivable_evidence_log_odds < 0",
             (self.drivable_evidence_log_odds, self.not_drivable_evidence_log_odds))
        need(0 < self.drivable_threshold_log_odds < min(hi, -lo),
             f"drivable_threshold_log_odds must be in (0, min(clamp_max_log_odds, -clamp_min_log_odds)={min(hi, -lo)})",
             self.drivable_threshold_log_odds)
        need(self.decay_time_constant_s >= 0, "decay_time_constant_s must be >= 0 [s]", self.decay_time_constant_s)
        need(self.raytrace_max_range_m > 0, "raytrace_max_range_m must be > 0 [m]", self.raytrace_max_range_m)
        need(isinstance(self.max_rays, int) and not isinstance(self.max_rays, bool) and self.max_rays >= 1,
             "max_rays must be an integer >= 1", self.max_rays)
        samples = self.max_rays * self.samples_per_ray
        need(samples <= MAX_RAY_SAMPLES,
             f"max_rays * ceil(2 * raytrace_max_range_m / resolution) must be at most {MAX_RAY_SAMPLES} ray samples "
             f"but is {self.max_rays} * {self.samples_per_ray} = {samples}", (self.max_rays, self.raytrace_max_range_m))
        check_declared_ranges(self)

    @property
    def samples_per_ray(self) -> int:
        """Most samples of one ray: steps of at most half a cell over ``raytrace_max_range_m`` (+1 for rounding)."""
        return math.ceil(2.0 * self.raytrace_max_range_m / self.resolution) + 1


def shift_window(a: np.ndarray, dx: int, dy: int, fill: float) -> np.ndarray:
    """Roll a grid window by whole cells: new[r, c] = a[r + dy, c + dx] where inside, ``fill`` elsewhere.

    Args:
        a: (H, W) grid, row = y, column = x.
        dx, dy: shift of the window's origin [cells] along x (columns) and y (rows).
        fill: value of the cells that enter the window.
    Returns:
        (H, W) new array of ``a``'s dtype.
    """
    h, w = a.shape
    out = np.full_like(a, fill)
    if abs(dx) >= w or abs(dy) >= h:
        return out
    src_r = slice(max(dy, 0), h + min(dy, 0))
    dst_r = slice(max(-dy, 0), h + min(-dy, 0))
    src_c = slice(max(dx, 0), w + min(dx, 0))
    dst_c = slice(max(-dx, 0), w + min(-dx, 0))
    out[dst_r, dst_c] = a[src_r, src_c]
    return out
