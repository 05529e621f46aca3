"""Both nodes as managed (lifecycle) nodes on real data: the transitions through the lifecycle services, nothing
published unless active, and a failed configure (missing weights) that leaves the node unconfigured and alive."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from nav_msgs.msg import OccupancyGrid
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header, String
from vision_msgs.msg import LabelInfo

from seg_perception.ros import convert
from seg_perception.ros.qos import LATCHED_QOS
from seg_perception.ros.segmentation_node import SegmentationNode
from seg_perception.workspace import local_ros_env

REPO = Path(__file__).resolve().parents[2]
SEG_PARAMS = [Parameter("device", value="cpu"), Parameter("input_width", value=640),
              Parameter("input_height", value=192), Parameter("cloud_stride", value=4)]  # fmt: skip


class Lifecycle:
    """A client of one node's lifecycle services (what ``ros2 lifecycle set/get`` and Nav2's manager call)."""

    def __init__(self, ros, node_name: str) -> None:  # noqa: ANN001
        self.ros = ros
        self.change = ros.helper.create_client(ChangeState, f"{ros.ns}/{node_name}/change_state")
        self.get = ros.helper.create_client(GetState, f"{ros.ns}/{node_name}/get_state")
        assert ros.spin_until(lambda: self.change.service_is_ready() and self.get.service_is_ready(), 10.0)

    def _call(self, client, request):  # noqa: ANN001, ANN202
        future = client.call_async(request)
        assert self.ros.spin_until(future.done, 60.0), "no answer from the lifecycle service"
        return future.result()

    def set(self, transition_id: int) -> bool:
        return self._call(self.change, ChangeState.Request(transition=Transition(id=transition_id))).success

    def state(self) -> str:
        return self._call(self.get, GetState.Request()).current_state.label


def tf2_frames_services(node) -> list[str]:  # noqa: ANN001
    """Names of the node's own ``tf2_frames`` services (one per ``tf2_ros.Buffer(node=...)`` alive)."""
    return [s.service_name for s in node.services if s.service_name.endswith("/tf2_frames")]


def _send_frame(pubs: dict, frame) -> None:  # noqa: ANN001
    pubs["camera_info"].publish(frame.camera_info())
    pubs["depth"].publish(frame.depth())
    pubs["image"].publish(frame.image())


def test_segmentation_node_transitions_and_publishes_only_when_active(ros, model_dir, kitti_frames) -> None:  # noqa: ANN001
    node = ros.add(SegmentationNode(namespace=ros.ns, context=ros.context, parameter_overrides=[
        Parameter("autostart", value=False), Parameter("weights", value=str(model_dir)), *SEG_PARAMS]))  # fmt: skip
    life = Lifecycle(ros, "segmentation")
    pubs = {"image": ros.publisher(Image, "image"), "depth": ros.publisher(Image, "depth"),
            "camera_info": ros.publisher(CameraInfo, "camera_info")}  # fmt: skip
    labels = ros.subscribe(Image, "labels")
    label_info = ros.subscribe(LabelInfo, "label_info", LATCHED_QOS)
    assert life.state() == "unconfigured" and not hasattr(node, "pipeline")
    assert ros.helper.count_subscribers(f"{ros.ns}/image") == 0  # nothing subscribed before activation
    # the parameters are there in every state (ros2 param works on an unconfigured node)
    assert node.get_parameter("input_width").value == 640

    assert life.set(Transition.TRANSITION_CONFIGURE) and life.state() == "inactive"
    assert node.pipeline.spec.name == "espnetv2_city"
    assert ros.helper.count_subscribers(f"{ros.ns}/image") == 0  # configured but inactive: still not subscribed
    _send_frame(pubs, kitti_frames[0])  # nobody takes it (checked below, after the /diagnostics spin)
    # /diagnostics goes on in every state; an inactive node's inputs are not an error
    diags = ros.subscribe(DiagnosticArray, "/diagnostics")
    fqn = node.get_fully_qualified_name()
    inputs = lambda: [st for a in diags for st in a.status if st.hardware_id == fqn and "input " in st.name]  # noqa: E731
    assert ros.spin_until(lambda: len(inputs()) >= 3, 10.0)
    assert all(st.level == DiagnosticStatus.OK and st.message == "node inactive: input not subscribed"
               for st in inputs()), inputs()  # fmt: skip
    assert labels == [] and label_info == [] and node.stats.frames_in == 0

    assert life.set(Transition.TRANSITION_ACTIVATE) and life.state() == "active"
    ros.wait_for_subscribers(list(pubs.values()))
    _send_frame(pubs, kitti_frames[1])
    assert ros.spin_until(lambda: labels and label_info, 60.0), (len(labels), len(label_info))
    assert labels[0].header == kitti_frames[1].header() and len(label_info[0].class_map) == 20
    assert node.stats.frames_out == 1

    assert life.set(Transition.TRANSITION_DEACTIVATE) and life.state() == "inactive"
    assert ros.helper.count_subscribers(f"{ros.ns}/image") == 0
    _send_frame(pubs, kitti_frames[2])  # nobody takes it (checked after the cleanup's service calls spun)

    assert life.set(Transition.TRANSITION_CLEANUP) and life.state() == "unconfigured"
    assert len(labels) == 1 and node.stats.frames_in == 1  # the inactive node neither took nor published frames
    assert not hasattr(node, "pipeline") and not hasattr(node, "worker")  # the model is freed
    s = node.stats.as_dict()
    assert s["frames_in"] == s["frames_out"] + sum(s["drops"].values()) + s["pending"]


