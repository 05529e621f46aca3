"""scripts/ros_deps.sh decides what to build: nothing where an apt ROS provides `ros2` and tf2_ros, and a clear error
naming the setting when the source tarballs are missing. (The build itself runs in every set-up; the modules it
installs are exercised by test/node/test_tf2_roundtrip.py and test/e2e/test_colcon_workspace.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "ros_deps.sh"


def _run(env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SEG_PERCEPTION_VENV=sys.prefix, **env_extra)
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)


def test_apt_ros_install_means_nothing_is_built(tmp_path: Path) -> None:
    opt = tmp_path / "opt" / "ros" / "kilted"
    (opt / "bin").mkdir(parents=True)
    (opt / "bin" / "ros2").write_text("#!/bin/sh\nexit 0\n")
    (opt / "bin" / "ros2").chmod(0o755)
    site = opt / "lib" / "python3.11" / "site-packages" / "tf2_ros"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text("")
    empty_src = tmp_path / "no_sources"  # were it to build, it would stop here: no tarballs
    empty_src.mkdir()
    proc = _run({
        "PATH": f"{opt / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(site.parent),
        "SEG_PERCEPTION_ROS_SRC": str(empty_src),
    })  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == f"[ros_deps] ROS found at {opt} (ros2 + tf2_ros): nothing to build"


def test_missing_sources_name_the_setting(tmp_path: Path) -> None:
    proc = _run({"SEG_PERCEPTION_ROS_SRC": str(tmp_path)})
    assert proc.returncode == 1
    assert f"missing {tmp_path}/geometry2.tar.gz (set SEG_PERCEPTION_ROS_SRC)" in proc.stderr, proc.stderr
