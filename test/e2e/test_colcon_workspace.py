"""The package in a ROS 2 workspace: `colcon build` (colcon from PyPI), then the real CLI against the install space:
`ros2 pkg executables`, `ros2 launch ... --show-args` / `--print`, `ros2 launch` starting both nodes through
launch_ros with `ros2 node/topic/param` talking to them, and `ros2 run` of a node."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

LAUNCH = "seg_perception.launch.py"


def _bash(cmd: str, ws: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `cmd` in bash after sourcing the workspace's install/setup.bash, as a user would."""
    script = f"set -e; . install/setup.bash; {cmd}"
    return subprocess.run(["bash", "-c", script], cwd=ws, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def workspace(colcon_ws: tuple[Path, dict[str, str]], model_dir: Path) -> tuple[Path, dict[str, str]]:
    """The session's colcon workspace (conftest.py) with this module's ROS_DOMAIN_ID and the real weights."""
    ws, env = colcon_ws
    domain = str(int(os.environ["ROS_DOMAIN_ID"]) + 54)  # one offset per e2e test
    return ws, dict(env, ROS_DOMAIN_ID=domain, SEG_PERCEPTION_MODEL_DIR=str(model_dir))


def _launch(args: str, ws: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """``ros2 launch seg_perception LAUNCH args`` from the workspace's install space, in its own process group."""
    return subprocess.Popen(
        ["bash", "-c", f". install/setup.bash && exec ros2 launch seg_perception {LAUNCH} {args}"],
        cwd=ws, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip


def _stop(launch: subprocess.Popen[str], ws: Path, env: dict[str, str]) -> str:
    """SIGINT to ``ros2 launch`` (SIGKILL of its group after 60 s), stop the ros2 daemon; returns launch's output."""
    launch.send_signal(signal.SIGINT)
    try:
        return launch.communicate(timeout=60)[0]
    finally:
        if launch.poll() is None:
            os.killpg(launch.pid, signal.SIGKILL)
        _bash("ros2 daemon stop", ws, env, timeout=60)


def test_colcon_install_has_executables_and_the_launch_file(workspace: tuple[Path, dict[str, str]]) -> None:
    ws, env = workspace
    share = ws / "install" / "seg_perception" / "share" / "seg_perception"
    lib = ws / "install" / "seg_perception" / "lib" / "seg_perception"
    assert (share / "launch" / LAUNCH).is_file() and (share / "config" / "seg_perception.yaml").is_file()
    assert (share / "package.xml").is_file()
    assert {"segmentation_node", "costmap_node"} <= {p.name for p in lib.iterdir()}

    proc = _bash("ros2 pkg prefix seg_perception && ros2 pkg executables seg_perception", ws, env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == str(ws / "install" / "seg_perception")
    assert "seg_perception segmentation_node" in lines and "seg_perception costmap_node" in lines, proc.stdout


def test_ros2_launch_loads_the_launch_file(workspace: tuple[Path, dict[str, str]]) -> None:
    ws, env = workspace
    proc = _bash(f"ros2 launch seg_perception {LAUNCH} --show-args", ws, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for arg in ("namespace", "params_file", "use_sim_time", "autostart", "image", "depth", "camera_info",
                "publish_mount", "mount_xyz", "mount_rpy"):  # fmt: skip
        assert f"'{arg}':" in proc.stdout, proc.stdout
    default_params = ws / "install" / "seg_perception" / "share" / "seg_perception" / "config" / "seg_perception.yaml"
    assert f"(default: '{default_params}')" in proc.stdout

    proc = _bash(f"ros2 launch seg_perception {LAUNCH} image:=/cam/rgb --print", ws, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert out.count("DeclareLaunchArgument") == 13, out
    for exe in ("segmentation_node", "costmap_node", "camera_mount_publisher"):
        assert f"ExecuteProcess(cmd=[ExecInPkg(pkg='seg_perception', exec='{exe}'), '--ros-args'" in out, out


def _until_ok(cmd: str, ws: Path, env: dict[str, str], proc: subprocess.Popen[str]) -> str:
    """Run a CLI command until it succeeds (the first ones wait for discovery); fail if `proc` dies meanwhile."""
    deadline = time.monotonic() + 90
    while True:
        got = _bash(cmd, ws, env, timeout=60)
        if got.returncode == 0 or time.monotonic() > deadline:
            break
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.5)
    assert got.returncode == 0, got.stdout + got.stderr
    return got.stdout


def test_ros2_launch_starts_both_nodes_for_the_ros2_cli(workspace: tuple[Path, dict[str, str]]) -> None:
    ws, env = workspace
    launch = _launch("image:=/cam/rgb", ws, env)
    try:  # the CLI calls go through the ros2 daemon (as a user's would), started by the first one
        assert _until_ok("ros2 param get /seg_perception/segmentation model", ws, env, launch).strip() == (
            "String value is: espnetv2_city"
        )
        assert _until_ok("ros2 param get /seg_perception/costmap resolution", ws, env, launch).strip() == (
            "Double value is: 0.2"  # from the installed config/seg_perception.yaml
        )
        out = _until_ok("ros2 param set /seg_perception/costmap inflation_radius 0.5 && "
                        "ros2 param get /seg_perception/costmap inflation_radius", ws, env, launch)  # fmt: skip
        assert out.splitlines() == ["Set parameter successful", "Double value is: 0.5"]

        lines = _until_ok("ros2 node list && ros2 topic list -t", ws, env, launch).splitlines()
        assert {"/seg_perception/segmentation", "/seg_perception/costmap"} <= set(lines), lines
        for topic in ("/cam/rgb [sensor_msgs/msg/Image]", "/seg_perception/labels [sensor_msgs/msg/Image]",
                      "/seg_perception/semantic_points [sensor_msgs/msg/PointCloud2]",
                      "/seg_perception/drivable_grid [nav_msgs/msg/OccupancyGrid]",
                      "/seg_perception/obstacle_grid [nav_msgs/msg/OccupancyGrid]"):  # fmt: skip
            assert topic in lines, lines
    finally:
        out = _stop(launch, ws, env)  # Ctrl-C to ros2 launch: it stops both nodes
    assert launch.returncode == 0, out
    assert "[segmentation_node-1]: process has finished cleanly" in out, out
    assert "[costmap_node-2]: process has finished cleanly" in out, out
    assert "parameters changed: {'inflation_radius': 0.5}" in out, out


def test_ros2_launch_publishes_the_camera_mount_from_arguments(workspace: tuple[Path, dict[str, str]]) -> None:
    """A robot without a URDF: ``publish_mount:=true`` puts the mount on /tf_static (latched), read back with the
    ros2 CLI (a transient-local subscription that joins late)."""
    ws, env = workspace
    # a params file that does not exist: the two perception nodes exit at once, the mount stays
    launch = _launch("publish_mount:=true 'mount_xyz:=[0.2, 0.0, 1.1]' 'mount_rpy:=[0.0, 0.3, 0.0]' "
                     "params_file:=/nonexistent.yaml", ws, env)  # fmt: skip
    try:
        out = _until_ok("ros2 topic echo --once --qos-durability transient_local --qos-reliability reliable "
                        "/tf_static tf2_msgs/msg/TFMessage", ws, env, launch)  # fmt: skip
    finally:
        log = _stop(launch, ws, env)
    assert "frame_id: base_link" in out and "child_frame_id: camera_link" in out, out
    assert "child_frame_id: camera_color_optical_frame" in out and "z: 1.1" in out, out
    assert "camera mount on /tf_static: base_link -> camera_link, camera_link -> camera_color_optical_frame" in log


def test_ros2_run_finds_the_installed_executable(workspace: tuple[Path, dict[str, str]]) -> None:
    ws, env = workspace
    proc = _bash("ros2 run seg_perception costmap_node --ros-args -p resolution:=0.001 -p width:=1000.0 "
                 "-p height:=1000.0", ws, env)  # fmt: skip
    assert proc.returncode == 1  # the node ran and refused the 1e6 x 1e6-cell grid, naming the parameter
    assert proc.stderr.startswith("costmap_node: "), proc.stdout + proc.stderr
    assert "resolution" in proc.stderr or "width" in proc.stderr, proc.stderr


def test_ros2_launch_autostart_false_leaves_the_nodes_to_a_lifecycle_manager(
    workspace: tuple[Path, dict[str, str]],
) -> None:
    """``autostart:=false``: both nodes come up unconfigured; ``ros2 lifecycle set`` (what Nav2's lifecycle_manager
    calls) configures and activates them."""
    ws, env = workspace
    launch = _launch("autostart:=false", ws, env)
    try:
        for node in ("segmentation", "costmap"):
            assert _until_ok(f"ros2 lifecycle get /seg_perception/{node}", ws, env, launch).startswith("unconfigured")
        out = _until_ok("ros2 lifecycle set /seg_perception/costmap configure && "
                        "ros2 lifecycle set /seg_perception/costmap activate && "
                        "ros2 lifecycle get /seg_perception/costmap", ws, env, launch)  # fmt: skip
        assert out.splitlines()[-1].startswith("active"), out
        assert _until_ok("ros2 lifecycle get /seg_perception/segmentation", ws, env, launch).startswith("unconfigured")
    finally:
        log = _stop(launch, ws, env)
    assert "[costmap_node-2]: process has finished cleanly" in log, log
