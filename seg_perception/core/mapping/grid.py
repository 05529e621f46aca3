"""Grid configurations (single-frame ``CostmapConfig`` with Nav2 parameter names, fused ``FusionConfig``) and grid
geometry: size checks, placement, cell lookup, rolling-window shifts (no ROS)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

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
    """Parameters of the costmap core (names follow Nav2's costmap_2d where the concept exists).

    Attributes:
        resolution: cell size [m/cell], > 0.
        width: grid size along base_frame x [m]; the grid is robot-centred (base_frame origin at the grid centre, like
            Nav2's rolling window). ``width_cells = round(width / resolution)``.
        height: grid size along base_frame y [m].
        ground_height_m: z of the (flat) ground plane in base_frame [m]; heights h below are ``z - ground_height_m``.
        drivable_tolerance_m: |h| <= this counts as flat ground for ``ground_if_flat`` classes [m], >= 0.
        min_obstacle_height: h >= this is an obstacle whatever its class (unless ignore) [m]; Nav2 obstacle layer's
            ``min_obstacle_height``. Also the band |h| < this in which a ``drivable`` class is trusted as drivable.
        max_obstacle_height: h > this is ignored (overhangs: tree canopy, bridges, signs) [m].
        min_confidence: points with confidence below this are ignored, in [0, 1].
        max_range_m: points farther than this from the base_frame origin in the x-y plane are ignored [m], > 0
            (may be inf); Nav2's ``obstacle_max_range`` measured from base_frame instead of the sensor.
        inflation_radius: inflate obstacles out to this distance [m], >= 0 (Nav2 default 0.55).
        cost_scaling_factor: exponential decay rate of the inflation cost [1/m], >= 0.
        inscribed_radius: cells within this distance of an obstacle get INSCRIBED_INFLATED_OBSTACLE [m], >= 0.
        inflate_unknown: write inflation costs (> 0) into NO_INFORMATION cells, as Nav2's ``inflate_unknown: true``.
            With False only costs >= INSCRIBED_INFLATED_OBSTACLE overwrite unknown cells (Nav2's default).
        min_obstacle_points: a cell is an obstacle only with at least this many obstacle points (>= 1; 1 = Nav2).
    """

    resolution: float = 0.1
    width: float = 20.0
    height: float = 20.0
    ground_height_m: float = 0.0
    drivable_tolerance_m: float = 0.15
    min_obstacle_height: float = 0.2
    max_obstacle_height: float = 2.0
    min_confidence: float = 0.0
    max_range_m: float = 10.0
    inflation_radius: float = 0.55
    cost_scaling_factor: float = 3.0
    inscribed_radius: float = 0.0
    inflate_unknown: bool = True
    min_obstacle_points: int = 1

    def __post_init__(self) -> None:
        def need(ok: bool, what: str, value: object) -> None:
            if not ok:
                raise ValueError(f"CostmapConfig.{what}, got {value!r}")

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
    """Parameters of ``RollingLogOddsGrid`` (Nav2 names where the concept exists).

    Attributes:
        resolution: cell size [m/cell], > 0.
        width, height: window size along odom x / y [m]; the window is centred on the robot.
        hit: log-odds added at an obstacle cell per frame (> 0; 0.85 = p 0.7).
        miss: log-odds added at a cell seen free per frame (< 0; -0.4 = p 0.4).
        clamp_min, clamp_max: log-odds bounds of both layers (OctoMap 0.12 / 0.97 = -2.0 / 3.5). With the defaults a
            cell seen as obstacle for a while needs ceil((3.5 + 0.3) / 0.4) = 10 frames of misses to read free.
        occupied_threshold: log-odds above this = obstacle (LETHAL_OBSTACLE), > 0.
        free_threshold: log-odds below this = free (FREE_SPACE), < 0; in between = NO_INFORMATION.
        drivable_evidence: log-odds added to the drivable layer where a frame says drivable (> 0).
        not_drivable_evidence: log-odds added where a frame says seen-not-drivable (< 0).
        drivable_threshold: drivable layer D > this = drivable, D < -this = not drivable, > 0.
        confidence_weighting: scale every update by the point's segmentation confidence (else weight 1).
        observation_persistence_s: time constant tau [s] of the decay toward unknown of cells not updated at a
            stamp; 0 = no decay (cells keep their state until re-observed).
        raytrace_max_range_m: rays clear cells up to this distance from the sensor [m] (Nav2
            ``raytrace_max_range``); ground endpoints farther away are not marked free, rays to them are cut here.
        max_rays: at most this many rays per update (a seeded random subset of the unique endpoint cells); endpoint
            hits and free marks are applied for all points regardless.
    Raises:
        ValueError: on a non-finite or out-of-range value, a grid over ``MAX_GRID_CELLS`` cells or more than
            ``MAX_RAY_SAMPLES`` ray samples (the message gives the limit and the actual value).
    """

    resolution: float = 0.1
    width: float = 20.0
    height: float = 20.0
    hit: float = 0.85
    miss: float = -0.4
    clamp_min: float = -2.0
    clamp_max: float = 3.5
    occupied_threshold: float = 0.5
    free_threshold: float = -0.3
    drivable_evidence: float = 0.85
    not_drivable_evidence: float = -0.85
    drivable_threshold: float = 0.5
    confidence_weighting: bool = True
    observation_persistence_s: float = 0.0
    raytrace_max_range_m: float = 10.0
    max_rays: int = 5000

    def __post_init__(self) -> None:
        def need(ok: bool, what: str, value: object) -> None:
            if not ok:
                raise ValueError(f"FusionConfig.{what}, got {value!r}")

        for k in ("resolution", "width", "height", "hit", "miss", "clamp_min", "clamp_max", "occupied_threshold",
                  "free_threshold", "drivable_evidence", "not_drivable_evidence", "drivable_threshold",
                  "observation_persistence_s", "raytrace_max_range_m"):
            v = getattr(self, k)
            need(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
                 f"{k} must be a finite number", v)
        check_grid_size("FusionConfig", self.resolution, self.width, self.height)
        need(self.hit > 0, "hit must be > 0 (log-odds)", self.hit)
        need(self.miss < 0, "miss must be < 0 (log-odds)", self.miss)
        need(self.clamp_min < self.free_threshold < 0 < self.occupied_threshold < self.clamp_max,
             f"thresholds must satisfy clamp_min < free_threshold < 0 < occupied_threshold < clamp_max "
             f"({self.clamp_min}, {self.free_threshold}, {self.occupied_threshold}, {self.clamp_max})",
             (self.free_threshold, self.occupied_threshold))
        need(self.drivable_evidence > 0 > self.not_drivable_evidence,
             "drivable_evidence must be > 0 and not_drivable_evidence < 0",
             (self.drivable_evidence, self.not_drivable_evidence))
        need(0 < self.drivable_threshold < min(self.clamp_max, -self.clamp_min),
             f"drivable_threshold must be in (0, min(clamp_max, -clamp_min)={min(self.clamp_max, -self.clamp_min)})",
             self.drivable_threshold)
        need(self.observation_persistence_s >= 0, "observation_persistence_s must be >= 0 [s]",
             self.observation_persistence_s)
        need(self.raytrace_max_range_m > 0, "raytrace_max_range_m must be > 0 [m]", self.raytrace_max_range_m)
        need(isinstance(self.max_rays, int) and not isinstance(self.max_rays, bool) and self.max_rays >= 1,
             "max_rays must be an integer >= 1", self.max_rays)
        samples = self.max_rays * self.samples_per_ray
        need(samples <= MAX_RAY_SAMPLES,
             f"max_rays * ceil(2 * raytrace_max_range_m / resolution) must be at most {MAX_RAY_SAMPLES} ray samples "
             f"but is {self.max_rays} * {self.samples_per_ray} = {samples}", (self.max_rays, self.raytrace_max_range_m))

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
