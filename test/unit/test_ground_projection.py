"""core.mapping.ground_projection and its use in CostmapPipeline: rays per camera_info, the ray-plane cut against the
pinhole geometry, which pixels are projected (drivable classes without depth only), and how projected evidence
enters the grids (fills unknown cells only; never obstacles; weighted in the fused layer)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seg_perception.core.errors import InputRejected
from seg_perception.core.geometry.camera import Intrinsics, backproject
from seg_perception.core.geometry.ground import GroundPlane
from seg_perception.core.geometry.transforms import camera_to_base
from seg_perception.core.mapping.grid import CostmapConfig, FusionConfig
from seg_perception.core.mapping.ground_projection import (
    GroundProjectionConfig,
    RayCache,
    cloud_rays,
    cloud_stride,
    project_pixels,
)
from seg_perception.core.mapping.ontology import Role, load_ontology
from seg_perception.core.mapping.pipeline import ClassRules, CostmapPipeline
from seg_perception.core.segmentation.registry import get_model_spec

HEIGHT_M = 1.4
MOUNT = camera_to_base((0.0, 0.0, HEIGHT_M), (0.0, 0.0, 0.0))  # level camera 1.4 m up: optical -> base_link
K = Intrinsics(fx=200.0, fy=200.0, cx=79.5, cy=29.5, width=160, height=90)  # horizon at row 29.5
ROAD, SIDEWALK, CAR = 0, 1, 13  # Cityscapes ids (road drivable; sidewalk and car obstacle classes)
LUT = np.array([Role.DRIVABLE, Role.OBSTACLE, Role.GROUND_IF_FLAT, Role.IGNORE], np.uint8)


def ground_truth(k: Intrinsics, stride: int = 1) -> np.ndarray:
    """(H, W, 3) optical-frame points where each pixel ray of a level camera HEIGHT_M up meets the flat ground (NaN
    above the horizon): depth z = HEIGHT_M * fy / (v - cy), the pinhole model solved for the ground."""
    ks = k.scaled(stride)
    v = np.arange(ks.height, dtype=np.float64)[:, None] - ks.cy
    depth = np.where(v > 0, HEIGHT_M * ks.fy / np.where(v > 0, v, 1.0), np.nan) * np.ones((1, ks.width))
    return backproject(depth.astype(np.float32), ks)


def test_cloud_stride_is_inferred_from_the_cloud_width_and_inconsistent_sizes_are_refused() -> None:
    kitti = Intrinsics(fx=721.5, fy=721.5, cx=609.6, cy=172.9, width=1242, height=375)
    for stride in (1, 2, 3, 4, 8):
        assert cloud_stride(kitti, (math.ceil(375 / stride), math.ceil(1242 / stride))) == stride
    for hw in ((375, 1000), (188, 1242), (1, 465750), (0, 0)):  # another camera, mixed strides, unorganized, empty
        with pytest.raises(InputRejected) as e:
            cloud_stride(kitti, hw)
        assert e.value.reason == "camera_info_stride"


def test_rays_are_unit_pixel_directions_of_the_decimated_image_and_cached() -> None:
    for stride in (1, 2, 3):
        ks = K.scaled(stride)
        assert cloud_rays(K, stride).shape == (ks.height, ks.width, 3)
        rays = cloud_rays(K, stride).reshape(-1, 3)
        truth = ground_truth(K, stride).reshape(-1, 3)
        assert rays.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(rays, axis=1), 1.0, atol=1e-6)
        ok = np.isfinite(truth[:, 2])
        unit = truth[ok] / np.linalg.norm(truth[ok], axis=1, keepdims=True)
        np.testing.assert_allclose(rays[ok], unit, atol=1e-6)  # the same pixel's direction as backproject
    cache = RayCache()
    a = cache.rays(K, (45, 80))
    assert cache.rays(K, (45, 80)) is a  # reused while camera_info and cloud shape stay
    assert cache.rays(K, (90, 160)) is not a and cache.rays(K, (90, 160)).shape == (90, 160, 3)


def _project(
    xyz: np.ndarray, labels: np.ndarray, cfg: GroundProjectionConfig = GroundProjectionConfig(), t: np.ndarray = MOUNT,
    plane: GroundPlane | None = None,
) -> np.ndarray:  # fmt: skip
    pts, _ = project_pixels(xyz.reshape(-1, 3), labels.reshape(-1), None, cloud_rays(K, 1), t,
                            plane or GroundPlane.from_height(0.0), LUT, cfg)  # fmt: skip
    return pts


def test_projected_points_are_the_ground_points_of_the_pixels() -> None:
    truth = ground_truth(K)  # where each ray meets the ground
    no_depth = np.full_like(truth, np.nan)
    labels = np.full(truth.shape[:2], ROAD, np.uint8)
    cfg = GroundProjectionConfig(max_range_m=1000.0, min_angle_deg=0.0)
    pts = _project(no_depth, labels, cfg)
    from seg_perception.core.geometry.transforms import transform_points

    expected = transform_points(MOUNT, truth.reshape(-1, 3))
    below = np.isfinite(expected[:, 0])  # rows below the horizon (v > cy)
    assert pts.shape == (int(below.sum()), 3)
    np.testing.assert_allclose(pts, expected[below], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(pts[:, 2], 0.0, atol=1e-5)
    # a tilted plane (ground rising 5 % ahead) moves every hit onto it
    tilted = GroundPlane(normal=(-0.05, 0.0, 1.0), offset=0.0)
    pts_t = _project(no_depth, labels, cfg, plane=tilted)
    np.testing.assert_allclose(tilted.height(pts_t), 0.0, atol=1e-4)


def test_range_and_grazing_angle_limits() -> None:
    no_depth = np.full((K.height, K.width, 3), np.nan, np.float32)
    labels = np.full((K.height, K.width), ROAD, np.uint8)
    pts = _project(no_depth, labels, GroundProjectionConfig(max_range_m=10.0, min_angle_deg=0.0))
    assert pts.size and np.hypot(pts[:, 0], pts[:, 1]).max() <= 10.0 + 1e-6
    cfg = GroundProjectionConfig(max_range_m=1000.0, min_angle_deg=5.0)
    pts = _project(no_depth, labels, cfg)
    angle = np.degrees(np.arcsin(HEIGHT_M / np.linalg.norm(pts - [0.0, 0.0, HEIGHT_M], axis=1)))
    assert angle.min() >= 5.0 - 1e-4
    # a camera below the plane (wrong extrinsic) projects nothing
    under = MOUNT.copy()
    under[2, 3] = -0.5
    assert _project(no_depth, labels, cfg, t=under).shape == (0, 3)


def test_only_drivable_classes_without_depth_are_projected() -> None:
    truth = ground_truth(K)
    labels = np.zeros((K.height, K.width), np.uint8)
    labels[:, :40] = 1  # obstacle class
    labels[:, 40:80] = 2  # ground_if_flat
    labels[:, 80:100] = 3  # ignore
    labels[:, 100:110] = 200  # outside the table
    xyz = np.full_like(truth, np.nan)
    xyz[::2] = truth[::2]  # even rows have depth
    cfg = GroundProjectionConfig(max_range_m=1000.0, min_angle_deg=0.0)
    pts = _project(xyz, labels, cfg)
    below_odd = np.zeros((K.height, K.width), bool)
    below_odd[1::2] = True
    below_odd &= np.isfinite(truth[..., 2])
    assert pts.shape[0] == int((below_odd & (labels == 0)).sum()) > 0
    # the projected points are exactly those of the road columns without depth: y (left) from columns 110..159
    cols_y = -(np.arange(110, 160) - K.cx) / K.fx  # y / x of those columns
    np.testing.assert_array_less(pts[:, 1] / pts[:, 0], cols_y.max() + 1e-6)
    np.testing.assert_array_less(cols_y.min() - 1e-6, pts[:, 1] / pts[:, 0])
    # low confidence is not projected
    conf = np.full(labels.size, 0.3, np.float32)
    out, src = project_pixels(xyz.reshape(-1, 3), labels.reshape(-1), conf, cloud_rays(K, 1), MOUNT,
                              GroundPlane.from_height(0.0), LUT, cfg, min_confidence=0.5)  # fmt: skip
    assert out.shape == (0, 3) and src.size == 0


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Road everywhere below the horizon with depth only on every 8th row; a car (class 13) with depth covers columns
    60-99 of rows 60-89 (a box 0.5 m tall on the road)."""
    truth = ground_truth(K)
    xyz = np.full_like(truth, np.nan)
    xyz[::8] = truth[::8]
    labels = np.full((K.height, K.width), ROAD, np.uint8)
    car = (slice(60, 90), slice(60, 100))
    labels[car] = CAR
    xyz[car] = truth[car]
    xyz[car][..., 1] -= 0.5  # 0.5 m up (optical y is down)
    conf = np.full(labels.shape, 0.8, np.float32)
    return xyz, labels, conf


