"""Offline tools on real kitchen frames (no DDS): process with TF (odom -> base_link from the poses) + fusion, and
the stability measurement."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from seg_perception.datasets import open_sequence
from seg_perception.resources import config_path
from seg_perception.ros.convert import stamp_to_ns
from seg_perception.tools.bag_from_frames import write_bag
from seg_perception.tools.process import process_bag
from seg_perception.tools.stability import measure

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bag_edits import copy_without  # noqa: E402  (test/bag_edits.py)

FILES = [config_path("seg_perception.yaml"), config_path("demo_kitchen.yaml")]


@pytest.fixture(scope="module")
def kitchen_bag(tmp_path_factory, kitchen_dir):  # noqa: ANN001, ANN201
    bag = tmp_path_factory.mktemp("kitchen") / "bag"
    write_bag(open_sequence(kitchen_dir), bag, limit=8, progress=False)
    return bag


def test_process_fuses_with_tf_into_odom_grids(tmp_path, kitchen_bag, model_dir) -> None:  # noqa: ANN001
    from seg_perception.ros import convert
    from seg_perception.tools.demo import _read_bag

    seg = {"weights": str(model_dir), "device": "cpu", "input_width": 256, "input_height": 192}
    s = process_bag(kitchen_bag, tmp_path / "out", FILES, seg, None, render_every=4, progress=False)
    assert s["frames_in"] == 8 and s["frames_out"] == 8 and s["fusion"] is True and s["drops"] == {}
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["frames_out"] == 8
    assert len(list((tmp_path / "out" / "renders").glob("*.png"))) == 2
    msgs = _read_bag(tmp_path / "out" / "bag")
    grid = msgs["/seg_perception/obstacle_grid"][-1][1]
    assert grid.header.frame_id == "odom" and grid.info.resolution == pytest.approx(0.05)
    occ = convert.grid_from_msg(grid)
    assert (occ == 100).sum() > 50 and (occ == 0).sum() > 50
    fused = convert.msg_to_cloud(msgs["/seg_perception/fused_points"][-1][1])
    assert fused.size > 1000 and np.isfinite(fused["z"]).all()


def test_fusion_reduces_semantic_cell_flicker(kitchen_bag, model_dir) -> None:  # noqa: ANN001
    res = measure(kitchen_bag, FILES, {"weights": str(model_dir), "device": "cpu", "input_width": 256,
                                       "input_height": 192})  # fmt: skip
    f = res["flicker_mean"]
    assert res["frames"] == 8
    assert 0.0 <= f["cells_fused"] < f["cells_single"]  # accumulated class histograms change less
    assert f["obstacle_fused"] is not None and f["drivable_single"] is not None
    assert res["half_agreement_fused"]["obstacle"] > 0.8  # both halves see the same table and counters
    assert res["fused_cells_ever_lethal"] > 0


def test_the_same_bag_processed_twice_gives_bit_identical_output(tmp_path, kitchen_bag, model_dir) -> None:  # noqa: ANN001
    """Deterministic end to end: seeded RANSAC, zeroed CDR padding (rclpy leaves it uninitialised)."""
    import hashlib

    seg = {"weights": str(model_dir), "device": "cpu", "input_width": 256, "input_height": 192}
    digests = []
    for run in ("a", "b"):
        process_bag(kitchen_bag, tmp_path / run, FILES, seg, None, render_every=0, progress=False)
        digests.append(hashlib.sha256((tmp_path / run / "bag" / "bag.mcap").read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_process_writes_the_nodes_diagnostics_with_the_summary_drops(tmp_path, kitchen_bag, model_dir) -> None:  # noqa: ANN001
    """/diagnostics in the output bag: per node its ``frames`` status as the node publishes it (the same function),
    every ``diagnostic_updater.period`` of bag time and at the end; the drops per reason are the summary's."""
    from seg_perception.ros.diagnostics import stats_from_statuses
    from seg_perception.tools.demo import _read_bag

    # two colour frames lose their depth (segmentation drops); /tf ends early (costmap drops: no transform)
    bag = copy_without(kitchen_bag, tmp_path / "holes", {"/camera/depth/image_raw": {2, 5}, "/tf": {4, 5, 6, 7}})
    period = {"diagnostic_updater.period": 0.1}  # [s] of bag time; the kitchen frames are 33 ms apart
    seg = {"weights": str(model_dir), "device": "cpu", "input_width": 256, "input_height": 192, **period}
    cost = {**period, "transform_tolerance_s": 0.05}  # [s]: clouds 0.1 s after the last /tf are dropped
    s = process_bag(bag, tmp_path / "out", FILES, seg, cost, render_every=0, progress=False)
    arrays = _read_bag(tmp_path / "out" / "bag")["/diagnostics"]
    final = {}
    for node in ("segmentation", "costmap"):
        mine = [(t, a) for t, a in arrays if a.status[0].name == f"{node}: frames"]
        assert all(len(a.status) == 1 and a.status[0].hardware_id == f"/seg_perception/{node}" for _, a in mine)
        stamps = [stamp_to_ns(a.header.stamp) for _, a in mine]
        assert stamps == [t for t, _ in mine] and len(mine) >= 3  # bag time; periodic ones and the final one
        assert all(b - a >= 0.1e9 for a, b in zip(stamps[:-2], stamps[1:-1], strict=True))
        final[node] = stats_from_statuses(mine[-1][1].status)
    seg_d, map_d = final["segmentation"], final["costmap"]
    assert seg_d["drops"] and map_d["drops"], (seg_d, map_d)  # both kinds of holes were counted
    assert Counter(seg_d["drops"]) + Counter(map_d["drops"]) == Counter(s["drops"])
    assert seg_d["frames_in"] == s["frames_in"] == 8 and map_d["frames_out"] == s["frames_out"]
    assert seg_d["frames_out"] == map_d["frames_in"] and seg_d["pending"] == map_d["pending"] == 0
    assert seg_d["stage_ms"] == {} and map_d["stage_ms"] == {}  # wall-clock timings stay in summary.json


def test_stability_halves_when_the_frame_before_the_half_is_dropped(tmp_path, kitchen_bag, model_dir) -> None:  # noqa: ANN001
    # no /tf at frame 3 of 8 (the last of the first half) and 20 ms tolerance at 30 fps: the costmap drops that frame
    # only (no transform)
    bag = copy_without(kitchen_bag, tmp_path / "hole", {"/tf": {3}})
    res = measure(bag, FILES, {"weights": str(model_dir), "device": "cpu", "input_width": 256, "input_height": 192,
                               "transform_tolerance_s": 0.02})  # fmt: skip
    assert res["frames"] == 7 and sum(res["drops"].values()) == 1, res["drops"]
    assert res["half_agreement_fused"] is not None and res["half_agreement_fused"]["obstacle"] > 0.8
