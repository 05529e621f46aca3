"""``seg-perception transport-check``: do a camera's largest messages cross processes intact with this profile?

Two processes on this machine, with the environment the nodes get (``workspace.local_ros_env``: Fast DDS,
``FASTDDS_DEFAULT_PROFILES_FILE``, discovery on localhost):

* a sender publishes ``--count`` frames at ``--rate`` Hz: a ``depth`` image (16UC1, H x W) with the camera's QoS
  (reliable, as ``seg-perception replay`` and most drivers publish) and an organized ``semantic_points`` cloud
  (``core.cloud.CLOUD_DTYPE``, stride 1: H x W x 24 bytes) with the segmentation node's ``OUTPUT_QOS``;
  every frame's bytes differ (seeded noise XOR the frame number);
* a receiver subscribes as the nodes do (``SENSOR_QOS`` for depth, the costmap's ``CLOUD_IN_QOS`` for the cloud),
  hashes what arrives and counts what the middleware reports lost (``message_lost`` events) and stamp gaps
  (``ros.transport.StampGapCounter`` at the sending rate).

The result (JSON) lists, per topic, frames sent, arrived intact, arrived corrupted, missing, and the predicted
warning of ``ros.transport.transport_warning`` for the same sizes. Exit status 0 when every frame arrived intact.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Header

from seg_perception import cli
from seg_perception.core.geometry.cloud import CLOUD_DTYPE
from seg_perception.ros import cdr_sizes, convert, transport
from seg_perception.ros.qos import CLOUD_IN_QOS, OUTPUT_QOS, SENSOR_QOS
from seg_perception.tools.common import ros_node
from seg_perception.workspace import local_ros_env

TOPICS = ("depth", "semantic_points")


def _hash(data: Any) -> str:  # noqa: ANN401 - bytes, array.array or memoryview
    return hashlib.sha256(memoryview(data).cast("B")).hexdigest()[:16]


def _frames(height: int, width: int, seed: int = 0) -> tuple[bytes, bytes]:
    """Seeded noise for one depth image (uint16) and one cloud (CLOUD_DTYPE), as bytes."""
    rng = np.random.default_rng(seed)
    depth = rng.integers(0, 10_000, (height, width), dtype=np.uint16)
    cloud = rng.integers(0, 256, height * width * cdr_sizes.CLOUD_POINT_STEP, dtype=np.uint8)
    return depth.tobytes(), cloud.tobytes()


def _vary(base: bytes, i: int) -> bytes:
    return (np.frombuffer(base, np.uint8) ^ np.uint8((37 * i + 11) % 256)).tobytes()


def send(height: int, width: int, count: int, rate_hz: float, match_timeout_s: float, linger_s: float) -> dict:
    """Publish ``count`` depth + cloud frames; returns ``{"sent": {topic: [[stamp_ns, hash, bytes], ...]}}``."""
    camera_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.VOLATILE)  # fmt: skip
    with ros_node("transport_check_sender") as node:
        pub_depth = node.create_publisher(Image, "depth", camera_qos)
        pub_cloud = node.create_publisher(PointCloud2, "semantic_points", OUTPUT_QOS)
        deadline = time.monotonic() + match_timeout_s
        while time.monotonic() < deadline and min(pub_depth.get_subscription_count(),
                                                   pub_cloud.get_subscription_count()) < 1:  # fmt: skip
            time.sleep(0.05)
        time.sleep(0.5)  # let the receiver's side of the match settle too
        depth_base, cloud_base = _frames(height, width)
        header = Header(frame_id="camera_color_optical_frame")
        depth_msg = convert.array_to_image(np.zeros((height, width), np.uint16), "16UC1", header)
        cloud_msg = convert.cloud_to_msg(np.zeros((height, width), CLOUD_DTYPE), header)
        sent: dict[str, list] = {t: [] for t in TOPICS}
        t0 = time.monotonic()
        for i in range(count):
            stamp = convert.ns_to_stamp(1_000_000_000 + int(i * 1e9 / rate_hz))
            depth_msg.header.stamp = cloud_msg.header.stamp = stamp
            depth_msg.data = _vary(depth_base, i)
            cloud_msg.data = _vary(cloud_base, i)
            pub_depth.publish(depth_msg)
            pub_cloud.publish(cloud_msg)
            ns = convert.stamp_to_ns(stamp)
            sent["depth"].append([ns, _hash(depth_msg.data), len(depth_msg.data)])
            sent["semantic_points"].append([ns, _hash(cloud_msg.data), len(cloud_msg.data)])
            time.sleep(max(0.0, t0 + (i + 1) / rate_hz - time.monotonic()))
        # Stay until the receiver is gone: the last messages live in this participant's shared-memory segment.
        deadline = time.monotonic() + linger_s
        while time.monotonic() < deadline and pub_cloud.get_subscription_count() > 0:
            time.sleep(0.05)
        return {"sent": sent}


def receive(count: int, rate_hz: float, timeout_s: float, idle_s: float) -> dict:
    """Subscribe as the nodes do until ``count`` frames per topic arrived or nothing came for ``idle_s``."""
    got: dict[str, list] = {t: [] for t in TOPICS}
    lost = dict.fromkeys(TOPICS, 0)
    gaps = {t: transport.StampGapCounter(rate_hz) for t in TOPICS}
    last = [time.monotonic()]

    def on_msg(topic: str) -> Any:  # noqa: ANN401
        def cb(msg: Any) -> None:  # noqa: ANN401
            ns = convert.stamp_to_ns(msg.header.stamp)
            gaps[topic].add(ns)
            got[topic].append([ns, _hash(msg.data), len(msg.data)])
            last[0] = time.monotonic()

        return cb

    def on_lost(topic: str) -> Any:  # noqa: ANN401
        def cb(info: Any) -> None:  # noqa: ANN401
            lost[topic] += int(info.total_count_change)

        return cb

    with ros_node("transport_check_receiver") as node:
        for topic, cls, qos in (("depth", Image, SENSOR_QOS), ("semantic_points", PointCloud2, CLOUD_IN_QOS)):
            events = SubscriptionEventCallbacks(message_lost=on_lost(topic))
            node.create_subscription(cls, topic, on_msg(topic), qos, event_callbacks=events)
        executor = SingleThreadedExecutor(context=node.context)
        executor.add_node(node)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            executor.spin_once(timeout_sec=0.05)
            if min(len(v) for v in got.values()) >= count:
                break
            if any(got.values()) and time.monotonic() - last[0] > idle_s:
                break
        executor.shutdown(timeout_sec=1.0)
        return {"got": got, "message_lost": lost, "stamp_gaps": {t: g.missing for t, g in gaps.items()}}


def run_check(height: int = 1080, width: int = 1920, count: int = 5, rate_hz: float = 2.0,
              profile: str | os.PathLike[str] | None = None, domain_id: int | None = None,
              timeout_s: float = 60.0) -> dict:  # fmt: skip
    """Start a receiver and a sender process; return the comparison (see the module docstring).

    Args:
        profile: Fast DDS profile for both processes (None: the environment's, else the package's).
        domain_id: ROS_DOMAIN_ID for both processes (None: inherit).
    """
    env = local_ros_env(domain_id=domain_id)
    if profile is not None:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)
    common = ["--height", str(height), "--width", str(width), "--count", str(count), "--rate", str(rate_hz)]
    module = [sys.executable, "-m", "seg_perception.tools.transport_check"]
    receiver = subprocess.Popen([*module, "--role", "receive", *common], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        sender = subprocess.run([*module, "--role", "send", *common], env=env, capture_output=True, text=True,
                                timeout=timeout_s)  # fmt: skip
        r_out, r_err = receiver.communicate(timeout=timeout_s)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.communicate()
    if sender.returncode != 0 or receiver.returncode != 0:
        raise RuntimeError(f"transport check processes failed: sender {sender.returncode}: {sender.stderr[-2000:]}"
                           f"\nreceiver {receiver.returncode}: {r_err[-2000:]}")  # fmt: skip
    sent = json.loads(sender.stdout.strip().splitlines()[-1])["sent"]
    recv = json.loads(r_out.strip().splitlines()[-1])
    limits = transport.read_transport_limits(env)
    sizes = cdr_sizes.message_sizes(height, width, 1, frame_id="camera_color_optical_frame")
    result: dict[str, Any] = {
        "height": height, "width": width, "count": count, "rate_hz": rate_hz,
        "profile": limits.source, "predicted_warning": transport.transport_warning(sizes, limits, height, width),
        "topics": {},
    }  # fmt: skip
    for topic in TOPICS:
        want = {ns: h for ns, h, _ in sent[topic]}
        arrived = recv["got"][topic]
        intact = sum(1 for ns, h, _ in arrived if want.get(ns) == h)
        result["topics"][topic] = {
            "bytes": sent[topic][0][2] if sent[topic] else 0,
            "sent": len(want),
            "intact": intact,
            "corrupt": len(arrived) - intact,
            "missing": sorted(set(want) - {ns for ns, _, _ in arrived}),
            "message_lost_events": recv["message_lost"][topic],
            "stamp_gaps": recv["stamp_gaps"][topic],
        }
    result["all_intact"] = all(t["intact"] == t["sent"] and t["corrupt"] == 0 for t in result["topics"].values())
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``seg-perception transport-check``."""
    parser.add_argument("--height", type=int, default=1080, help="image height [px] (default 1080)")
    parser.add_argument("--width", type=int, default=1920, help="image width [px] (default 1920)")
    parser.add_argument("--count", type=int, default=5, help="frames to send (default 5)")
    parser.add_argument("--rate", type=float, default=2.0, help="frames per second (default 2)")
    parser.add_argument("--profile", type=Path, default=None, help="Fast DDS XML profile (default: the environment's "
                        "FASTDDS_DEFAULT_PROFILES_FILE, else config/fastdds_shm_profile.xml)")  # fmt: skip
    parser.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID for both processes")
    parser.add_argument("--role", choices=("check", "send", "receive"), default="check", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Entry point: ``check`` runs both processes and prints the JSON result; exit status 1 when frames were lost."""
    if args.role == "send":
        print(json.dumps(send(args.height, args.width, args.count, args.rate, match_timeout_s=15.0, linger_s=20.0)))
        return 0
    if args.role == "receive":
        print(json.dumps(receive(args.count, args.rate, timeout_s=60.0, idle_s=5.0)))
        return 0
    result = run_check(args.height, args.width, args.count, args.rate, args.profile, args.domain_id)
    print(json.dumps(result, indent=2))
    return 0 if result["all_intact"] else 1


if __name__ == "__main__":
    sys.exit(cli.main(["transport-check", *sys.argv[1:]]))
