"""``seg-perception process BAG -o OUT``: the whole pipeline offline, no DDS.

Reads the colour, depth and camera_info topics of a rosbag2 (as written by ``bag-from-frames`` or recorded from a
camera driver), pairs colour and depth by stamp exactly as the segmentation node does, runs the same core
(``SegmentationPipeline`` + ``GridMapper``) with the same YAML parameters, and writes

- ``OUT/bag``: a rosbag2 with ``labels``, ``confidence``, ``overlay``, ``semantic_points``, ``drivable_grid``,
  ``obstacle_grid``, ``semantic_grid``, ``label_info`` (vision_msgs/LabelInfo, also as ``semantic_grid/label_info``)
  and ``label_info_json`` under ``--namespace``
  (message time = input stamp);
- ``OUT/renders/``: PNG panels per rendered frame (overlay, bird's-eye view of the cloud by class, both grids);
- ``OUT/summary.json``: frames, drops and per-stage timings.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from seg_perception.bag import SalvageReport, open_writer, read_messages, read_topics, recorded_count, typestore
from seg_perception.core.config import from_params
from seg_perception.core.errors import InputRejected
from seg_perception.core.geometry.camera import Intrinsics
from seg_perception.core.mapping.grid import GridGeometry
from seg_perception.core.mapping.ground_projection import RayCache
from seg_perception.core.mapping.mapper import ClassRules, GridResult, build_mapper, cloud_arrays
from seg_perception.core.mapping.ontology import load_ontology
from seg_perception.core.mapping.stability import aligned_overlap, grid_flicker
from seg_perception.core.segmentation.class_info import label_info_json
from seg_perception.core.segmentation.pipeline import FrameResult, SegmentationConfig, SegmentationPipeline
from seg_perception.core.segmentation.runtime import RUNTIMES
from seg_perception.resources import config_path
from seg_perception.ros.outputs import costmap_messages, msgtype_of, segmentation_messages
from seg_perception.ros.pose_source import BagTf, CloudPoser
from seg_perception.tools.common import load_node_params, parse_overrides, parse_size
from seg_perception.tools.render import render_panel
from seg_perception.workspace import DEFAULT_NAMESPACE, DEFAULT_REMAPS


@dataclass
class FrameStats:
    """Counters of an offline run."""

    frames_in: int = 0
    frames_out: int = 0
    drops: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    timings: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures: frames, drops and per-stage median / mean [ms]."""
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "drops": dict(self.drops),
            "rejected": dict(self.rejected),
            "stage_ms_median": {k: round(statistics.median(v), 2) for k, v in self.timings.items()},
            "stage_ms_mean": {k: round(statistics.fmean(v), 2) for k, v in self.timings.items()},
        }


