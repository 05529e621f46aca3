"""Back-projection, REP-118 depth conversion and the semantic cloud layout, on hand-computed and real values."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from seg_perception.core.geometry.camera import Intrinsics, backproject, depth_to_meters
from seg_perception.core.geometry.cloud import CLOUD_DTYPE, pack_rgb, semantic_cloud, unpack_rgb, valid_points

K = Intrinsics(fx=500.0, fy=400.0, cx=320.0, cy=240.0, width=640, height=480)


def test_principal_point_lies_on_the_optical_axis() -> None:
    depth = np.full((480, 640), 2.0, dtype=np.float32)
    pts = backproject(depth, K)
    assert pts.shape == (480, 640, 3) and pts.dtype == np.float32
    np.testing.assert_array_equal(pts[240, 320], [0.0, 0.0, 2.0])


@pytest.mark.parametrize(
    ("v", "u", "z", "expected"),
    [
        (240, 820, 2.0, (2.0, 0.0, 2.0)),  # 500 px right at 2 m: x = 500 * 2 / 500
        (40, 320, 4.0, (0.0, -2.0, 4.0)),  # 200 px up at 4 m: y = -200 * 4 / 400 (y points down)
        (0, 0, 1.0, (-0.64, -0.6, 1.0)),
    ],
    ids=["right", "up", "corner"],
)
def test_hand_computed_pixels(v: int, u: int, z: float, expected: tuple[float, float, float]) -> None:
    k = Intrinsics(500.0, 400.0, 320.0, 240.0, 1000, 480)
    depth = np.full((480, 1000), z, dtype=np.float32)
    np.testing.assert_allclose(backproject(depth, k)[v, u], expected, rtol=1e-6)


def test_depth_16uc1_millimetres_with_zero_invalid() -> None:
    d = np.array([[0, 1000, 65535]], dtype=np.uint16)
    m = depth_to_meters(d)
    assert m.dtype == np.float32
    assert np.isnan(m[0, 0])
    assert m[0, 1] == pytest.approx(1.0)
    assert m[0, 2] == pytest.approx(65.535)


def test_depth_32fc1_rejects_nan_and_both_infinities_and_range() -> None:
    d = np.array([[np.nan, -np.inf, np.inf, 0.05, 1.5, 90.0]], dtype=np.float32)
    m = depth_to_meters(d, min_m=0.1, max_m=80.0)
    assert np.isnan(m[0, [0, 1, 2, 3, 5]]).all()
    assert m[0, 4] == pytest.approx(1.5)


def test_depth_rejects_other_dtypes_and_shapes() -> None:
    with pytest.raises(TypeError, match="uint16"):
        depth_to_meters(np.zeros((2, 2), dtype=np.int32))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        depth_to_meters(np.zeros((2, 2, 1), dtype=np.uint16))


def test_zero_focal_length_is_rejected() -> None:
    with pytest.raises(ValueError, match="focal"):
        Intrinsics.from_k([0, 0, 320, 0, 0, 240, 0, 0, 1], 640, 480)


def test_backproject_checks_size() -> None:
    with pytest.raises(ValueError, match="does not match"):
        backproject(np.zeros((240, 320), np.float32), K)


def test_pack_rgb_is_pcl_layout_and_round_trips() -> None:
    rgb = np.array([[255, 128, 1]], dtype=np.uint8)
    packed = pack_rgb(rgb)
    assert packed.view(np.uint32)[0] == 0x00FF8001
    np.testing.assert_array_equal(unpack_rgb(packed), rgb)


def test_cloud_fields_offsets_and_nan_handling() -> None:
    assert [(n, CLOUD_DTYPE.fields[n][1], CLOUD_DTYPE.fields[n][0].str) for n in CLOUD_DTYPE.names] == [
        ("x", 0, "<f4"), ("y", 4, "<f4"), ("z", 8, "<f4"), ("rgb", 12, "<f4"), ("label", 16, "<u4"),
        ("confidence", 20, "<f4"),
    ]  # fmt: skip
    depth = np.full((480, 640), 3.0, dtype=np.float32)
    depth[0, 0] = np.nan
    rgb = np.zeros((480, 640, 3), np.uint8)
    rgb[..., 0] = 200
    labels = np.full((480, 640), 7, np.uint8)
    conf = np.full((480, 640), 0.25, np.float32)
    cloud = semantic_cloud(depth, K, rgb, labels, conf, stride=4)
    assert cloud.shape == (120, 160) and cloud.dtype == CLOUD_DTYPE
    assert np.isnan([cloud[0, 0]["x"], cloud[0, 0]["y"], cloud[0, 0]["z"]]).all()
    # decimated pixel (60, 80) is full-resolution pixel (240, 320): the principal point
    assert (cloud[60, 80]["x"], cloud[60, 80]["y"], cloud[60, 80]["z"]) == (0.0, 0.0, 3.0)
    # decimated pixel (60, 100) is pixel (240, 400): x = 80 * 3 / 500
    assert cloud[60, 100]["x"] == pytest.approx(0.48)
    assert (cloud["label"] == 7).all() and np.allclose(cloud["confidence"], 0.25)
    assert (unpack_rgb(cloud["rgb"])[..., 0] == 200).all()
    assert valid_points(cloud).size == 120 * 160 - 1


def test_cloud_rejects_mismatched_sizes() -> None:
    with pytest.raises(ValueError, match="does not match camera_info"):
        semantic_cloud(np.zeros((240, 320), np.float32), K, np.zeros((480, 640, 3), np.uint8),
                       np.zeros((480, 640), np.uint8), np.zeros((480, 640), np.float32))  # fmt: skip


def test_real_kitti_lidar_depth_lands_in_front_of_the_camera(kitti_dir) -> None:  # noqa: ANN001
    """Back-projected KITTI LiDAR depth: a street scene (points 2.7-66 m ahead, ground ~1.65 m below)."""
    meta = json.loads((kitti_dir / "intrinsics.json").read_text())
    k = Intrinsics(meta["fx"], meta["fy"], meta["cx"], meta["cy"], meta["width"], meta["height"])
    depth = cv2.imread(str(kitti_dir / "depth_02" / "0000000000.png"), cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.uint16 and depth.shape == (375, 1242)
    pts = backproject(depth_to_meters(depth), k)
    valid = pts[np.isfinite(pts[..., 2])]
    assert 0.02 < len(valid) / depth.size < 0.06  # ~3.5 % of pixels carry a LiDAR return
    assert 2.5 < valid[:, 2].min() and valid[:, 2].max() < 70.0
    # camera 1.65 m above the road: the most common downward offset (optical +y) of near points is ~1.65 m
    near = valid[(valid[:, 2] < 15.0) & (np.abs(valid[:, 0]) < 2.0)]
    hist, edges = np.histogram(near[:, 1], bins=np.arange(-3.0, 3.0, 0.1))
    mode = edges[np.argmax(hist)] + 0.05
    assert 1.4 < mode < 1.9
