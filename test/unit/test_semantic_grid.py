"""The semantic grid (``core/mapping/semantic.py``) on real frames: KITTI through ESPNetv2 Cityscapes (single frame
with ground projection, and fused) and the 7-Scenes kitchen through ESPNetv2 PASCAL (fused, real poses), mapped by
the costmap core as ``process`` and the node do (``process.OfflineMapper``). Each cell's class agrees with the
drivable / obstacle grids, ids are those of the model's LabelInfo, unknown is -1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seg_perception.core.config import from_params
from seg_perception.core.mapping.grid import GridGeometry
from seg_perception.core.mapping.ontology import PointRole, Role
from seg_perception.core.mapping.semantic import RollingSemanticVotes, cell_votes, semantic_occupancy
from seg_perception.core.segmentation.pipeline import SegmentationConfig, SegmentationPipeline
from seg_perception.datasets import open_sequence
from seg_perception.resources import config_path
from seg_perception.ros import convert
from seg_perception.tools.bag_from_frames import write_bag
from seg_perception.tools.common import load_node_params
from seg_perception.tools.process import FrameStats, OfflineMapper, segmented_frames
from seg_perception.workspace import DEFAULT_REMAPS


def _map(bag: Path, files: list[Path], overrides: dict, n: int) -> tuple:  # type: ignore[type-arg]
    """Segment ``n`` frames of ``bag`` and map them; returns (last GridResult, mapper, categories)."""
    pipe = SegmentationPipeline(from_params(SegmentationConfig, load_node_params(files, "segmentation", overrides)))
    mapper = OfflineMapper(bag, load_node_params(files, "costmap", overrides), pipe.spec)
    grids = None
    for frame, _, cloud in segmented_frames(bag, pipe, dict(DEFAULT_REMAPS), FrameStats(), n, False):
        h = frame.image.header
        res = mapper.update(cloud, convert.stamp_to_ns(h.stamp), h.frame_id, frame.k)
        assert not isinstance(res, str), res
        grids = res[0]
    assert grids is not None
    return grids, mapper, pipe.spec.categories


def _check(grids, class_roles: np.ndarray, n_classes: int, ground_roles: tuple[Role, ...],  # noqa: ANN001
           obstacle_roles: tuple[Role, ...] = (Role.OBSTACLE,)) -> dict[str, int]:  # fmt: skip
    sem, drv, obs = grids.semantic, grids.drivable_occupancy, grids.obstacle_occupancy
    assert sem is not None and sem.dtype == np.int8 and sem.shape == drv.shape
    assert ((sem == -1) | ((sem >= 0) & (sem < n_classes))).all()  # ids of the LabelInfo, or unknown
    assert (sem[drv == -1] == -1).all()  # unknown stays unknown
    roles = class_roles[np.maximum(sem, 0)]
    drivable, lethal = drv == 0, obs == 100
    assert (sem[drivable] >= 0).all() and np.isin(roles[drivable], ground_roles).all()
    known_obstacle = lethal & (sem >= 0)
    assert np.isin(roles[known_obstacle], obstacle_roles).all()
    return {"drivable": int(drivable.sum()), "obstacle": int(lethal.sum()), "obstacle_known": int(known_obstacle.sum())}


@pytest.fixture(scope="module")
def kitti_bag(tmp_path_factory, kitti_dir):  # noqa: ANN001, ANN201
    bag = tmp_path_factory.mktemp("kitti") / "bag"
    write_bag(open_sequence(kitti_dir), bag, limit=3, progress=False)
    return bag


@pytest.mark.parametrize("fusion", [False, True])
def test_kitti_cells_carry_the_class_behind_their_verdict(kitti_bag, model_dir, fusion: bool) -> None:  # noqa: ANN001
    params = {"weights": str(model_dir), "device": "cpu", "global_frame": "", "use_fusion": fusion}
    grids, mapper, cats = _map(kitti_bag, [config_path("seg_perception.yaml")], params, 3)
    roles = mapper.mapper.rules.roles
    counts = _check(grids, roles, len(cats), (Role.DRIVABLE,))
    # the road ahead is drivable (with projection: hundreds of cells); the cars around are obstacles
    assert counts["drivable"] > 500 and counts["obstacle_known"] > 100, counts
    assert counts["obstacle_known"] >= 0.95 * counts["obstacle"], counts
    sem = grids.semantic
    assert (sem[grids.drivable_occupancy == 0] == cats.index("road")).all()
    assert np.isin([cats.index("car"), cats.index("truck")], sem[grids.obstacle_occupancy == 100]).all()
    if not fusion:  # cells drivable by projection alone carry the projected pixels' class
        assert grids.projected is not None and grids.projected.sum() > 300
        assert (sem[grids.projected] == cats.index("road")).all()


def test_kitchen_fused_floor_and_furniture(tmp_path, kitchen_dir, model_dir) -> None:  # noqa: ANN001
    bag = tmp_path / "bag"
    write_bag(open_sequence(kitchen_dir), bag, limit=4, progress=False)
    files = [config_path("seg_perception.yaml"), config_path("demo_kitchen.yaml")]
    params = {"weights": str(model_dir), "device": "cpu", "input_width": 256, "input_height": 192}
    grids, mapper, cats = _map(bag, files, params, 4)
    assert mapper.mapper.fusion is not None  # the kitchen demo fuses with the real poses
    # VOC has no drivable class: "background" (ground_if_flat) is the floor where flat, walls and cupboards above
    ground_if_flat = (Role.DRIVABLE, Role.GROUND_IF_FLAT)
    counts = _check(grids, mapper.mapper.rules.roles, len(cats), ground_if_flat, (Role.OBSTACLE, Role.GROUND_IF_FLAT))
    assert counts["drivable"] > 50 and counts["obstacle_known"] > 20, counts
    assert (grids.semantic[grids.drivable_occupancy == 0] == cats.index("background")).all()
    obstacle_classes = set(np.unique(grids.semantic[grids.obstacle_occupancy == 100]).tolist()) - {-1}
    assert obstacle_classes - {cats.index("background")}, obstacle_classes  # furniture classes too


def test_votes_keep_one_class_per_role_and_cell() -> None:
    geo = GridGeometry(origin_x=0.0, origin_y=0.0, resolution=1.0, width_cells=2, height_cells=1)
    pts = np.array([[0.5, 0.5, 0], [0.5, 0.5, 0], [0.5, 0.5, 0], [1.5, 0.5, 0], [1.5, 0.5, 0]], np.float32)
    labels = np.array([3, 4, 4, 0, 7])
    roles = np.array([PointRole.OBSTACLE] * 3 + [PointRole.DRIVABLE, PointRole.OBSTACLE], np.uint8)
    class_roles = np.full(8, Role.OBSTACLE, np.uint8)
    class_roles[0] = Role.DRIVABLE
    cls, score, count = cell_votes(geo, pts, labels, roles, np.array([1.0, 0.4, 0.4, 1.0, 1.0]), class_roles)
    assert cls[0].tolist() == [[3, 7]] and score[0].tolist() == [[1.0, 1.0]]  # 1.0 > 0.4 + 0.4
    assert cls[1].tolist() == [[-1, 0]] and count[0].tolist() == [[3, 1]]
    # an obstacle point of a drivable class does not name the obstacle
    cls2, _, count2 = cell_votes(geo, pts[3:4], np.array([0]), np.array([PointRole.OBSTACLE], np.uint8), None,
                                 class_roles)  # fmt: skip
    assert cls2[0].tolist() == [[-1, -1]] and count2[0].tolist() == [[0, 1]]
    occupied = count[0] >= 1
    cost = np.array([[254, 0]], np.uint8)  # cell 0 lethal, cell 1 drivable
    assert semantic_occupancy(cls, cost, occupied).tolist() == [[3, 0]]
    big = cls.copy()
    big[0, 0, 0] = 200  # beyond int8: unknown
    assert semantic_occupancy(big, cost, occupied).tolist() == [[-1, 0]]
    fused = RollingSemanticVotes((1, 2))
    for _ in range(3):
        fused.update(cls, score)
    one = np.full_like(cls, -1)
    one[0, 0, 0] = 5
    fused.update(one, np.ones_like(score))  # one vote against three: class 3 stays
    assert fused.cls[0, 0, 0] == 3
    for _ in range(3):
        fused.update(one, np.ones_like(score))
    assert fused.cls[0, 0, 0] == 5  # the majority changed
    fused.shift(1, 0)
    assert fused.cls[0, 0].tolist() == [7, -1]
