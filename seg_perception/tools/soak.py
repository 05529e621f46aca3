"""``seg-perception soak BAG --minutes N``: both nodes for a long time on a looped real bag, with figures.

The nodes run as a robot runs them (``ros2 launch`` of a colcon workspace of this checkout, ``workspace.RosLaunch``)
and ``replay`` plays the bag in a loop at ``--rate`` (default 4x: faster than the nodes keep up, so they run at the
highest rate they sustain and count the colour frames they had to skip as ``busy`` drops). Every ``--interval-s``
(10 s) each node's resident memory (RSS) and CPU use (``psutil``) and its frames in / out and drops (from its
``/diagnostics``) are sampled into ``OUT/soak.csv``; ``OUT/soak.png`` plots them and ``OUT/soak.json`` holds the
summary: RSS growth over the last two thirds of the run (minute 10 to 30 of a 30-minute soak), frames in / out,
drops by reason, output rate, crashes (a node that exits during the soak stops it with a non-zero status).

Bounded state, so RSS levels off: the newest-frame slot of the segmentation node (one frame), the colour/depth pairing
queues (``queue_depth``), the tf2 buffer (10 s of transforms), the fused grids (a fixed window), the voxel map
(``max_voxels``, oldest and farthest dropped), and NodeStats' timing windows (last 200 frames).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from seg_perception.core.timing import timing_summary
from seg_perception.resources import config_path
from seg_perception.workspace import (
    NODE_EXECUTABLES,
    RosLaunch,
    build_workspace,
    local_ros_env,
    write_params_file,
)

FIELDS = ("t_s", "node", "rss_mb", "cpu_pct", "frames_in", "frames_out", "drops")


def node_processes(launch_pid: int) -> dict[str, psutil.Process]:
    """The node processes under ``ros2 launch`` (by executable name in their command line)."""
    found: dict[str, psutil.Process] = {}
    for child in psutil.Process(launch_pid).children(recursive=True):
        try:
            cmd = " ".join(child.cmdline())
        except psutil.Error:
            continue
        for name, exe in NODE_EXECUTABLES.items():
            if exe in cmd and name not in found:
                found[name] = child
    return found


class DiagnosticsListener:
    """Frames in / out and drops per node from ``/diagnostics`` (``diagnostics.stats_from_statuses``), on ``node``
    (``tools.common.ros_node``, which owns its context)."""

    def __init__(self, node: Any) -> None:  # noqa: ANN401
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor

        from seg_perception.ros.diagnostics import stats_from_statuses

        self._to_stats = stats_from_statuses
        self.executor = SingleThreadedExecutor(context=node.context)
        self.executor.add_node(node)
        self.stats: dict[str, dict[str, Any]] = {}
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on, 50)

    def _on(self, msg: Any) -> None:  # noqa: ANN401
        by_node: dict[str, list[Any]] = {}
        for status in msg.status:
            by_node.setdefault(status.hardware_id, []).append(status)
        for fqn, statuses in by_node.items():
            name = fqn.rsplit("/", 1)[-1]
            if name in NODE_EXECUTABLES:
                stats = self._to_stats(statuses)
                if stats.get("frames_in") is not None:
                    self.stats[name] = stats

    def spin(self, seconds: float) -> None:
        """Take diagnostics for ``seconds``."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=min(0.2, max(0.0, end - time.monotonic())))

    def close(self) -> None:
        """Stop listening (the node is destroyed by its ``ros_node``)."""
        self.executor.shutdown()


