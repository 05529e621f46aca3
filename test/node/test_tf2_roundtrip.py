"""tf2 as built from source by scripts/ros_deps.sh: a static transform broadcast by a node in another process and a
moving one broadcast here reach a tf2_ros.Buffer through a TransformListener, are looked up at a stamp (interpolated
by tf2's C++ core through tf2_py) and applied to a point with tf2_geometry_msgs."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import rclpy
import tf2_geometry_msgs  # noqa: F401  (registers PointStamped etc. with tf2_ros.Buffer.transform)
import tf2_ros
from geometry_msgs.msg import PointStamped, TransformStamped
from rclpy.context import Context
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.time import Time

# The mount used below: camera 0.30 m forward, 0.05 m left, 1.20 m up, pitched 20 degrees down (REP-103 body frame).
MOUNT_XYZ = (0.30, 0.05, 1.20)
PITCH = math.radians(20.0)
MOUNT_QUAT = (0.0, math.sin(PITCH / 2), 0.0, math.cos(PITCH / 2))  # x, y, z, w

BROADCASTER = textwrap.dedent(
    f"""
    import rclpy
    from geometry_msgs.msg import TransformStamped
    from rclpy.executors import ExternalShutdownException
    from tf2_ros import StaticTransformBroadcaster

    rclpy.init()
    node = rclpy.create_node("camera_mount_broadcaster")
    t = TransformStamped()
    t.header.stamp = node.get_clock().now().to_msg()
    t.header.frame_id = "base_link"
    t.child_frame_id = "camera_link"
    t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = {MOUNT_XYZ!r}
    q = {MOUNT_QUAT!r}
    t.transform.rotation.x, t.transform.rotation.y, t.transform.rotation.z, t.transform.rotation.w = q
    StaticTransformBroadcaster(node).sendTransform(t)
    print("sent", flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    """
)


def _rot_y(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def test_static_and_moving_transforms_cross_nodes_and_interpolate() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", BROADCASTER], env=os.environ.copy(), stdout=subprocess.PIPE, text=True
    )
    context = Context()
    rclpy.init(context=context, domain_id=int(os.environ["ROS_DOMAIN_ID"]))
    executor = SingleThreadedExecutor(context=context)
    listener_node = Node("tf_listener", context=context)
    odom_node = Node("odom_broadcaster", context=context)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "sent"
        buffer = tf2_ros.Buffer(cache_time=Duration(seconds=30.0))
        tf2_ros.TransformListener(buffer, listener_node, spin_thread=False)
        executor.add_node(listener_node)
        executor.add_node(odom_node)

        # odom -> base_link at t0 (origin, yaw 0) and t0 + 1 s (x = 2 m, yaw 90 deg), from this process's node.
        broadcaster = tf2_ros.TransformBroadcaster(odom_node)
        # /tf is volatile: send only once the listener's subscription is matched, or the messages are lost.
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and broadcaster.pub_tf.get_subscription_count() == 0:
            executor.spin_once(timeout_sec=0.05)
        assert broadcaster.pub_tf.get_subscription_count() > 0, "the TransformListener's /tf subscription never matched"
        t0 = Time(seconds=1000, nanoseconds=0)
        for dt, x, yaw in ((0.0, 0.0, 0.0), (1.0, 2.0, math.pi / 2)):
            m = TransformStamped()
            m.header.stamp = (t0 + Duration(seconds=dt)).to_msg()
            m.header.frame_id, m.child_frame_id = "odom", "base_link"
            m.transform.translation.x = x
            m.transform.rotation.z, m.transform.rotation.w = math.sin(yaw / 2), math.cos(yaw / 2)
            broadcaster.sendTransform(m)

        at = t0 + Duration(seconds=0.5)
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and not buffer.can_transform("odom", "camera_link", at):
            executor.spin_once(timeout_sec=0.05)
        assert buffer.can_transform("odom", "camera_link", at), buffer.all_frames_as_string()

        # The static mount as sent by the other process.
        mount = buffer.lookup_transform("base_link", "camera_link", Time())
        tr, rot = mount.transform.translation, mount.transform.rotation
        assert (tr.x, tr.y, tr.z) == pytest.approx(MOUNT_XYZ, abs=1e-12)
        assert (rot.x, rot.y, rot.z, rot.w) == pytest.approx(MOUNT_QUAT, abs=1e-12)

        # odom -> camera_link halfway: x interpolated to 1 m, yaw slerped to 45 deg, mount composed on top.
        chain = buffer.lookup_transform("odom", "camera_link", at)
        assert chain.header.stamp.sec == 1000 and chain.header.stamp.nanosec == 500_000_000
        yaw = math.pi / 4
        r_base = np.array([[math.cos(yaw), -math.sin(yaw), 0.0], [math.sin(yaw), math.cos(yaw), 0.0], [0, 0, 1]])
        want_xyz = np.array([1.0, 0.0, 0.0]) + r_base @ np.array(MOUNT_XYZ)
        got = chain.transform.translation
        np.testing.assert_allclose([got.x, got.y, got.z], want_xyz, atol=1e-9)

        # A point 2 m in front of the camera (camera_link x forward) expressed in odom, via tf2_geometry_msgs.
        p = PointStamped()
        p.header.frame_id, p.header.stamp = "camera_link", at.to_msg()
        p.point.x = 2.0
        out = buffer.transform(p, "odom")
        want_p = want_xyz + r_base @ _rot_y(PITCH) @ np.array([2.0, 0.0, 0.0])
        np.testing.assert_allclose([out.point.x, out.point.y, out.point.z], want_p, atol=1e-9)
        assert want_p[2] == pytest.approx(1.20 - 2.0 * math.sin(PITCH))  # pitched down: the point is lower

        # Outside the buffered interval: tf2 refuses to extrapolate.
        with pytest.raises(tf2_ros.ExtrapolationException):
            buffer.lookup_transform("odom", "camera_link", t0 + Duration(seconds=5.0))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        executor.shutdown()
        listener_node.destroy_node()
        odom_node.destroy_node()
        rclpy.shutdown(context=context)