def test_costmap_node_transitions_and_publishes_grids_only_when_active(ros, kitti_costmap, real_cloud) -> None:  # noqa: ANN001
    node = kitti_costmap(ros, [Parameter("resolution", value=0.2), Parameter("width", value=40.0),
                               Parameter("height", value=40.0)])  # fmt: skip
    assert node.lifecycle_state == "active"  # direct construction: autostart (the default) brings it up
    cloud_msg, info = real_cloud
    pub_cloud = ros.publisher(PointCloud2, "semantic_points")
    pub_json = ros.publisher(String, "label_info_json", LATCHED_QOS)
    pub_info = ros.publisher(LabelInfo, "label_info", LATCHED_QOS)
    grids = ros.subscribe(OccupancyGrid, "obstacle_grid", LATCHED_QOS)
    pub_json.publish(String(data=info))
    pub_info.publish(convert.label_info_msg([c["name"] for c in json.loads(info)["classes"]], Header()))
    assert ros.spin_until(lambda: node.mapper.rules is not None, 10.0)

    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS and node.lifecycle_state == "inactive"
    assert ros.spin_until(lambda: ros.helper.count_subscribers(f"{ros.ns}/semantic_points") == 0, 10.0)
    pub_cloud.publish(cloud_msg)  # nobody takes it (checked after the next spin)

    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    ros.wait_for_subscribers([pub_cloud])
    assert grids == [] and node.stats.frames_in == 0  # the inactive node neither took the cloud nor published
    pub_cloud.publish(cloud_msg)
    assert ros.spin_until(lambda: grids, 30.0)
    assert grids[0].header.frame_id == "base_link" and grids[0].header.stamp == cloud_msg.header.stamp
    assert node.stats.frames_out == 1

    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert tf2_frames_services(node) == [f"{ros.ns}/tf2_frames"]  # the tf buffer's service, once
    old_buffer = node.tf_buffer
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS and node.lifecycle_state == "unconfigured"
    assert not hasattr(node, "mapper") and not hasattr(node, "tf_buffer")
    # cleanup removed the tf buffer's service and its clock jump callback (tf2_ros.Buffer(node=...) made both)
    assert tf2_frames_services(node) == [] and old_buffer.jump_handle._clock is None
    # configured again from scratch: the latched label_info comes again at activation, clouds give grids again
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert tf2_frames_services(node) == [f"{ros.ns}/tf2_frames"]  # one again, not two

    def on_graph() -> bool:
        return f"{ros.ns}/tf2_frames" in dict(node.get_service_names_and_types_by_node(node.get_name(), ros.ns))

    assert ros.spin_until(on_graph, 10.0)  # and it is on the ROS graph
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    ros.wait_for_transform(node, "base_link", "camera_color_optical_frame")  # /tf_static is latched: heard again
    assert ros.spin_until(lambda: node.mapper.rules is not None, 10.0)
    n = len(grids)
    pub_cloud.publish(cloud_msg)
    assert ros.spin_until(lambda: len(grids) > n, 30.0) and node.stats.frames_out == 2

    # shutdown from active: unsubscribed, freed, finalized
    assert node.trigger_shutdown() == TransitionCallbackReturn.SUCCESS and node.lifecycle_state == "finalized"
    assert not hasattr(node, "mapper")
    assert ros.spin_until(lambda: ros.helper.count_subscribers(f"{ros.ns}/semantic_points") == 0, 10.0)


def test_failed_configure_leaves_the_node_unconfigured_and_alive(ros, tmp_path) -> None:  # noqa: ANN001
    node = ros.add(SegmentationNode(namespace=ros.ns, context=ros.context, parameter_overrides=[
        Parameter("autostart", value=False), Parameter("weights", value=str(tmp_path)), *SEG_PARAMS]))  # fmt: skip
    life = Lifecycle(ros, "segmentation")
    assert not life.set(Transition.TRANSITION_CONFIGURE)  # FAILURE, reported to the caller
    assert life.state() == "unconfigured" and not hasattr(node, "pipeline")
    assert "seg-perception weights download espnetv2_city" in str(node.configure_error)
    # still alive: it answers its services and can be asked again
    assert not life.set(Transition.TRANSITION_CONFIGURE) and life.state() == "unconfigured"


def test_autostart_false_process_stays_up_unconfigured_after_a_failed_configure(ros, tmp_path) -> None:  # noqa: ANN001
    """The console entry point under a lifecycle manager: a failed configure is logged, the process keeps running
    (with autostart, the default, it exits 1 instead: test_demo_pipeline's fail-fast test)."""
    env = local_ros_env(domain_id=int(os.environ["ROS_DOMAIN_ID"]))
    env.pop("SEG_PERCEPTION_MODEL_DIR", None)
    cmd = [sys.executable, "-m", "seg_perception.ros.segmentation_node", "--ros-args", "-r", f"__ns:={ros.ns}",
           "-p", "autostart:=false", "-p", f"weights:={tmp_path}"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        life = Lifecycle(ros, "segmentation")
        assert not life.set(Transition.TRANSITION_CONFIGURE)
        assert life.state() == "unconfigured" and proc.poll() is None  # reported, not exited
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "configure failed" in stderr and "seg-perception weights download espnetv2_city" in stderr
