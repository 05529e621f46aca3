"""``camera_mount_publisher`` (the launch file's static transform publisher for robots without a URDF): its mount
reaches a tf2_ros.Buffer on /tf_static, latched, and chains to the optical frame as ``camera_to_base``."""

from __future__ import annotations

import numpy as np
import pytest
import tf2_ros
from rclpy.parameter import Parameter
from rclpy.time import Time

from seg_perception.core.geometry.transforms import camera_to_base
from seg_perception.ros.camera_mount import CameraMountPublisher
from seg_perception.ros.pose_source import transform_matrix


def test_mount_reaches_a_late_listener_and_chains_to_the_optical_frame(ros) -> None:  # noqa: ANN001
    ros.add(CameraMountPublisher(namespace=ros.ns, context=ros.context, parameter_overrides=[
        Parameter("translation", value=[0.2, -0.05, 1.1]), Parameter("rpy", value=[0.0, 0.3, 0.1])]))  # fmt: skip
    buffer = tf2_ros.Buffer()
    tf2_ros.TransformListener(buffer, ros.helper)  # joins after the mount was sent: transient local delivers it
    assert ros.spin_until(lambda: buffer.can_transform("base_link", "camera_color_optical_frame", Time()), 10.0)
    link = transform_matrix(buffer.lookup_transform("base_link", "camera_link", Time()))
    np.testing.assert_allclose(link[:3, 3], [0.2, -0.05, 1.1], atol=1e-12)
    chain = transform_matrix(buffer.lookup_transform("base_link", "camera_color_optical_frame", Time()))
    np.testing.assert_allclose(chain, camera_to_base((0.2, -0.05, 1.1), (0.0, 0.3, 0.1)), atol=1e-9)
    # 1 m along the optical axis (camera looking 0.3 rad down) is below the camera: z = 1.1 - sin(0.3)
    assert (chain @ [0, 0, 1, 1])[2] == pytest.approx(1.1 - np.sin(0.3), abs=1e-9)


def test_bad_mount_refused_at_start_up(ros) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="3 finite values"):
        CameraMountPublisher(namespace=ros.ns, context=ros.context,
                             parameter_overrides=[Parameter("translation", value=[0.0, 1.0])])  # fmt: skip
