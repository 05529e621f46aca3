"""The soak tool (issue 10 item 2) for a short run: both nodes launched with ros2 launch on a looped real kitchen bag,
memory, CPU and rates sampled into soak.csv / soak.json / soak.png, no crash."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from seg_perception.datasets import open_sequence
from seg_perception.resources import config_path
from seg_perception.tools.bag_from_frames import write_bag
from seg_perception.tools.soak import soak


def test_a_short_soak_samples_both_nodes_and_writes_csv_json_and_plot(tmp_path: Path, kitchen_dir: Path,
                                                                        model_dir: Path) -> None:  # fmt: skip
    bag = tmp_path / "bag"
    write_bag(open_sequence(kitchen_dir), bag, limit=10, progress=False)
    files = [config_path("seg_perception.yaml"), config_path("demo_kitchen.yaml")]
    out = tmp_path / "soak"
    summary = soak(bag, out, minutes=0.75, params_files=files, overrides=[f"weights:={model_dir}"], rate=2.0,
                   interval_s=5.0, domain_id=int(os.environ["ROS_DOMAIN_ID"]) + 58)  # fmt: skip
    assert summary["crashed"] == {}
    rows = list(csv.DictReader((out / "soak.csv").open()))
    for node in ("segmentation", "costmap"):
        mine = [r for r in rows if r["node"] == node]
        assert len(mine) >= 4, rows
        assert all(100.0 < float(r["rss_mb"]) < 8000.0 for r in mine)
        s = summary["nodes"][node]
        assert s["frames_out"] > 0 and s["frames_in"] >= s["frames_out"]
    assert json.loads((out / "soak.json").read_text())["nodes"].keys() == {"segmentation", "costmap"}
    assert (out / "soak.png").stat().st_size > 10_000
