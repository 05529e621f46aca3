"""``seg-perception process`` and the launched nodes give the same outputs on the same real kitchen bag.

Both run the same functions (assembler, pipeline, tf2 + CloudPoser, CostmapPipeline, ros/outputs), so for every
frame both produced, labels and grids must agree. Grids are single-frame here: a fused grid depends on which frames
the live node had time for (it always takes the newest), which no offline run can know.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from seg_perception.datasets import open_sequence
from seg_perception.resources import config_path
from seg_perception.ros import convert
from seg_perception.tools.bag_from_frames import write_bag
from seg_perception.tools.demo import _read_bag, run_demo
from seg_perception.tools.process import process_bag

pytestmark = pytest.mark.e2e

NS = "/seg_perception"
OVERRIDES = {"input_width": 256, "input_height": 192, "use_fusion": False, "voxel_resolution": 0.0}


def _by_stamp(msgs: list) -> dict[int, object]:
    return {convert.stamp_to_ns(m.header.stamp): m for _, m in msgs}


def test_process_and_launched_nodes_agree_on_the_kitchen_bag(tmp_path, kitchen_dir, model_dir) -> None:  # noqa: ANN001
    bag = tmp_path / "bag"
    write_bag(open_sequence(kitchen_dir), bag, limit=20, progress=False)
    files = [config_path("seg_perception.yaml"), config_path("demo_kitchen.yaml")]
    seg = {k: v for k, v in OVERRIDES.items() if k.startswith("input")} | {"weights": str(model_dir)}
    cost = {k: v for k, v in OVERRIDES.items() if not k.startswith("input")}
    process_bag(bag, tmp_path / "offline", files, seg_overrides=seg, costmap_overrides=cost, render_every=0,
                progress=False)  # fmt: skip
    run_demo(kitchen_dir, tmp_path / "online", weights=str(model_dir), rate=0.05, input_bag=bag, params_files=files,
             overrides=[f"{k}:={v}" for k, v in OVERRIDES.items()], domain_id=int(os.environ["ROS_DOMAIN_ID"]) + 56,
             render_every=100, quiet_s=5.0)  # fmt: skip
    offline = _read_bag(tmp_path / "offline" / "bag")
    online = _read_bag(tmp_path / "online" / "output_bag")
    for topic in ("labels", "confidence", "semantic_points", "drivable_grid", "obstacle_grid", "obstacle_points",
                  "ground_plane", "semantic_grid", "semantic_grid/label_info"):  # fmt: skip
        assert offline.get(f"{NS}/{topic}"), f"process wrote no {topic}"
    compared = 0
    for topic in ("labels", "drivable_grid", "obstacle_grid", "semantic_grid"):
        off, on = _by_stamp(offline[f"{NS}/{topic}"]), _by_stamp(online[f"{NS}/{topic}"])
        common = sorted(set(off) & set(on))
        assert len(common) >= 5, (topic, len(off), len(on))
        for t in common:
            a, b = off[t], on[t]
            assert a.header.frame_id == b.header.frame_id
            if topic == "labels":
                np.testing.assert_array_equal(convert.image_to_array(a), convert.image_to_array(b))
            else:
                assert (a.info.width, a.info.height, a.info.origin.position.x, a.info.origin.position.y) == (
                    b.info.width, b.info.height, b.info.origin.position.x, b.info.origin.position.y)  # fmt: skip
                agree = float((convert.grid_from_msg(a) == convert.grid_from_msg(b)).mean())
                assert agree >= 0.999, (topic, t, agree)
            compared += 1
    assert compared >= 20
    names = [convert.label_info_pairs(m) for t in ("label_info", "semantic_grid/label_info")
             for b in (offline, online) for _, m in b[f"{NS}/{t}"]]  # fmt: skip
    assert len(names) >= 4 and all(n == names[0] for n in names)  # the ids of semantic_grid, both ways
