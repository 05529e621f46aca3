"""core.geometry.ground: synthetic planes with known parameters, real KITTI and 7-Scenes frames."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from seg_perception.core.geometry.camera import backproject, depth_to_meters
from seg_perception.core.geometry.ground import GroundConfig, GroundPlane, fit_ground_plane
from seg_perception.core.geometry.transforms import camera_to_base, transform_points
from seg_perception.datasets import open_sequence


def plane_points(n: int, slope_x: float, slope_y: float, z0: float, noise: float, outliers: float,
                 seed: int = 0) -> np.ndarray:
    """Points of z = z0 + slope_x x + slope_y y on [-10, 10]^2 with Gaussian noise, plus a fraction of outliers
    spread uniformly over the height window (clutter, low obstacles)."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-10, 10, size=(n, 2))
    z = z0 + slope_x * xy[:, 0] + slope_y * xy[:, 1] + rng.normal(0, noise, n)
    n_out = int(outliers * n)
    z[:n_out] = rng.uniform(-0.5, 0.5, n_out)
    return np.c_[xy, z].astype(np.float32)


# --- GroundPlane -----------------------------------------------------------------------------------------------------
def test_plane_height_and_fallback() -> None:
    flat = GroundPlane.from_height(-1.65)
    assert flat.normal == (0.0, 0.0, 1.0) and flat.offset == 1.65 and flat.inliers == 0
    pts = np.array([[3, 4, -1.65], [0, 0, 0.0], [np.nan, 0, 0]], np.float32)
    h = flat.height(pts)
    assert h.dtype == np.float32
    np.testing.assert_allclose(h[:2], [0.0, 1.65], atol=1e-6)
    assert np.isnan(h[2])
    assert flat.height_at_origin_m == pytest.approx(-1.65)
    assert flat.tilt_rad == flat.pitch_rad == flat.roll_rad == 0.0


@pytest.mark.parametrize(
    ("roll", "pitch"), [(0.0, 0.1), (0.1, 0.0), (-0.05, 0.2), (0.2, -0.1)], ids=["pitch", "roll", "both", "neg"]
)
def test_plane_roll_pitch_convention(roll: float, pitch: float) -> None:
    """A base_frame rolled by r and pitched by p (R = Ry(p) Rx(r)) sees world up as R^T z."""
    n = (-math.sin(pitch), math.cos(pitch) * math.sin(roll), math.cos(pitch) * math.cos(roll))
    plane = GroundPlane(normal=n, offset=0.3)
    assert plane.pitch_rad == pytest.approx(pitch, abs=1e-12)
    assert plane.roll_rad == pytest.approx(roll, abs=1e-12)
    assert plane.height_at_origin_m == pytest.approx(-0.3 / n[2])


def test_plane_normalises_and_rejects() -> None:
    p = GroundPlane(normal=(0, 0, 2), offset=-1.0)
    assert p.normal == (0.0, 0.0, 1.0) and p.offset == -0.5
    for normal in [(0, 0, -1), (0, 0, 0), (math.nan, 0, 1)]:
        with pytest.raises(ValueError, match="upward normal"):
            GroundPlane(normal=normal, offset=0.0)


def test_positive_pitch_means_ground_rising_ahead() -> None:
    pts = plane_points(5000, slope_x=0.05, slope_y=0.0, z0=0.0, noise=0.0, outliers=0.0)
    plane, ok = fit_ground_plane(pts)
    assert ok and plane.pitch_rad == pytest.approx(math.atan(0.05), abs=1e-4)


# --- fitting ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("slope_x", "slope_y", "z0"),
    [(0.0, 0.0, 0.0), (0.03, 0.0, 0.1), (0.0, -0.04, -0.2), (0.05, 0.02, 0.05)],
    ids=["flat", "uphill-raised", "side-slope-low", "both"],
)
def test_fit_recovers_synthetic_plane(slope_x: float, slope_y: float, z0: float) -> None:
    pts = plane_points(30_000, slope_x, slope_y, z0, noise=0.01, outliers=0.3)
    pts[::97] = np.nan  # NaN rows are tolerated
    plane, ok = fit_ground_plane(pts, GroundConfig(seed=3))
    assert ok
    expected = np.array([-slope_x, -slope_y, 1.0]) / math.sqrt(1 + slope_x**2 + slope_y**2)
    angle = math.degrees(math.acos(min(1.0, float(np.dot(plane.normal, expected)))))
    assert angle < 0.2, angle
    assert plane.height_at_origin_m == pytest.approx(z0, abs=0.01)
    assert plane.normal[2] > 0
    # The window keeps points within 0.5 m of z = 0, the outliers are 30 % of them: inliers are most of the rest.
    n_window = int(np.count_nonzero(np.abs(pts[:, 2]) < 0.5))
    assert 0.6 * n_window < plane.inliers < 0.85 * n_window
    h = plane.height(pts[9000:])  # the plane points (the outliers are the first 30 %)
    assert np.nanmedian(np.abs(h)) < 0.01


def test_fit_is_reproducible() -> None:
    pts = plane_points(30_000, 0.02, 0.01, 0.0, noise=0.02, outliers=0.3, seed=1)
    a, _ = fit_ground_plane(pts, GroundConfig(seed=7))
    b, _ = fit_ground_plane(pts, GroundConfig(seed=7))
    np.testing.assert_allclose(a.normal, b.normal, atol=1e-6)
    assert a.offset == pytest.approx(b.offset, abs=1e-6)