def _mapper(fusion: FusionConfig | None = None, weight: float = 0.5, enabled: bool = True) -> CostmapPipeline:
    spec = get_model_spec("espnetv2_city")
    cfg = CostmapConfig(resolution=0.2, width=30.0, height=30.0, max_range_m=15.0, min_obstacle_points=1)
    projection = GroundProjectionConfig(weight=weight, enabled=enabled)
    mapper = CostmapPipeline(cfg, fusion_cfg=fusion, projection_cfg=projection)
    mapper.rules = ClassRules.from_ontology(load_ontology("cityscapes", spec.categories), spec.categories, cfg)
    return mapper


def test_projection_fills_only_unknown_cells_and_never_touches_obstacles() -> None:
    xyz, labels, conf = _scene()
    rays = cloud_rays(K, 1)
    depth_only = _mapper().update(xyz, labels, conf, MOUNT)
    dense = _mapper().update(xyz, labels, conf, MOUNT, rays=rays)
    assert depth_only.projected is None and depth_only.projection is None
    assert dense.projected is not None and dense.projection is not None and "projection" in dense.timings_ms
    known = depth_only.drivable_occupancy != -1
    # depth-backed cells stay; the obstacle grid is depth only
    np.testing.assert_array_equal(dense.drivable_occupancy[known], depth_only.drivable_occupancy[known])
    np.testing.assert_array_equal(dense.obstacle_occupancy, depth_only.obstacle_occupancy)
    assert not (dense.projected & known).any()
    np.testing.assert_array_equal(dense.drivable_occupancy[dense.projected], 0)
    gain = (dense.drivable_occupancy == 0).sum() / (depth_only.drivable_occupancy == 0).sum()
    assert gain > 2.0, gain  # depth on 1 row in 8 leaves most road cells unknown
    s = dense.projection
    assert s.filled == int(dense.projected.sum()) and s.agree <= s.ground_overlap <= s.overlap <= s.cells
    assert s.ground_agreement > 0.95  # flat road: projection and depth agree on the ground
    # switched off: no projection even with rays
    off = _mapper(enabled=False).update(xyz, labels, conf, MOUNT, rays=rays)
    np.testing.assert_array_equal(off.drivable_occupancy, depth_only.drivable_occupancy)


