"""Rigid transforms between the camera optical frame and the robot (REP-103 / REP-105), with scipy rotations."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# --- Extrinsics -------------------------------------------------------------------------------------------------------
# Columns are the optical axes expressed in the camera body frame: optical x = -body y, optical y = -body z,
# optical z = body x (REP-103 "_optical" suffix convention).
_BODY_FROM_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def _rpy_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
    ry = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    out: np.ndarray = rz @ ry @ rx
    return out


def camera_to_base(
    translation_m: Sequence[float] = (0.0, 0.0, 0.0), rpy_rad: Sequence[float] = (0.0, 0.0, 0.0)
) -> np.ndarray:
    """Homogeneous transform from the camera OPTICAL frame into ``base_frame`` (p_base = T @ p_optical).

    ``rpy_rad`` is the orientation of the camera BODY frame (x forward, y left, z up, as a URDF ``camera_link``) in
    ``base_frame``, applied as R = Rz(yaw) Ry(pitch) Rx(roll) (URDF / REP-103 fixed-axis roll, pitch, yaw). The fixed
    optical rotation (optical z = body x, optical x = -body y, optical y = -body z) is composed on top, so
    T = [R @ R_body_from_optical | t]. A level forward camera 1.65 m up is ``translation_m=(0, 0, 1.65)``,
    ``rpy_rad=(0, 0, 0)``; positive pitch tilts the camera down (right-hand rule about +y).

    Args:
        translation_m: (x, y, z) of the camera origin in ``base_frame`` [m].
        rpy_rad: (roll, pitch, yaw) of the camera body frame in ``base_frame`` [rad].
    Returns:
        (4, 4) float64 transform.
    Raises:
        ValueError: if either argument does not have 3 finite values.
    """
    t = np.asarray(translation_m, dtype=np.float64).reshape(-1)
    rpy = np.asarray(rpy_rad, dtype=np.float64).reshape(-1)
    if t.size != 3 or rpy.size != 3 or not (np.isfinite(t).all() and np.isfinite(rpy).all()):
        raise ValueError(f"translation_m and rpy_rad need 3 finite values each, got {t.tolist()} and {rpy.tolist()}")
    out = np.eye(4)
    out[:3, :3] = _rpy_matrix(*rpy.tolist()) @ _BODY_FROM_OPTICAL
    out[:3, 3] = t
    return out


def transform_points(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (4, 4) rigid transform to points: p' = R p + t.

    Args:
        transform: (4, 4) homogeneous transform (e.g. from ``camera_to_base``).
        points: (..., 3) points [m]; NaN = invalid.
    Returns:
        (..., 3) float32 points; a row with any NaN comes out all-NaN.
    Raises:
        ValueError: on wrong shapes.
    """
    transform = np.asarray(transform, dtype=np.float64)
    if transform.shape != (4, 4):
        raise ValueError(f"transform must be (4, 4), got {transform.shape}")
    points = np.asarray(points)
    if points.shape[-1:] != (3,):
        raise ValueError(f"points must be (..., 3), got {points.shape}")
    r = transform[:3, :3].astype(np.float32)
    t = transform[:3, 3].astype(np.float32)
    p = points.astype(np.float32, copy=False)
    px, py, pz = p[..., 0], p[..., 1], p[..., 2]
    out = np.empty(p.shape, dtype=np.float32)
    # Column by column: 20-30x faster than a (N, 3) @ (3, 3) matmul. Every output coordinate sums all three inputs
    # (NaN * 0 is NaN), so a NaN anywhere in a row makes the whole output row NaN without a separate pass.
    for i in range(3):
        o = out[..., i]
        np.multiply(px, r[i, 0], out=o)
        o += py * r[i, 1]
        o += pz * r[i, 2]
        o += t[i]
    return out