def test_too_tilted_falls_back() -> None:
    """A 30 deg ramp inside the height window is rejected: the fallback is the configured flat plane."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.8, 0.8, 5000)
    y = rng.uniform(-5, 5, 5000)
    pts = np.c_[x, y, math.tan(math.radians(30)) * x].astype(np.float32)
    cfg = GroundConfig(expected_height_m=0.0, max_tilt_deg=15.0)
    plane, ok = fit_ground_plane(pts, cfg)
    assert not ok and plane == GroundPlane.from_height(0.0)
    plane, ok = fit_ground_plane(pts, GroundConfig(max_tilt_deg=35.0))  # allowed with a wider limit
    assert ok and math.degrees(plane.tilt_rad) == pytest.approx(30.0, abs=0.5)


@pytest.mark.parametrize(
    "points",
    [np.zeros((0, 3), np.float32), np.full((1000, 3), np.nan, np.float32),
     plane_points(150, 0, 0, 0, 0.01, 0.0),  # fewer than min_inliers = 200
     plane_points(5000, 0, 0, 2.0, 0.01, 0.0)],  # all outside the height window
    ids=["empty", "all-nan", "too-few", "outside-window"],
)
def test_degenerate_falls_back(points: np.ndarray) -> None:
    plane, ok = fit_ground_plane(points, GroundConfig(expected_height_m=-0.1))
    assert not ok and plane.height_at_origin_m == pytest.approx(-0.1)


def test_range_limit() -> None:
    near = plane_points(5000, 0, 0, 0.0, 0.005, 0.0)
    near = near[np.hypot(near[:, 0], near[:, 1]) < 5]
    far = plane_points(20_000, 0, 0, 0.3, 0.005, 0.0, seed=2)
    far = far[np.hypot(far[:, 0], far[:, 1]) > 6]
    pts = np.vstack([near, far])
    plane, ok = fit_ground_plane(pts)
    assert ok and plane.height_at_origin_m == pytest.approx(0.3, abs=0.01)  # the larger far plane wins
    plane, ok = fit_ground_plane(pts, GroundConfig(max_range_m=5.5))
    assert ok and plane.height_at_origin_m == pytest.approx(0.0, abs=0.01)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [(dict(distance_threshold_m=0.0), "distance_threshold_m"), (dict(max_tilt_deg=90.0), "max_tilt_deg"),
     (dict(height_window_m=-1.0), "height_window_m"), (dict(min_inliers=2), "min_inliers must be an integer >= "),
     (dict(ransac_n=2), "ransac_n"), (dict(iterations=0), "iterations"), (dict(max_range_m=0.0), "max_range_m")],
    ids=["threshold", "tilt", "window", "min-inliers", "ransac-n", "iterations", "range"],
)
def test_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GroundConfig(**kwargs)


def test_bad_shape() -> None:
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        fit_ground_plane(np.zeros((10, 2), np.float32))


# --- real data -------------------------------------------------------------------------------------------------------
def _cloud(seq_path: Path, index: int) -> tuple[np.ndarray, np.ndarray | None]:
    seq = open_sequence(seq_path)
    frame = seq[index]
    return backproject(depth_to_meters(frame.depth_mm), seq.intrinsics), frame.pose


@pytest.mark.parametrize("index", [0, 30, 59], ids=["f0", "f30", "f59"])
def test_kitti_road_plane(index: int, kitti_dir: Path) -> None:
    """KITTI: camera 1.65 m above the road, nearly level. The fitted road is within 0.15 m of z = 0 and < 3 deg."""
    optical, _ = _cloud(kitti_dir, index)
    base = transform_points(camera_to_base((0, 0, 1.65), (0, 0, 0)), optical)
    t0 = time.perf_counter()
    plane, ok = fit_ground_plane(base)
    dt = time.perf_counter() - t0
    print(f"KITTI frame {index}: fit_ground_plane {dt * 1e3:.1f} ms, {plane}")
    assert ok
    assert abs(plane.height_at_origin_m) < 0.15
    assert math.degrees(plane.tilt_rad) < 3.0
    assert plane.inliers > 2000  # the road: thousands of LiDAR returns
    # Most near-road returns (within the window, 5-20 m ahead) are within 10 cm of the fitted plane.
    h = plane.height(base.reshape(-1, 3))
    near = (np.abs(base[..., 2].reshape(-1)) < 0.3) & (base[..., 0].reshape(-1) > 5) & (base[..., 0].reshape(-1) < 20)
    assert np.mean(np.abs(h[near]) < 0.1) > 0.7


def test_seven_scenes_floor_consistent_with_poses(kitchen_dir: Path) -> None:
    """7-Scenes kitchen, hand-held Kinect: fit the floor per frame in a rough base_frame (camera 1.35 m up, pitched
    27 deg down), then map both fitted planes into the sequence's world frame with the camera-to-world poses: the same
    floor must come out (normal within 3 deg, offset within 5 cm), although the camera moved and turned."""
    t_base_cam = camera_to_base((0, 0, 1.35), (0, math.radians(27), 0))
    world_planes = []
    for index in (0, 100):
        optical, pose = _cloud(kitchen_dir, index)
        assert pose is not None
        plane, ok = fit_ground_plane(transform_points(t_base_cam, optical), GroundConfig(distance_threshold_m=0.03))
        assert ok, index
        assert abs(plane.height_at_origin_m) < 0.15  # the rough extrinsic is within 15 cm
        assert plane.inliers > 20_000  # the floor fills the lower part of the image
        m = pose @ np.linalg.inv(t_base_cam)  # base_frame -> world
        n_w = m[:3, :3] @ np.asarray(plane.normal)
        world_planes.append((n_w, plane.offset - float(n_w @ m[:3, 3])))
    (n0, d0), (n1, d1) = world_planes
    assert math.degrees(math.acos(min(1.0, float(n0 @ n1)))) < 3.0
    assert d0 == pytest.approx(d1, abs=0.05)