def test_fused_projection_is_weighted_drivable_evidence() -> None:
    xyz, labels, conf = _scene()
    fusion = FusionConfig(resolution=0.2, width=30.0, height=30.0)
    mapper = _mapper(fusion, weight=0.25)
    res = mapper.update(xyz, labels, conf, MOUNT, rays=cloud_rays(K, 1))
    assert mapper.fusion is not None and res.projected is not None
    d = mapper.fusion.drivable_log_odds
    # a projected-only cell: drivable_evidence_log_odds * weight * max confidence of its projected points (0.8)
    np.testing.assert_allclose(d[res.projected], fusion.drivable_evidence_log_odds * 0.25 * 0.8, rtol=1e-6)
    # a depth-backed drivable cell gets full evidence
    assert d.max() == pytest.approx(fusion.drivable_evidence_log_odds * 0.8, rel=1e-6)
    # obstacle layer: only depth
    depth_only = _mapper(fusion)
    depth_only.update(xyz, labels, conf, MOUNT)
    assert depth_only.fusion is not None
    np.testing.assert_array_equal(mapper.fusion.obstacle_log_odds, depth_only.fusion.obstacle_log_odds)


def test_config_validation() -> None:
    for bad in ({"max_range_m": 0.0}, {"max_range_m": math.inf}, {"min_angle_deg": 90.0}, {"weight": 1.0},
                {"weight": 0.0}):  # fmt: skip
        with pytest.raises(ValueError):
            GroundProjectionConfig(**bad)


