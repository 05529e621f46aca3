"""Rigid poses from odometry: validation, a stamped buffer with interpolation, jump detection (no ROS imports).

Transforms are (4, 4) float64 homogeneous matrices ``T_parent_child`` (p_parent = T @ p_child), metres; quaternions
are (x, y, z, w) as in geometry_msgs.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np

from seg_perception.core.geometry.transforms import interpolate


def validate_pose(position: Sequence[float], quaternion_xyzw: Sequence[float], tol: float = 1e-3) -> list[str]:
    """Problems of a pose (empty when fine): non-finite values, or a quaternion whose norm differs from 1 by > tol."""
    p = np.asarray(position, dtype=np.float64)
    q = np.asarray(quaternion_xyzw, dtype=np.float64)
    if not (np.isfinite(p).all() and np.isfinite(q).all()):
        return [f"pose_nan: non-finite pose position={p.tolist()} orientation={q.tolist()}"]
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > tol:
        return [f"pose_quaternion: orientation norm {norm:.6f} is not 1 (tolerance {tol})"]
    return []


class PoseBuffer:
    """Recent stamped poses of one child frame in one parent frame, for looking up the pose at a sensor stamp.

    Args:
        max_age_ns: poses older than the newest by more than this are dropped.
    """

    def __init__(self, max_age_ns: int = 10_000_000_000) -> None:
        self.max_age_ns = max_age_ns
        self._stamps: list[int] = []
        self._poses: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self._stamps)

    def clear(self) -> None:
        """Forget every pose (after an odometry reset)."""
        self._stamps.clear()
        self._poses.clear()

    def discard_after(self, stamp_ns: int) -> int:
        """Forget poses stamped after ``stamp_ns`` (they belong to a timeline that time jumped back from).

        Returns:
            The number of poses dropped.
        """
        i = bisect.bisect_right(self._stamps, stamp_ns)
        n = len(self._stamps) - i
        del self._stamps[i:], self._poses[i:]
        return n

    def add(self, stamp_ns: int, pose: np.ndarray) -> None:
        """Insert a pose (out-of-order stamps are placed in order; an equal stamp replaces the old pose)."""
        i = bisect.bisect_left(self._stamps, stamp_ns)
        if i < len(self._stamps) and self._stamps[i] == stamp_ns:
            self._poses[i] = pose
        else:
            self._stamps.insert(i, stamp_ns)
            self._poses.insert(i, pose)
        cutoff = self._stamps[-1] - self.max_age_ns
        while self._stamps and self._stamps[0] < cutoff:
            self._stamps.pop(0)
            self._poses.pop(0)

    def latest(self) -> tuple[int, np.ndarray] | None:
        """The newest (stamp, pose), or None."""
        return (self._stamps[-1], self._poses[-1]) if self._stamps else None

    def lookup(self, stamp_ns: int, tolerance_ns: int) -> np.ndarray | None:
        """Pose at ``stamp_ns``: interpolated between the neighbours, or the nearest pose within ``tolerance_ns``.

        Returns None when the stamp is outside the buffer by more than the tolerance.
        """
        if not self._stamps:
            return None
        i = bisect.bisect_left(self._stamps, stamp_ns)
        if i < len(self._stamps) and self._stamps[i] == stamp_ns:
            return self._poses[i]
        if 0 < i < len(self._stamps):
            s0, s1 = self._stamps[i - 1], self._stamps[i]
            return interpolate(self._poses[i - 1], self._poses[i], (stamp_ns - s0) / (s1 - s0))
        j = 0 if i == 0 else len(self._stamps) - 1
        return self._poses[j] if abs(self._stamps[j] - stamp_ns) <= tolerance_ns else None


def translation_jump_m(t_prev: np.ndarray, t_new: np.ndarray) -> float:
    """Distance [m] between the positions of two poses (odometry jump detection)."""
    return float(np.linalg.norm(t_new[:3, 3] - t_prev[:3, 3]))
