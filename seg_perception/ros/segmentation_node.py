"""Segmentation node: colour + depth + camera_info in; labels, confidence, overlay, label_info, semantic_points out.

Subscribed topics (relative; remap in launch):
    image (sensor_msgs/Image): rgb8, bgr8, rgba8 or bgra8 colour image.
    depth (sensor_msgs/Image): 16UC1 [mm, 0 = invalid] or 32FC1 [m, non-finite = invalid] (REP-118), registered
        to ``image`` (same size and optical frame).
    image/compressed, depth/compressedDepth (sensor_msgs/CompressedImage) instead of those two when
        ``image_transport`` is ``compressed``: JPEG/PNG colour and image_transport's compressedDepth (``ros/
        compressed.py``); a payload that does not decode is a counted drop (``compressed_*``). As image_transport
        does, they are sub-topics of the resolved ``image`` / ``depth`` names, so remapping ``image`` moves both.
    camera_info (sensor_msgs/CameraInfo): intrinsics of ``image`` (K; distortion ignored: rectified images).

Published topics (all with the colour image's header):
    labels (sensor_msgs/Image mono8): class id per pixel, at the input resolution.
    confidence (sensor_msgs/Image mono8): max softmax probability x 255.
    overlay (sensor_msgs/Image rgb8): image blended with the model's palette.
    label_info (vision_msgs/LabelInfo, transient local): class_map VisionClass(class_id, class_name) per class id.
    label_info_json (std_msgs/String, transient local): the same classes with colours, model name, ontology name
        and ignore label as JSON (``core.class_info``; schema in README.md).
    semantic_points (sensor_msgs/PointCloud2): organized (H/stride x W/stride) cloud in the camera optical frame;
        fields x, y, z float32 [m], rgb float32 (packed 0x00RRGGBB), label uint32, confidence float32;
        invalid depth gives NaN x/y/z; is_dense false.
    /diagnostics (diagnostic_msgs/DiagnosticArray): per input its rate, age and stamp delay (OK / WARN below
        ``expected_rate_hz`` / ERROR after ``input_timeout_s`` without input), frames in/out, drops / rejected /
        warnings per reason, stage timings [ms] (``ros/diagnostics.py``).

Parameters: ``PARAMETERS`` below, one ``core.config.ParamGroup`` per config dataclass (``SegmentationConfig``,
``NodeSettings``, ``HealthSettings``); each field's ``param`` declaration gives its default, description with unit
and range (``ros2 param describe``; README's table is generated from them: ``seg-perception params segmentation``).

Lifecycle (``GuardedNode``): configure loads the model, activate publishes label_info and subscribes the inputs,
deactivate unsubscribes, cleanup frees the model; ``autostart`` (bool, true, read-only) does configure + activate at
construction; outputs are published only while active.

Accounting (``NodeStats``, on ``/diagnostics``): frames_in (colour images) = frames_out + sum(drops) + pending;
refused depth and camera_info messages are counted under ``rejected``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header, String
from vision_msgs.msg import LabelInfo

from seg_perception.core.config import ParamGroup, check_declared_ranges, param
from seg_perception.core.segmentation.class_info import label_info_json
from seg_perception.core.segmentation.pipeline import FrameResult, SegmentationConfig, SegmentationPipeline
from seg_perception.ros import convert
from seg_perception.ros.assembler import RGBDAssembler, RGBDInput
from seg_perception.ros.diagnostics import HealthSettings, NodeDiagnostics
from seg_perception.ros.node_utils import GuardedNode, NodeStats, run_node
from seg_perception.ros.outputs import segmentation_messages
from seg_perception.ros.params import declare_groups, enable_dynamic_config
from seg_perception.ros.qos import LATCHED_QOS, OUTPUT_QOS, SENSOR_QOS
from seg_perception.ros.transport import TransportCheck
from seg_perception.ros.worker import NewestFrameWorker, Stopwatch

#: The per-frame outputs (lifecycle publishers: silent unless the node is active).
#: Published topics (relative) -> (message type, QoS); the RViz config test reads this table.
OUTPUTS: dict[str, tuple[type, QoSProfile]] = {
    "labels": (Image, OUTPUT_QOS), "confidence": (Image, OUTPUT_QOS), "overlay": (Image, OUTPUT_QOS),
    "semantic_points": (PointCloud2, OUTPUT_QOS), "label_info": (LabelInfo, LATCHED_QOS),
    "label_info_json": (String, LATCHED_QOS),
}  # fmt: skip


@dataclass(frozen=True)
class NodeSettings:
    """Segmentation node parameters beside ``SegmentationConfig`` (names are the ROS parameter names)."""

    use_depth: bool = param(True, "pair each colour image with a depth image (false: labels only, no cloud); "
                            "needs a restart (it changes the subscriptions)", read_only=True)  # fmt: skip
    image_transport: str = param("raw", "raw: subscribe image and depth (sensor_msgs/Image); compressed: subscribe "
                                 "image/compressed (JPEG/PNG) and depth/compressedDepth (sensor_msgs/CompressedImage, "
                                 "image_transport's formats); needs a restart", read_only=True)  # fmt: skip
    time_jump_s: float = param(1.0, "a colour stamp this far behind the newest is a time jump (bag loop, simulator "
                               "reset): waiting messages are flushed [s]", lo=0.001, hi=3600.0)  # fmt: skip


    def __post_init__(self) -> None:
        if self.image_transport not in ("raw", "compressed"):
            raise ValueError(f"image_transport must be 'raw' or 'compressed', got {self.image_transport!r}")
        check_declared_ranges(self)


#: The node's parameters: one ``ParamGroup`` per config dataclass (the attribute that holds it); README's table is
#: generated from this list (``seg-perception params segmentation``).
PARAMETERS = (ParamGroup("cfg", SegmentationConfig), ParamGroup("settings", NodeSettings),
              ParamGroup("health", HealthSettings))  # fmt: skip


class SegmentationNode(GuardedNode):
    """See the module docstring for topics and parameters; a managed node (``GuardedNode``: lifecycle, autostart).

    Raises:
        ValueError: from ``__init__``, bad parameter values. From ``configure`` (a failed transition: the node stays
        unconfigured): KeyError, unknown model; WeightsError, missing or corrupt weights (names the download
        command); ValueError, bad device or size.
    """

    primary_topics: tuple[str, ...] = ("image",)
    # set by declare_groups(PARAMETERS)
    cfg: SegmentationConfig
    settings: NodeSettings
    health: HealthSettings

    def __init__(self, **kwargs) -> None:  # noqa: ANN003
        super().__init__("segmentation", **kwargs)
        self.stats = NodeStats(self)
        declare_groups(self, PARAMETERS)  # self.cfg, self.settings, self.health
        self.transport_check = TransportCheck()  # warns when the largest output would not fit the DDS transport
        self.use_depth = self.settings.use_depth
        self._last_input = self.get_clock().now()
        self._stale = False
        enable_dynamic_config(self, lambda: self.cfg, self._apply_config)
        enable_dynamic_config(self, lambda: self.settings, self._apply_settings)
        enable_dynamic_config(self, lambda: self.health, lambda h: setattr(self, "health", h))
        _, *topics = self._input_topics()
        topics = topics if self.use_depth else topics[:2]
        self.diagnostics = NodeDiagnostics(self, self.stats, topics, lambda: self.health)
        self.start()

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def configure(self) -> None:
        """Load the model (WeightsError / KeyError / ValueError on a bad model, weights or device), create the
        pairing, the segmentation thread and the (lifecycle) publishers."""
        self.pipeline = SegmentationPipeline(self.cfg)
        seg = self.pipeline.segmenter
        size = "the camera's aspect (set at the first image)" if seg.keep_aspect else \
            f"{seg.input_hw[1]}x{seg.input_hw[0]}"  # fmt: skip
        self.get_logger().info(
            f"model {self.cfg.model} on {seg.device} (runtime {seg.runtime}, fp16={seg.fp16}), network input {size}, "
            f"cloud stride {self.cfg.cloud_stride}"
        )
        self.assembler = RGBDAssembler(
            self.stats.drop,
            self.stats.warn,
            slop_ns=int(self.cfg.sync_slop_s * 1e9),
            use_depth=self.use_depth,
            reject=self.stats.reject,
            time_jump_ns=int(self.settings.time_jump_s * 1e9),
            max_pixels=self.cfg.max_image_pixels,
        )
        # the network runs on its own thread: subscriptions, timers and parameter services stay responsive
        self.worker: NewestFrameWorker[RGBDInput] = NewestFrameWorker(
            self._run_frame, self._skip_frame, "segment", on_done=self._update_pending, on_error=self._worker_error
        )
        self.pubs: dict[str, Any] = {
            name: self.create_lifecycle_publisher(cls, name, qos) for name, (cls, qos) in OUTPUTS.items()
        }
        self.pub_label_info = self.pubs.pop("label_info")
        self.pub_label_info_json = self.pubs.pop("label_info_json")

    def activate(self) -> None:
        """Publish the class metadata (latched), subscribe the inputs, start the staleness check."""
        spec = self.pipeline.spec
        stamp = self.get_clock().now().to_msg()
        self.pub_label_info.publish(convert.label_info_msg(spec.categories, Header(stamp=stamp)))
        self.pub_label_info_json.publish(
            String(data=label_info_json(spec.name, spec.ontology, spec.categories, spec.palette))
        )
        self._last_input = self.get_clock().now()
        self._stale = False
        self._subscribe_inputs()
        self.create_timer(1.0, self._check_staleness)

    def deactivate(self) -> None:
        """The frame being segmented finishes (its outputs still go out); frames still waiting are counted drops."""
        self.finish()

    def cleanup(self) -> None:
        """Stop the segmentation thread, free the model and destroy the publishers."""
        if hasattr(self, "worker"):
            self.worker.stop()
        for pub in [*getattr(self, "pubs", {}).values(), getattr(self, "pub_label_info", None),
                    getattr(self, "pub_label_info_json", None)]:  # fmt: skip
            if pub is not None:
                self.destroy_lifecycle_publisher(pub)
        for name in ("pipeline", "assembler", "worker", "pubs", "pub_label_info", "pub_label_info_json"):
            self.__dict__.pop(name, None)

    def _input_topics(self) -> tuple[type, str, str, str]:
        """(message type, colour topic, camera_info topic, depth topic) per ``image_transport``."""
        if self.settings.image_transport == "raw":
            return Image, "image", "camera_info", "depth"
        # as image_transport: the transport's sub-topic of the resolved base topic
        return (CompressedImage, self.resolve_topic_name("image") + "/compressed", "camera_info",
                self.resolve_topic_name("depth") + "/compressedDepth")  # fmt: skip

    def _subscribe_inputs(self) -> None:
        """Subscribe colour, camera_info and depth (with ``use_depth``) per ``image_transport``."""
        msg_type, image_topic, info_topic, depth_topic = self._input_topics()
        self.primary_topics = (image_topic,)
        self.create_subscription(msg_type, image_topic, self._on_image, SENSOR_QOS)
        self.create_subscription(CameraInfo, info_topic, self._on_camera_info, SENSOR_QOS)
        if self.use_depth:
            self.create_subscription(msg_type, depth_topic, self._on_depth, SENSOR_QOS)

    def _apply_config(self, cfg: SegmentationConfig) -> None:
        """Run-time parameter change (read-only ones such as the model are refused by rclpy)."""
        self.cfg = cfg
        if hasattr(self, "pipeline"):  # configured
            self.pipeline.cfg = cfg
            self.assembler.pairer.slop_ns = int(cfg.sync_slop_s * 1e9)

    def _apply_settings(self, settings: NodeSettings) -> None:
        self.settings = settings
        if hasattr(self, "assembler"):
            self.assembler.order.jump_back_ns = int(settings.time_jump_s * 1e9)

    def finish(self) -> None:
        """At deactivation and shutdown: the frame being segmented finishes; frames still waiting are counted as
        drops."""
        if hasattr(self, "worker"):
            self.worker.wait_idle(30.0)
            self.assembler.flush()
            self._update_pending()

    def destroy_node(self) -> None:
        """Stop the worker thread first (it publishes), then destroy the node."""
        if hasattr(self, "worker"):
            self.worker.stop()
        super().destroy_node()

    def _update_pending(self) -> None:
        """Called from the executor and from the worker thread: read and written under the stats lock, so an older
        count never overwrites a newer one."""
        with self.stats.lock:
            self.stats.pending = self.assembler.pending + self.worker.pending

    def _worker_error(self, e: BaseException) -> None:
        """An exception that escaped the segmentation thread's work: counted and logged like a failing timer
        (``rejected["exception"]``, throttled error line with the traceback); the thread goes on."""
        self.stats.count_exception(e, "segmentation worker", primary=False)

    # -- inputs ------------------------------------------------------------------------------------------------
    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.transport_check(msg.height, msg.width, self.cfg, msg.header.frame_id, self.get_logger().warning)
        self._process(self.assembler.add_camera_info(msg))

    def _on_image(self, msg: Image | CompressedImage) -> None:
        with self.stats.lock:
            self.stats.frames_in += 1
        self._last_input = self.get_clock().now()
        self._stale = False
        try:
            if isinstance(msg, CompressedImage):
                self._process(self.assembler.add_compressed_image(msg))
            else:
                self._process(self.assembler.add_image(msg))
        finally:
            self._update_pending()

    def _on_depth(self, msg: Image | CompressedImage) -> None:
        if isinstance(msg, CompressedImage):
            self._process(self.assembler.add_compressed_depth(msg))
        else:
            self._process(self.assembler.add_depth(msg))

    def _check_staleness(self) -> None:
        age = (self.get_clock().now() - self._last_input).nanoseconds * 1e-9
        timeout = self.health.input_timeout_s
        if age > timeout and self.stats.frames_in > 0:
            if not self._stale:  # counted once per stall; logged (throttled) while it lasts
                self.stats.warnings["input_timeout"] += 1
                self._stale = True
            self.get_logger().warning(f"no colour image for {age:.1f} s (input_timeout_s {timeout})",
                                      throttle_duration_sec=10.0)  # fmt: skip

    # -- pipeline ----------------------------------------------------------------------------------------------
    def _process(self, frame: RGBDInput | None) -> None:
        """Hand a complete frame (validated and paired by the assembler) to the segmentation thread."""
        if frame is not None:
            self.worker.submit(frame)
        self._update_pending()

    def _skip_frame(self, frame: RGBDInput) -> None:
        self.stats.drop("busy", "a newer frame arrived while the network was busy: the newest one is segmented")

    def _run_frame(self, frame: RGBDInput) -> None:
        """core -> convert -> publish (on the segmentation thread). An exception is a dropped frame."""
        sw = Stopwatch()
        try:
            result = self.pipeline.process(frame.rgb, frame.depth, frame.k)
            sw.skip()  # the pipeline timed its own stages
            with self.stats.lock:
                self.stats.frames_out += 1
            try:
                self._publish(frame.image, result, sw)
            except Exception:
                with self.stats.lock:
                    self.stats.frames_out -= 1
                raise
        except Exception as e:  # noqa: BLE001 - one bad frame must not stop the node
            self.stats.count_exception(e, "segmentation", primary=True)
            return
        self.stats.add_timings({**result.timings_ms, **sw.laps})

    def _publish(self, img: Image, result: FrameResult, sw: Stopwatch) -> None:
        for name, msg in segmentation_messages(result, img.header).items():
            self.pubs[name].publish(msg)
        sw.lap("publish")


def main(args: list[str] | None = None) -> int:
    """Console entry point ``segmentation_node`` (ROS arguments: ``--ros-args -p name:=value ...``)."""
    return run_node(SegmentationNode, "segmentation_node", args)


if __name__ == "__main__":
    sys.exit(main())
