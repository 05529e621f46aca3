"""Rigid poses from odometry: validation, a stamped buffer with interpolation, jump detection (no ROS imports).

Transforms are (4, 4) float64 homogeneous matrices ``T_parent_child`` (p_parent = T @ p_child), metres; quaternions
are (x, y, z, w) as in geometry_msgs.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence

import numpy as np

from seg_perception.core.errors import InputRejected
from seg_perception.core.geometry.transforms import interpolate, matrix_from_pose


def validate_pose(position: Sequence[float], quaternion_xyzw: Sequence[float], tol: float = 1e-3) -> list[str]:
    """Problems of a pose (empty when fine): non-finite values, or a quaternion whose norm differs from 1 by > tol."""
    p = np.asarray(position, dtype=np.float64)
    q = np.asarray(quaternion_xyzw, dtype=np.float64)
    if not (np.isfinite(p).all() and np.isfinite(q).all()):
        return [f"pose_nan: non-finite pose position=[{', '.join(f'{v:g}' for v in p)}] "
                f"orientation=[{', '.join(f'{v:g}' for v in q)}]"]
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


class PoseTrack:
    """The poses of one child frame in a global frame as they arrive (odometry), with every check the nodes apply.

    Shared by the costmap node (live odometry) and ``seg-perception process`` (odometry from a bag, fed in stamp
    order up to each cloud), so both accept, drop and look up poses in exactly the same way.

    Args:
        max_jump_m: a position step larger than this between consecutive poses clears the buffer (relocalisation);
            ``on_jump(distance_m)`` is called.
        time_jump_ns: a stamp this much older than the newest pose (time went backwards) clears the buffer.
        buffer_s: poses older than the newest by more than this are forgotten [s].
        on_jump: called with the distance [m] after a position jump.
        on_time_jump: called with (new stamp [ns], seconds back) after the buffer was cleared for a time jump.
    """

    def __init__(
        self,
        max_jump_m: float = 1.0,
        time_jump_ns: int = 1_000_000_000,
        buffer_s: float = 10.0,
        on_jump: Callable[[float], None] = lambda _d: None,
        on_time_jump: Callable[[int, float], None] = lambda _t, _s: None,
    ) -> None:
        self.max_jump_m, self.time_jump_ns, self.on_jump = max_jump_m, time_jump_ns, on_jump
        self.on_time_jump = on_time_jump
        self.buffer = PoseBuffer(int(buffer_s * 1e9))
        self.global_frame = ""
        self.child_frame = ""
        self._last: np.ndarray | None = None

    def add(
        self, stamp_ns: int, position: Sequence[float], quaternion_xyzw: Sequence[float], global_frame: str,
        child_frame: str,
    ) -> None:  # fmt: skip
        """Validate and store one pose.

        Raises:
            InputRejected: ``pose_nan`` (non-finite values), ``pose_quaternion`` (norm not 1), ``odom_frame_id``
                (an empty frame id).
        """
        problems = validate_pose(position, quaternion_xyzw)
        if not global_frame or not child_frame:
            problems.append("odom_frame_id: empty header.frame_id or child_frame_id")
        if problems:
            reason, detail = problems[0].split(": ", 1)
            raise InputRejected(reason, detail)
        pose = matrix_from_pose(position, quaternion_xyzw)
        latest = self.latest_stamp_ns()
        if latest is not None and latest - stamp_ns >= self.time_jump_ns:
            self.clear()  # time went backwards (bag loop, simulator reset): old poses would answer new stamps
            self.on_time_jump(stamp_ns, (latest - stamp_ns) / 1e9)
        if self._last is not None:
            jump = translation_jump_m(self._last, pose)
            if jump > self.max_jump_m:
                self.buffer.clear()
                self.on_jump(jump)
        self._last = pose
        self.global_frame, self.child_frame = global_frame, child_frame
        self.buffer.add(stamp_ns, pose)

    def clear(self) -> None:
        """Forget every pose and the last position."""
        self.buffer.clear()
        self._last = None

    def discard_after(self, stamp_ns: int) -> None:
        """Forget poses stamped after ``stamp_ns`` (a timeline that time jumped back from)."""
        if self.buffer.discard_after(stamp_ns):
            self._last = None

    def latest_stamp_ns(self) -> int | None:
        """Stamp of the newest pose, or None before the first."""
        latest = self.buffer.latest()
        return latest[0] if latest else None

    def pose_at(self, stamp_ns: int, tolerance_ns: int) -> np.ndarray:
        """(4, 4) ``T_global_child`` for a sensor stamp, as the costmap node looks it up for a cloud.

        Raises:
            InputRejected: ``no_odometry`` (no pose yet), ``stale_cloud`` (the stamp is older than the newest pose by
                more than ``tolerance_ns``), ``no_pose`` (no pose within ``tolerance_ns`` of the stamp).
        """
        latest = self.latest_stamp_ns()
        if latest is None:
            raise InputRejected("no_odometry", "no odometry received yet")
        if latest - stamp_ns > tolerance_ns:
            raise InputRejected("stale_cloud", f"cloud is {(latest - stamp_ns) / 1e9:.3f} s older than the newest "
                                               f"odometry (transform_tolerance_s {tolerance_ns / 1e9})")  # fmt: skip
        pose = self.buffer.lookup(stamp_ns, tolerance_ns)
        if pose is None:
            raise InputRejected("no_pose", f"no odometry within {tolerance_ns / 1e9} s of the cloud's stamp")
        return pose
