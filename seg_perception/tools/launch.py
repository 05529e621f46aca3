"""``seg-perception launch``: start the segmentation and costmap nodes as processes, as the launch file does.

``ros2 launch`` (launch / launch_ros) is not installable from PyPI, so this starts the same two nodes with the same
YAML file (``config/seg_perception.yaml``) and the same remappings as ``launch/seg_perception.launch.py``. It
forwards SIGINT/SIGTERM to the nodes, stops the others when one exits with an error, and returns the worst exit
status.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from seg_perception.resources import config_path

NODES = {
    "segmentation": "seg_perception.ros.segmentation_node",
    "costmap": "seg_perception.ros.costmap_node",
}
#: Input remappings shared with the launch file and the bags written by ``bag-from-frames``.
DEFAULT_REMAPS = {
    "image": "/camera/color/image_raw",
    "depth": "/camera/depth/image_raw",
    "camera_info": "/camera/color/camera_info",
}
DEFAULT_NAMESPACE = "/seg_perception"


def local_ros_env(base: Mapping[str, str] | None = None, domain_id: int | None = None) -> dict[str, str]:
    """Environment for ROS processes confined to this machine.

    Sets ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` (Kilted ignores ROS_LOCALHOST_ONLY), Fast DDS as the RMW with
    the package's shared-memory transport profile (large images and clouds between processes), and a
    ``ROS_LOG_DIR`` in the temp dir when none is set. ``domain_id`` isolates parallel runs.
    """
    env = dict(os.environ if base is None else base)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(config_path("fastdds_shm_profile.xml")))
    env.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="seg_perception_roslog_"))
    env.setdefault("PYTHONUNBUFFERED", "1")
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    return env


def node_command(
    node: str,
    params_files: Sequence[str | os.PathLike[str]] = (),
    namespace: str = DEFAULT_NAMESPACE,
    remaps: Mapping[str, str] | None = None,
    overrides: Sequence[str] = (),
    use_sim_time: bool = False,
) -> list[str]:
    """The command line that starts one node (``python -m <module> --ros-args ...``).

    Args:
        node: ``"segmentation"`` or ``"costmap"``.
        params_files: YAML parameter files, applied in order.
        namespace: node namespace; the relative topics resolve inside it.
        remaps: ``from -> to`` topic remappings.
        overrides: ``name:=value`` parameter overrides (win over the files).
        use_sim_time: follow /clock.
    """
    cmd = [sys.executable, "-m", NODES[node], "--ros-args", "-r", f"__ns:={namespace}"]
    for f in params_files:
        cmd += ["--params-file", str(f)]
    for src, dst in (remaps or {}).items():
        cmd += ["-r", f"{src}:={dst}"]
    if use_sim_time:
        cmd += ["-p", "use_sim_time:=true"]
    for o in overrides:
        cmd += ["-p", o]
    return cmd


class Launcher:
    """Start nodes as child processes; stop them cleanly.

    Args:
        commands: node name -> command line.
        env: environment of the children.
        log_dir: when given, each node's stdout+stderr goes to ``<log_dir>/<node>.log``; else they inherit ours.
    """

    def __init__(self, commands: Mapping[str, list[str]], env: Mapping[str, str], log_dir: Path | None = None):
        self.commands = dict(commands)
        self.env = dict(env)
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self._logs: list = []

    def start(self) -> None:
        """Start every node."""
        for name, cmd in self.commands.items():
            out = None
            if self.log_dir is not None:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                out = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
                self._logs.append(out)
            self.procs[name] = subprocess.Popen(
                cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT if out else None
            )

    def poll(self) -> dict[str, int | None]:
        """Exit status of each node (None while running)."""
        return {name: p.poll() for name, p in self.procs.items()}

    def stop(self, timeout_s: float = 10.0) -> dict[str, int]:
        """SIGINT every running node, then SIGTERM / SIGKILL after ``timeout_s``; returns exit statuses."""
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        for p in self.procs.values():
            for sig in (None, signal.SIGTERM, signal.SIGKILL):
                if sig is not None and p.poll() is None:
                    p.send_signal(sig)
                    deadline = time.monotonic() + 3.0
                try:
                    p.wait(timeout=max(0.1, deadline - time.monotonic()))
                    break
                except subprocess.TimeoutExpired:
                    continue
        for f in self._logs:
            f.close()
        return {name: p.returncode for name, p in self.procs.items()}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``seg-perception launch``."""
    p.add_argument("--params-file", action="append", default=None,
                   help="YAML parameter file (repeatable; default: config/seg_perception.yaml)")  # fmt: skip
    p.add_argument("--namespace", default=DEFAULT_NAMESPACE, help="namespace of both nodes")
    p.add_argument("--remap", action="append", default=[], metavar="FROM:=TO", help="extra topic remapping")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                   help="parameter override for both nodes")  # fmt: skip
    p.add_argument("--use-sim-time", action="store_true", help="follow /clock (bag replay with --clock)")
    p.add_argument("--only", choices=sorted(NODES), help="start just one of the nodes")
    p.add_argument("--log-dir", type=Path, help="write each node's output to <dir>/<node>.log")
    p.add_argument("--local", action="store_true",
                   help="confine DDS to this host and use the shared-memory profile (local_ros_env)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Start the nodes and wait until one exits or a signal arrives."""
    files = args.params_file or [str(config_path("seg_perception.yaml"))]
    remaps = dict(DEFAULT_REMAPS)
    for r in args.remap:
        src, _, dst = r.partition(":=")
        remaps[src] = dst
    names = [args.only] if args.only else list(NODES)
    commands = {n: node_command(n, files, args.namespace, remaps, args.param, args.use_sim_time) for n in names}
    env = local_ros_env() if args.local else dict(os.environ)
    launcher = Launcher(commands, env, args.log_dir)
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    launcher.start()
    while not stopping and all(code is None for code in launcher.poll().values()):
        time.sleep(0.2)
    codes = launcher.stop()
    for name, code in codes.items():
        print(f"{name}: exit status {code}", file=sys.stderr)
    return max((abs(c) for c in codes.values() if c is not None and c not in (0, -signal.SIGINT)), default=0)