def test_ground_strips_of_far_pixels_leave_no_gap_between_rows() -> None:
    from seg_perception.core.mapping.grid import GridGeometry

    rays = cloud_rays(K, 2)  # organized (45, 80, 3): one cloud row = 2 image rows = 0.01 in y / z
    n = rays.shape[0] * rays.shape[1]
    no_depth = np.full((n, 3), np.nan, np.float32)
    labels = np.full(n, ROAD, np.uint8)
    cfg = GroundProjectionConfig(max_range_m=30.0, min_angle_deg=0.0)
    geo = GridGeometry.from_config(CostmapConfig(resolution=0.2, width=80.0, height=80.0))
    lane = geo.cell_indices(np.array([0.0]), np.array([-0.1]))[0][0]  # the grid row of y = -0.1 m

    def lane_columns(spacing_m: float) -> set[int]:
        pts, _ = project_pixels(no_depth, labels, None, rays, MOUNT, GroundPlane.from_height(0.0), LUT, cfg,
                                spacing_m=spacing_m)  # fmt: skip
        np.testing.assert_allclose(pts[:, 2], 0.0, atol=1e-4)  # every sample on the ground
        assert np.hypot(pts[:, 0], pts[:, 1]).max() <= 30.0 + 1e-4
        rows, cols, _ = geo.cell_indices(pts[:, 0], pts[:, 1])
        return set(cols[rows == lane].tolist())

    # x = 6-29.8 m ahead: columns of cells centred there (64 samples of at most 0.2 m reach 12.8 m per pixel)
    wanted = set(range(geo.cell_indices(np.array([6.0]), np.array([0.0]))[1][0],
                       geo.cell_indices(np.array([29.8]), np.array([0.0]))[1][0] + 1))  # fmt: skip
    centres_only = lane_columns(0.0)
    strips = lane_columns(0.1)
    assert wanted <= strips  # a pixel's strip reaches its neighbours' (at 29 m one cloud row spans 6 m of road)
    assert len(wanted - centres_only) > len(wanted) // 2  # centre rays alone leave most far cells unseen
    assert centres_only <= strips


def test_boundary_margin_drops_road_just_below_and_beside_another_class() -> None:
    # a level camera 1.4 m up over flat road; a "car" (obstacle class) covers rows 50-59, columns 60-99
    labels = np.full((K.height, K.width), ROAD, np.uint8)
    labels[50:60, 60:100] = 1
    no_depth = np.full((K.height, K.width, 3), np.nan, np.float32)
    rays = cloud_rays(K, 1)

    def projected(cfg: GroundProjectionConfig) -> np.ndarray:
        _, src = project_pixels(no_depth.reshape(-1, 3), labels.reshape(-1), None, rays, MOUNT,
                                GroundPlane.from_height(0.0), LUT, cfg)  # fmt: skip
        out = np.zeros(labels.shape, bool)
        out.reshape(-1)[src] = True
        return out

    road_below_horizon = (labels == ROAD) & (np.arange(K.height)[:, None] > K.cy)
    off = projected(GroundProjectionConfig(max_range_m=1000.0, min_angle_deg=0.0, obstacle_clearance_m=0.0,
                                         side_margin_m=0.0))
    assert (off == road_below_horizon).all()  # no margin: every road pixel below the horizon
    on = projected(GroundProjectionConfig(max_range_m=1000.0, min_angle_deg=0.0))  # defaults: 0.5 m, 0.05 m
    assert on[31:50].all()  # above the car (road beyond it) and beside it far enough: kept
    # row 70 sees the ground at z = 1.4 * 200 / 40.5 = 6.9 m, where 0.5 m spans 14.5 rows: under the car
    assert not on[60:71, 60:100].any()
    # row 85: z = 5.0 m, 0.5 m spans 20 rows (rounded up to 22): 26 rows below the car is road in front of it
    assert on[85:, 60:100].all()
    # beside: at row 70, 0.05 m spans 1.4 columns (2); 5 columns away is kept
    assert not on[70, 58:60].any() and not on[70, 100:102].any() and on[70, 55] and on[70, 104]
