"""Where the costmap node gets the robot's pose: a small interface, with a nav_msgs/Odometry implementation.

tf2 is not installable from PyPI, so the node does not call tf2 directly. It asks a ``PoseSource`` for
``T_global_child`` at a stamp. ``OdometryPoseSource`` answers from an Odometry topic (``header.frame_id`` is the
global frame, ``child_frame_id`` the child: the robot's base or the camera itself). On a ROS machine a
``Tf2PoseSource`` with the same two methods can wrap ``tf2_ros.Buffer.lookup_transform(global, child, stamp)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import QoSProfile

from seg_perception.bag import read_messages
from seg_perception.core.geometry.pose import PoseBuffer, translation_jump_m, validate_pose
from seg_perception.core.geometry.transforms import matrix_from_pose
from seg_perception.ros.convert import stamp_to_ns


class PoseSource(Protocol):
    """Pose of a child frame in the global frame, by stamp."""

    global_frame: str
    child_frame: str

    def lookup(self, stamp_ns: int, tolerance_ns: int) -> np.ndarray | None:
        """(4, 4) ``T_global_child`` at ``stamp_ns`` (interpolated), or None when unknown within the tolerance."""
        ...

    def latest_stamp_ns(self) -> int | None:
        """Stamp of the newest pose, or None before the first."""
        ...


class OdometryPoseSource:
    """Buffers poses from a nav_msgs/Odometry topic.

    Bad messages (NaN, non-unit quaternion) are dropped through ``drop(reason, detail)``. A position jump larger
    than ``max_jump_m`` between consecutive messages clears the buffer and calls ``on_jump(distance_m)`` (the
    node resets its rolling window, as after a relocalisation). A stamp at least ``time_jump_ns`` older than the
    newest pose (time went backwards: a bag loop, a simulator reset) clears the buffer; the node detects the same jump
    on its clouds and resets its fused state then (``discard_after`` drops poses of the old timeline).
    """

    def __init__(
        self,
        node: Node,
        topic: str,
        qos: QoSProfile,
        drop: Callable[[str, str], None],
        on_jump: Callable[[float], None],
        max_jump_m: float = 1.0,
        buffer_s: float = 10.0,
        time_jump_ns: int = 1_000_000_000,
    ) -> None:
        self.drop, self.on_jump, self.max_jump_m = drop, on_jump, max_jump_m
        self.time_jump_ns = time_jump_ns
        self.buffer = PoseBuffer(int(buffer_s * 1e9))
        self.global_frame = ""
        self.child_frame = ""
        self._last: np.ndarray | None = None
        node.create_subscription(Odometry, topic, self.on_odometry, qos)

    def on_odometry(self, msg: Odometry) -> None:
        """Validate and store one odometry message."""
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        problems = validate_pose((p.x, p.y, p.z), (q.x, q.y, q.z, q.w))
        if not msg.header.frame_id or not msg.child_frame_id:
            problems.append("odom_frame_id: empty header.frame_id or child_frame_id")
        if problems:
            self.drop(problems[0].split(":")[0], "odometry: " + "; ".join(problems))
            return
        pose = matrix_from_pose((p.x, p.y, p.z), (q.x, q.y, q.z, q.w))
        stamp = stamp_to_ns(msg.header.stamp)
        latest = self.latest_stamp_ns()
        if latest is not None and latest - stamp >= self.time_jump_ns:
            self.clear()  # time went backwards (bag loop, simulator reset): old poses would answer new stamps
        if self._last is not None:
            jump = translation_jump_m(self._last, pose)
            if jump > self.max_jump_m:
                self.buffer.clear()
                self.on_jump(jump)
        self._last = pose
        self.global_frame, self.child_frame = msg.header.frame_id, msg.child_frame_id
        self.buffer.add(stamp, pose)

    def clear(self) -> None:
        """Forget every pose and the last position (after a time jump)."""
        self.buffer.clear()
        self._last = None

    def discard_after(self, stamp_ns: int) -> None:
        """Forget poses stamped after ``stamp_ns`` (a timeline that time jumped back from)."""
        if self.buffer.discard_after(stamp_ns):
            self._last = None

    def lookup(self, stamp_ns: int, tolerance_ns: int) -> np.ndarray | None:
        """See ``PoseSource.lookup``."""
        return self.buffer.lookup(stamp_ns, tolerance_ns)

    def latest_stamp_ns(self) -> int | None:
        """See ``PoseSource.latest_stamp_ns``."""
        latest = self.buffer.latest()
        return latest[0] if latest else None


def odometry_from_bag(bag: object, topic: str) -> tuple[PoseBuffer, str, str] | None:
    """Every valid Odometry message of ``topic`` in a rosbag2 as (PoseBuffer, child frame, global frame), or None.

    Invalid poses (NaN, non-unit quaternion) are skipped, as the node drops them.
    """
    from rclpy.serialization import deserialize_message


    buffer = PoseBuffer(max_age_ns=2**62)
    child = frame = ""
    for m in read_messages(bag, {topic}):  # type: ignore[arg-type]
        msg = deserialize_message(m.data, Odometry)
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        if validate_pose((p.x, p.y, p.z), (q.x, q.y, q.z, q.w)):
            continue
        buffer.add(stamp_to_ns(msg.header.stamp), matrix_from_pose((p.x, p.y, p.z), (q.x, q.y, q.z, q.w)))
        child, frame = msg.child_frame_id, msg.header.frame_id
    return (buffer, child, frame) if len(buffer) else None
