"""Unit tests for seg_perception.core.mapping.voxel_map: histogram voting, merging, crop and the voxel budget."""

from __future__ import annotations

import numpy as np
import pytest

from seg_perception.core.geometry.cloud import CLOUD_DTYPE, unpack_rgb
from seg_perception.core.geometry.transforms import camera_to_base
from seg_perception.core.mapping.grid import CostmapConfig
from seg_perception.core.mapping.ontology import load_ontology
from seg_perception.core.mapping.pipeline import ClassRules, CostmapPipeline
from seg_perception.core.mapping.voxel_map import SemanticVoxelMap
from seg_perception.core.segmentation.registry import get_model_spec

ROAD, CAR = 0, 1
PALETTE = np.array([[128, 64, 128], [0, 0, 142], [70, 70, 70]], np.uint8)


def test_histogram_voting_across_inserts() -> None:
    """3 votes car vs 1 vote road in one voxel (over two frames) -> car with confidence 0.75."""
    m = SemanticVoxelMap(0.1, num_classes=3)
    assert m.insert(np.array([[0.01, 0.02, 0.03], [0.05, 0.05, 0.05]]), np.array([CAR, ROAD]), None) == 2
    assert m.insert(np.array([[0.09, 0.01, 0.09], [0.02, 0.08, 0.01]]), np.array([CAR, CAR]), None) == 2
    assert len(m) == 1
    np.testing.assert_allclose(m.histograms, [[1.0, 3.0, 0.0]])
    cloud = m.to_cloud(PALETTE)
    assert cloud.dtype == CLOUD_DTYPE and cloud.shape == (1,)
    assert cloud["label"][0] == CAR and cloud["confidence"][0] == pytest.approx(0.75)
    np.testing.assert_allclose([cloud["x"][0], cloud["y"][0], cloud["z"][0]], [0.05, 0.05, 0.05], atol=1e-6)
    np.testing.assert_array_equal(unpack_rgb(cloud["rgb"])[0], PALETTE[CAR])


def test_confidence_weights_and_invalid_points() -> None:
    m = SemanticVoxelMap(0.5, num_classes=3)
    pts = np.array([[0.1, 0.1, 0.1]] * 3 + [[np.nan, 0, 0], [0.1, 0.1, 0.1], [0.1, 0.1, 0.1]])
    labels = np.array([ROAD, ROAD, CAR, CAR, 255, CAR])
    conf = np.array([0.9, 0.8, 0.6, 1.0, 1.0, np.nan])
    assert m.insert(pts, labels, conf) == 3  # NaN point, ignore label, NaN confidence dropped
    np.testing.assert_allclose(m.histograms, [[1.7, 0.6, 0.0]], rtol=1e-6)
    lab, c = m.labels_and_confidence()
    assert lab.tolist() == [ROAD] and c[0] == pytest.approx(1.7 / 2.3)


