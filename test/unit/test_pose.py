"""Pose validation, quaternion conversion, interpolation and the stamped buffer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seg_perception.core.geometry.pose import PoseBuffer, translation_jump_m, validate_pose
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
