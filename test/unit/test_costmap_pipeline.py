"""core.mapping.pipeline.CostmapPipeline: points without depth are dropped first, and the result keeps every kept
point's label and confidence beside its position and role (what obstacle_points and the voxel map read)."""

from __future__ import annotations

import numpy as np

from seg_perception.core.geometry.cloud import finite_points
from seg_perception.core.geometry.transforms import camera_to_base
from seg_perception.core.mapping.grid import CostmapConfig
from seg_perception.core.mapping.ontology import PointRole, load_ontology
from seg_perception.core.mapping.pipeline import ClassRules, CostmapPipeline
from seg_perception.core.segmentation.registry import get_model_spec

MOUNT = camera_to_base((0.0, 0.0, 1.4), (0.0, 0.0, 0.0))  # level camera 1.4 m up: optical -> base_link


def _mapper() -> CostmapPipeline:
    spec = get_model_spec("espnetv2_city")
    cfg = CostmapConfig(resolution=0.1, width=20.0, height=20.0)
    mapper = CostmapPipeline(cfg)
    mapper.rules = ClassRules.from_ontology(load_ontology("cityscapes", spec.categories), spec.categories, cfg)
    return mapper


def _organized_cloud() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 40x60 organized cloud in the optical frame (x right, y down, z forward) of a level camera 1.4 m up: road
    (class 0) on the ground 2-8 m ahead, a car (class 13) standing 5 m ahead, 30 % of the pixels without depth."""
    rng = np.random.default_rng(3)
    h, w = 40, 60
    z = rng.uniform(2.0, 8.0, (h, w)).astype(np.float32)
    x = rng.uniform(-3.0, 3.0, (h, w)).astype(np.float32)
    y = np.full((h, w), 1.4, np.float32)  # on the ground
    labels = np.zeros((h, w), np.uint8)
    car = (slice(0, 10), slice(20, 40))
    labels[car] = 13
    y[car] = rng.uniform(0.2, 1.0, (10, 20))  # 0.4-1.2 m above the ground
    z[car] = 5.0
    xyz = np.stack([x, y, z], axis=-1)
    xyz[rng.random((h, w)) < 0.3] = np.nan
    conf = rng.uniform(0.5, 1.0, (h, w)).astype(np.float32)
    return xyz, labels, conf


def test_finite_points_keeps_the_measured_points_in_order() -> None:
    xyz, labels, conf = _organized_cloud()
    pts, lab, cf = finite_points(xyz, labels, conf)
    ok = np.isfinite(xyz.reshape(-1, 3)).all(axis=1)
    assert pts.shape == (int(ok.sum()), 3) and 0.6 < ok.mean() < 0.8
    np.testing.assert_array_equal(pts, xyz.reshape(-1, 3)[ok])
    np.testing.assert_array_equal(lab, labels.reshape(-1)[ok])
    assert cf is not None
    np.testing.assert_array_equal(cf, conf.reshape(-1)[ok])


def test_points_without_depth_change_nothing_and_results_stay_aligned() -> None:
    xyz, labels, conf = _organized_cloud()
    ok = np.isfinite(xyz.reshape(-1, 3)).all(axis=1)
    with_holes = _mapper().update(xyz, labels, conf, MOUNT)
    measured_only = _mapper().update(xyz.reshape(-1, 3)[ok], labels.reshape(-1)[ok], conf.reshape(-1)[ok], MOUNT)
    np.testing.assert_array_equal(with_holes.drivable_occupancy, measured_only.drivable_occupancy)
    np.testing.assert_array_equal(with_holes.obstacle_occupancy, measured_only.obstacle_occupancy)
    n = int(ok.sum())
    assert with_holes.points.shape == (n, 3) and with_holes.roles.shape == (n,) and with_holes.labels.shape == (n,)
    assert with_holes.confidence is not None and with_holes.confidence.shape == (n,)
    obstacle = with_holes.roles == PointRole.OBSTACLE
    drivable = with_holes.roles == PointRole.DRIVABLE
    # roles follow the geometry built above: car points are 0.4-1.2 m up, road points on the ground
    assert obstacle.sum() > 100 and set(np.unique(with_holes.labels[obstacle]).tolist()) == {13}
    assert drivable.sum() > 1000 and set(np.unique(with_holes.labels[drivable]).tolist()) == {0}
    np.testing.assert_allclose(with_holes.points[obstacle, 0], 5.0, atol=1e-5)  # 5 m ahead in base_link
    assert (with_holes.obstacle_occupancy == 100).any() and (with_holes.drivable_occupancy == 0).any()
