"""End to end across processes: `ros2 launch` (two node processes) + replay of a short real KITTI bag + recording;
a node started alone fails fast on bad parameters."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from seg_perception.ros import convert
from seg_perception.tools.demo import _read_bag, run_demo
from seg_perception.workspace import local_ros_env

pytestmark = pytest.mark.e2e


def test_kitti_bag_through_both_node_processes(tmp_path, kitti_dir, model_dir) -> None:  # noqa: ANN001
    out = tmp_path / "demo"
    summary = run_demo(
        kitti_dir, out, weights=str(model_dir), rate=0.5, frames=4,
        overrides=["input_width:=640", "input_height:=192"],
        domain_id=int(os.environ["ROS_DOMAIN_ID"]) + 50, render_every=2, quiet_s=5.0,
    )  # fmt: skip
    assert summary["node_exit_status"] == {"segmentation": 0, "costmap": 0, "launch": 0}
    assert (out / "ws" / "install" / "seg_perception" / "lib" / "seg_perception" / "segmentation_node").is_file()
    assert "[segmentation_node-1]: process has finished cleanly" in (out / "logs" / "launch.log").read_text()
    assert summary["frames_in"] == 4
    got = summary["frames_out"]
    assert got["label_info"] == 1
    assert got["labels"] >= 2 and got["obstacle_grid"] >= 2 and got["drivable_grid"] >= 2, got
    assert summary["segmentation"]["frames_out"] == got["labels"]
    assert set(summary["segmentation"]["stage_ms"]) >= {"segment", "cloud", "publish"}

    msgs = _read_bag(out / "output_bag")
    drivable = convert.grid_from_msg(msgs["/seg_perception/drivable_grid"][-1][1])
    obstacle = convert.grid_from_msg(msgs["/seg_perception/obstacle_grid"][-1][1])
    assert (drivable == 0).sum() > 20 and (drivable == 100).sum() > 20  # road seen, and non-road seen
    assert (obstacle == 100).sum() > 10 and (obstacle == -1).mean() > 0.5  # cars are lethal; most is unseen
    labels = convert.image_to_array(msgs["/seg_perception/labels"][-1][1])
    assert labels.shape == (375, 1242) and np.bincount(labels.ravel(), minlength=20)[[0, 13]].min() > 20000
    renders = sorted((out / "renders").glob("*.png"))
    assert renders and all(p.stat().st_size > 10_000 for p in renders)
    assert (out / "summary.md").read_text().startswith("# seg_perception demo summary")


def _node(executable: str, *params: str) -> list[str]:
    """One node started alone, as ``ros2 run seg_perception <executable> --ros-args -p ...`` does."""
    module = f"seg_perception.ros.{executable}"
    return [sys.executable, "-m", module, "--ros-args"] + [a for p in params for a in ("-p", p)]


def test_missing_weights_fail_fast_naming_the_download_command(tmp_path) -> None:  # noqa: ANN001
    cmd = _node("segmentation_node", f"weights:={tmp_path}")
    env = local_ros_env(domain_id=int(os.environ["ROS_DOMAIN_ID"]) + 51)
    env.pop("SEG_PERCEPTION_MODEL_DIR", None)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "seg-perception weights download espnetv2_city" in proc.stderr


def test_bad_parameter_fails_fast(tmp_path) -> None:  # noqa: ANN001
    cmd = _node("costmap_node", "resolution:=0.001", "width:=1000.0", "height:=1000.0")
    env = local_ros_env(domain_id=int(os.environ["ROS_DOMAIN_ID"]) + 52)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "at most 4000000 cells" in proc.stderr