def segmented_frames(
    bag: Path, pipe: SegmentationPipeline, topics: dict[str, str], stats: FrameStats, limit: int = 0,
    progress: bool = True, report: SalvageReport | None = None,
) -> Iterator[tuple[Any, FrameResult, np.ndarray]]:  # fmt: skip
    """Yield (``RGBDInput``, ``FrameResult``, cloud) for every colour/depth pair of a bag, as the segmentation node
    would (frames without a cloud are counted as ``no_cloud`` drops). A damaged MCAP bag is read up to the damage
    (``bag.salvage_mcap``); ``report`` says what was lost.

    Raises:
        ValueError: unreadable bag, or the input topics are missing from it.
    """
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, Image
    from tqdm import tqdm

    from seg_perception.ros.assembler import RGBDAssembler

    available = read_topics(bag)
    missing = [t for t in (topics["image"], topics["camera_info"]) if t not in available]
    if missing:
        raise ValueError(f"{bag}: topic(s) {missing} not in the bag; it has {sorted(available)}")
    assembler = RGBDAssembler(lambda r, _detail: stats.drops.update([r]),
                              slop_ns=int(pipe.cfg.sync_slop_s * 1e9), queue_depth=30,
                              max_pixels=pipe.cfg.max_image_pixels,
                              reject=lambda r, _detail: stats.rejected.update([r]))  # fmt: skip
    wanted = {topics["image"]: "image", topics["depth"]: "depth", topics["camera_info"]: "camera_info"}
    n_images = available[topics["image"]].count
    with tqdm(total=min(n_images, limit) if limit else n_images, unit="frame", disable=not progress) as bar:
        for m in read_messages(bag, wanted, report):
            kind = wanted[m.topic]
            if kind == "camera_info":
                frame = assembler.add_camera_info(deserialize_message(m.data, CameraInfo))
            elif kind == "image":
                if limit and stats.frames_in >= limit:
                    break
                stats.frames_in += 1
                bar.update(1)
                frame = assembler.add_image(deserialize_message(m.data, Image))
            else:
                frame = assembler.add_depth(deserialize_message(m.data, Image))
            if frame is not None:
                result = pipe.process(frame.rgb, frame.depth, frame.k)
                for k, v in result.timings_ms.items():
                    stats.timings[k].append(v)
                if result.cloud is None:  # publish_cloud false, or no depth: nothing for the costmap
                    stats.drops["no_cloud"] += 1
                    continue
                yield frame, result, result.cloud
    assembler.flush()  # colour frames whose depth or camera_info never came are counted, not lost


class OfflineMapper:
    """The costmap node's per-cloud logic for bags: the bag's /tf_static and /tf fed into a tf2 buffer as the node
    receives them (``BagTf``), ``CloudPoser.pose``, ``GridMapper.update`` with the camera_info rays of ground
    projection (the functions the node calls, so offline equals online). ``rejected`` counts refused camera_info
    (``camera_info_stride``) as the node's ``rejected``."""

    def __init__(self, bag: Path, params: dict[str, Any], spec: Any) -> None:  # noqa: ANN401
        self.mapper, self.settings = build_mapper(params, spec.num_classes)
        onto = load_ontology(self.settings.ontology or spec.ontology, spec.categories)
        self.mapper.rules = ClassRules.from_ontology(onto, spec.categories, self.mapper.cfg)
        s = self.settings
        self.tolerance_ns = int(s.transform_tolerance_s * 1e9)
        self.robot_xy: tuple[float, float] = (0.0, 0.0)
        self.t_grid_camera: np.ndarray | None = None  # the last cloud's camera pose
        self.rays = RayCache()
        self.rejected: Counter[str] = Counter()
        self.tf = BagTf([bag], int(s.time_jump_s * 1e9), on_time_jump=lambda _t, _b: self.mapper.reset())
        self.poser = CloudPoser(self.tf.buffer, s.global_frame, s.robot_base_frame, self.tolerance_ns, s.max_jump_m,
                                lambda _d: self.mapper.reset())  # fmt: skip

    def update(
        self, cloud: np.ndarray, stamp_ns: int, frame_id: str, k: Intrinsics | None = None
    ) -> tuple[GridResult, str] | str:
        """(grids, grid frame) for one (organized) cloud, or the drop reason (no usable transform for its stamp).
        ``k``: the camera_info of the colour image the cloud was made from (ground projection; None = none).

        Transforms are fed up to the cloud's stamp plus ``transform_tolerance_s``: what the live node has received
        by the time the cloud, which the segmentation takes a while to produce, reaches it.
        """
        self.tf.advance_to(stamp_ns + self.tolerance_ns)
        try:
            pose = self.poser.pose(stamp_ns, frame_id, self.mapper.cfg.ground_height_m)
        except InputRejected as e:
            return e.reason
        self.robot_xy, self.t_grid_camera = pose.robot_xy, pose.t_grid_camera
        xyz, labels, conf = cloud_arrays(cloud)
        rays = None
        if k is not None and self.mapper.projection is not None:
            try:
                rays = self.rays.rays(k, cloud.shape if cloud.ndim == 2 else (1, cloud.size))
            except InputRejected as e:
                self.rejected[e.reason] += 1
        grids = self.mapper.update(xyz, labels, conf, pose.t_grid_camera, pose.robot_xy, pose.ground_z,
                                   stamp_ns * 1e-9, rays)  # fmt: skip
        return grids, pose.frame


