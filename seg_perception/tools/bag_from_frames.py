"""Write an RGB-D frame folder (KITTI or 7-Scenes, see ``core.frames``) into a rosbag2 with ``rosbags`` (no rclpy).

Usage::

    seg-perception bag-from-frames FOLDER -o BAG [--storage mcap|sqlite3] [--start N] [--limit N]
        [--frame-id camera_color_optical_frame] [--topic-prefix /camera] [--mount X Y Z ROLL PITCH YAW]
    python -m seg_perception.tools.bag_from_frames ...   (same arguments)

Topics (all messages of one frame share one header stamp, ``RGBDFrame.stamp_ns``, which is also the bag's
receive time; 10 Hz for KITTI, 30 Hz for 7-Scenes):

=====================================  ======================  =============================================
``<prefix>/color/image_raw``           sensor_msgs/Image       ``rgb8``, step = 3 W, frame ``--frame-id``
``<prefix>/depth/image_raw``           sensor_msgs/Image       ``16UC1`` little-endian, millimetres, 0 = invalid,
                                                               registered to the colour image (same size, same
                                                               intrinsics, same frame id; 7-Scenes is only
                                                               roughly registered, a few pixels at edges)
``<prefix>/color/camera_info``         sensor_msgs/CameraInfo  ``plumb_bob`` with D = 0, K from the folder,
                                                               R = I, P = [K | 0]
``/tf_static`` (once, first stamp)     tf2_msgs/TFMessage      the camera mount (``MOUNTS`` or ``--mount``):
                                                               ``base_link -> camera_link`` (x y z, roll pitch
                                                               yaw of the camera body frame, URDF convention) and
                                                               ``camera_link -> <frame id>`` (the REP-103 optical
                                                               rotation); with ``--camera-link ""`` one transform
                                                               ``base_link -> <frame id>``. Offered QoS
                                                               transient-local (latched), as tf2 publishes it
``/tf`` (7-Scenes only)                tf2_msgs/TFMessage      ``odom -> base_link`` per frame: REP-105, z up,
                                                               the floor at z = 0 below the first camera, x along
                                                               its heading (the dataset's tilted KinectFusion
                                                               world is re-aligned on the floor plane found by
                                                               ``core.gravity.floor_alignment``); T_odom_base =
                                                               T_odom_camera @ inv(T_base_camera), so TF's chain
                                                               gives back the dataset's camera pose
=====================================  ======================  =============================================
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

from seg_perception import cli
from seg_perception.bag import STORAGES, cdr_bytes, open_writer, typestore
from seg_perception.core.geometry.camera import Intrinsics
from seg_perception.core.geometry.pose import mount_transforms
from seg_perception.core.geometry.transforms import camera_to_base, quaternion_from_matrix
from seg_perception.datasets import RGBDFrame, RGBDSequence, SequenceError, open_sequence
from seg_perception.tools.common import staged_output

__all__ = ["BagWriteSummary", "add_arguments", "run", "write_bag"]

INFINITE = QosTime(sec=2147483647, nsec=4294967295)  # "infinite" as rosbag2 writes it
IMAGE = "sensor_msgs/msg/Image"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"

#: Camera mount per dataset layout: (x, y, z) [m] of the camera in base_link and (roll, pitch, yaw) [rad] of its body
#: frame (x forward, y left, z up; pitch > 0 looks down). KITTI: camera 2 of the car, 1.65 m above the road, level.
#: 7-Scenes: a hand-held Kinect, nominally 1.4 m up and pitched ~26 deg down (base_link = below the camera on that
#: nominal mount; the dataset's poses move the camera, TF's chain gives them back exactly).
MOUNTS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "kitti": ((0.0, 0.0, 1.65), (0.0, 0.0, 0.0)),
    "7scenes": ((0.0, 0.0, 1.4), (0.0, 0.45, 0.0)),
}


@dataclass
class BagWriteSummary:
    """What ``write_bag`` wrote.

    Attributes:
        path: the bag folder.
        storage: ``"mcap"`` or ``"sqlite3"``.
        frames: number of frames written.
        counts: messages per topic.
        first_stamp_ns, last_stamp_ns: header stamps of the first and last frame [ns].
        elapsed_s: wall time spent [s].
    """

    path: Path
    storage: str
    frames: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    first_stamp_ns: int = 0
    last_stamp_ns: int = 0
    elapsed_s: float = 0.0

    def line(self) -> str:
        """One-line human summary."""
        span_s = (self.last_stamp_ns - self.first_stamp_ns) / 1e9
        topics = ", ".join(f"{t} {n}" for t, n in self.counts.items())
        return (
            f"wrote {self.frames} frames ({sum(self.counts.values())} messages, {span_s:.2f} s of data) to "
            f"{self.path} [{self.storage}] in {self.elapsed_s:.2f} s: {topics}"
        )


class _MessageFactory:
    """Builds rosbags message objects for one frame (kept apart from the writer so it can be tested)."""

    def __init__(
        self, typestore: Any, intrinsics: Intrinsics, frame_id: str, mount: Sequence[Sequence[float]],
        base_frame: str = "base_link", camera_link: str = "camera_link", odom_frame_id: str = "odom",
    ) -> None:  # fmt: skip
        self.ts = typestore
        self.k = intrinsics
        self.frame_id = frame_id
        self.base_frame, self.camera_link, self.odom_frame_id = base_frame, camera_link, odom_frame_id
        self.mount = mount
        self.t_base_camera = camera_to_base(*mount)  # base_link -> optical frame
        self.t_odom_world = np.eye(4)  # dataset world -> REP-105 odom (set by write_bag for posed sequences)
        t = typestore.types
        self._Header = t["std_msgs/msg/Header"]
        self._Time = t["builtin_interfaces/msg/Time"]
        self._Image = t[IMAGE]
        self._CameraInfo = t[CAMERA_INFO]
        self._Roi = t["sensor_msgs/msg/RegionOfInterest"]
        self._TFMessage = t[TF_MESSAGE]
        self._TransformStamped = t["geometry_msgs/msg/TransformStamped"]
        self._Transform = t["geometry_msgs/msg/Transform"]
        self._Quat = t["geometry_msgs/msg/Quaternion"]
        self._Vec3 = t["geometry_msgs/msg/Vector3"]

    def header(self, stamp_ns: int, frame_id: str) -> Any:
        sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
        return self._Header(stamp=self._Time(sec=sec, nanosec=nanosec), frame_id=frame_id)

    def rgb_image(self, frame: RGBDFrame) -> Any:
        h, w = frame.rgb.shape[:2]
        data = np.ascontiguousarray(frame.rgb, dtype=np.uint8).reshape(-1)
        return self._Image(
            header=self.header(frame.stamp_ns, self.frame_id),
            height=h, width=w, encoding="rgb8", is_bigendian=0, step=3 * w, data=data,
        )

    def depth_image(self, frame: RGBDFrame) -> Any:
        h, w = frame.depth_mm.shape
        data = np.ascontiguousarray(frame.depth_mm, dtype="<u2").view(np.uint8).reshape(-1)
        return self._Image(
            header=self.header(frame.stamp_ns, self.frame_id),
            height=h, width=w, encoding="16UC1", is_bigendian=0, step=2 * w, data=data,
        )

    def camera_info(self, frame: RGBDFrame) -> Any:
        k = self.k
        kmat = np.array(k.k(), dtype=np.float64)
        p = np.array([k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0], dtype=np.float64)
        return self._CameraInfo(
            header=self.header(frame.stamp_ns, self.frame_id),
            height=k.height, width=k.width, distortion_model="plumb_bob",
            d=np.zeros(5, dtype=np.float64), k=kmat, r=np.eye(3, dtype=np.float64).reshape(-1), p=p,
            binning_x=0, binning_y=0,
            roi=self._Roi(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
        )

    def transform(self, stamp_ns: int, parent: str, child: str, t_parent_child: np.ndarray) -> Any:
        """geometry_msgs/TransformStamped of a (4, 4) transform."""
        qx, qy, qz, qw = (float(v) for v in quaternion_from_matrix(t_parent_child[:3, :3]))
        tx, ty, tz = (float(v) for v in t_parent_child[:3, 3])
        return self._TransformStamped(
            header=self.header(stamp_ns, parent), child_frame_id=child,
            transform=self._Transform(translation=self._Vec3(x=tx, y=ty, z=tz),
                                      rotation=self._Quat(x=qx, y=qy, z=qz, w=qw)),
        )  # fmt: skip

    def tf_static(self, frame: RGBDFrame) -> Any:
        """The camera mount: base_link -> camera_link -> optical frame (or base_link -> optical frame)."""
        chain = mount_transforms(self.mount[0], self.mount[1], self.base_frame, self.camera_link, self.frame_id)
        return self._TFMessage(transforms=[self.transform(frame.stamp_ns, p, c, t) for p, c, t in chain])

    def tf(self, frame: RGBDFrame) -> Any:
        """odom -> base_link from the camera-to-world pose; raises ValueError for a missing or non-finite pose."""
        if frame.pose is None:
            raise ValueError(f"frame {frame.index} has no pose")
        t_odom_base = self.t_odom_world @ frame.pose @ np.linalg.inv(self.t_base_camera)
        if not np.all(np.isfinite(t_odom_base)):
            raise ValueError(f"frame {frame.index} pose is not finite")
        return self._TFMessage(transforms=[self.transform(frame.stamp_ns, self.odom_frame_id, self.base_frame,
                                                          t_odom_base)])  # fmt: skip


def gravity_aligned_odom(sequence: RGBDSequence, samples: int = 12) -> np.ndarray:
    """(4, 4) transform from the sequence's world frame into a z-up ``odom`` frame on the floor.

    Uses ``core.gravity.floor_alignment`` on ``samples`` frames spread over the sequence. Raises ValueError when no
    floor is found (the odometry would not be usable for a costmap).
    """
    from seg_perception.core.geometry.gravity import floor_alignment

    idx = sorted({round(i * (len(sequence) - 1) / max(1, samples - 1)) for i in range(samples)})
    posed = [(f.depth_mm, f.pose) for f in (sequence[i] for i in idx) if f.pose is not None]
    alignment = floor_alignment([d for d, _ in posed], [p for _, p in posed], sequence.intrinsics)
    return alignment.t_odom_world


def _topic(prefix: str, suffix: str) -> str:
    prefix = prefix.rstrip("/")
    return f"{prefix}/{suffix}" if prefix else f"/{suffix}"


def write_bag(
    sequence: RGBDSequence,
    out: str | Path,
    *,
    storage: str = "mcap",
    start: int = 0,
    limit: int | None = None,
    frame_id: str = "camera_color_optical_frame",
    topic_prefix: str = "/camera",
    mount: Sequence[Sequence[float]] | None = None,
    base_frame: str = "base_link",
    camera_link: str = "camera_link",
    odom_frame_id: str = "odom",
    progress: bool = True,
) -> BagWriteSummary:
    """Write frames ``[start, start + limit)`` of ``sequence`` to a new rosbag2 folder ``out``.

    Args:
        sequence: an opened frame folder (``core.frames.open_sequence``).
        out: bag folder to create; must not exist.
        storage: ``"mcap"`` or ``"sqlite3"``.
        start: first frame index (its stamp keeps its place in the sequence's timeline).
        limit: maximum number of frames (None = to the end).
        frame_id: header frame id of images and camera info (the camera optical frame).
        topic_prefix: prefix of the camera topics.
        mount: ((x, y, z) [m], (roll, pitch, yaw) [rad]) of the camera body frame in ``base_frame``; None =
            ``MOUNTS[sequence.layout]``.
        base_frame: the robot frame of ``/tf_static`` and ``/tf``.
        camera_link: the camera body frame between base and optical frame; "" = none.
        odom_frame_id: the parent frame of ``/tf`` (written only when the sequence has poses).
        progress: show a tqdm progress bar on stderr.
    Returns:
        A ``BagWriteSummary``.
    Raises:
        ValueError: bad storage/start/limit, empty selection, or the output exists.
    """
    out = Path(out)
    stop = _check_selection(sequence, out, storage, start, limit)
    ts = typestore()
    mount = mount if mount is not None else MOUNTS[sequence.layout]
    factory = _MessageFactory(ts, sequence.intrinsics, frame_id, mount, base_frame, camera_link, odom_frame_id)
    if sequence.has_poses:
        factory.t_odom_world = gravity_aligned_odom(sequence)
    summary = BagWriteSummary(path=out, storage=storage)
    t_start = time.perf_counter()
    with staged_output(out) as work:  # a failed run leaves no bag behind (the next run would refuse the folder)
        writer = open_writer(work, storage)
        try:
            _write_frames(writer, ts, factory, sequence, range(start, stop), topic_prefix, out.name, summary, progress)
        finally:
            writer.close()
    summary.elapsed_s = time.perf_counter() - t_start
    return summary


def _write_frames(
    writer: Any, ts: Any, factory: _MessageFactory, sequence: RGBDSequence, indices: range, topic_prefix: str,  # noqa: ANN401
    name: str, summary: BagWriteSummary, progress: bool,
) -> None:  # fmt: skip
    """The connections, then the frames ``indices`` of ``sequence``, counted into ``summary``."""
    from tqdm import tqdm

    conns, static = _add_connections(writer, ts, factory, topic_prefix, sequence.has_poses)
    summary.counts = {"/tf_static": 0} | {t: 0 for t in conns}
    skipped_odom = 0
    for i in tqdm(indices, desc=f"bag {name}", unit="frame", disable=not progress, leave=False):
        frame = sequence[i]
        if summary.frames == 0:  # the mount first, latched: what a robot's static_transform_publisher sends
            writer.write(static, frame.stamp_ns, cdr_bytes(ts, factory.tf_static(frame), TF_MESSAGE))
            summary.counts["/tf_static"] += 1
            summary.first_stamp_ns = frame.stamp_ns
        skipped_odom += _write_frame(writer, ts, conns, frame, summary.counts)
        summary.last_stamp_ns = frame.stamp_ns
        summary.frames += 1
    if skipped_odom:
        print(f"warning: {skipped_odom} frames had no usable pose; no /tf message for them", file=sys.stderr)


def _check_selection(sequence: RGBDSequence, out: Path, storage: str, start: int, limit: int | None) -> int:
    """The end index (exclusive) of the frames to write; raises ValueError for a bad storage, start or limit, or an
    existing ``out``."""
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {sorted(STORAGES)}, got {storage!r}")
    if start < 0 or start >= len(sequence):
        raise ValueError(f"start {start} outside the sequence's {len(sequence)} frames")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if out.exists():
        raise ValueError(f"{out} exists already; rosbag2 writers never overwrite, choose a new path")
    return len(sequence) if limit is None else min(len(sequence), start + limit)


def _add_connections(
    writer: Any, ts: Any, factory: _MessageFactory, topic_prefix: str, has_poses: bool
) -> tuple[dict[str, tuple[Any, str, Any]], Any]:  # noqa: ANN401
    """The per-frame connections (topic -> (connection, message type, builder)) and the latched ``/tf_static`` one."""
    conns = {}
    for suffix, msgtype, build in (
        ("color/image_raw", IMAGE, factory.rgb_image),
        ("depth/image_raw", IMAGE, factory.depth_image),
        ("color/camera_info", CAMERA_INFO, factory.camera_info),
    ):
        topic = _topic(topic_prefix, suffix)
        conns[topic] = (writer.add_connection(topic, msgtype, typestore=ts), msgtype, build)
    latched = Qos(history=QosHistory.KEEP_LAST, depth=1, reliability=QosReliability.RELIABLE,
                  durability=QosDurability.TRANSIENT_LOCAL, deadline=INFINITE, lifespan=INFINITE,
                  liveliness=QosLiveliness.AUTOMATIC, liveliness_lease_duration=INFINITE,
                  avoid_ros_namespace_conventions=False)  # fmt: skip
    static = writer.add_connection("/tf_static", TF_MESSAGE, typestore=ts, offered_qos_profiles=[latched])
    if has_poses:
        conns["/tf"] = (writer.add_connection("/tf", TF_MESSAGE, typestore=ts), TF_MESSAGE, factory.tf)
    return conns, static


def _write_frame(
    writer: Any, ts: Any, conns: dict[str, tuple[Any, str, Any]], frame: RGBDFrame, counts: dict[str, int]
) -> int:  # noqa: ANN401
    """Write one frame's messages, counting them in ``counts``; returns 1 when the frame had no usable pose (no
    ``/tf`` written), else 0. A ValueError from another builder propagates."""
    skipped = 0
    for topic, (conn, msgtype, build) in conns.items():
        try:
            msg = build(frame)
        except ValueError:
            if topic == "/tf":  # a frame without a usable pose: no odom -> base_link, not a failure
                skipped = 1
                continue
            raise
        writer.write(conn, frame.stamp_ns, cdr_bytes(ts, msg, msgtype))
        counts[topic] += 1
    return skipped


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bag-from-frames`` arguments to ``parser``."""
    parser.add_argument("folder", type=Path,
                        help="frame folder: KITTI (image_02/ depth_02/ intrinsics.json) or 7-Scenes")
    parser.add_argument("-o", "--output", type=Path, required=True, help="bag folder to create (must not exist)")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="rosbag2 storage plugin")
    parser.add_argument("--start", type=int, default=0, help="first frame index (default 0)")
    parser.add_argument("--limit", type=int, default=None, help="maximum number of frames (default: all)")
    parser.add_argument("--frame-id", default="camera_color_optical_frame", help="header frame id of the camera topics")
    parser.add_argument("--topic-prefix", default="/camera", help="prefix of the camera topics (default /camera)")
    parser.add_argument("--mount", type=float, nargs=6, metavar=("X", "Y", "Z", "ROLL", "PITCH", "YAW"),
                        help="camera body frame in base_link [m, rad] (default: the dataset's, see MOUNTS)")
    parser.add_argument("--base-frame", default="base_link", help="robot frame of /tf_static and /tf")
    parser.add_argument("--camera-link", default="camera_link",
                        help='camera body frame between base and optical frame; "" = base -> optical directly')
    parser.add_argument("--odom-frame-id", default="odom", help="parent frame of /tf when the folder has poses")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run ``bag-from-frames`` with parsed arguments; returns the process exit code."""
    try:
        sequence = open_sequence(args.folder)
        summary = write_bag(
            sequence, args.output, storage=args.storage, start=args.start, limit=args.limit, frame_id=args.frame_id,
            topic_prefix=args.topic_prefix, mount=(args.mount[:3], args.mount[3:]) if args.mount else None,
            base_frame=args.base_frame, camera_link=args.camera_link, odom_frame_id=args.odom_frame_id,
            progress=not args.no_progress,
        )  # fmt: skip
    except (SequenceError, ValueError) as exc:
        print(f"bag-from-frames: error: {exc}", file=sys.stderr)
        return 2
    print(summary.line())
    return 0


if __name__ == "__main__":
    sys.exit(cli.main(["bag-from-frames", *sys.argv[1:]]))
