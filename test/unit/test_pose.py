"""Pose validation, quaternion conversion, interpolation and the stamped buffer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seg_perception.core.errors import InputRejected
from seg_perception.core.geometry.pose import PoseBuffer, PoseTrack, translation_jump_m, validate_pose
from seg_perception.core.geometry.transforms import interpolate, matrix_from_pose


def _yaw(deg: float, xyz=(0.0, 0.0, 0.0)) -> np.ndarray:  # noqa: ANN001
    h = math.radians(deg) / 2
    return matrix_from_pose(xyz, (0.0, 0.0, math.sin(h), math.cos(h)))


@pytest.mark.parametrize(
    ("pos", "quat", "reason"),
    [((0, 0, 0), (0, 0, 0, 1), None), ((math.nan, 0, 0), (0, 0, 0, 1), "pose_nan"),
     ((0, 0, 0), (0, 0, 0, 2), "pose_quaternion"), ((0, 0, 0), (0, 0, 0, 0), "pose_quaternion")],
    ids=["ok", "nan", "norm2", "zero"],
)  # fmt: skip
def test_validate_pose(pos, quat, reason) -> None:  # noqa: ANN001
    problems = validate_pose(pos, quat)
    assert (problems[0].split(":")[0] if problems else None) == reason


def test_quaternion_yaw_90_maps_x_to_y() -> None:
    t = _yaw(90.0, (1.0, 2.0, 3.0))
    np.testing.assert_allclose(t[:3, :3] @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(t[:3, 3], [1, 2, 3])


def test_interpolation_halfway() -> None:
    mid = interpolate(_yaw(0.0, (0, 0, 0)), _yaw(90.0, (2, 0, 0)), 0.5)
    np.testing.assert_allclose(mid, _yaw(45.0, (1, 0, 0)), atol=1e-9)


def test_buffer_lookup_exact_interpolated_nearest_and_missing() -> None:
    buf = PoseBuffer(max_age_ns=10_000)
    buf.add(1000, _yaw(0.0, (0, 0, 0)))
    buf.add(2000, _yaw(0.0, (1, 0, 0)))
    np.testing.assert_allclose(buf.lookup(1500, 0)[:3, 3], [0.5, 0, 0])
    np.testing.assert_allclose(buf.lookup(2000, 0)[:3, 3], [1, 0, 0])
    np.testing.assert_allclose(buf.lookup(2100, 200)[:3, 3], [1, 0, 0])  # newest within tolerance
    assert buf.lookup(2500, 200) is None  # too far past the newest pose
    buf.add(20_000, _yaw(0.0))
    assert len(buf) == 1  # 1000 and 2000 fell out of the 10 us window
    assert buf.latest()[0] == 20_000


def test_jump_distance() -> None:
    assert translation_jump_m(_yaw(0, (0, 0, 0)), _yaw(30, (3, 4, 0))) == pytest.approx(5.0)


def test_pose_track_checks_and_lookup_reasons() -> None:
    jumps: list[float] = []
    track = PoseTrack(max_jump_m=1.0, time_jump_ns=10**9, on_jump=jumps.append)
    with pytest.raises(InputRejected) as e:
        track.pose_at(0, 10**8)
    assert e.value.reason == "no_odometry"
    for bad, reason in [(((math.nan, 0, 0), (0, 0, 0, 1)), "pose_nan"), (((0, 0, 0), (0, 0, 0, 2)), "pose_quaternion")]:
        with pytest.raises(InputRejected) as e:
            track.add(0, *bad, "odom", "base_link")
        assert e.value.reason == reason
    with pytest.raises(InputRejected, match="odom_frame_id"):
        track.add(0, (0, 0, 0), (0, 0, 0, 1), "", "base_link")
    track.add(10**9, (0, 0, 0), (0, 0, 0, 1), "odom", "base_link")
    track.add(2 * 10**9, (0.5, 0, 0), (0, 0, 0, 1), "odom", "base_link")
    assert track.pose_at(15 * 10**8, 6 * 10**8)[0, 3] == pytest.approx(0.25)  # interpolated half way
    with pytest.raises(InputRejected) as e:
        track.pose_at(5 * 10**8, 10**8)  # 1.5 s older than the newest pose
    assert e.value.reason == "stale_cloud"
    with pytest.raises(InputRejected) as e:
        track.pose_at(25 * 10**8, 10**8)  # 0.5 s after the newest pose
    assert e.value.reason == "no_pose"
    track.add(3 * 10**9, (3.0, 0, 0), (0, 0, 0, 1), "odom", "base_link")  # 2.5 m in one step: relocalisation
    assert jumps == [pytest.approx(2.5)] and len(track.buffer) == 1
    track.add(10**9, (3.0, 0, 0), (0, 0, 0, 1), "odom", "base_link")  # time went back 2 s: buffer cleared
    assert track.latest_stamp_ns() == 10**9 and len(track.buffer) == 1
