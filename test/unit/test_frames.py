"""core.frames on the real KITTI and 7-Scenes folders (read-only) and on broken folders built in tmp_path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from seg_perception.datasets import EPOCH_NS, SequenceError, detect_layout, open_sequence


def test_kitti_sequence(kitti_dir: Path) -> None:
    seq = open_sequence(kitti_dir)
    assert seq.layout == "kitti"
    assert seq.name == kitti_dir.name
    assert seq.rate_hz == 10.0
    assert len(seq) == 60
    intr = json.loads((kitti_dir / "intrinsics.json").read_text())
    k = seq.intrinsics
    assert (k.fx, k.fy, k.cx, k.cy) == (intr["fx"], intr["fy"], intr["cx"], intr["cy"])
    assert (k.fx, k.fy, k.cx, k.cy) == (721.5377, 721.5377, 609.5593, 172.854)
    assert (k.width, k.height) == (1242, 375)
    f = seq[3]
    assert f.index == 3
    assert f.rgb.shape == (375, 1242, 3) and f.rgb.dtype == np.uint8
    assert f.depth_mm.shape == (375, 1242) and f.depth_mm.dtype == np.uint16
    assert f.pose is None
    assert f.stamp_ns == EPOCH_NS + 300_000_000
    # RGB channel order: equal to the PNG decoded by OpenCV (BGR) with channels reversed.
    bgr = cv2.imread(str(kitti_dir / "image_02" / "0000000003.png"), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(f.rgb, bgr[..., ::-1])
    depth = cv2.imread(str(kitti_dir / "depth_02" / "0000000003.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(f.depth_mm, depth)
    valid = f.depth_mm[f.depth_mm > 0]
    assert 0.01 < valid.size / f.depth_mm.size < 0.1  # sparse LiDAR, ~3.5 %
    assert 2_000 < valid.min() and valid.max() < 80_000  # 2.7-65.5 m in mm
    assert seq[-1].index == 59


def test_kitchen_sequence(kitchen_dir: Path) -> None:
    seq = open_sequence(kitchen_dir)
    assert seq.layout == "7scenes"
    assert seq.rate_hz == 30.0
    assert len(seq) == 300
    assert seq.has_poses
    k = seq.intrinsics
    assert (k.fx, k.fy, k.cx, k.cy, k.width, k.height) == (585.0, 585.0, 320.0, 240.0, 640, 480)
    f = seq[10]
    assert f.rgb.shape == (480, 640, 3) and f.rgb.dtype == np.uint8
    assert f.depth_mm.shape == (480, 640) and f.depth_mm.dtype == np.uint16
    assert f.stamp_ns - seq[9].stamp_ns in (33_333_333, 33_333_334)
    assert f.stamp_ns == EPOCH_NS + round(10 * 1e9 / 30)
    valid = f.depth_mm[f.depth_mm > 0]
    assert valid.size / f.depth_mm.size > 0.5
    assert 500 < np.median(valid) < 4500  # Kinect range 0.8-4 m, in mm
    # Pose: 4x4 float64 rigid camera-to-world transform equal to the text file.
    assert f.pose is not None and f.pose.shape == (4, 4) and f.pose.dtype == np.float64
    np.testing.assert_array_equal(f.pose, np.loadtxt(kitchen_dir / "frame-000010.pose.txt"))
    r = f.pose[:3, :3]  # the dataset's rotations are orthonormal to ~2e-4 (KinectFusion output in text)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-3)
    assert np.linalg.det(r) == pytest.approx(1.0, abs=1e-3)
    assert np.all(np.abs(f.pose[:3, 3]) < 10.0)  # metres, a room
    np.testing.assert_array_equal(f.pose[3], [0, 0, 0, 1])


def test_iteration_matches_indexing(kitti_dir: Path) -> None:
    seq = open_sequence(kitti_dir)
    it = iter(seq)
    first, second = next(it), next(it)
    assert (first.index, second.index) == (0, 1)
    assert second.stamp_ns - first.stamp_ns == 100_000_000
    with pytest.raises(IndexError):
        seq[60]


def test_not_a_sequence(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(SequenceError, match="matches no known RGB-D layout"):
        open_sequence(tmp_path)
    with pytest.raises(SequenceError, match="not a directory"):
        detect_layout(tmp_path / "missing")


def test_missing_depth_7scenes(tmp_path: Path, kitchen_dir: Path) -> None:
    for name in ("frame-000000.color.jpg", "frame-000000.depth.png", "frame-000001.color.jpg", "camera-intrinsics.txt"):
        shutil.copy(kitchen_dir / name, tmp_path / name)  # a temporary copy, deleted with tmp_path
    with pytest.raises(SequenceError, match=r"frame-000001\.color\.jpg has no depth image"):
        open_sequence(tmp_path)
    shutil.copy(kitchen_dir / "frame-000001.depth.png", tmp_path / "frame-000001.depth.png")
    seq = open_sequence(tmp_path)
    assert len(seq) == 2 and not seq.has_poses and seq[1].pose is None
    assert (seq.intrinsics.width, seq.intrinsics.height) == (640, 480)  # from the first image


def test_missing_depth_kitti(tmp_path: Path, kitti_dir: Path) -> None:
    (tmp_path / "image_02").mkdir()
    (tmp_path / "depth_02").mkdir()
    shutil.copy(kitti_dir / "intrinsics.json", tmp_path / "intrinsics.json")
    shutil.copy(kitti_dir / "image_02" / "0000000000.png", tmp_path / "image_02" / "0000000000.png")
    with pytest.raises(SequenceError, match="has no depth image"):
        open_sequence(tmp_path)


def test_depth_size_mismatch_is_an_error(tmp_path: Path, kitti_dir: Path) -> None:
    (tmp_path / "image_02").mkdir()
    (tmp_path / "depth_02").mkdir()
    shutil.copy(kitti_dir / "intrinsics.json", tmp_path / "intrinsics.json")
    shutil.copy(kitti_dir / "image_02" / "0000000000.png", tmp_path / "image_02" / "0000000000.png")
    cv2.imwrite(str(tmp_path / "depth_02" / "0000000000.png"), np.zeros((10, 20), np.uint16))
    seq = open_sequence(tmp_path)
    with pytest.raises(SequenceError, match=r"depth \(10, 20\) does not match rgb \(375, 1242\)"):
        seq[0]
