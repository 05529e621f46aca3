"""launch_testing description: ``seg_perception.launch.py`` from a colcon install, a real bag replayed into it.

Run by ``launch_test`` (launch_testing's own runner) from ``test_launch_testing.py``, which builds the workspace,
writes the bag and the parameters file and passes them in the environment (``SEG_PERCEPTION_TEST_BAG``,
``SEG_PERCEPTION_TEST_PARAMS``). Not a pytest module (its name does not start with ``test_``): launch_testing's
pytest plugin is disabled under pytest 9 (pytest.ini, README "Set-up").

Active test (while the launch runs): ``ros2 param set`` changes ``cloud_stride`` of the running segmentation node
(``ros2 param get`` reads it back), then the bag (7-Scenes kitchen with ``/tf_static`` mount and ``/tf``
``odom -> base_link``) is replayed and labels, semantic_points and both grids must arrive with the camera's
optical frame (labels, cloud) and ``odom`` (grids, ``global_frame`` of ``config/demo_kitchen.yaml``), the clouds
decimated by the new stride; every display of ``config/seg_perception.rviz`` has its topic and type among the
running nodes' publishers. Post-shutdown test: every process exits cleanly on the launch's SIGINT.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import unittest
from pathlib import Path

import launch_testing
import launch_testing.actions
import launch_testing.asserts
import rclpy
from ament_index_python.packages import get_package_share_directory
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from nav_msgs.msg import OccupancyGrid
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2

from launch import LaunchDescription

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import rviz_displays  # noqa: E402  (test/rviz_displays.py)

NS = "/seg_perception"
OPTICAL_FRAME = "camera_color_optical_frame"  # bag-from-frames' default --frame-id
STRIDE = 8  # the kitchen config's cloud_stride is 4
SUBSCRIBERS = 5  # image, depth, camera_info (segmentation), /tf, /tf_static (costmap's TF listener)


def generate_test_description() -> tuple[LaunchDescription, dict]:
    """The package's launch file as installed, with the test's parameters file; ready at once."""
    launch_file = os.path.join(get_package_share_directory("seg_perception"), "launch", "seg_perception.launch.py")
    include = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(launch_file),
        launch_arguments={"params_file": os.environ["SEG_PERCEPTION_TEST_PARAMS"]}.items(),
    )
    return LaunchDescription([include, launch_testing.actions.ReadyToTest()]), {}


def _ros2(*args: str, deadline_s: float = 90.0) -> str:
    """Run ``ros2 ARGS --no-daemon`` until it succeeds (the first calls wait for the nodes); its stdout."""
    deadline = time.monotonic() + deadline_s
    while True:
        got = subprocess.run(["ros2", *args, "--no-daemon", "--spin-time", "2"], capture_output=True, text=True,
                             timeout=60)  # fmt: skip
        if (got.returncode == 0 and "Node not found" not in got.stdout + got.stderr) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert got.returncode == 0, got.stdout + got.stderr
    return got.stdout.strip()


def _published_by_the_nodes(node: rclpy.node.Node, topic: str, msg_type: str, timeout_s: float = 30.0) -> bool:
    """Whether a node in NS publishes ``topic`` with ``msg_type`` (waits for discovery up to ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        infos = node.get_publishers_info_by_topic(topic)
        if any(i.node_namespace == NS and i.topic_type == msg_type for i in infos) or time.monotonic() > deadline:
            return any(i.node_namespace == NS and i.topic_type == msg_type for i in infos)
        time.sleep(0.2)


class TestPipeline(unittest.TestCase):
    """While the launch runs."""

    def test_param_set_then_outputs_with_their_frames(self) -> None:
        node_name = f"{NS}/segmentation"
        self.assertEqual(_ros2("param", "get", node_name, "cloud_stride"), "Integer value is: 4")
        self.assertEqual(_ros2("param", "set", node_name, "cloud_stride", str(STRIDE)), "Set parameter successful")
        self.assertEqual(_ros2("param", "get", node_name, "cloud_stride"), f"Integer value is: {STRIDE}")

        context = rclpy.Context()
        rclpy.init(context=context)
        node = rclpy.create_node("launch_test_listener", context=context)
        got: dict[str, list] = {"labels": [], "semantic_points": [], "drivable_grid": [], "obstacle_grid": []}
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        matched: set[str] = set()
        for topic, cls in (("labels", Image), ("semantic_points", PointCloud2), ("drivable_grid", OccupancyGrid),
                           ("obstacle_grid", OccupancyGrid)):  # fmt: skip
            events = SubscriptionEventCallbacks(matched=lambda info, t=topic: info.current_count and matched.add(t))
            node.create_subscription(cls, f"{NS}/{topic}", got[topic].append, qos, event_callbacks=events)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + 60  # the outputs are volatile: replay once the nodes' publishers matched ours
        while len(matched) < len(got) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        self.assertEqual(matched, set(got))
        for d in rviz_displays.load()[1]:  # config/seg_perception.rviz against the running nodes' publishers
            self.assertTrue(_published_by_the_nodes(node, d.topic, d.msg_type), d)
        replay = subprocess.Popen([sys.executable, "-m", "seg_perception.tools.replay",
                                   os.environ["SEG_PERCEPTION_TEST_BAG"], "--rate", "0.1",
                                   "--wait-for-subscribers", str(SUBSCRIBERS), "--wait-timeout-s", "60"])  # fmt: skip
        try:  # until the replay is over and every output arrived twice (the last frame may still be in the nodes)
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and (replay.poll() is None or min(map(len, got.values())) < 2):
                executor.spin_once(timeout_sec=0.1)
        finally:
            if replay.poll() is None:
                replay.kill()
            executor.shutdown()
            node.destroy_node()
            context.try_shutdown()
        self.assertEqual(replay.wait(), 0)
        counts = {k: len(v) for k, v in got.items()}
        self.assertTrue(all(n >= 2 for n in counts.values()), counts)
        for m in got["labels"]:
            self.assertEqual(m.header.frame_id, OPTICAL_FRAME)
            self.assertEqual((m.height, m.width, m.encoding), (480, 640, "mono8"))
        for m in got["semantic_points"]:
            self.assertEqual(m.header.frame_id, OPTICAL_FRAME)
            self.assertLessEqual(m.width * m.height, (480 // STRIDE) * (640 // STRIDE))  # 4800; stride 4: 19200
            self.assertGreater(m.width * m.height, 1000)  # dense Kinect depth
        for m in got["drivable_grid"] + got["obstacle_grid"]:
            self.assertEqual(m.header.frame_id, "odom")
            self.assertAlmostEqual(m.info.resolution, 0.05, places=6)  # config/demo_kitchen.yaml
        self.assertTrue(any(v == 100 for v in got["obstacle_grid"][-1].data))  # counters, table: lethal cells
        self.assertTrue(any(v == 0 for v in got["drivable_grid"][-1].data))  # the floor


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    """After the launch's SIGINT."""

    def test_nodes_exit_cleanly(self, proc_info: launch_testing.ProcInfoHandler) -> None:
        launch_testing.asserts.assertExitCodes(proc_info)
