"""Quaternion conversion, interpolation, placing a cloud from robot pose and mount, jump and time-jump checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seg_perception.core.geometry.pose import JumpCheck, place_cloud, translation_jump_m
from seg_perception.core.geometry.transforms import camera_to_base, interpolate, matrix_from_pose
from seg_perception.core.sync import StampOrder


def _yaw(deg: float, xyz=(0.0, 0.0, 0.0)) -> np.ndarray:  # noqa: ANN001
    h = math.radians(deg) / 2
    return matrix_from_pose(xyz, (0.0, 0.0, math.sin(h), math.cos(h)))


def test_quaternion_yaw_90_maps_x_to_y() -> None:
    t = _yaw(90.0, (1.0, 2.0, 3.0))
    np.testing.assert_allclose(t[:3, :3] @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(t[:3, 3], [1, 2, 3])


def test_interpolation_halfway() -> None:
    mid = interpolate(_yaw(0.0, (0, 0, 0)), _yaw(90.0, (2, 0, 0)), 0.5)
    np.testing.assert_allclose(mid, _yaw(45.0, (1, 0, 0)), atol=1e-9)


def test_jump_distance() -> None:
    assert translation_jump_m(_yaw(0, (0, 0, 0)), _yaw(30, (3, 4, 0))) == pytest.approx(5.0)


def test_jump_check_reports_steps_beyond_the_limit_only() -> None:
    check = JumpCheck(max_jump_m=1.0)
    assert check.update(_yaw(0.0, (0, 0, 0))) is None  # the first pose: nothing to compare with
    assert check.update(_yaw(10.0, (0.9, 0, 0))) is None
    assert check.update(_yaw(10.0, (3.4, 0, 0))) == pytest.approx(2.5)  # relocalisation
    check.reset()
    assert check.update(_yaw(0.0, (100, 0, 0))) is None  # a new track after a reset


def test_tf_timeline_sees_a_jump_back_once() -> None:
    """The /tf rule (``StampOrder`` without the late-run rule): only a step back of ``time_jump_ns`` is a jump."""
    watch = StampOrder(10**9, max_late=None)
    in_order, late, jump = StampOrder.IN_ORDER, StampOrder.LATE, StampOrder.JUMP
    assert [watch.check(t) for t in (10**9, 2 * 10**9, 19 * 10**8)] == [in_order, in_order, late]  # 0.1 s late
    assert [watch.check(19 * 10**8) for _ in range(5)] == [late] * 5  # interleaved broadcasters: never a jump
    assert watch.check(5 * 10**8) == jump  # 1.5 s back: a new timeline
    assert watch.check(6 * 10**8) == in_order and watch.newest_ns == 6 * 10**8


def test_place_cloud_composes_robot_pose_and_mount() -> None:
    mount = camera_to_base((0.3, 0.0, 1.2), (0.0, 0.4, 0.0))
    robot = _yaw(90.0, (2.0, 1.0, 0.05))
    pose = place_cloud(robot, mount, 0.0, "odom")
    np.testing.assert_allclose(pose.t_grid_camera, robot @ mount)
    np.testing.assert_allclose(pose.t_grid_camera[:3, 3], [2.0, 1.3, 1.25], atol=1e-12)  # 0.3 m ahead = +y
    assert pose.robot_xy == (2.0, 1.0) and pose.ground_z == pytest.approx(0.05) and pose.frame == "odom"
    with pytest.raises(ValueError, match="t_base_camera must be a finite"):
        place_cloud(robot, np.full((4, 4), np.nan), 0.0, "odom")
