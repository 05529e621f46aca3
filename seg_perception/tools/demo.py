"""``seg-perception demo``: real KITTI frames through the two real ROS 2 nodes, end to end, on this machine.

1. ``bag-from-frames``: the KITTI sequence -> ``OUT/input_bag`` (rgb8, 16UC1 mm, CameraInfo; 10 Hz).
2. ``ros2 launch seg_perception seg_perception.launch.py``: the segmentation and costmap nodes through launch_ros,
   from a ``colcon build --symlink-install`` of this checkout in ``OUT/ws`` (``workspace.build_workspace``, ~2 s),
   with ``config/seg_perception.yaml`` + ``config/demo_kitti.yaml`` (+ ``-p`` overrides) merged into
   ``OUT/params.yaml`` (the launch file's ``params_file``); output in ``OUT/logs/launch.log``.
3. Records what the nodes publish (this process, ``Recorder``) into ``OUT/output_bag``.
4. ``replay``: plays the input bag (its own process) at ``--rate`` once the nodes subscribe.
5. Waits for the outputs to settle, stops the nodes, then renders ``OUT/renders/*.png`` and writes
   ``OUT/summary.json`` + ``OUT/summary.md`` (frames in/out, drops, per-stage latency, end-to-end latency); the
   nodes' numbers are their final report on ``/diagnostics``.

DDS stays on this machine (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``) and uses the shared-memory profile.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from seg_perception.bag import read_messages, read_topics, resolve_message_class
from seg_perception.core.errors import InputRejected
from seg_perception.core.geometry.cloud import cloud_arrays, unpack_rgb
from seg_perception.core.geometry.transforms import transform_points
from seg_perception.core.mapping.grid import GridGeometry
from seg_perception.core.mapping.pipeline import build_costmap_pipeline
from seg_perception.core.segmentation.overlay import palette_array
from seg_perception.core.segmentation.registry import get_model_spec
from seg_perception.core.timing import timing_summary
from seg_perception.resources import config_path
from seg_perception.ros import convert
from seg_perception.ros.diagnostics import stats_from_statuses
from seg_perception.ros.pose_source import BagTf, CloudPoser
from seg_perception.tools.common import load_node_params, ros_node
from seg_perception.tools.render import render_panel
from seg_perception.workspace import (
    DEFAULT_NAMESPACE,
    DEFAULT_REMAPS,
    RosLaunch,
    build_workspace,
    local_ros_env,
    write_params_file,
)

OUTPUTS = ("labels", "overlay", "semantic_points", "drivable_grid", "obstacle_grid", "label_info")
EXTRA_TOPICS = ("obstacle_points", "fused_points", "ground_plane", "label_info_json", "semantic_grid",
                "semantic_grid/label_info")
OUTPUT_TOPICS = [f"{DEFAULT_NAMESPACE}/{t}" for t in OUTPUTS]

#: name -> (data folder, parameter files, replay rate, render every N frames)
PRESETS: dict[str, tuple[str, tuple[str, ...], float, int]] = {
    "kitti": ("../shared/data/kitti_2011_09_26_seq", ("seg_perception.yaml", "demo_kitti.yaml"), 0.25, 10),
    "kitchen": ("../shared/data/7scenes_kitchen", ("seg_perception.yaml", "demo_kitchen.yaml"), 0.1, 30),
}


def _wait(predicate: Any, timeout_s: float, spin: Any, poll_s: float = 0.1) -> bool:  # noqa: ANN401
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        spin(poll_s)
    return bool(predicate())


def run_demo(
    data: Path,
    out: Path,
    weights: str | None = None,
    rate: float = 0.25,
    frames: int = 0,
    params_files: list[Path] | None = None,
    overrides: list[str] | None = None,
    domain_id: int | None = None,
    render_every: int = 10,
    settle_s: float = 60.0,
    quiet_s: float = 8.0,
    loops: int = 1,
    input_bag: Path | None = None,
) -> dict[str, Any]:
    """Run the demo; returns the summary (also written to ``out/summary.json``).

    Args:
        data: RGB-D frame folder (KITTI or 7-Scenes layout).
        out: output folder (created; must not hold a previous run's bags).
        weights: weights file or folder for the segmentation node (default: its search path).
        rate: replay speed factor (the CPU path runs at a few Hz, so the default plays 10 Hz KITTI at 2.5 Hz).
        frames: use only the first N frames (0 = all).
        params_files: YAML parameter files (default: seg_perception.yaml + demo_kitti.yaml).
        overrides: extra ``name:=value`` parameters for both nodes.
        domain_id: ROS_DOMAIN_ID of the run (default: derived from the process id).
        render_every: render every N-th processed frame (the last one is always rendered).
        settle_s: longest wait for the nodes to finish after the replay ends [s].
        quiet_s: the run is over when no output arrived for this long after the replay [s].
        loops: replay passes (> 1: the bag is looped, so time jumps back at each new pass, as ``replay --loop``).
        input_bag: replay this bag instead of writing one from ``data`` (copied to ``out/input_bag``).
    Raises:
        RuntimeError: a node failed to start or died (its log is named), or nothing came out.
    """
    t_start = time.monotonic()
    _write_input_bag(data, out, frames, input_bag)
    params_files = params_files or [config_path("seg_perception.yaml"), config_path("demo_kitti.yaml")]
    overrides = list(overrides or []) + ([f"weights:={weights}"] if weights else [])
    domain_id = domain_id if domain_id is not None else 10 + os.getpid() % 90
    env = local_ros_env(domain_id=domain_id)
    # this process records: it joins the same local-only, shared-memory graph (the domain id is passed to init)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    for key in ("RMW_IMPLEMENTATION", "FASTDDS_DEFAULT_PROFILES_FILE", "ROS_LOG_DIR"):
        os.environ.setdefault(key, env[key])
    install = build_workspace(out / "ws")  # symlink install of this checkout: ~2 s, incremental
    params = write_params_file(out / "params.yaml", params_files, overrides)
    print(f"[demo] 2/5 ros2 launch seg_perception seg_perception.launch.py params_file:={params} "
          f"(ROS_DOMAIN_ID={domain_id}; output in {out / 'logs' / 'launch.log'})", flush=True)  # fmt: skip
    with RosLaunch(install, {"params_file": str(params)}, env, out / "logs" / "launch.log") as launcher:
        codes, counts = _record_run(out, launcher, env, domain_id, rate, loops, settle_s, quiet_s, t_start)
    print(f"[demo] 5/5 rendering; node exit statuses {codes}", flush=True)
    msgs = _read_bag(out / "output_bag")  # read once: summary and renders
    summary = summarize(out, msgs, params_files, overrides, counts, codes, rate)
    summary["wall_s"] = round(time.monotonic() - t_start, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "summary.md").write_text(summary_markdown(summary))
    render_outputs(out, msgs, params_files, render_every)
    return summary


def _write_input_bag(data: Path, out: Path, frames: int, input_bag: Path | None) -> None:
    """Step 1: ``out/input_bag`` from ``data`` (first ``frames``, 0 = all) or a copy of ``input_bag``."""
    from seg_perception.datasets import open_sequence
    from seg_perception.tools.bag_from_frames import write_bag

    out.mkdir(parents=True, exist_ok=True)
    for sub in ("input_bag", "output_bag"):
        if (out / sub).exists():
            raise RuntimeError(f"{out / sub} exists from a previous run; remove it or choose another --output")
    if input_bag is not None:
        shutil.copytree(input_bag, out / "input_bag")
    else:
        print(f"[demo] 1/5 writing {out / 'input_bag'} from {data}", flush=True)
        write_bag(open_sequence(data), out / "input_bag", limit=frames or None, progress=False)


def _record_run(
    out: Path, launcher: RosLaunch, env: dict[str, str], domain_id: int, rate: float, loops: int, settle_s: float,
    quiet_s: float, t_start: float,
) -> tuple[dict, dict[str, int]]:  # fmt: skip
    """Steps 3-4: record the nodes' outputs (``out/output_bag``) while the input bag plays, until they settle; then
    stop the nodes. Returns (node exit statuses, messages recorded per topic)."""
    from rclpy.executors import SingleThreadedExecutor

    from seg_perception.tools.recorder import Recorder

    topics = [f"{DEFAULT_NAMESPACE}/{t}" for t in OUTPUTS + EXTRA_TOPICS] + [
        "/diagnostics:=diagnostic_msgs/msg/DiagnosticArray", DEFAULT_REMAPS["camera_info"],
        "/tf:=tf2_msgs/msg/TFMessage", "/tf_static:=tf2_msgs/msg/TFMessage",
    ]  # fmt: skip
    with ros_node("seg_perception_demo", domain_id) as node:
        executor = SingleThreadedExecutor(context=node.context)
        executor.add_node(node)
        spin = lambda s: executor.spin_once(timeout_sec=s)  # noqa: E731
        recorder = Recorder(node, out / "output_bag", topics, discovery_timeout_s=120.0)
        replay = None
        try:
            _wait_for_nodes(launcher, recorder, spin)
            print(f"[demo] 3/5 nodes up after {time.monotonic() - t_start:.1f} s; recording {len(topics)} topics",
                  flush=True)  # fmt: skip
            with open(out / "logs" / "replay.log", "wb") as log:
                replay = _start_replay(out, env, rate, loops, log)
                _wait(lambda: replay.poll() is not None, 3600.0, spin)
            if replay.returncode != 0:
                raise RuntimeError(f"replay failed with status {replay.returncode}; see {out / 'logs' / 'replay.log'}")
            _wait(_quiet_for(recorder, quiet_s), settle_s, spin)
        finally:
            codes = launcher.stop()
            _wait(lambda: False, 0.5, spin)  # take the nodes' final /diagnostics
            rec = recorder.close()
            executor.shutdown()
            if replay is not None and replay.poll() is None:
                replay.kill()
    return codes, rec.counts


def _wait_for_nodes(launcher: RosLaunch, recorder: Any, spin: Any) -> None:  # noqa: ANN401
    """Wait until every output topic has a publisher. Raises RuntimeError if a node exits or after 180 s."""

    def nodes_ready() -> bool:
        dead = launcher.exited()
        if dead:
            raise RuntimeError(f"node(s) exited during start-up: {dead}; see {launcher.log}")
        return not any(t in recorder.missing() for t in OUTPUT_TOPICS)

    if not _wait(nodes_ready, 180.0, spin):
        raise RuntimeError(f"nodes did not come up within 180 s; see {launcher.log}")


def _start_replay(out: Path, env: dict[str, str], rate: float, loops: int, log: IO[bytes]) -> subprocess.Popen:
    """Step 4: start playing ``out/input_bag`` in a process of its own, its output to ``log``."""
    # image, depth and camera_info reach the segmentation node, camera_info and /tf, /tf_static also this
    # recorder, and /tf, /tf_static the costmap node: start only when all are matched, or the first frames are
    # lost to discovery
    subscribers = 4 + 2 * len({"/tf", "/tf_static"} & set(read_topics(out / "input_bag")))
    replay_cmd = [sys.executable, "-m", "seg_perception.tools.replay", str(out / "input_bag"), "--rate", str(rate),
                  "--wait-for-subscribers", str(subscribers), "--wait-timeout-s", "30",
                  "--loops", str(max(1, loops))]  # fmt: skip
    print(f"[demo] 4/5 replaying at rate {rate}", flush=True)
    return subprocess.Popen(replay_cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def _quiet_for(recorder: Any, quiet_s: float) -> Any:  # noqa: ANN401
    """A predicate true once no output arrived for ``quiet_s`` (a slow CPU may still work on the last frame)."""
    last = [-1, time.monotonic()]

    def settled() -> bool:
        counts = recorder.counts()
        n = sum(counts.get(t, 0) for t in OUTPUT_TOPICS)
        if n != last[0]:
            last[:] = [n, time.monotonic()]
        return time.monotonic() - last[1] > quiet_s

    return settled


def _read_bag(bag: Path) -> dict[str, list[tuple[int, Any]]]:
    """topic -> [(receive time ns, rclpy message)] for every message of a recorded bag."""
    from rclpy.serialization import deserialize_message

    out: dict[str, list[tuple[int, Any]]] = defaultdict(list)
    for m in read_messages(bag):
        out[m.topic].append((m.t_ns, deserialize_message(m.data, resolve_message_class(m.msgtype))))
    return out


def summarize(
    out: Path, msgs: dict[str, list[tuple[int, Any]]], params_files: list[Path], overrides: list[str],
    counts: dict[str, int], codes: dict, rate: float,
) -> dict[str, Any]:  # fmt: skip
    """Frames in/out, drops and latencies from the recorded output bag's messages (``_read_bag``)."""
    ns = DEFAULT_NAMESPACE
    stats = {n: node_stats(msgs.get("/diagnostics", []), f"{ns}/{n}") for n in ("segmentation", "costmap")}
    recv_info = {convert.stamp_to_ns(m.header.stamp): t for t, m in msgs.get(DEFAULT_REMAPS["camera_info"], [])}
    e2e = defaultdict(list)
    for topic in ("labels", "semantic_points", "obstacle_grid"):
        for t, m in msgs.get(f"{ns}/{topic}", []):
            t0 = recv_info.get(convert.stamp_to_ns(m.header.stamp))
            if t0 is not None:
                e2e[topic].append((t - t0) / 1e6)

    frames_in = read_topics(out / "input_bag")[DEFAULT_REMAPS["image"]].count
    return {
        "replay_rate": rate,
        "frames_in": frames_in,
        "frames_out": {t: counts.get(f"{ns}/{t}", 0) for t in OUTPUTS},
        "segmentation": stats["segmentation"],
        "costmap": stats["costmap"],
        "latency_ms_from_camera_info_receipt": {
            t: {k: s[k] for k in ("median", "p90", "n")}
            for t, v in e2e.items() if v and (s := timing_summary(v, digits=1))
        },  # fmt: skip
        "node_exit_status": codes,
        "params_files": [str(p) for p in params_files],
        "overrides": overrides,
    }


def node_stats(arrays: list[tuple[int, Any]], node_fqn: str) -> dict[str, Any]:
    """A node's last full report on ``/diagnostics`` (``diagnostics.stats_from_statuses``), {} if none arrived."""
    for _, arr in reversed(arrays):
        statuses = [s for s in arr.status if s.hardware_id == node_fqn]
        if any(s.name.endswith(": frames") for s in statuses):
            return stats_from_statuses(statuses)
    return {}


def summary_markdown(s: dict[str, Any]) -> str:
    """A human-readable summary."""
    lines = ["# seg_perception demo summary", "",
             f"- frames in (colour images replayed at rate {s['replay_rate']}): {s['frames_in']}",
             f"- frames out: {s['frames_out']}", ""]  # fmt: skip
    for node in ("segmentation", "costmap"):
        st = s.get(node) or {}
        lines.append(f"## {node} node")
        lines.append(f"- frames in {st.get('frames_in')}, out {st.get('frames_out')}, drops {st.get('drops')}")
        lines.append("")
        lines.append("| stage | mean ms | median ms | p90 ms | n |")
        lines.append("|---|---|---|---|---|")
        for stage, v in (st.get("stage_ms") or {}).items():
            lines.append(f"| {stage} | {v['mean']} | {v['median']} | {v['p90']} | {v['n']} |")
        lines.append("")
    lines.append("## latency from camera_info receipt (recorder clock)")
    for t, v in s.get("latency_ms_from_camera_info_receipt", {}).items():
        lines.append(f"- {t}: median {v['median']} ms, p90 {v['p90']} ms (n={v['n']})")
    lines.append("")
    lines.append(f"Wall time {s.get('wall_s')} s; node exit statuses {s['node_exit_status']}.")
    return "\n".join(lines) + "\n"


def render_outputs(
    out: Path, msgs: dict[str, list[tuple[int, Any]]], params_files: list[Path], every: int
) -> list[Path]:
    """Render recorded outputs (overlay + cloud top view + both grids) for every ``every``-th frame and the last."""
    ns = DEFAULT_NAMESPACE
    extras = msgs.get(f"{ns}/label_info_json")
    info = json.loads(extras[0][1].data) if extras else None
    lut = palette_array([c["color"] for c in info["classes"]]) if info else palette_array(
        get_model_spec("espnetv2_city").palette)  # fmt: skip
    mapper, settings = build_costmap_pipeline(load_node_params(params_files, "costmap"))
    # every transform the nodes were sent, kept (renders look up any stamp afterwards)
    tf = BagTf([out / "input_bag"], time_jump_ns=2**62, cache_s=1e7)
    tf.advance_to(2**62)
    poser = CloudPoser(tf.buffer, settings.global_frame, settings.robot_base_frame,
                       int(settings.transform_tolerance_s * 1e9), math.inf)  # fmt: skip

    overlays = {convert.stamp_to_ns(m.header.stamp): m for _, m in msgs.get(f"{ns}/overlay", [])}
    fused_in = msgs.get(f"{ns}/fused_points", [])
    fused_msgs = sorted(((convert.stamp_to_ns(m.header.stamp), m) for _, m in fused_in), key=lambda sm: sm[0])
    clouds = {convert.stamp_to_ns(m.header.stamp): m for _, m in msgs.get(f"{ns}/semantic_points", [])}
    grids: defaultdict[str, dict[int, Any]] = defaultdict(dict)
    for name in ("drivable_grid", "obstacle_grid"):
        for _, m in msgs.get(f"{ns}/{name}", []):
            grids[name][convert.stamp_to_ns(m.header.stamp)] = m
    stamps = sorted(set(overlays) & set(clouds) & set(grids["drivable_grid"]) & set(grids["obstacle_grid"]))
    chosen = [s for i, s in enumerate(stamps) if every and i % every == 0]
    if stamps and stamps[-1] not in chosen:
        chosen.append(stamps[-1])
    (out / "renders").mkdir(exist_ok=True)
    written = []
    for st in chosen:
        xyz, labels, _ = cloud_arrays(convert.msg_to_cloud(clouds[st]))
        try:
            pose = poser.pose(st, clouds[st].header.frame_id, mapper.cfg.ground_height_m)
        except InputRejected:
            continue
        pts = transform_points(pose.t_grid_camera, xyz)
        g = grids["drivable_grid"][st]
        geo = GridGeometry(g.info.origin.position.x, g.info.origin.position.y, g.info.resolution,
                           g.info.width, g.info.height)  # fmt: skip
        before = [m for s, m in fused_msgs if s <= st]
        fused = None
        if before:
            f = convert.msg_to_cloud(before[-1]).reshape(-1)
            fused = (np.stack([f["x"], f["y"], f["z"]], axis=-1), unpack_rgb(f["rgb"]))
        panel = render_panel(
            convert.image_to_array(overlays[st]), pts, lut[np.minimum(labels, 255)],
            convert.grid_from_msg(g), convert.grid_from_msg(grids["obstacle_grid"][st]), geo,
            f"frame stamp {st / 1e9:.1f} s", fused,
        )  # fmt: skip
        path = out / "renders" / f"frame_{stamps.index(st):03d}.png"
        cv2.imwrite(str(path), panel[:, :, ::-1])
        written.append(path)
    return written


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``seg-perception demo``."""
    p.add_argument("--preset", choices=sorted(PRESETS), default="kitti",
                   help="kitti: street, Cityscapes model, single-frame grids; kitchen: indoor 7-Scenes with odometry, "
                        "PASCAL VOC model, ground fit and temporal fusion (default kitti)")  # fmt: skip
    p.add_argument("--data", type=Path, help="RGB-D frame folder (default: the preset's folder in ../shared/data)")
    p.add_argument("--weights", help="weights file or folder (default: $SEG_PERCEPTION_MODEL_DIR, then user cache)")
    p.add_argument("-o", "--output", type=Path, default=Path("out/demo"), help="output folder (default out/demo)")
    p.add_argument("--rate", type=float, help="replay speed factor (default: the preset's, 0.25 / 0.1)")
    p.add_argument("--frames", type=int, default=0, help="use the first N frames only (default: all)")
    p.add_argument("--loops", type=int, default=1, help="replay passes (default 1; more = a bag loop, time jumps back)")
    p.add_argument("--params-file", type=Path, action="append", help="YAML parameter file(s) (default: demo set)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE", help="parameter override")
    p.add_argument("--render-every", type=int, help="render every N-th frame (default: the preset's, 10 / 30)")
    p.add_argument("--domain-id", type=int, help="ROS_DOMAIN_ID (default: from the process id)")


def run(args: argparse.Namespace) -> int:
    """Run the demo and print where the results are."""
    try:
        data, files, rate, every = PRESETS[args.preset]
        s = run_demo(args.data or Path(data), args.output, args.weights, args.rate or rate, args.frames,
                     args.params_file or [config_path(f) for f in files], args.param, args.domain_id,
                     args.render_every or every, loops=args.loops)  # fmt: skip
    except RuntimeError as e:
        print(f"demo failed: {e}", file=sys.stderr)
        return 1
    print((args.output / "summary.md").read_text())
    print(f"renders: {args.output / 'renders'}")
    ok = s["frames_out"]["obstacle_grid"] > 0 and s["frames_out"]["drivable_grid"] > 0
    return 0 if ok else 1