class BagOut:
    """rosbag2 writer for rclpy messages (serialized with rclpy, written with rosbags)."""

    def __init__(self, path: Path, storage: str = "mcap") -> None:
        self.ts = typestore()
        self.writer = open_writer(path, storage)
        self.conns: dict[str, Any] = {}

    def write(self, topic: str, msgtype: str, msg: Any, t_ns: int) -> None:  # noqa: ANN401
        """Serialize ``msg`` (an rclpy message) and store it at time ``t_ns``.

        rclpy's serializer leaves the CDR alignment padding uninitialised (whatever was in memory), so the message is
        re-serialised by rosbags, which writes zeros: the same bag processed twice gives bit-identical output.
        """
        from rclpy.serialization import serialize_message

        if topic not in self.conns:
            self.conns[topic] = self.writer.add_connection(topic, msgtype, typestore=self.ts)
        data = self.ts.serialize_cdr(self.ts.deserialize_cdr(serialize_message(msg), msgtype), msgtype)
        self.writer.write(self.conns[topic], t_ns, bytes(data))

    def close(self) -> None:
        """Finish the bag (writes metadata.yaml)."""
        self.writer.close()


def aligned_flicker(prev: np.ndarray, prev_geo: GridGeometry, cur: np.ndarray, geo: GridGeometry) -> float:
    """``stability.grid_flicker`` over the cells two lattice-aligned grids share; NaN when they share none."""
    pair = aligned_overlap(prev, prev_geo, cur, geo)
    return grid_flicker(*pair) if pair is not None else float("nan")


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
    completes: a failed run leaves nothing that looks like a result. A cut or damaged MCAP recording is processed up
    to the damage (``bag.salvage_mcap``) and the summary's ``input_damage`` says what was lost.

    Returns:
        The summary dict also written to ``out/summary.json``.
    Raises:
        ValueError: unreadable bag, the input topics are missing from it, or ``out`` exists and is not empty.
        WeightsError / KeyError: as ``SegmentationPipeline``.
    """
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not empty: choose a new output folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        summary = _process_into(bag, work, params_files, seg_overrides, costmap_overrides, topics, namespace,
                                render_every, limit, storage, progress)  # fmt: skip
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if out.exists():
        out.rmdir()
    os.replace(work, out)
    return summary


def _process_into(
    bag: Path, out: Path, params_files: list[Path], seg_overrides: dict[str, Any] | None,
    costmap_overrides: dict[str, Any] | None, topics: dict[str, str] | None, namespace: str, render_every: int,
    limit: int, storage: str, progress: bool,
) -> dict[str, Any]:  # fmt: skip
    """``process_bag``'s work, written into ``out`` (an existing empty folder)."""
    from std_msgs.msg import Header, String

    from seg_perception.ros import convert

    topics = dict(DEFAULT_REMAPS, **(topics or {}))
    seg_cfg = from_params(SegmentationConfig, load_node_params(params_files, "segmentation", seg_overrides))
    pipe = SegmentationPipeline(seg_cfg)
    spec = pipe.spec
    offline = OfflineMapper(bag, load_node_params(params_files, "costmap", costmap_overrides), spec)

    renders = out / "renders"
    renders.mkdir(exist_ok=True)
    writer = BagOut(out / "bag", storage)
    ns = namespace.rstrip("/")
    label_info = convert.label_info_msg(spec.categories, Header())
    label_info_extras = String(data=label_info_json(spec.name, spec.ontology, spec.categories, spec.palette))
    stats = FrameStats()
    flicker: dict[str, list[float]] = {"drivable_grid": [], "obstacle_grid": []}
    previous: dict[str, tuple[np.ndarray, GridGeometry]] = {}
    t_start = time.perf_counter()
    try:
        damage = SalvageReport()
        for frame, result, cloud in segmented_frames(bag, pipe, topics, stats, limit, progress, damage):
            h = frame.image.header
            t_ns = convert.stamp_to_ns(h.stamp)
            res = offline.update(cloud, t_ns, h.frame_id, frame.k)
            if isinstance(res, str):
                stats.drops[res] += 1
                continue
            grids, grid_frame = res
            if stats.frames_out == 0:
                label_info.header.stamp = h.stamp
                writer.write(f"{ns}/label_info", "vision_msgs/msg/LabelInfo", label_info, t_ns)
                writer.write(f"{ns}/label_info_json", "std_msgs/msg/String", label_info_extras, t_ns)
                writer.write(f"{ns}/semantic_grid/label_info", "vision_msgs/msg/LabelInfo", label_info, t_ns)
            geo = grids.geometry
            gh = Header(stamp=h.stamp, frame_id=grid_frame)
            outputs = {**segmentation_messages(result, h), **costmap_messages(grids, gh, offline.robot_xy)}
            for name, msg in outputs.items():  # the nodes' own messages, in the order they publish them
                writer.write(f"{ns}/{name}", msgtype_of(msg), msg, t_ns)
            for name, occ in (("drivable_grid", grids.drivable), ("obstacle_grid", grids.obstacle)):
                if name in previous:
                    flicker[name].append(aligned_flicker(*previous[name], occ, geo))
                previous[name] = (occ, geo)
            for k, v in grids.timings_ms.items():
                stats.timings[k].append(v)
            if render_every and stats.frames_out % render_every == 0:
                overlay = result.overlay if result.overlay is not None else frame.rgb
                panel = render_panel(overlay, grids.points, pipe.lut[grids.labels], grids.drivable, grids.obstacle,
                                     geo, f"frame {stats.frames_out}  t={t_ns / 1e9:.2f} s",
                                     projected=grids.projected)  # fmt: skip
                cv2.imwrite(str(renders / f"frame_{stats.frames_out:04d}.png"), panel[:, :, ::-1])
            stats.frames_out += 1
        voxels = offline.mapper.voxels
        if voxels is not None and stats.frames_out:
            fused = voxels.to_cloud(np.asarray(spec.palette, dtype=np.uint8))
            writer.write(f"{ns}/fused_points", "sensor_msgs/msg/PointCloud2", convert.cloud_to_msg(fused, gh), t_ns)
    finally:
        writer.close()
    stats.rejected.update(offline.rejected)
    summary = {
        "input_bag": str(bag),
        "model": spec.name,
        "device": str(pipe.segmenter.device),
        "network_input": list(pipe.segmenter.input_size),
        **stats.summary(),
        "fusion": offline.mapper.fusion is not None,
        "grid_flicker_mean": {k: round(float(np.nanmean(v)), 5) if v else None for k, v in flicker.items()},
        "wall_s": round(time.perf_counter() - t_start, 2),
        "input_damage": damage.describe() if damage.damaged else None,
        "frames_recorded": recorded_count(bag, topics["image"]),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


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
    topics = dict(r.split(":=", 1) for r in args.remap)
    summary = process_bag(
        args.bag, args.output, args.params_file or [config_path("seg_perception.yaml")], seg, overrides, topics,
        render_every=args.render_every, limit=args.limit, storage=args.storage,
    )  # fmt: skip
    print(json.dumps(summary, indent=2))
    if summary["input_damage"]:
        print(f"damaged input: read {summary['frames_in']} of ~{summary['frames_recorded'] or '?'} frames; "
              f"{summary['input_damage']}", file=sys.stderr)  # fmt: skip
    return 0 if summary["frames_out"] > 0 else 1
