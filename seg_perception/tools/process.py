"""``seg-perception process BAG -o OUT``: the whole pipeline offline, no DDS.

Reads the colour, depth and camera_info topics of a rosbag2 (as written by ``bag-from-frames`` or recorded from a
camera driver), pairs colour and depth by stamp exactly as the segmentation node does, runs the same core
(``SegmentationPipeline`` + ``CostmapPipeline``) with the same YAML parameters, and writes

- ``OUT/bag``: a rosbag2 with the nodes' topics (``labels``, ``confidence``, ``overlay``, ``semantic_points``,
  ``drivable_grid``, ``obstacle_grid``, ``semantic_grid``, ..., ``label_info`` (vision_msgs/LabelInfo, also as
  ``semantic_grid/label_info``) and ``label_info_json``) under
  ``--namespace`` (message time = input stamp), and ``/diagnostics``: each node's ``frames`` status every
  ``diagnostic_updater.period`` (1 s) of bag time and at the end (``OfflineDiagnostics``);
- ``OUT/renders/``: PNG panels per rendered frame (overlay, bird's-eye view of the cloud by class, both grids);
- ``OUT/summary.json``: frames, drops and per-stage timings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from seg_perception.bag import SalvageReport, recorded_count
from seg_perception.core.config import from_params
from seg_perception.core.mapping.grid import GridGeometry
from seg_perception.core.mapping.pipeline import GridResult
from seg_perception.core.segmentation.class_info import label_info_json
from seg_perception.core.segmentation.pipeline import FrameResult, SegmentationConfig, SegmentationPipeline
from seg_perception.core.segmentation.runtime import RUNTIMES
from seg_perception.resources import config_path
from seg_perception.ros.diagnostics import PERIOD, diagnostic_array, frames_status
from seg_perception.ros.outputs import costmap_messages, msgtype_of, segmentation_messages
from seg_perception.tools.common import load_node_params, parse_overrides, parse_size, staged_output
from seg_perception.tools.offline import BagOut, FrameStats, OfflineMapper, aligned_flicker, segmented_frames
from seg_perception.tools.render import render_panel
from seg_perception.workspace import DEFAULT_NAMESPACE, DEFAULT_REMAPS


def process_bag(
    bag: Path,
    out: Path,
    params_files: list[Path],
    seg_overrides: dict[str, Any] | None = None,
    costmap_overrides: dict[str, Any] | None = None,
    topics: dict[str, str] | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    render_every: int = 1,
    limit: int = 0,
    storage: str = "mcap",
    progress: bool = True,
) -> dict[str, Any]:
    """Run the pipeline over ``bag``; write the output bag, renders and summary into ``out``.

    Everything is written into a temporary folder beside ``out`` that is renamed to ``out`` only when the run
    completes: a failed run leaves nothing that looks like a result. A cut or damaged recording (MCAP or sqlite3) is
    processed up to / around the damage (``bag.read_messages``) and the summary's ``input_damage`` says what was lost.

    Returns:
        The summary dict also written to ``out/summary.json``.
    Raises:
        ValueError: unreadable bag, the input topics are missing from it, or ``out`` exists and is not empty.
        WeightsError / KeyError: as ``SegmentationPipeline``.
    """
    with staged_output(out) as work:
        work.mkdir()
        return _process_into(bag, work, params_files, seg_overrides, costmap_overrides, topics, namespace,
                             render_every, limit, storage, progress)  # fmt: skip


def _process_into(
    bag: Path, out: Path, params_files: list[Path], seg_overrides: dict[str, Any] | None,
    costmap_overrides: dict[str, Any] | None, topics: dict[str, str] | None, namespace: str, render_every: int,
    limit: int, storage: str, progress: bool,
) -> dict[str, Any]:  # fmt: skip
    """``process_bag``'s work, written into ``out`` (an existing empty folder)."""
    topics = dict(DEFAULT_REMAPS, **(topics or {}))
    seg_params = load_node_params(params_files, "segmentation", seg_overrides)
    map_params = load_node_params(params_files, "costmap", costmap_overrides)
    pipe = SegmentationPipeline(from_params(SegmentationConfig, seg_params))
    offline = OfflineMapper(bag, map_params, pipe.spec)
    periods = {"segmentation": seg_params.get(PERIOD, 1.0), "costmap": map_params.get(PERIOD, 1.0)}
    (out / "renders").mkdir(exist_ok=True)
    writer = BagOut(out / "bag", storage)
    run = OfflineRun(pipe, offline, writer, OfflineDiagnostics(writer, namespace, periods), out / "renders",
                     render_every)  # fmt: skip
    t_start = time.perf_counter()
    damage = SalvageReport()
    try:
        for frame, result, cloud in segmented_frames(bag, pipe, topics, run.stats, limit, progress, damage):
            run.add(frame, result, cloud)
        run.finish()
    finally:
        writer.close()
    stats = run.stats
    stats.rejected.update(offline.rejected)
    summary = {
        "input_bag": str(bag),
        "model": pipe.spec.name,
        "device": str(pipe.segmenter.device),
        "network_input": f"{pipe.segmenter.input_hw[1]}x{pipe.segmenter.input_hw[0]}",
        **stats.summary(),
        "fusion": offline.mapper.fusion is not None,
        "grid_flicker_mean": {k: round(float(np.nanmean(v)), 5) if v else None for k, v in run.flicker.items()},
        "wall_s": round(time.perf_counter() - t_start, 2),
        "input_damage": damage.describe() if damage.damaged else None,
        "frames_recorded": recorded_count(bag, topics["image"]),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


class OfflineDiagnostics:
    """``/diagnostics`` in the output bag, as the launched nodes publish it (``ros/diagnostics.py``): per node a
    DiagnosticArray with its ``frames`` status (``diagnostics.frames_status``, the function the nodes' Updater
    calls; names ``"<node>: frames"``, ``hardware_id`` ``<namespace>/<node>``), stamped with bag time, at the first
    cloud at or after each ``diagnostic_updater.period`` of bag time and once at the end.

    The ``stage timings`` and ``input <topic>`` statuses are left out: their values are wall-clock (timings,
    arrival rates), and the same bag must give a bit-identical output bag; the timings are in ``summary.json``.
    """

    NODES = ("segmentation", "costmap")

    def __init__(self, writer: BagOut, namespace: str, periods_s: dict[str, float]) -> None:
        self.writer = writer
        self.ns = namespace.rstrip("/")
        self.period_ns = {node: int(periods_s[node] * 1e9) for node in self.NODES}
        self.next_ns: dict[str, int | None] = dict.fromkeys(self.NODES)

    def update(self, t_ns: int, counters: dict[str, dict[str, Any]], final: bool = False) -> None:
        """Write the statuses of ``counters`` (``FrameStats.node_counters``) at bag time ``t_ns`` [ns] where a
        period has passed (the first period counts from the first call), or for every node when ``final``."""
        from seg_perception.ros.convert import ns_to_stamp

        for node in self.NODES:
            due = self.next_ns[node]
            if due is None:
                due = self.next_ns[node] = t_ns + self.period_ns[node]
            if not final and t_ns < due:
                continue
            while due <= t_ns:
                due += self.period_ns[node]
            self.next_ns[node] = due
            array = diagnostic_array(ns_to_stamp(t_ns), node, f"{self.ns}/{node}",
                                     {"frames": frames_status(counters[node])})  # fmt: skip
            self.writer.write("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray", array, t_ns)


class OfflineRun:
    """The costmap side of one ``process`` run: per cloud (``add``) the costmap update and, as the nodes publish
    them, the outputs into the bag, a render, grid flicker and ``/diagnostics``; ``finish`` writes the fused cloud
    and the final ``/diagnostics``."""

    def __init__(
        self, pipe: SegmentationPipeline, offline: OfflineMapper, writer: BagOut, diagnostics: OfflineDiagnostics,
        renders: Path, render_every: int,
    ) -> None:  # fmt: skip
        from std_msgs.msg import Header, String

        from seg_perception.ros import convert

        self.pipe, self.offline, self.writer, self.diagnostics = pipe, offline, writer, diagnostics
        self.renders, self.render_every = renders, render_every
        self.ns = diagnostics.ns
        self.stats = FrameStats()
        self.flicker: dict[str, list[float]] = {"drivable_grid": [], "obstacle_grid": []}
        self.previous: dict[str, tuple[np.ndarray, GridGeometry]] = {}
        self.last_t_ns: int | None = None  # bag time of the last cloud
        self.last_out: tuple[int, Any] | None = None  # (bag time, grid header) of the last output
        spec = pipe.spec
        self.label_info = convert.label_info_msg(spec.categories, Header())
        self.label_info_extras = String(data=label_info_json(spec.name, spec.ontology, spec.categories, spec.palette))

    def add(self, frame: Any, result: FrameResult, cloud: np.ndarray) -> None:  # noqa: ANN401
        """One cloud of ``segmented_frames``: grids and outputs, or a counted costmap drop; then ``/diagnostics``."""
        from seg_perception.ros.convert import stamp_to_ns

        h = frame.image.header
        t_ns = stamp_to_ns(h.stamp)
        res = self.offline.update(cloud, t_ns, h.frame_id, frame.k)
        if isinstance(res, str):
            self.stats.drops[res] += 1
            self.stats.map_drops[res] += 1
        else:
            self._write_outputs(frame, result, res[0], res[1], t_ns)
        self.last_t_ns = t_ns
        self.diagnostics.update(t_ns, self.stats.node_counters(self.offline.rejected))

    def _write_outputs(self, frame: Any, result: FrameResult, grids: GridResult, grid_frame: str, t_ns: int) -> None:  # noqa: ANN401
        from std_msgs.msg import Header

        h = frame.image.header
        if self.stats.frames_out == 0:
            self.label_info.header.stamp = h.stamp
            self.writer.write(f"{self.ns}/label_info", "vision_msgs/msg/LabelInfo", self.label_info, t_ns)
            self.writer.write(f"{self.ns}/label_info_json", "std_msgs/msg/String", self.label_info_extras, t_ns)
            self.writer.write(f"{self.ns}/semantic_grid/label_info", "vision_msgs/msg/LabelInfo", self.label_info,
                              t_ns)  # fmt: skip
        gh = Header(stamp=h.stamp, frame_id=grid_frame)
        outputs = {**segmentation_messages(result, h), **costmap_messages(grids, gh, self.offline.robot_xy)}
        for name, msg in outputs.items():  # the nodes' own messages, in the order they publish them
            self.writer.write(f"{self.ns}/{name}", msgtype_of(msg), msg, t_ns)
        for name, occ in (("drivable_grid", grids.drivable_occupancy), ("obstacle_grid", grids.obstacle_occupancy)):
            if name in self.previous:
                self.flicker[name].append(aligned_flicker(*self.previous[name], occ, grids.geometry))
            self.previous[name] = (occ, grids.geometry)
        for k, v in grids.timings_ms.items():
            self.stats.timings[k].append(v)
        if self.render_every and self.stats.frames_out % self.render_every == 0:
            overlay = result.overlay if result.overlay is not None else frame.rgb
            panel = render_panel(overlay, grids.points, self.pipe.lut[grids.labels], grids.drivable_occupancy,
                                 grids.obstacle_occupancy,
                                 grids.geometry, f"frame {self.stats.frames_out}  t={t_ns / 1e9:.2f} s",
                                 projected=grids.projected)  # fmt: skip
            cv2.imwrite(str(self.renders / f"frame_{self.stats.frames_out:04d}.png"), panel[:, :, ::-1])
        self.stats.frames_out += 1
        self.last_out = (t_ns, gh)

    def finish(self) -> None:
        """The fused cloud (with fusion) at the last output, and the final ``/diagnostics`` (after the pairing
        queues were flushed, so every frame is counted)."""
        from seg_perception.ros import convert

        voxels = self.offline.mapper.voxels
        if voxels is not None and self.last_out is not None:
            t_ns, gh = self.last_out
            fused = voxels.to_cloud(np.asarray(self.pipe.spec.palette, dtype=np.uint8))
            self.writer.write(f"{self.ns}/fused_points", "sensor_msgs/msg/PointCloud2", convert.cloud_to_msg(fused, gh),
                              t_ns)  # fmt: skip
        if self.last_t_ns is not None:
            self.diagnostics.update(self.last_t_ns, self.stats.node_counters(self.offline.rejected), final=True)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``seg-perception process``."""
    p.add_argument("bag", type=Path, help="input rosbag2 folder")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder (bag/, renders/, summary.json)")
    p.add_argument("--params-file", type=Path, action="append", help="YAML parameter file(s); default: package config")
    p.add_argument("--weights", help="weights file or folder (overrides the YAML)")
    p.add_argument("--model", help="model name (overrides the YAML)")
    p.add_argument("--device", help="auto | cpu | cuda[:N] (overrides the YAML)")
    p.add_argument("--input-size", type=parse_size, help="network input WxH (overrides the YAML)")
    p.add_argument("--runtime", choices=RUNTIMES, help="network runtime (overrides the YAML; default auto)")
    p.add_argument("--remap", action="append", default=[], metavar="FROM:=TO", help="input topic, e.g. image:=/cam/rgb")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                   help="parameter override for both nodes, e.g. -p use_fusion:=true")  # fmt: skip
    p.add_argument("--render-every", type=int, default=1, help="render every N-th output frame (0 = none)")
    p.add_argument("--limit", type=int, default=0, help="stop after N colour images")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")


def run(args: argparse.Namespace) -> int:
    """Process the bag and print the summary."""
    overrides = parse_overrides(args.param)
    seg: dict[str, Any] = dict(overrides)
    for key in ("weights", "model", "device", "runtime"):
        if getattr(args, key):
            seg[key] = getattr(args, key)
    if args.input_size:
        seg.update(input_width=args.input_size.width, input_height=args.input_size.height)
    from seg_perception.tools.replay import parse_remaps

    topics = parse_remaps(args.remap)  # ValueError (a usage error) for an item that is not from:=to
    summary = process_bag(
        args.bag, args.output, args.params_file or [config_path("seg_perception.yaml")], seg, overrides, topics,
        render_every=args.render_every, limit=args.limit, storage=args.storage,
    )  # fmt: skip
    print(json.dumps(summary, indent=2))
    if summary["input_damage"]:
        print(f"damaged input: read {summary['frames_in']} of ~{summary['frames_recorded'] or '?'} frames; "
              f"{summary['input_damage']}", file=sys.stderr)  # fmt: skip
    return 0 if summary["frames_out"] > 0 else 1
