"""Pinhole camera model and REP-118 depth conversion (no ROS imports).

Frames: pixels and back-projected points live in the camera's optical frame (REP-103 suffix ``_optical_frame``):
z forward, x right, y down, metres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of one image size (``sensor_msgs/CameraInfo`` K without distortion).

    Attributes:
        fx, fy: focal lengths in pixels (> 0).
        cx, cy: principal point in pixels.
        width, height: image size in pixels.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        if not (np.isfinite(self.fx) and np.isfinite(self.fy) and self.fx > 0 and self.fy > 0):
            raise ValueError(f"focal lengths must be finite and positive, got fx={self.fx} fy={self.fy}")
        if not (np.isfinite(self.cx) and np.isfinite(self.cy)):
            raise ValueError(f"principal point must be finite, got cx={self.cx} cy={self.cy}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")

    @classmethod
    def from_k(cls, k: np.ndarray | list[float], width: int, height: int) -> Intrinsics:
        """Build from a row-major 3x3 K (9 values, as ``CameraInfo.k``).

        Raises:
            ValueError: if K does not have 9 values or fx/fy are not positive.
        """
        k = np.asarray(k, dtype=np.float64).reshape(-1)
        if k.size != 9:
            raise ValueError(f"K must have 9 values, got {k.size}")
        return cls(fx=float(k[0]), fy=float(k[4]), cx=float(k[2]), cy=float(k[5]), width=int(width), height=int(height))

    def k(self) -> list[float]:
        """Row-major 3x3 K as 9 floats."""
        return [self.fx, 0.0, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0]

    def scaled(self, stride: int) -> Intrinsics:
        """Intrinsics of the image subsampled as ``img[::stride, ::stride]`` (pixel centres kept).

        Pixel ``(u', v')`` of the subsampled image is pixel ``(stride*u', stride*v')`` of the full one, so
        ``fx' = fx / stride`` and ``cx' = cx / stride``.
        """
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        return Intrinsics(
            fx=self.fx / stride,
            fy=self.fy / stride,
            cx=self.cx / stride,
            cy=self.cy / stride,
            width=(self.width + stride - 1) // stride,
            height=(self.height + stride - 1) // stride,
        )


def depth_to_meters(depth: np.ndarray, min_m: float = 0.0, max_m: float = np.inf) -> np.ndarray:
    """Convert a REP-118 depth image to float32 metres with invalid pixels as NaN.

    ``16UC1`` (uint16) is millimetres with 0 = no measurement; ``32FC1`` (float32) is metres where NaN is invalid,
    -Inf too close and +Inf out of range (REP-117). Values outside ``[min_m, max_m]`` become NaN as well; the check
    ``(lo <= d) & (d <= hi)`` rejects NaN and both infinities.

    Args:
        depth: (H, W) uint16 millimetres or float32 metres.
        min_m: smallest valid depth [m].
        max_m: largest valid depth [m].
    Returns:
        (H, W) float32 depth along the optical z axis in metres; invalid = NaN.
    Raises:
        TypeError: for any other dtype.
        ValueError: if ``depth`` is not 2-D.
    """
    if depth.ndim != 2:
        raise ValueError(f"depth must be (H, W), got shape {depth.shape}")
    if depth.dtype == np.uint16:
        depth_m = depth.astype(np.float32) * np.float32(0.001)
        valid = depth > 0
    elif depth.dtype == np.float32:
        depth_m = depth.astype(np.float32, copy=True)
        valid = np.ones(depth.shape, dtype=bool)
    else:
        raise TypeError(f"depth must be uint16 (16UC1, mm) or float32 (32FC1, m), got {depth.dtype}")
    valid &= (np.float32(min_m) <= depth_m) & (depth_m <= np.float32(max_m))
    depth_m[~valid] = np.nan
    return depth_m


def backproject(depth_m: np.ndarray, k: Intrinsics) -> np.ndarray:
    """Lift a depth image to 3-D points with the pinhole model X = (u - cx) Z / fx, Y = (v - cy) Z / fy.

    Args:
        depth_m: (H, W) float32 metres along the optical z axis; NaN = invalid (see ``depth_to_meters``).
        k: intrinsics of the same image size.
    Returns:
        (H, W, 3) float32 points (x, y, z) in the camera optical frame, metres; invalid pixels are NaN.
    Raises:
        ValueError: if ``depth_m.shape != (k.height, k.width)``.
    """
    if depth_m.shape != (k.height, k.width):
        raise ValueError(f"depth {depth_m.shape} does not match intrinsics ({k.height}, {k.width})")
    z = depth_m.astype(np.float32, copy=False)
    u = (np.arange(k.width, dtype=np.float32) - np.float32(k.cx)) / np.float32(k.fx)
    v = (np.arange(k.height, dtype=np.float32) - np.float32(k.cy)) / np.float32(k.fy)
    points = np.empty((k.height, k.width, 3), dtype=np.float32)
    np.multiply(z, u[None, :], out=points[..., 0])
    np.multiply(z, v[:, None], out=points[..., 1])
    points[..., 2] = z
    return points
