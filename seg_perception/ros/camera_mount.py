"""``camera_mount_publisher``: a camera mount on ``/tf_static`` for robots without a URDF.

tf2_ros's ``static_transform_publisher`` is C++ (it needs rclcpp, which has no PyPI wheel), so this package ships a
Python equivalent for the one transform chain the costmap node needs; on a ROS machine either works. The launch file
starts it with ``publish_mount:=true`` (see ``launch/seg_perception.launch.py``).

Published topics:
    /tf_static (tf2_msgs/TFMessage, transient local: tf2_ros.StaticTransformBroadcaster): ``frame_id ->
        camera_link`` (the mount) and ``camera_link -> child_frame_id`` (the REP-103 optical rotation), or
        ``frame_id -> child_frame_id`` when ``camera_link`` is "" (``core.geometry.pose.mount_transforms``).

Parameters (read at start-up):
    frame_id (string, "base_link"): the robot frame.
    camera_link (string, "camera_link"): the camera body frame (x forward, y left, z up); "" = none.
    child_frame_id (string, "camera_color_optical_frame"): the camera optical frame the images are stamped with.
    translation (double[3], [0, 0, 1.65] m): camera origin in frame_id.
    rpy (double[3], [0, 0, 0] rad): roll, pitch, yaw of the camera body frame in frame_id (pitch > 0 looks down).
"""

from __future__ import annotations

import sys
from typing import Any

from rclpy.node import Node
from tf2_ros import StaticTransformBroadcaster

from seg_perception.core.geometry.pose import mount_transforms
from seg_perception.ros.node_utils import run_node
from seg_perception.ros.pose_source import transform_msg


class CameraMountPublisher(Node):
    """See the module docstring. Raises (from ``__init__``) ValueError for a translation or rpy without 3 finite
    values."""

    def __init__(self, **kwargs) -> None:  # noqa: ANN003
        super().__init__("camera_mount_publisher", **kwargs)
        p: dict[str, Any] = {name: self.declare_parameter(name, default).value for name, default in (
            ("frame_id", "base_link"), ("camera_link", "camera_link"), ("child_frame_id", "camera_color_optical_frame"),
            ("translation", [0.0, 0.0, 1.65]), ("rpy", [0.0, 0.0, 0.0]))}  # fmt: skip
        chain = mount_transforms(list(p["translation"]), list(p["rpy"]), p["frame_id"], p["camera_link"],
                                 p["child_frame_id"])  # fmt: skip
        stamp_ns = self.get_clock().now().nanoseconds
        self.broadcaster = StaticTransformBroadcaster(self)
        self.broadcaster.sendTransform([transform_msg(parent, child, t, stamp_ns) for parent, child, t in chain])
        self.get_logger().info(
            "camera mount on /tf_static: "
            + ", ".join(f"{parent} -> {child}" for parent, child, _ in chain)
            + f" (translation {list(p['translation'])} m, rpy {list(p['rpy'])} rad)"
        )


def main(args: list[str] | None = None) -> int:
    """Console entry point ``camera_mount_publisher`` (``--ros-args -p translation:=[0.2,0.0,1.1] ...``)."""
    return run_node(CameraMountPublisher, "camera_mount_publisher", args)


if __name__ == "__main__":
    sys.exit(main())
