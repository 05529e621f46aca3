"""``seg_perception.workspace``: the merged parameters file the demo and the launch test hand to the launch file,
``ros2 launch``'s exit lines, and the launch command line (no processes started here)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from seg_perception.workspace import launch_command, local_ros_env, merged_params, node_exit_codes, write_params_file

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_kitchen_params_merge_key_by_key_like_two_params_files(tmp_path: Path) -> None:
    files = [CONFIG / "seg_perception.yaml", CONFIG / "demo_kitchen.yaml"]
    overrides = ["weights:=/models", "inflation_radius:=0.5", "ground.max_tilt_deg:=10.0"]
    path = write_params_file(tmp_path / "p.yaml", files, overrides)
    doc = yaml.safe_load(path.read_text())
    seg = doc["/**/segmentation"]["ros__parameters"]
    cost = doc["/**/costmap"]["ros__parameters"]
    assert seg["model"] == "espnetv2_pascal" and seg["cloud_stride"] == 4 and seg["device"] == "auto"
    assert cost["global_frame"] == "odom" and cost["resolution"] == 0.05
    # nested: the kitchen file sets ground.height_window_m only; the other ground keys stay the defaults'
    # (and the override ground.max_tilt_deg only that key)
    assert cost["ground"] == {"distance_threshold_m": 0.05, "max_tilt_deg": 10.0, "height_window_m": 0.3}
    assert seg["weights"] == cost["weights"] == "/models"  # -p semantics: for both (undeclared ones are ignored)
    assert cost["inflation_radius"] == 0.5 and isinstance(cost["inflation_radius"], float)
    assert path.is_absolute()


def test_a_bad_override_is_refused() -> None:
    with pytest.raises(ValueError, match="name:=value"):
        merged_params([CONFIG / "seg_perception.yaml"], ["inflation_radius=0.5"])


def test_exit_codes_from_ros2_launch_output() -> None:
    out = (
        "[INFO] [segmentation_node-1]: process started with pid [18479]\n"
        "[INFO] [costmap_node-2]: process has finished cleanly [pid 18481]\n"
        "[ERROR] [segmentation_node-1]: process has died [pid 18479, exit code 1, cmd '/x/segmentation_node'].\n"
    )
    assert node_exit_codes(out) == {"costmap": 0, "segmentation": 1}
    assert node_exit_codes("[INFO] [segmentation_node-1]: process started with pid [1]\n") == {}


def test_launch_command_quotes_arguments_for_bash(tmp_path: Path) -> None:
    cmd = launch_command(tmp_path, {"mount_xyz": "[0.2, 0.0, 1.1]", "image": "/it's"})
    assert cmd[:2] == ["bash", "-c"]
    echo = cmd[2].replace("exec ros2 launch", "printf '%s\\n'").replace(f". '{tmp_path}/setup.bash' && ", "")
    got = subprocess.run(["bash", "-c", echo], capture_output=True, text=True, check=True).stdout.splitlines()
    assert got == ["seg_perception", "seg_perception.launch.py", "mount_xyz:=[0.2, 0.0, 1.1]", "image:=/it's"]


def test_a_ros_log_dir_is_made_only_when_none_is_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # where mkdtemp would put one
    for _ in range(3):
        assert local_ros_env({"ROS_LOG_DIR": "/var/log/ros"})["ROS_LOG_DIR"] == "/var/log/ros"
    assert list(tmp_path.iterdir()) == []
    made = Path(local_ros_env({})["ROS_LOG_DIR"])
    assert list(tmp_path.iterdir()) == [made] and made.name.startswith("seg_perception_roslog_")
