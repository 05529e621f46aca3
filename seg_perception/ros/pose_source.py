"""Where a semantic cloud goes, from TF: the one pose-for-cloud rule of the costmap node and the offline tools.

The camera pose comes from TF as REP-105 and Nav2 have it: the cloud's frame (``header.frame_id``, the camera optical
frame) in ``robot_base_frame`` (a URDF's ``robot_state_publisher`` or a ``static_transform_publisher``), and the
robot in ``global_frame`` (``odom -> base_link``, from odometry), both looked up at the cloud's stamp.

- The costmap node keeps a ``tf2_ros.Buffer`` (``TimelineBuffer``) filled by a ``tf2_ros.TransformListener``.
- ``seg-perception process`` and the demo's renders keep a ``tf2.BufferCore`` (tf2_py, no node) filled by ``BagTf``
  with the bag's ``/tf_static`` and ``/tf`` messages in stamp order up to each cloud.

Both ask ``CloudPoser.pose`` (tf2's lookup and interpolation, ``lookup_matrix``'s tolerance rule, the robot-jump
check), so offline equals online.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import tf2_py as tf2
import tf2_ros
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TransformStamped
from rclpy.duration import Duration
from rclpy.node import Node

from seg_perception.bag import read_messages
from seg_perception.core.errors import InputRejected
from seg_perception.core.geometry.pose import CloudPose, JumpCheck, place_cloud
from seg_perception.core.geometry.transforms import matrix_from_pose, quaternion_from_matrix
from seg_perception.core.sync import StampOrder
from seg_perception.ros.convert import ns_to_stamp, stamp_to_ns

#: How long tf2 keeps dynamic transforms [s] (tf2's default).
TF_CACHE_S = 10.0
TF_TOPICS = ("/tf_static", "/tf")


def transform_matrix(t: TransformStamped) -> np.ndarray:
    """(4, 4) float64 ``T_parent_child`` of a geometry_msgs/TransformStamped (p_parent = T @ p_child)."""
    tr, q = t.transform.translation, t.transform.rotation
    return matrix_from_pose((tr.x, tr.y, tr.z), (q.x, q.y, q.z, q.w))


def transform_msg(parent: str, child: str, t_parent_child: np.ndarray, stamp_ns: int = 0) -> TransformStamped:
    """geometry_msgs/TransformStamped of a (4, 4) ``T_parent_child`` (the inverse of ``transform_matrix``)."""
    m = TransformStamped()
    m.header.frame_id, m.child_frame_id, m.header.stamp = parent, child, ns_to_stamp(stamp_ns)
    tr, r = m.transform.translation, m.transform.rotation
    tr.x, tr.y, tr.z = (float(v) for v in t_parent_child[:3, 3])
    r.x, r.y, r.z, r.w = (float(v) for v in quaternion_from_matrix(t_parent_child[:3, :3]))
    return m


def lookup_matrix(buffer: tf2.BufferCore, target: str, source: str, stamp_ns: int, tolerance_ns: int) -> np.ndarray:
    """(4, 4) ``T_target_source`` at ``stamp_ns`` from a tf2 buffer.

    Inside the buffered interval tf2 interpolates (static transforms answer any stamp). A stamp past the newest
    transform takes the newest one when it is at most ``tolerance_ns`` older (Nav2's ``transform_tolerance``).

    Raises:
        InputRejected: ``tf_missing`` (a frame unknown, the frames not connected, or the stamp before the buffered
            transforms), ``tf_stale`` (the newest transform is older than the stamp by more than the tolerance).
            The detail names both frames.
    """
    pair = f"{target} -> {source}"
    try:
        return transform_matrix(buffer.lookup_transform_core(target, source, ns_to_stamp(stamp_ns)))
    except (tf2.LookupException, tf2.ConnectivityException) as e:
        raise InputRejected("tf_missing", f"no transform {pair}: {str(e).strip()}") from None
    except tf2.ExtrapolationException as e:
        try:
            latest = buffer.lookup_transform_core(target, source, Time())
        except tf2.TransformException:
            raise InputRejected("tf_missing", f"no transform {pair}: {str(e).strip()}") from None
        age_ns = stamp_ns - stamp_to_ns(latest.header.stamp)
        if age_ns < 0:
            raise InputRejected("tf_missing", f"no transform {pair} at {stamp_ns / 1e9:.3f} s: it is before the "
                                              "buffered transforms") from None  # fmt: skip
        if age_ns > tolerance_ns:
            raise InputRejected("tf_stale", f"newest transform {pair} is {age_ns / 1e9:.3f} s older than the cloud "
                                            f"(transform_tolerance_s {tolerance_ns / 1e9:g})") from None  # fmt: skip
        return transform_matrix(latest)


class CloudPoser:
    """The pose of each cloud from a tf2 buffer (node: ``tf2_ros.Buffer``; tools: ``tf2.BufferCore``).

    Args:
        buffer: the tf2 buffer to look up in.
        global_frame: the grids' frame (Nav2 ``global_frame``, e.g. ``odom``); "" = none: grids in
            ``robot_base_frame``, robot-centred.
        robot_base_frame: the robot frame (Nav2 ``robot_base_frame``, REP-105 ``base_link``).
        tolerance_ns: ``lookup_matrix``'s tolerance [ns].
        max_jump_m: a robot step between consecutive clouds larger than this calls ``on_jump(distance_m)``.
        on_jump: called after a jump (the caller resets its fused window).
    """

    def __init__(
        self, buffer: tf2.BufferCore, global_frame: str, robot_base_frame: str, tolerance_ns: int,
        max_jump_m: float = 1.0, on_jump: Callable[[float], None] = lambda _d: None,
    ) -> None:  # fmt: skip
        self.buffer, self.global_frame, self.robot_base_frame = buffer, global_frame, robot_base_frame
        self.tolerance_ns, self.on_jump = tolerance_ns, on_jump
        self.jumps = JumpCheck(max_jump_m)

    def pose(self, stamp_ns: int, camera_frame: str, ground_height_m: float) -> CloudPose:
        """Where the cloud stamped ``stamp_ns`` in ``camera_frame`` goes (``core.geometry.pose.place_cloud``).

        Raises:
            InputRejected: ``tf_missing`` / ``tf_stale`` (``lookup_matrix``) for either transform.
        """
        t_base_cam = lookup_matrix(self.buffer, self.robot_base_frame, camera_frame, stamp_ns, self.tolerance_ns)
        if not self.global_frame:
            return place_cloud(np.eye(4), t_base_cam, ground_height_m, self.robot_base_frame)
        t_global_base = lookup_matrix(self.buffer, self.global_frame, self.robot_base_frame, stamp_ns,
                                      self.tolerance_ns)  # fmt: skip
        jump = self.jumps.update(t_global_base)
        if jump is not None:
            self.on_jump(jump)
        return place_cloud(t_global_base, t_base_cam, ground_height_m, self.global_frame)


def check_timeline(
    buffer: tf2.BufferCore, order: StampOrder, stamp_ns: int, on_time_jump: Callable[[int, float], None]
) -> None:
    """Before adding a dynamic transform stamped ``stamp_ns``: when time went back (``order``, a
    ``StampOrder(time_jump_ns, max_late=None)``: /tf stamps of several broadcasters interleave, so only a step back
    of ``time_jump_ns`` counts), clear the buffer (static transforms stay, as in tf2) and call
    ``on_time_jump(stamp_ns, seconds_back)``."""
    newest = order.newest_ns
    if order.check(stamp_ns) == StampOrder.JUMP and newest is not None:
        buffer.clear()
        on_time_jump(stamp_ns, (newest - stamp_ns) / 1e9)


class TimelineBuffer(tf2_ros.Buffer):
    """A ``tf2_ros.Buffer`` that also clears itself when the stamps of incoming dynamic transforms jump back by
    ``time_jump_ns`` (a bag loop or simulator reset on wall-clock time; tf2_ros clears only on a ROS-time jump).

    ``tf2_ros.Buffer(node=...)`` registers a ``tf2_frames`` service and a clock jump callback on the node: ``destroy``
    removes both (lifecycle cleanup; the next configure makes a new buffer)."""

    def __init__(self, node: Node, time_jump_ns: int, on_time_jump: Callable[[int, float], None]) -> None:
        super().__init__(cache_time=Duration(seconds=TF_CACHE_S), node=node)
        self.node = node
        self.watch = StampOrder(time_jump_ns, max_late=None)
        self.on_time_jump = on_time_jump

    def destroy(self) -> None:
        """Remove the ``tf2_frames`` service and the clock jump callback from the node (idempotent)."""
        self.node.destroy_service(self.srv)
        self.jump_handle.unregister()

    def set_transform(self, transform: TransformStamped, authority: str) -> None:
        """Add a dynamic transform (``check_timeline`` first)."""
        check_timeline(self, self.watch, stamp_to_ns(transform.header.stamp), self.on_time_jump)
        super().set_transform(transform, authority)


class BagTf:
    """A bag's ``/tf_static`` and ``/tf`` fed into a ``tf2.BufferCore`` the way the live node receives them:
    every static transform at once (latched), dynamic transforms in stamp order up to a stamp.

    Args:
        bags: rosbag2 folders to read (e.g. an input bag, or a recorded output bag).
        time_jump_ns: as ``TimelineBuffer``.
        cache_s: how long the buffer keeps dynamic transforms [s] (larger for looking up any stamp afterwards).
        on_time_jump: as ``TimelineBuffer``.
    """

    def __init__(
        self, bags: Iterable[Any], time_jump_ns: int = 1_000_000_000, cache_s: float = TF_CACHE_S,
        on_time_jump: Callable[[int, float], None] = lambda _t, _s: None,
    ) -> None:  # fmt: skip
        from rclpy.serialization import deserialize_message
        from tf2_msgs.msg import TFMessage

        self.buffer = tf2.BufferCore(Duration(seconds=cache_s).to_msg())
        dynamic: list[tuple[int, int, TransformStamped]] = []
        for bag in bags:
            for m in read_messages(bag, set(TF_TOPICS)):
                for t in deserialize_message(m.data, TFMessage).transforms:
                    if m.topic == "/tf_static":
                        self.buffer.set_transform_static(t, "bag")
                    else:
                        dynamic.append((stamp_to_ns(t.header.stamp), len(dynamic), t))
        self.dynamic = sorted(dynamic, key=lambda d: d[:2])
        self.watch = StampOrder(time_jump_ns, max_late=None)
        self.on_time_jump = on_time_jump
        self._next = 0

    def advance_to(self, stamp_ns: int) -> None:
        """Feed every dynamic transform stamped at or before ``stamp_ns`` that was not fed yet."""
        while self._next < len(self.dynamic) and self.dynamic[self._next][0] <= stamp_ns:
            t_ns, _, t = self.dynamic[self._next]
            self._next += 1
            check_timeline(self.buffer, self.watch, t_ns, self.on_time_jump)
            self.buffer.set_transform(t, "bag")
