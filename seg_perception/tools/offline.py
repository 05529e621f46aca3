"""The nodes' logic for bags, shared by the offline tools (``process``, ``stability``, ``projection-check``).

``segmented_frames`` pairs a bag's colour, depth and camera_info as the segmentation node does and runs its core;
``OfflineMapper`` is the costmap node's per-cloud logic with the bag's TF; ``BagOut`` writes rclpy messages into a
rosbag2 deterministically; ``FrameStats`` counts frames, drops and timings as the nodes do.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seg_perception.bag import SalvageReport, cdr_bytes, open_writer, read_messages, read_topics, typestore
from seg_perception.core.errors import InputRejected
from seg_perception.core.geometry.camera import Intrinsics
from seg_perception.core.geometry.cloud import cloud_arrays
from seg_perception.core.mapping.grid import GridGeometry
from seg_perception.core.mapping.ground_projection import RayCache
from seg_perception.core.mapping.ontology import load_ontology
from seg_perception.core.mapping.pipeline import ClassRules, GridResult, build_costmap_pipeline
from seg_perception.core.mapping.stability import aligned_overlap, grid_flicker
from seg_perception.core.segmentation.pipeline import FrameResult, SegmentationPipeline
from seg_perception.core.timing import timing_summary
from seg_perception.ros.pose_source import BagTf, CloudPoser


@dataclass
class FrameStats:
    """Counters of an offline run.

    ``frames_in``: colour images; ``clouds``: frames the segmentation turned into a cloud; ``frames_out``: frames
    with grids; ``drops``: every dropped frame by reason, of which ``map_drops`` the costmap's (no transform).
    """

    frames_in: int = 0
    frames_out: int = 0
    drops: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    timings: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    clouds: int = 0
    map_drops: Counter[str] = field(default_factory=Counter)

    def node_counters(self, map_rejected: Counter[str]) -> dict[str, dict[str, Any]]:
        """The two nodes' counters as each counts them (``NodeStats.as_dict()``'s schema without ``stage_ms``):
        ``segmentation`` (colour frames in, clouds out) and ``costmap`` (clouds in, grids out; ``map_rejected``)."""
        seg_drops = self.drops - self.map_drops
        return {
            "segmentation": {"frames_in": self.frames_in, "frames_out": self.clouds, "drops": dict(seg_drops),
                             "pending": self.frames_in - self.clouds - sum(seg_drops.values()),
                             "rejected": dict(self.rejected)},
            "costmap": {"frames_in": self.clouds, "frames_out": self.frames_out, "drops": dict(self.map_drops),
                        "pending": self.clouds - self.frames_out - sum(self.map_drops.values()),
                        "rejected": dict(map_rejected)},
        }  # fmt: skip

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures: frames, drops and per-stage median / mean [ms]."""
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "drops": dict(self.drops),
            "rejected": dict(self.rejected),
            "stage_ms_median": {k: timing_summary(v, digits=2)["median"] for k, v in self.timings.items()},
            "stage_ms_mean": {k: timing_summary(v, digits=2)["mean"] for k, v in self.timings.items()},
        }


def segmented_frames(
    bag: Path, pipe: SegmentationPipeline, topics: dict[str, str], stats: FrameStats, limit: int = 0,
    progress: bool = True, report: SalvageReport | None = None,
) -> Iterator[tuple[Any, FrameResult, np.ndarray]]:  # fmt: skip
    """Yield (``RGBDInput``, ``FrameResult``, cloud) for every colour/depth pair of a bag, as the segmentation node
    would (frames without a cloud are counted as ``no_cloud`` drops). A damaged MCAP or sqlite3 bag is read up to /
    around the damage (``bag.read_messages``); ``report`` says what was lost.

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
                stats.clouds += 1
                yield frame, result, result.cloud
    assembler.flush()  # colour frames whose depth or camera_info never came are counted, not lost


class OfflineMapper:
    """The costmap node's per-cloud logic for bags: the bag's /tf_static and /tf fed into a tf2 buffer as the node
    receives them (``BagTf``), ``CloudPoser.pose``, ``CostmapPipeline.update`` with the camera_info rays of ground
    projection (the functions the node calls, so offline equals online). ``rejected`` counts refused camera_info
    (``camera_info_stride``) as the node's ``rejected``."""

    def __init__(self, bag: Path, params: dict[str, Any], spec: Any) -> None:  # noqa: ANN401
        self.mapper, self.settings = build_costmap_pipeline(params, spec.num_classes)
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
        re-serialised by rosbags (``bag.cdr_bytes``: zeroed and 4-byte padded, as every bag the package writes):
        the same bag processed twice gives bit-identical output.
        """
        from rclpy.serialization import serialize_message

        if topic not in self.conns:
            self.conns[topic] = self.writer.add_connection(topic, msgtype, typestore=self.ts)
        data = cdr_bytes(self.ts, self.ts.deserialize_cdr(serialize_message(msg), msgtype), msgtype)
        self.writer.write(self.conns[topic], t_ns, data)

    def close(self) -> None:
        """Finish the bag (writes metadata.yaml)."""
        self.writer.close()


def aligned_flicker(prev: np.ndarray, prev_geo: GridGeometry, cur: np.ndarray, geo: GridGeometry) -> float:
    """``stability.grid_flicker`` over the cells two lattice-aligned grids share; NaN when they share none."""
    pair = aligned_overlap(prev, prev_geo, cur, geo)
    return grid_flicker(*pair) if pair is not None else float("nan")
