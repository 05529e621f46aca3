"""In-process ROS 2 harness: a private rclpy Context, the node under test, a helper node, deadline-bounded spins."""

from __future__ import annotations

import itertools
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from seg_perception.core.geometry.camera import Intrinsics
from seg_perception.core.geometry.transforms import camera_to_base
from seg_perception.core.segmentation.class_info import label_info_json
from seg_perception.core.segmentation.pipeline import SegmentationConfig, SegmentationPipeline
from seg_perception.ros import convert
from seg_perception.ros.pose_source import transform_msg
from seg_perception.tools.bag_from_frames import MOUNTS

_ns_counter = itertools.count()


class RosHarness:
    """Owns a Context, an executor and a helper node with publishers and recording subscriptions."""

    def __init__(self) -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=int(os.environ["ROS_DOMAIN_ID"]))
        self.executor = SingleThreadedExecutor(context=self.context)
        self.ns = f"/test_{os.getpid()}_{next(_ns_counter)}"
        self.helper = Node("helper", namespace=self.ns, context=self.context)
        self.executor.add_node(self.helper)
        self.received: defaultdict[str, list] = defaultdict(list)
        self.nodes: list[Node] = [self.helper]

    def add(self, node: Node) -> Node:
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def publisher(self, cls: type, topic: str, qos: QoSProfile | int = 10):  # noqa: ANN201
        return self.helper.create_publisher(cls, topic, qos)

    def subscribe(self, cls: type, topic: str, qos: QoSProfile | int = 10) -> list:
        self.helper.create_subscription(cls, topic, self.received[topic].append, qos)
        return self.received[topic]

    def spin_until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if done():
                return True
            self.executor.spin_once(timeout_sec=0.05)
        return done()

    def spin_for(self, seconds: float) -> None:
        """Spin for a fixed time: only used to show that NOTHING arrives (bounded negative checks)."""
        self.spin_until(lambda: False, seconds)

    def wait_for_subscribers(self, pubs: list, timeout_s: float = 10.0) -> None:
        assert self.spin_until(lambda: all(p.get_subscription_count() > 0 for p in pubs), timeout_s), (
            "subscribers not discovered"
        )

    def send_static(self, parent: str, child: str, t_parent_child: np.ndarray) -> None:
        """Latch a static transform on /tf_static, as a static_transform_publisher does (one per child frame)."""
        import tf2_ros

        if not hasattr(self, "_static"):
            self._static = tf2_ros.StaticTransformBroadcaster(self.helper)
        self._static.sendTransform(transform_msg(parent, child, t_parent_child))

    def wait_for_transform(
        self, node: Node, target: str, source: str, stamp_ns: int = 0, timeout_s: float = 10.0
    ) -> None:
        """Spin until ``node.tf_buffer`` (the costmap node's) can transform ``source`` into ``target`` at a stamp."""
        stamp = convert.ns_to_stamp(stamp_ns)
        assert self.spin_until(lambda: node.tf_buffer.can_transform_core(target, source, stamp)[0], timeout_s), (
            f"{target} -> {source} never reached the node: {node.tf_buffer.all_frames_as_string()}"
        )

    def close(self) -> None:
        self.executor.shutdown()
        for n in self.nodes:
            n.destroy_node()
        rclpy.shutdown(context=self.context)


def _harness() -> Iterator[RosHarness]:
    h = RosHarness()
    try:
        yield h
    finally:
        h.close()


#: A harness per test, and one shared by the tests of a module (nodes built once).
ros = pytest.fixture(_harness, name="ros")
ros_module = pytest.fixture(_harness, scope="module", name="ros_module")


#: KITTI's camera mount (base_link -> optical frame), as bag-from-frames writes it on /tf_static.
KITTI_MOUNT = camera_to_base(*MOUNTS["kitti"])
OPTICAL_FRAME = "camera_color_optical_frame"


def _kitti_costmap(ros: RosHarness, params: list, namespace: str | None = None) -> Node:
    """A costmap node for KITTI clouds (no odometry: ``global_frame`` empty, grids in base_link), with the KITTI
    mount on /tf_static and in its tf buffer before it is returned."""
    from rclpy.parameter import Parameter

    from seg_perception.ros.costmap_node import CostmapNode

    node = ros.add(CostmapNode(namespace=namespace or ros.ns, context=ros.context,
                               parameter_overrides=[Parameter("global_frame", value=""), *params]))  # fmt: skip
    ros.send_static("base_link", OPTICAL_FRAME, KITTI_MOUNT)
    ros.wait_for_transform(node, "base_link", OPTICAL_FRAME)
    return node


@pytest.fixture(scope="session")
def kitti_costmap() -> Callable[..., Node]:
    """``kitti_costmap(ros, [Parameter, ...], namespace=None)``: see ``_kitti_costmap``."""
    return _kitti_costmap


class KittiFrame:
    """One real KITTI frame as the three messages a camera driver would publish."""

    def __init__(self, kitti_dir: Path, index: int = 0) -> None:
        name = f"{index:010d}.png"
        self.rgb = cv2.imread(str(kitti_dir / "image_02" / name))[:, :, ::-1].copy()
        self.depth_mm = cv2.imread(str(kitti_dir / "depth_02" / name), cv2.IMREAD_UNCHANGED)
        meta = json.loads((kitti_dir / "intrinsics.json").read_text())
        self.k = [meta["fx"], 0.0, meta["cx"], 0.0, meta["fy"], meta["cy"], 0.0, 0.0, 1.0]
        self.stamp_ns = 1_317_000_000_000_000_000 + index * 100_000_000

    def header(self) -> Header:
        return Header(stamp=convert.ns_to_stamp(self.stamp_ns), frame_id="camera_color_optical_frame")

    def image(self) -> Image:
        return convert.array_to_image(self.rgb, "rgb8", self.header())

    def depth(self) -> Image:
        return convert.array_to_image(self.depth_mm, "16UC1", self.header())

    def camera_info(self) -> CameraInfo:
        h, w = self.depth_mm.shape
        return CameraInfo(header=self.header(), width=w, height=h, k=self.k)


@pytest.fixture(scope="session")
def kitti_frames(kitti_dir: Path) -> list[KittiFrame]:
    return [KittiFrame(kitti_dir, i) for i in (0, 10, 20)]


def labels_of(msg: Image) -> np.ndarray:
    return convert.image_to_array(msg)


@pytest.fixture(scope="module")
def real_cloud(kitti_frames, model_dir):  # noqa: ANN001, ANN201
    """A real semantic cloud (KITTI frame 0 through ESPNetv2 city at 640x192, stride 1) and its label_info."""
    pipe = SegmentationPipeline(
        SegmentationConfig(weights=str(model_dir), device="cpu", input_width=640, input_height=192, cloud_stride=1)
    )
    f = kitti_frames[0]
    k = Intrinsics.from_k(f.k, f.rgb.shape[1], f.rgb.shape[0])
    result = pipe.process(f.rgb, f.depth_mm, k)
    spec = pipe.spec
    info = label_info_json(spec.name, spec.ontology, spec.categories, spec.palette)
    return convert.cloud_to_msg(result.cloud, f.header()), info
