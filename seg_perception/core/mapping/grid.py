"""Costmap configuration (Nav2 parameter names) and grid geometry: size checks, placement, cell lookup (no ROS)."""

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
