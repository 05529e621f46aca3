"""The kitchen demo route through TF gives the fused grids of the 7-Scenes ground-truth poses applied directly.

TF route: ``bag-from-frames`` writes the camera mount on /tf_static and odom -> base_link on /tf; ``process`` feeds
them into a tf2 buffer and ``CloudPoser`` chains them at each cloud's stamp. Oracle (the former Odometry route): the
dataset's camera-to-world pose re-aligned on the floor, T_odom_cam = T_odom_world @ T_world_cam, composed in numpy,
the robot base below it on the nominal hand-held mount (1.4 m up, pitched 0.45 rad down, the values the kitchen
config carried as camera_translation / camera_rpy), the same clouds fused by a fresh ``CostmapPipeline``.
"""

from __future__ import annotations

import numpy as np
import pytest

from seg_perception.core.geometry.cloud import cloud_arrays
from seg_perception.core.geometry.transforms import camera_to_base
from seg_perception.core.mapping.ontology import load_ontology
from seg_perception.core.mapping.pipeline import ClassRules, build_costmap_pipeline
from seg_perception.core.segmentation.registry import get_model_spec
from seg_perception.datasets import open_sequence
from seg_perception.resources import config_path
from seg_perception.ros import convert
from seg_perception.tools.bag_from_frames import gravity_aligned_odom, write_bag
from seg_perception.tools.common import load_node_params
from seg_perception.tools.demo import _read_bag
from seg_perception.tools.process import process_bag

FILES = [config_path("seg_perception.yaml"), config_path("demo_kitchen.yaml")]
NS = "/seg_perception"
FRAMES = 40


def test_tf_route_fused_grids_match_the_ground_truth_poses(tmp_path, kitchen_dir, model_dir) -> None:  # noqa: ANN001
    seq = open_sequence(kitchen_dir)
    bag = tmp_path / "bag"
    write_bag(seq, bag, limit=FRAMES, progress=False)
    seg = {"weights": str(model_dir), "device": "cpu", "input_width": 256, "input_height": 192}
    summary = process_bag(bag, tmp_path / "out", FILES, seg, None, render_every=0, progress=False)
    assert summary["frames_out"] == FRAMES and summary["drops"] == {}, summary
    out = _read_bag(tmp_path / "out" / "bag")

    # the oracle: ground-truth poses straight from the dataset's pose files, composed in numpy
    t_odom_world = gravity_aligned_odom(seq)
    t_base_cam = camera_to_base((0.0, 0.0, 1.4), (0.0, 0.45, 0.0))
    poses = {seq[i].stamp_ns: t_odom_world @ seq[i].pose for i in range(FRAMES)}
    spec = get_model_spec("espnetv2_pascal")
    mapper, _ = build_costmap_pipeline(load_node_params(FILES, "costmap"), spec.num_classes)
    mapper.rules = ClassRules.from_ontology(load_ontology(spec.ontology, spec.categories), spec.categories, mapper.cfg)
    grids = {name: {_stamp(m): m for _, m in out[f"{NS}/{name}"]} for name in ("drivable_grid", "obstacle_grid")}
    agreement = {"drivable_grid": [], "obstacle_grid": []}
    for _, cloud_msg in out[f"{NS}/semantic_points"]:
        stamp = _stamp(cloud_msg)
        t_cam = poses[stamp]
        t_base = t_cam @ np.linalg.inv(t_base_cam)
        want = mapper.update(*cloud_arrays(convert.msg_to_cloud(cloud_msg)), t_cam, (t_base[0, 3], t_base[1, 3]),
                             t_base[2, 3] + mapper.cfg.ground_height_m, stamp * 1e-9)  # fmt: skip
        for name, occ in (("drivable_grid", want.drivable_occupancy), ("obstacle_grid", want.obstacle_occupancy)):
            got = grids[name][stamp]
            assert got.header.frame_id == "odom"
            origin = (got.info.origin.position.x, got.info.origin.position.y)
            assert origin == pytest.approx((want.geometry.origin_x, want.geometry.origin_y), abs=1e-9)
            agreement[name].append(float((convert.grid_from_msg(got) == occ).mean()))
    for name, values in agreement.items():
        assert len(values) == FRAMES and min(values) >= 0.99, (name, min(values), float(np.mean(values)))
    last = convert.grid_from_msg(grids["obstacle_grid"][_stamp(out[f"{NS}/semantic_points"][-1][1])])
    assert (last == 100).sum() > 100 and (last == 0).sum() > 100  # real content: table, chairs; the floor
    print("TF route vs ground truth, cell agreement min/mean: "
          + ", ".join(f"{n} {min(v):.5f}/{np.mean(v):.5f}" for n, v in agreement.items()))  # fmt: skip


def _stamp(msg: object) -> int:
    return convert.stamp_to_ns(msg.header.stamp)  # type: ignore[attr-defined]
