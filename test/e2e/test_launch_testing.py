"""The launch test: ``launch_test test/e2e/launch_test_seg_perception.py`` against a colcon-built workspace.

Why a subprocess: launch_testing 3.7.1's pytest plugin (and launch_pytest's) does not load under pytest 9 (pytest.ini
disables them; README "Set-up"), while its own runner, ``launch_test``, works. So this pytest test prepares what the
launch test needs and runs ``launch_test`` as a user would, after sourcing the workspace's ``install/setup.bash``:
the launch file and the node executables come from the colcon install (launch_ros finds them through the ament
index). The verdict is launch_test's exit status and its JUnit report (both test cases ran and passed).

Inputs: the first frames of the 7-Scenes kitchen as a bag with ``/tf_static`` (camera mount) and ``/tf``
(``odom -> base_link`` from the dataset's poses), written by ``bag-from-frames``; ``config/seg_perception.yaml`` +
``config/demo_kitchen.yaml`` merged into the launch file's one ``params_file``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from seg_perception.bag import read_topics
from seg_perception.datasets import open_sequence
from seg_perception.resources import config_path
from seg_perception.tools.bag_from_frames import write_bag
from seg_perception.workspace import RosLaunch, write_params_file

pytestmark = pytest.mark.e2e

LAUNCH_TEST = Path(__file__).with_name("launch_test_seg_perception.py")


def test_launch_file_with_a_replayed_bag(tmp_path, colcon_ws, kitchen_dir, model_dir) -> None:  # noqa: ANN001
    ws, env = colcon_ws
    bag = tmp_path / "kitchen_bag"
    write_bag(open_sequence(kitchen_dir), bag, limit=6, progress=False)
    assert {"/tf", "/tf_static"} <= set(read_topics(bag))
    params = write_params_file(tmp_path / "params.yaml", [config_path("seg_perception.yaml"),
                               config_path("demo_kitchen.yaml")], [f"weights:={model_dir}"])  # fmt: skip
    env = dict(
        env,
        SEG_PERCEPTION_TEST_BAG=str(bag),
        SEG_PERCEPTION_TEST_PARAMS=str(params),
        ROS_DOMAIN_ID=str(int(os.environ["ROS_DOMAIN_ID"]) + 57),
    )  # one offset per e2e test (conftest.py)
    report = tmp_path / "launch_test.xml"
    script = f". install/setup.bash && exec launch_test '{LAUNCH_TEST}' --junit-xml '{report}'"
    proc = subprocess.run(["bash", "-c", script], cwd=ws, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout[-6000:] + proc.stderr[-6000:]
    assert proc.returncode == 0, out
    suites = ET.parse(report).getroot()
    cases = {c.get("name"): c for c in suites.iter("testcase")}
    assert {"test_param_set_then_outputs_with_their_frames", "test_nodes_exit_cleanly"} <= set(cases), out
    assert all(not list(c) for c in cases.values()), out  # no <failure>, <error> or <skipped> child
    assert "parameters changed: {'cloud_stride': 8}" in proc.stdout + proc.stderr, out


def test_ros_launch_stops_cleanly_even_when_started_with_sigint_ignored(tmp_path, colcon_ws, model_dir) -> None:  # noqa: ANN001
    """``RosLaunch`` (the demo's): a parent started in the background by a non-interactive shell ignores SIGINT, and
    so would ros2 launch; ``start`` resets it, so ``stop``'s SIGINT still stops both nodes cleanly."""
    ws, env = colcon_ws
    env = dict(env, ROS_DOMAIN_ID=str(int(os.environ["ROS_DOMAIN_ID"]) + 57))
    params = write_params_file(tmp_path / "p.yaml", [config_path("seg_perception.yaml")], [f"weights:={model_dir}"])
    launch = RosLaunch(ws / "install", {"params_file": str(params)}, env, tmp_path / "launch.log")
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        launch.start()
    finally:
        signal.signal(signal.SIGINT, old)
    try:
        deadline = time.monotonic() + 120
        while not ("on cpu" in launch.output() and "grid " in launch.output()) and time.monotonic() < deadline:
            assert not launch.exited(), launch.output()
            time.sleep(0.5)
    finally:
        codes = launch.stop(timeout_s=60)
    assert codes == {"segmentation": 0, "costmap": 0, "launch": 0}, launch.output()
    assert "user interrupted with ctrl-c (SIGINT)" in launch.output()