def test_negative_coordinates_and_merge_order() -> None:
    """Voxels on both sides of 0 are distinct (floor, not truncation); new keys merge into sorted storage."""
    m = SemanticVoxelMap(1.0, num_classes=3)
    m.insert(np.array([[-0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]), np.array([ROAD, CAR]))
    m.insert(np.array([[-1.5, 0.5, 0.5], [0.5, 0.5, 0.5], [5.5, -3.5, 2.5]]), np.array([CAR, CAR, ROAD]))
    assert len(m) == 4 and np.all(np.diff(m.keys) > 0)
    cloud = m.to_cloud(PALETTE)
    got = {(float(p["x"]), float(p["y"]), float(p["z"])): (int(p["label"]), float(p["confidence"])) for p in cloud}
    assert got == {(-1.5, 0.5, 0.5): (CAR, 1.0), (-0.5, 0.5, 0.5): (ROAD, 1.0), (0.5, 0.5, 0.5): (CAR, 1.0),
                   (5.5, -3.5, 2.5): (ROAD, 1.0)}
    np.testing.assert_allclose(m.histograms[np.argmax(m.histograms[:, CAR])], [0, 2, 0])


def test_matches_bruteforce() -> None:
    rng = np.random.default_rng(0)
    m = SemanticVoxelMap(0.25, num_classes=3)
    ref: dict[tuple[int, int, int], np.ndarray] = {}
    for _ in range(4):
        pts = rng.uniform(-1, 1, size=(500, 3))
        lab = rng.integers(0, 3, 500)
        w = rng.uniform(0.1, 1, 500)
        m.insert(pts, lab, w)
        for p, c, wi in zip(pts, lab, w, strict=True):
            k = tuple(np.floor(p / 0.25).astype(int).tolist())
            ref.setdefault(k, np.zeros(3))[c] += wi
    assert len(m) == len(ref)
    centers = m.centers()
    for center, hist in zip(centers, m.histograms, strict=True):
        k = tuple(np.floor(center / 0.25).astype(int).tolist())
        np.testing.assert_allclose(hist, ref[k], rtol=1e-5)


def test_crop() -> None:
    m = SemanticVoxelMap(1.0, num_classes=3)
    m.insert(np.array([[0.5, 0.5, 0.5], [3.5, 0.5, 0.5], [10.5, 0.5, 0.5]]), np.array([ROAD, CAR, CAR]))
    assert m.crop((0.5, 0.5, 0.5), 3.0) == 1  # 10 m away dropped; 3 m away kept (<= radius)
    np.testing.assert_allclose(m.centers()[:, 0], [0.5, 3.5])
    assert m.crop((0.0, 0.0, 0.0), 0.0) == 2 and len(m) == 0
    with pytest.raises(ValueError, match="radius_m must be >= 0"):
        m.crop((0, 0, 0), -1.0)


def test_max_voxels_drops_oldest_then_farthest() -> None:
    m = SemanticVoxelMap(1.0, num_classes=3, max_voxels=3)
    m.insert(np.array([[0.5, 0.5, 0.5], [20.5, 0.5, 0.5]]), np.array([ROAD, ROAD]))  # insert 1
    m.insert(np.array([[1.5, 0.5, 0.5]]), np.array([CAR]))  # insert 2
    m.insert(np.array([[0.5, 0.5, 0.5], [2.5, 0.5, 0.5]]), np.array([CAR, CAR]))  # insert 3: 4 voxels > 3
    # Oldest is (20.5, ...), last touched by insert 1; (0.5, ...) was refreshed by insert 3.
    np.testing.assert_allclose(sorted(m.centers()[:, 0]), [0.5, 1.5, 2.5])
    m2 = SemanticVoxelMap(1.0, num_classes=3, max_voxels=2)
    m2.insert(np.array([[0.5, 0.5, 0.5], [9.5, 0.5, 0.5], [1.5, 0.5, 0.5]]), np.array([ROAD, ROAD, ROAD]))
    np.testing.assert_allclose(sorted(m2.centers()[:, 0]), [0.5, 1.5])  # same age: the farthest from the batch goes


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [(dict(resolution_m=0.0, num_classes=3), "resolution_m"), (dict(resolution_m=0.1, num_classes=0), "num_classes"),
     (dict(resolution_m=0.1, num_classes=3, max_voxels=0), "max_voxels")],
    ids=["resolution", "classes", "max-voxels"],
)
def test_constructor_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SemanticVoxelMap(**kwargs)


def test_bad_inputs() -> None:
    m = SemanticVoxelMap(0.1, num_classes=3)
    with pytest.raises(ValueError, match="labels has 1 values but points has 2 points"):
        m.insert(np.zeros((2, 3)), np.zeros(1, np.int64))
    with pytest.raises(TypeError, match="integer class ids"):
        m.insert(np.zeros((1, 3)), np.zeros(1, np.float32))
    with pytest.raises(ValueError, match="within"):
        m.insert(np.array([[1e6, 0, 0]]), np.zeros(1, np.int64))
    with pytest.raises(ValueError, match=r"palette must be \(3, 3\)"):
        m.to_cloud(np.zeros((2, 3), np.uint8))
    assert m.insert(np.zeros((0, 3)), np.zeros(0, np.int64)) == 0 and m.to_cloud(PALETTE).shape == (0,)


def test_the_mappers_voxel_histogram_is_sized_by_the_class_count() -> None:
    """21 VOC classes take 21 float32 per voxel, not 256 (at the default 1e6 voxels: 84 MB instead of 1 GB)."""
    spec = get_model_spec("espnetv2_pascal")
    cfg = CostmapConfig()
    mapper = CostmapPipeline(cfg, voxel_resolution_m=0.1)
    mapper.rules = ClassRules.from_ontology(load_ontology("voc", spec.categories), spec.categories, cfg)
    rng = np.random.default_rng(0)
    xyz = np.stack([rng.uniform(-1, 1, 500), rng.uniform(-0.5, 0.5, 500), rng.uniform(1, 4, 500)], 1).astype("f4")
    mapper.update(xyz, rng.integers(0, 21, 500), None, camera_to_base((0.0, 0.0, 1.4), (0.0, 0.3, 0.0)))
    assert mapper.voxels is not None and len(mapper.voxels) > 10
    hist = mapper.voxels.histograms
    assert hist.shape[1] == 21 and hist.dtype == np.float32
    assert hist.nbytes / len(mapper.voxels) == 21 * 4
