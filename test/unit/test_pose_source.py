"""Poses from a tf2 buffer (tf2_py's C++ core, no node): lookups with the tolerance rule, the drop reasons that name
both frames, the chain odom -> base_link -> camera, the jump check and clearing on a jump back in time."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tf2_py as tf2
from geometry_msgs.msg import TransformStamped

from seg_perception.core.errors import InputRejected
from seg_perception.core.geometry.transforms import camera_to_base, matrix_from_pose
from seg_perception.core.sync import StampOrder
from seg_perception.ros.pose_source import CloudPoser, check_timeline, lookup_matrix, transform_matrix, transform_msg

S = 1_000_000_000
OPTICAL = "camera_color_optical_frame"


def _msg(parent: str, child: str, t: np.ndarray, stamp_ns: int = 0) -> TransformStamped:
    return transform_msg(parent, child, t, stamp_ns)


def _robot(x: float, yaw_deg: float) -> np.ndarray:
    h = math.radians(yaw_deg) / 2
    return matrix_from_pose((x, 0.0, 0.0), (0.0, 0.0, math.sin(h), math.cos(h)))


@pytest.fixture
def buffer() -> tf2.BufferCore:
    """odom -> base_link at 10 s (origin) and 11 s (2 m ahead, yaw 90 deg); base_link -> optical frame static."""
    b = tf2.BufferCore()
    b.set_transform_static(_msg("base_link", OPTICAL, camera_to_base((0.3, 0.0, 1.2), (0.0, 0.4, 0.0))), "test")
    b.set_transform(_msg("odom", "base_link", _robot(0.0, 0.0), 10 * S), "test")
    b.set_transform(_msg("odom", "base_link", _robot(2.0, 90.0), 11 * S), "test")
    return b


def test_transform_matrix_round_trip() -> None:
    t = camera_to_base((0.1, -0.2, 1.5), (0.1, 0.3, -0.4))
    np.testing.assert_allclose(transform_matrix(_msg("a", "b", t)), t, atol=1e-12)


def test_lookup_interpolates_and_takes_the_newest_within_the_tolerance(buffer: tf2.BufferCore) -> None:
    mid = lookup_matrix(buffer, "odom", "base_link", 10 * S + S // 2, S // 10)
    np.testing.assert_allclose(mid, _robot(1.0, 45.0), atol=1e-9)  # tf2: linear + slerp half way
    newest = lookup_matrix(buffer, "odom", "base_link", 11 * S + S // 20, S // 10)  # 50 ms after the newest
    np.testing.assert_allclose(newest, _robot(2.0, 90.0), atol=1e-9)
    static = lookup_matrix(buffer, "base_link", OPTICAL, 12345 * S, 0)  # a static transform answers any stamp
    np.testing.assert_allclose(static, camera_to_base((0.3, 0.0, 1.2), (0.0, 0.4, 0.0)), atol=1e-9)


@pytest.mark.parametrize(
    ("target", "source", "stamp_ns", "reason", "words"),
    [("odom", "base_link", 11 * S + S // 2, "tf_stale", "0.500 s older than the cloud"),
     ("odom", "base_link", 9 * S, "tf_missing", "before the buffered transforms"),
     ("odom", "laser", 10 * S, "tf_missing", "laser"),
     ("map", "base_link", 10 * S, "tf_missing", "map")],
    ids=["stale", "before-buffer", "unknown-source", "unknown-target"],
)  # fmt: skip
def test_lookup_failures_are_reasons_naming_both_frames(buffer, target, source, stamp_ns, reason, words) -> None:  # noqa: ANN001
    with pytest.raises(InputRejected) as e:
        lookup_matrix(buffer, target, source, stamp_ns, S // 10)
    assert e.value.reason == reason
    assert f"{target} -> {source}" in e.value.detail and words in e.value.detail


def test_cloud_poser_chains_robot_pose_and_mount_and_sees_jumps(buffer: tf2.BufferCore) -> None:
    jumps: list[float] = []
    poser = CloudPoser(buffer, "odom", "base_link", S // 10, max_jump_m=1.0, on_jump=jumps.append)
    mount = camera_to_base((0.3, 0.0, 1.2), (0.0, 0.4, 0.0))
    a = poser.pose(10 * S, OPTICAL, 0.0)
    np.testing.assert_allclose(a.t_grid_camera, mount, atol=1e-9)
    assert a.frame == "odom" and a.robot_xy == pytest.approx((0.0, 0.0)) and jumps == []
    b = poser.pose(11 * S, OPTICAL, 0.02)
    np.testing.assert_allclose(b.t_grid_camera, _robot(2.0, 90.0) @ mount, atol=1e-9)
    assert b.robot_xy == pytest.approx((2.0, 0.0)) and b.ground_z == pytest.approx(0.02)
    assert jumps == [pytest.approx(2.0)]  # 2 m between two clouds: more than max_jump_m
    no_global = CloudPoser(buffer, "", "base_link", S // 10).pose(11 * S, OPTICAL, 0.0)
    assert no_global.frame == "base_link" and no_global.robot_xy == (0.0, 0.0)
    np.testing.assert_allclose(no_global.t_grid_camera, mount, atol=1e-9)


def test_a_jump_back_in_time_clears_dynamic_transforms_only(buffer: tf2.BufferCore) -> None:
    watch, jumped = StampOrder(S, max_late=None), []
    for t in (10 * S, 11 * S):
        check_timeline(buffer, watch, t, lambda t_ns, back: jumped.append(back))
    assert jumped == []
    check_timeline(buffer, watch, 5 * S, lambda t_ns, back: jumped.append(back))  # a bag loop: 6 s back
    assert jumped == [pytest.approx(6.0)]
    with pytest.raises(InputRejected):
        lookup_matrix(buffer, "odom", "base_link", 10 * S, S // 10)  # the old timeline is gone
    lookup_matrix(buffer, "base_link", OPTICAL, 5 * S, 0)  # the mount stays
