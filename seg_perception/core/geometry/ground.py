"""Per-frame ground-plane fitting in ``base_frame`` with RANSAC, and a flat fallback (no ROS imports).

The costmap measures obstacle heights above the ground. A fixed ``ground_height_m`` assumes a flat world and a perfect
extrinsic; on a slope, or when the vehicle pitches under braking, a 1 deg error is 0.17 m at 10 m, enough to turn the
road into an obstacle band. ``fit_ground_plane`` fits the plane of the current frame instead:

1. Candidates: finite points within ``height_window_m`` of the expected ground height (and ``max_range_m``), seeded
   random subsample of at most ``max_candidates``.
2. RANSAC (``ransac_plane``; Fischler & Bolles 1981) for the plane with most inliers, then a least-squares
   refinement on its inliers (smallest singular vector of the centred inliers). The hypotheses come from a seeded
   generator and are scored all at once, so the same input always gives the same plane (offline runs are
   bit-identical; Open3D's multi-threaded RANSAC was not).
3. Acceptance: at least ``min_inliers`` inliers (counted over all candidates, not the subsample) and a normal within
   ``max_tilt_deg`` of base_frame +z. Otherwise the flat plane ``z = expected_height_m`` is returned with
   ``fitted=False``, so a frame that sees no ground (a wall, a close-up of a car) keeps the configured geometry.

Frames: everything is in ``base_frame`` (REP-103: x forward, y left, z up, metres).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from seg_perception.core.config import check_declared_ranges, param, require

__all__ = ["GroundConfig", "GroundPlane", "fit_ground_plane"]


@dataclass(frozen=True)
class GroundConfig:
    """Parameters of ``fit_ground_plane`` (``ground.*`` on the costmap node); each field's description, unit and
    range is its ``param`` declaration. ``expected_height_m`` (the z of the ground in base_frame when the extrinsic
    is right: 0 when base_frame is on the ground, as REP-105's base_footprint; also the fallback plane's height) is
    set by the costmap from its ``ground_height_m``.

    Raises:
        ValueError: on a value out of range (the message names the field).
    """

    distance_threshold_m: float = param(0.05, "RANSAC inlier distance to the plane [m]", lo=0.0001, hi=10.0)
    max_tilt_deg: float = param(15.0, "the fitted normal must be within this angle of base_frame +z [deg]",
                                lo=0.0, hi=89.9)  # fmt: skip
    expected_height_m: float = param(0.0, "z of the ground in base_frame [m] (from ground_height_m)",
                                     lo=-100.0, hi=100.0)  # fmt: skip
    height_window_m: float = param(0.5, "only points within this of the expected ground height are candidates [m]",
                                   lo=0.001, hi=100.0)  # fmt: skip
    max_range_m: float = param(math.inf, "only points within this x-y distance of base_frame are candidates [m] "
                               "(.inf = no limit)", lo=0.001, hi=math.inf)  # fmt: skip
    min_inliers: int = param(200, "a fit needs at least this many inliers (>= ransac_n)", lo=3, hi=10_000_000)
    ransac_n: int = param(3, "points per RANSAC hypothesis (3 for a plane)", lo=3, hi=1000)
    iterations: int = param(100, "RANSAC iterations", lo=1, hi=100_000)
    max_candidates: int = param(20_000, "candidates are subsampled to at most this many before RANSAC (>= ransac_n)",
                                lo=3, hi=100_000_000)  # fmt: skip
    seed: int = param(0, "seed of the subsampling and the RANSAC hypotheses (deterministic fits)", lo=0,
                      hi=2_147_483_647)  # fmt: skip

    def __post_init__(self) -> None:
        need = functools.partial(require, self)  # ranges: check_declared_ranges; here what relates two fields
        need(isinstance(self.min_inliers, int) and self.min_inliers >= self.ransac_n,
             f"min_inliers must be an integer >= ransac_n={self.ransac_n}", self.min_inliers)
        need(isinstance(self.max_candidates, int) and self.max_candidates >= self.ransac_n,
             f"max_candidates must be an integer >= ransac_n={self.ransac_n}", self.max_candidates)
        check_declared_ranges(self)


@dataclass(frozen=True)
class GroundPlane:
    """A ground plane ``n . p + d = 0`` in base_frame, with ``n`` a unit vector pointing up (n_z > 0).

    Attributes:
        normal: (nx, ny, nz) unit normal in base_frame, nz > 0.
        offset: d [m]; the plane's signed distance from the base_frame origin is ``-d`` (d < 0: origin above ground).
        inliers: number of candidate points within the inlier distance (0 for a fallback plane).
    Raises:
        ValueError: if the normal is not finite and non-zero with nz > 0, or the offset is not finite. The normal is
            normalised on construction.
    """

    normal: tuple[float, float, float]
    offset: float
    inliers: int = 0

    def __post_init__(self) -> None:
        n = np.asarray(self.normal, dtype=np.float64).reshape(-1)
        norm = float(np.linalg.norm(n)) if n.size == 3 else 0.0
        if n.size != 3 or not np.isfinite(n).all() or norm == 0 or n[2] <= 0 or not math.isfinite(self.offset):
            raise ValueError(f"GroundPlane needs a finite upward normal (nz > 0) and a finite offset, got "
                             f"normal={tuple(n.tolist())} offset={self.offset}")
        object.__setattr__(self, "normal", tuple(float(v) for v in n / norm))
        object.__setattr__(self, "offset", float(self.offset) / norm)

    @classmethod
    def from_height(cls, z: float) -> GroundPlane:
        """The flat plane ``z = z`` [m] (normal +z, offset -z, no inliers): the fallback when no fit is accepted."""
        return cls(normal=(0.0, 0.0, 1.0), offset=-float(z), inliers=0)

    def height(self, points: np.ndarray) -> np.ndarray:
        """Signed height of points above the plane, ``n . p + d`` [m] (positive above, along the normal).

        Args:
            points: (..., 3) points in base_frame [m]; NaN = invalid.
        Returns:
            (...) float32 heights; NaN where the point is NaN.
        Raises:
            ValueError: if the last axis is not 3.
        """
        p = np.asarray(points)
        if p.shape[-1:] != (3,):
            raise ValueError(f"points must be (..., 3), got {p.shape}")
        p = p.astype(np.float32, copy=False)
        nx, ny, nz = (np.float32(v) for v in self.normal)
        h = p[..., 0] * nx
        h += p[..., 1] * ny
        h += p[..., 2] * nz
        h += np.float32(self.offset)
        return h

    @property
    def tilt_rad(self) -> float:
        """Angle between the normal and base_frame +z [rad], in [0, pi/2)."""
        return math.acos(min(1.0, self.normal[2]))

    @property
    def roll_rad(self) -> float:
        """Roll of base_frame relative to the ground [rad] (REP-103, about +x): ``atan2(ny, nz)``.

        A base_frame rolled by r (pitch p) sees the up direction as n = (-sin p, cos p sin r, cos p cos r).
        """
        return math.atan2(self.normal[1], self.normal[2])

    @property
    def pitch_rad(self) -> float:
        """Pitch of base_frame relative to the ground [rad] (REP-103, about +y; positive = nose down, the ground
        appears to rise ahead): ``atan2(-nx, sqrt(ny^2 + nz^2))``. For a camera extrinsic this is the pitch error
        to add to the configured pitch."""
        nx, ny, nz = self.normal
        return math.atan2(-nx, math.hypot(ny, nz))

    @property
    def height_at_origin_m(self) -> float:
        """z of the plane under the base_frame origin, ``-d / nz`` [m] (independent of where the camera is)."""
        return -self.offset / self.normal[2]


def fit_ground_plane(points_base: np.ndarray, cfg: GroundConfig = GroundConfig()) -> tuple[GroundPlane, bool]:
    """Fit the ground plane of one frame with RANSAC, or fall back to the flat plane ``z = expected_height_m``.

    See the module docstring for the steps. Deterministic for a given input and ``cfg.seed``.

    Args:
        points_base: (N, 3) or (H, W, 3) float points in base_frame [m]; rows with any NaN/inf are ignored.
        cfg: thresholds.
    Returns:
        (plane, fitted): the fitted plane and True, or ``GroundPlane.from_height(cfg.expected_height_m)`` and False
        when there are fewer than ``min_inliers`` candidates or inliers, or the best plane is tilted more than
        ``max_tilt_deg``.
    Raises:
        ValueError: if the last axis is not 3.
    """
    pts = np.asarray(points_base)
    if pts.shape[-1:] != (3,):
        raise ValueError(f"points_base must be (N, 3) or (H, W, 3), got {pts.shape}")
    pts = pts.reshape(-1, 3).astype(np.float32, copy=False)
    fallback = GroundPlane.from_height(cfg.expected_height_m)
    z = pts[:, 2]
    keep = np.abs(z - np.float32(cfg.expected_height_m)) < np.float32(cfg.height_window_m)  # NaN -> False
    keep &= np.isfinite(pts[:, 0]) & np.isfinite(pts[:, 1])
    if math.isfinite(cfg.max_range_m):
        keep &= pts[:, 0] ** 2 + pts[:, 1] ** 2 <= np.float32(cfg.max_range_m) ** 2
    cand = pts[keep].astype(np.float64)
    if cand.shape[0] < cfg.min_inliers:
        return fallback, False
    sample = cand
    if cand.shape[0] > cfg.max_candidates:
        rng = np.random.default_rng(cfg.seed)
        sample = cand[rng.choice(cand.shape[0], cfg.max_candidates, replace=False)]

    fit = ransac_plane(sample, cfg.distance_threshold_m, cfg.iterations, cfg.seed)
    if fit is None or len(fit[2]) < cfg.ransac_n:
        return fallback, False
    model_normal, _, idx = fit
    # Least-squares refinement on the RANSAC inliers: normal = smallest right singular vector of the centred points.
    inl = sample[idx]
    centroid = inl.mean(axis=0)
    n = np.linalg.svd(inl - centroid, full_matrices=False)[2][2]
    if np.dot(n, model_normal) < 0:
        n = -n
    if n[2] < 0:
        n = -n
    if n[2] <= 0 or math.degrees(math.acos(min(1.0, float(n[2])))) > cfg.max_tilt_deg:
        return fallback, False
    d = -float(np.dot(n, centroid))
    n_inliers = int(np.count_nonzero(np.abs(cand @ n + d) <= cfg.distance_threshold_m))
    if n_inliers < cfg.min_inliers:
        return fallback, False
    return GroundPlane(normal=(float(n[0]), float(n[1]), float(n[2])), offset=d, inliers=n_inliers), True


def ransac_plane(
    points: np.ndarray, distance_m: float, iterations: int, seed: int = 0, max_score_points: int = 5000
) -> tuple[np.ndarray, float, np.ndarray] | None:
    """The plane through three points that has the most inliers (RANSAC, Fischler & Bolles 1981), deterministic.

    ``iterations`` hypotheses (three random points each, from ``numpy.random.default_rng(seed)``; a triple with a
    repeated or collinear point has no normal and is skipped) are scored
    together by their inlier count on at most ``max_score_points`` of the points (a seeded subsample); the first best
    one wins, and its inliers are then counted over all points.

    Args:
        points: (N, 3) float points [m], all finite.
        distance_m: inlier distance to the plane [m].
        iterations: hypotheses.
        seed: generator seed.
        max_score_points: points used to score hypotheses.
    Returns:
        (unit normal (3,), offset d with n . p + d = 0, (K,) int64 indices of the inliers among ``points``), or None
        for fewer than 3 points or when every hypothesis is degenerate (collinear points).
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if pts.shape[0] < 3:
        return None
    rng = np.random.default_rng(seed)
    trip = rng.integers(0, pts.shape[0], size=(iterations, 3))
    p0, p1, p2 = pts[trip[:, 0]], pts[trip[:, 1]], pts[trip[:, 2]]
    normals = np.cross(p1 - p0, p2 - p0)
    norms = np.linalg.norm(normals, axis=1)
    ok = norms > 1e-12
    if not ok.any():
        return None
    normals = normals[ok] / norms[ok, None]
    offsets = -np.einsum("ij,ij->i", normals, p0[ok])
    score_pts = pts
    if pts.shape[0] > max_score_points:
        score_pts = pts[rng.choice(pts.shape[0], max_score_points, replace=False)]
    counts = np.zeros(normals.shape[0], dtype=np.int64)
    for start in range(0, normals.shape[0], 32):  # (32, M) distance blocks bound the memory
        dist = np.abs(score_pts @ normals[start:start + 32].T + offsets[start:start + 32])
        counts[start:start + 32] = (dist <= distance_m).sum(axis=0)
    best = int(np.argmax(counts))
    n, d = normals[best], float(offsets[best])
    inliers = np.flatnonzero(np.abs(pts @ n + d) <= distance_m)
    return n, d, inliers