def soak(
    bag: Path, out: Path, minutes: float, params_files: list[Path], overrides: list[str], rate: float = 4.0,
    interval_s: float = 10.0, domain_id: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Run the soak (see the module docstring); returns the summary also written to ``out/soak.json``.

    The nodes are stopped and the replay ended on every way out, errors included.

    Raises:
        RuntimeError: the nodes did not start, or a node exited during the soak (the summary is written first).
    """
    from seg_perception.tools.common import ros_node

    out.mkdir(parents=True, exist_ok=True)
    domain_id = domain_id if domain_id is not None else 10 + os.getpid() % 90
    env = local_ros_env(domain_id=domain_id)
    install = build_workspace(out / "ws")
    params = write_params_file(out / "params.yaml", params_files, overrides)
    rows: list[dict[str, Any]] = []
    crashed: dict[str, int] = {}
    t0 = time.monotonic()
    with (RosLaunch(install, {"params_file": str(params)}, env, out / "launch.log") as launcher,
          ros_node("seg_perception_soak", domain_id) as node):  # fmt: skip
        listener = DiagnosticsListener(node)
        replay: subprocess.Popen[bytes] | None = None
        try:
            procs = _wait_for_nodes(launcher, listener)
            replay_cmd = [sys.executable, "-m", "seg_perception.tools.replay", str(bag), "--rate", str(rate),
                          "--loop", "--wait-for-subscribers", "3", "--wait-timeout-s", "60"]  # fmt: skip
            with open(out / "replay.log", "wb") as log:
                replay = subprocess.Popen(replay_cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
            t0 = time.monotonic()
            crashed = _sample(launcher, listener, replay, procs, rows, minutes * 60.0, interval_s)
        finally:
            if replay is not None and replay.poll() is None:
                replay.terminate()
                try:
                    replay.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    replay.kill()
                    replay.wait()
            final = dict(listener.stats)
            listener.close()
            codes = launcher.stop()
    summary = summarize(rows, final, codes, crashed, minutes, time.monotonic() - t0)
    write_outputs(out, rows, summary)
    if crashed:
        raise RuntimeError(f"node(s) exited during the soak: {crashed}; see {launcher.log}")
    return summary


def _wait_for_nodes(launcher: RosLaunch, listener: DiagnosticsListener) -> dict[str, psutil.Process]:
    """The node processes once all are up (taking diagnostics meanwhile). Raises RuntimeError after 180 s."""
    assert launcher.proc is not None
    deadline = time.monotonic() + 180.0
    procs: dict[str, psutil.Process] = {}
    while len(procs) < len(NODE_EXECUTABLES) and time.monotonic() < deadline:
        procs = node_processes(launcher.proc.pid)
        listener.spin(1.0)
    if len(procs) < len(NODE_EXECUTABLES):
        raise RuntimeError(f"nodes did not start; see {launcher.log}")
    return procs


def _sample(
    launcher: RosLaunch, listener: DiagnosticsListener, replay: subprocess.Popen[bytes],
    procs: dict[str, psutil.Process], rows: list[dict[str, Any]], seconds: float, interval_s: float,
) -> dict[str, int]:  # fmt: skip
    """Append a row per node every ``interval_s`` for ``seconds`` (RSS, CPU, diagnostics); stops early when a node
    exits or the replay ends. Returns the nodes that exited (name -> status)."""
    for p in procs.values():
        p.cpu_percent(None)  # start the CPU counters
    t0 = time.monotonic()
    crashed: dict[str, int] = {}
    while time.monotonic() - t0 < seconds:
        listener.spin(interval_s)
        crashed = {k: v for k, v in launcher.exited().items() if k != "launch" or v != 0}
        if crashed or replay.poll() is not None:
            break
        t = round(time.monotonic() - t0, 1)
        for name, p in procs.items():
            stats = listener.stats.get(name, {})
            rows.append({"t_s": t, "node": name, "rss_mb": round(p.memory_info().rss / 1e6, 1),
                         "cpu_pct": round(p.cpu_percent(None), 1), "frames_in": stats.get("frames_in", 0),
                         "frames_out": stats.get("frames_out", 0),
                         "drops": sum((stats.get("drops") or {}).values())})  # fmt: skip
    return crashed


def summarize(rows: list[dict[str, Any]], final: dict[str, dict[str, Any]], codes: dict[str, Any],
              crashed: dict[str, int], minutes: float, wall_s: float) -> dict[str, Any]:  # fmt: skip
    """Per node: RSS at one third and at the end of the run and the growth between them, frames, drops, rate."""
    out: dict[str, Any] = {"minutes_planned": minutes, "wall_s": round(wall_s, 1), "crashed": crashed,
                           "exit_codes": codes, "nodes": {}}  # fmt: skip
    for name in NODE_EXECUTABLES:
        mine = [r for r in rows if r["node"] == name]
        if not mine:
            continue
        third = mine[len(mine) // 3]
        last = mine[-1]
        stats = final.get(name, {})
        span = max(1e-9, last["t_s"] - third["t_s"])
        out["nodes"][name] = {
            "rss_mb_at_third": third["rss_mb"], "rss_mb_at_end": last["rss_mb"],
            "rss_growth_pct": round(100.0 * (last["rss_mb"] - third["rss_mb"]) / third["rss_mb"], 2),
            "rss_mb_max": max(r["rss_mb"] for r in mine),
            "cpu_pct_median": timing_summary([r["cpu_pct"] for r in mine], 1)["median"],
            "frames_in": stats.get("frames_in", last["frames_in"]), "frames_out": stats.get("frames_out",
                                                                                              last["frames_out"]),
            "out_hz_last_two_thirds": round((last["frames_out"] - third["frames_out"]) / span, 2),
            "drops": stats.get("drops", {}),
        }  # fmt: skip
    return out


def write_outputs(out: Path, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """soak.csv, soak.json and soak.png (RSS and output rate over time per node)."""
    with open(out / "soak.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    (out / "soak.json").write_text(json.dumps(summary, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_rss, ax_hz) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for name in NODE_EXECUTABLES:
        mine = [r for r in rows if r["node"] == name]
        if len(mine) < 2:
            continue
        t = [r["t_s"] / 60.0 for r in mine]
        ax_rss.plot(t, [r["rss_mb"] for r in mine], label=name)
        hz = [(b["frames_out"] - a["frames_out"]) / max(1e-9, b["t_s"] - a["t_s"])
              for a, b in zip(mine[:-1], mine[1:], strict=True)]  # fmt: skip
        ax_hz.plot(t[1:], hz, label=name)
    ax_rss.set_ylabel("RSS [MB]")
    ax_hz.set_ylabel("frames out [Hz]")
    ax_hz.set_xlabel("time [min]")
    ax_rss.legend()
    ax_rss.grid(True)
    ax_hz.grid(True)
    fig.tight_layout()
    fig.savefig(out / "soak.png", dpi=100)
    plt.close(fig)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``seg-perception soak``."""
    p.add_argument("bag", type=Path, help="rosbag2 folder to loop (e.g. from bag-from-frames)")
    p.add_argument("--minutes", type=float, default=30.0, help="how long [min] (default 30)")
    p.add_argument("-o", "--output", type=Path, default=Path("out/soak"), help="output folder")
    p.add_argument("--params-file", type=Path, action="append", default=[], help="ROS 2 params YAML (repeatable)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE", help="parameter override")
    p.add_argument("--rate", type=float, default=4.0, help="replay speed factor (default 4)")
    p.add_argument("--interval-s", type=float, default=10.0, help="sampling period [s] (default 10)")


def run(args: argparse.Namespace) -> int:
    """Soak and print the summary."""
    files = args.params_file or [config_path("seg_perception.yaml")]
    summary = soak(args.bag, args.output, args.minutes, files, args.param, args.rate, args.interval_s)
    print(json.dumps(summary, indent=2))
    return 0
