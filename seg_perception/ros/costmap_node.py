"""Costmap node: semantic point cloud in; drivable-area grid and inflated obstacle costmap out (Nav2 conventions).

Subscribed topics (relative; remap in launch):
    semantic_points (sensor_msgs/PointCloud2): fields x, y, z float32 [m] in the camera optical frame, label
        uint32 class id, optional confidence float32 (as published by the segmentation node).
    label_info (vision_msgs/LabelInfo, transient local): class id -> class name; the names give each class its
        role, cost and inflation radius in the ontology (the ``ontology`` parameter, else the one label_info_json
        names). Required: clouds before it are dropped (``no_label_info``).
    label_info_json (std_msgs/String, transient local, optional): the segmentation node's extras for the same
        classes (ontology name, colours for fused_points, ignore label; JSON, see README.md).
    camera_info (sensor_msgs/CameraInfo, sensor QoS, optional): K of the colour image the cloud was made from; its
        rays project drivable pixels without depth onto the ground plane (``ground_projection.*``). The cloud's
        stride is inferred from its width; a camera_info the cloud is no decimation of is refused
        (``camera_info_stride``) and that cloud is mapped without projection.
    /tf, /tf_static (tf2_msgs/TFMessage, through a tf2_ros.TransformListener): the cloud's frame in
        ``robot_base_frame`` (the camera mount: URDF / static_transform_publisher) and ``global_frame ->
        robot_base_frame`` (the robot pose, from odometry), both looked up at the cloud's stamp.

Published topics (grids reliable + transient local, depth 1; stamp of the cloud):
    drivable_grid (nav_msgs/OccupancyGrid): 0 = seen drivable, 100 = seen not drivable, -1 = unknown.
    obstacle_grid (nav_msgs/OccupancyGrid): 100 at obstacle cells, Nav2's exponential inflation (1-99) around them,
        0 = seen free, -1 = unknown (Nav2's cost translation table).
    semantic_grid (nav_msgs/OccupancyGrid): class id (0..127) of the points behind each cell's verdict (obstacle
        cells: their obstacle classes; drivable / not drivable cells: their ground classes), -1 = unknown or a
        class id above 127 (``core/mapping/semantic.py``).
    semantic_grid/label_info (vision_msgs/LabelInfo, transient local): the class map the node applies (class id ->
        name), republished when it changes, so the ids of semantic_grid read without the segmentation node.
        Frame: ``global_frame`` (a rolling window centred on the robot, as Nav2's local costmap), or
        ``robot_base_frame`` (robot-centred) when ``global_frame`` is empty.
    obstacle_points (sensor_msgs/PointCloud2): this cloud's obstacle points (x, y, z, label) in the grid frame, for
        Nav2's obstacle / voxel layers.
    fused_points (sensor_msgs/PointCloud2): the semantic voxel map (x, y, z, rgb, label, confidence), every
        ``fused_points_period_s``.
    ground_plane (visualization_msgs/Marker): the ground plane used for the last cloud (green = fitted, orange =
        fallback), for RViz.
    /diagnostics (diagnostic_msgs/DiagnosticArray): semantic_points rate, age and stamp delay (OK / WARN below
        ``expected_rate_hz`` / ERROR after ``input_timeout_s`` without a cloud), frames in/out, drops / rejected /
        warnings per reason, stage timings [ms] (``ros/diagnostics.py``, numbers from ``node_utils.NodeStats``).

Parameters: ``PARAMETERS`` below, one ``core.config.ParamGroup`` per config dataclass (``CostmapConfig``,
``CostmapSettings``, ``ground.*`` ``GroundConfig``, ``fusion.*`` ``FusionConfig``, ``ground_projection.*``
``GroundProjectionConfig``, ``HealthSettings``); each field's ``param`` declaration gives its default, description
with unit and range (``ros2 param describe``; README's table is generated from them: ``seg-perception params
costmap``). ``autostart`` (``ros/params.LIFECYCLE``): configure + activate at construction (``GuardedNode``);
false = wait for a lifecycle manager. Configure builds the grids and the TF listener, activate subscribes, cleanup
frees; outputs are published only while active.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import tf2_ros
from nav_msgs.msg import OccupancyGrid
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, PointCloud2
from std_msgs.msg import Header, String
from vision_msgs.msg import LabelInfo
from visualization_msgs.msg import Marker

from seg_perception.core.config import ParamGroup
from seg_perception.core.errors import InputRejected
from seg_perception.core.geometry.camera import Intrinsics
from seg_perception.core.geometry.cloud import CLOUD_DTYPE, cloud_arrays
from seg_perception.core.geometry.ground import GroundConfig
from seg_perception.core.mapping.grid import CostmapConfig, FusionConfig
from seg_perception.core.mapping.ground_projection import GroundProjectionConfig, RayCache
from seg_perception.core.mapping.ontology import Ontology, open_ontology
from seg_perception.core.mapping.pipeline import ClassRules, CostmapPipeline, CostmapSettings
from seg_perception.core.mapping.semantic import MAX_GRID_CLASS
from seg_perception.core.segmentation.class_info import (
    ClassInfo,
    ClassInfoError,
    check_class_count,
    class_info_from_label_info,
    parse_label_info,
)
from seg_perception.core.sync import StampOrder
from seg_perception.ros import convert
from seg_perception.ros.diagnostics import HealthSettings, NodeDiagnostics
from seg_perception.ros.node_utils import GuardedNode, NodeStats, run_node
from seg_perception.ros.outputs import costmap_messages
from seg_perception.ros.params import declare_groups, enable_dynamic_config
from seg_perception.ros.pose_source import CloudPoser, TimelineBuffer
from seg_perception.ros.qos import CLOUD_IN_QOS, LATCHED_QOS, OUTPUT_QOS, SENSOR_QOS
from seg_perception.ros.validate import reason, validate_camera_info, validate_cloud
from seg_perception.ros.worker import Stopwatch

#: The outputs (lifecycle publishers: silent unless the node is active)...
#: Published topics (relative) -> (message type, QoS): grids latched (Nav2 maps), the rest volatile; the RViz
#: config test reads this table.
OUTPUTS: dict[str, tuple[type, QoSProfile]] = {
    "drivable_grid": (OccupancyGrid, LATCHED_QOS),
    "obstacle_grid": (OccupancyGrid, LATCHED_QOS),
    "semantic_grid": (OccupancyGrid, LATCHED_QOS),
    "semantic_grid/label_info": (LabelInfo, LATCHED_QOS),
    "obstacle_points": (PointCloud2, OUTPUT_QOS),
    "ground_plane": (Marker, OUTPUT_QOS),
    "fused_points": (PointCloud2, OUTPUT_QOS),
}


#: The node's parameters: one ``ParamGroup`` per config dataclass (the attribute that holds it); README's table is
#: generated from this list (``seg-perception params costmap``). The grid geometry needs a restart, the thresholds
#: and inflation of ``CostmapConfig`` and the health checks change at run time.
PARAMETERS = (
    ParamGroup("cfg", CostmapConfig, read_only=("resolution", "width", "height")),
    ParamGroup("settings", CostmapSettings, read_only=True),
    ParamGroup("ground_cfg", GroundConfig, "ground.", exclude=("expected_height_m",), read_only=True),
    ParamGroup("fusion_cfg", FusionConfig, "fusion.", exclude=("resolution", "width", "height"), read_only=True),
    ParamGroup("projection_cfg", GroundProjectionConfig, "ground_projection.", read_only=True),
    ParamGroup("health", HealthSettings),
)


class CostmapNode(GuardedNode):
    """See the module docstring for topics and parameters; a managed node (``GuardedNode``: lifecycle, autostart).

    Raises (from ``__init__``, or from ``configure``: a failed transition, the node stays unconfigured): ValueError
    for invalid parameters (grid over the memory bound...); FileNotFoundError for an ``ontology`` parameter that
    names no file or package ontology.
    """

    primary_topics = ("semantic_points",)
    # set by declare_groups(PARAMETERS)
    cfg: CostmapConfig
    settings: CostmapSettings
    ground_cfg: GroundConfig
    fusion_cfg: FusionConfig
    projection_cfg: GroundProjectionConfig
    health: HealthSettings

    def __init__(self, **kwargs) -> None:  # noqa: ANN003
        super().__init__("costmap", **kwargs)
        self.stats = NodeStats(self)
        # the grid's geometry is built once; the thresholds and inflation can change at run time
        declare_groups(self, PARAMETERS)  # cfg, settings, ground_cfg, fusion_cfg, projection_cfg, health
        self.tolerance_ns = int(self.settings.transform_tolerance_s * 1e9)
        enable_dynamic_config(self, lambda: self.cfg, self._apply_config)
        enable_dynamic_config(self, lambda: self.health, lambda h: setattr(self, "health", h))
        self.diagnostics = NodeDiagnostics(self, self.stats, ["semantic_points"], lambda: self.health)
        self.start()

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def configure(self) -> None:
        """Read the ontology parameter (FileNotFoundError), build the grids (ValueError over the memory bound),
        start listening to TF, create the (lifecycle) publishers."""
        s = self.settings
        # an ontology from the parameter (trusted configuration: a name or a YAML path) is read once, here
        self._ontology_param: Ontology | None = open_ontology(s.ontology) if s.ontology else None
        self.mapper = CostmapPipeline.from_settings(self.cfg, s, self.ground_cfg, self.fusion_cfg,
                                               projection_cfg=self.projection_cfg)  # fmt: skip
        self._rays = RayCache()
        self._camera: tuple[Intrinsics, str] | None = None  # the last valid camera_info: K and frame
        self.class_info: ClassInfo | None = None
        self.palette: np.ndarray | None = None
        self._ontology: Ontology | None = None
        self._class_map: list[tuple[int, str]] | None = None  # the last valid LabelInfo
        self._label_info_header = Header()  # its header, for semantic_grid/label_info
        self._extras: ClassInfo | None = None  # the last valid label_info_json
        self._last_header: Header | None = None
        self._order = StampOrder(int(s.time_jump_s * 1e9))
        self.tf_buffer = TimelineBuffer(self, int(s.time_jump_s * 1e9),
                                        lambda t, back: self._on_time_jump(t, back, "/tf"))  # fmt: skip
        self.tf_listener = tf2_ros.TransformListener(self.tf_buffer, self)
        self.poser = CloudPoser(self.tf_buffer, s.global_frame, s.robot_base_frame, self.tolerance_ns, s.max_jump_m,
                                self._on_jump)  # fmt: skip
        self.pubs: dict[str, Any] = {}
        for name, (cls, qos) in OUTPUTS.items():
            self.pubs[name] = self.create_lifecycle_publisher(cls, name, qos)
        g = self.mapper.geometry
        self.get_logger().info(
            f"grid {g.width_cells}x{g.height_cells} cells at {self.cfg.resolution} m in "
            f"{s.global_frame or s.robot_base_frame}; camera pose from TF (cloud frame in {s.robot_base_frame}"
            f"{f', {s.global_frame} -> {s.robot_base_frame}' if s.global_frame else ''}); fusion {s.use_fusion}; "
            f"ground fit {s.fit_ground}"
        )

    def activate(self) -> None:
        """Subscribe the class metadata (latched: delivered again at each activation) and the clouds."""
        self.create_subscription(LabelInfo, "label_info", self._on_label_info, LATCHED_QOS)
        self.create_subscription(String, "label_info_json", self._on_label_info_json, LATCHED_QOS)
        self.create_subscription(PointCloud2, "semantic_points", self._on_cloud, CLOUD_IN_QOS)
        if self.mapper.projection is not None:
            self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, SENSOR_QOS)
        if self.mapper.voxels is not None and self.settings.fused_points_period_s > 0:
            self.create_timer(self.settings.fused_points_period_s, self._publish_fused)

    def cleanup(self) -> None:
        """Stop listening to TF (and remove the tf buffer's service and clock callback), destroy the publishers,
        free the grids and the fused state."""
        if hasattr(self, "tf_listener"):
            self.tf_listener.unregister()
        if hasattr(self, "tf_buffer"):
            self.tf_buffer.destroy()
        for pub in getattr(self, "pubs", {}).values():
            self.destroy_lifecycle_publisher(pub)
        for name in ("mapper", "tf_listener", "tf_buffer", "poser", "pubs", "class_info", "palette"):
            self.__dict__.pop(name, None)

    def _apply_config(self, cfg: CostmapConfig) -> None:
        """Run-time change of thresholds / inflation; class inflation radii default to the new global radius."""
        self.cfg = cfg
        if not hasattr(self, "mapper"):  # unconfigured: the grids take it at configure
            return
        self.mapper.cfg = cfg
        if self._ontology is not None and self.class_info is not None:
            self.mapper.rules = ClassRules.from_ontology(self._ontology, self.class_info.categories, cfg)

    def _on_jump(self, distance_m: float) -> None:
        self.mapper.reset()
        self.get_logger().warning(f"robot pose ({self.settings.global_frame} -> {self.settings.robot_base_frame}) "
                                  f"jumped {distance_m:.2f} m: fused window reset")  # fmt: skip

    def _on_time_jump(self, stamp_ns: int, back_s: float, source: str = "semantic_points") -> None:
        """Time went backwards (bag loop, simulator reset), seen on /tf or on the clouds, whichever first: forget the
        fused state, the transforms of the old timeline, the last robot pose and the cloud stamp order, log once."""
        self.mapper.reset()
        self.poser.jumps.reset()  # (a /tf jump has cleared the tf buffer already: TimelineBuffer)
        if source != "semantic_points":
            self._order.reset()  # the clouds of the new timeline are in order; no second jump for them
        self.stats.warn("time_jump", f"{source}: time jumped back {back_s:.3f} s: fused state and poses of the "
                                     "old timeline cleared")  # fmt: skip

    def _on_label_info(self, msg: LabelInfo) -> None:
        """Class id -> name from LabelInfo, validated as data; on any rule broken keep the last good metadata."""
        check_class_count(len(msg.class_map))  # before the class_map is copied
        self._label_info_header = msg.header
        self._apply_classes(convert.label_info_pairs(msg), self._extras)

    def _on_label_info_json(self, msg: String) -> None:
        """The extras (ontology name, colours, ignore label), validated as data; applied with the LabelInfo."""
        extras = parse_label_info(msg.data)
        if self._class_map is None:
            self._extras = extras
            return
        self._apply_classes(self._class_map, extras)

    def _apply_classes(self, class_map: list[tuple[int, str]], extras: ClassInfo | None) -> None:
        """Class roles from the LabelInfo names in the ontology (the parameter, else the one the extras name).
        Nothing is replaced unless every rule holds (``ClassInfoError`` -> counted reject by the guard)."""
        try:
            info = class_info_from_label_info(class_map, extras)  # a LabelInfo that breaks a rule raises here
        except ClassInfoError as e:
            if extras is None or e.reason != "label_info_mismatch":
                raise
            self.stats.reject(e.reason, e.detail)  # extras of another model: counted; the LabelInfo alone is used
            extras = None
            info = class_info_from_label_info(class_map)
        if not info.ontology and self._ontology_param is None:
            self._class_map, self._extras = class_map, extras
            self.get_logger().info("label_info received; waiting for label_info_json or the ontology parameter to "
                                   "name the ontology", once=True)  # fmt: skip
            return
        ontology, rules = ClassRules.from_class_info(info, self.cfg, self._ontology_param)
        self._class_map, self._extras = class_map, extras
        self.class_info, self._ontology, self.mapper.rules = info, ontology, rules
        self.palette = np.asarray(info.palette, dtype=np.uint8)  # (C, 3): one colour per class id
        self.pubs["semantic_grid/label_info"].publish(convert.label_info_msg(info.categories, self._label_info_header))
        if len(info.categories) > MAX_GRID_CLASS + 1:
            self.get_logger().warning(f"{len(info.categories)} classes: semantic_grid (int8 OccupancyGrid data) "
                                      f"shows ids 0..{MAX_GRID_CLASS}; cells of higher ids read -1")  # fmt: skip
        self.get_logger().info(
            f"ontology {ontology.name!r} for model {info.model!r} ({len(info.categories)} classes)"
        )

    def _on_camera_info(self, msg: CameraInfo) -> None:
        """Keep the newest valid camera_info (ground projection rays); a bad one is a counted reject."""
        problems = validate_camera_info(msg)
        if problems:
            self.stats.reject(reason(problems[0]), "camera_info: " + "; ".join(problems))
            return
        self._camera = (convert.camera_info_to_intrinsics(msg), msg.header.frame_id)

    def _cloud_rays(self, msg: PointCloud2) -> np.ndarray | None:
        """Unit rays of the cloud's pixels for ground projection, or None (off, no camera_info yet, or a
        camera_info of another camera or image size: counted reject)."""
        if self.mapper.projection is None or self._camera is None:
            return None
        k, frame = self._camera
        try:
            if frame and frame != msg.header.frame_id:
                raise InputRejected("camera_info_frame", f"camera_info frame {frame!r} is not the cloud's "
                                                         f"{msg.header.frame_id!r}")  # fmt: skip
            return self._rays.rays(k, (msg.height, msg.width))
        except InputRejected as e:
            self.stats.reject(e.reason, e.detail)
            return None

    def _on_cloud(self, msg: PointCloud2) -> None:
        """validate -> convert -> core (pose, ground, classify, grids/fusion) -> convert -> publish."""
        self.stats.frames_in += 1
        problems = validate_cloud(msg, ("x", "y", "z", "label"))
        if problems:
            self.stats.drop(reason(problems[0]), "semantic_points: " + "; ".join(problems))
            return
        stamp_ns = convert.stamp_to_ns(msg.header.stamp)
        sw = Stopwatch()
        # the pose first: a cloud of an old timeline (after /tf jumped back) has none and is dropped before it can
        # move the stamp order
        pose = self.poser.pose(stamp_ns, msg.header.frame_id, self.cfg.ground_height_m)
        newest_ns = self._order.newest_ns
        order = self._order.check(stamp_ns)
        if order == StampOrder.LATE:
            self.stats.drop("out_of_order", f"cloud stamp {stamp_ns / 1e9:.3f} s is older than the newest "
                                            f"{(newest_ns or 0) / 1e9:.3f} s")  # fmt: skip
            return
        if order == StampOrder.JUMP:
            self._on_time_jump(stamp_ns, ((newest_ns or 0) - stamp_ns) / 1e9)
        if self.mapper.rules is None or self.class_info is None:
            self.stats.drop("no_label_info", "no usable label_info yet (and an ontology: the parameter or "
                                             "label_info_json): class roles unknown")  # fmt: skip
            return
        has_conf = any(f.name == "confidence" for f in msg.fields)
        cloud = convert.msg_to_cloud(msg, ["x", "y", "z", "label"] + (["confidence"] if has_conf else []))
        xyz, labels, conf = cloud_arrays(cloud)
        if not np.isfinite(xyz).all(axis=1).any():
            self.stats.drop("empty_cloud", "the cloud has no valid point")
            return
        info = self.class_info
        unknown = int(np.count_nonzero((labels >= len(info.categories)) & (labels != info.ignore_label)))
        if unknown:
            self.stats.warn("unknown_label", f"{unknown} points have class ids that label_info does not name "
                                             f"(0..{len(info.categories) - 1}); they are ignored")  # fmt: skip
        sw.lap("decode")
        grids = self.mapper.update(xyz, labels, conf, pose.t_grid_camera, pose.robot_xy, pose.ground_z, stamp_ns * 1e-9,
                                   self._cloud_rays(msg))  # fmt: skip
        sw.skip()
        header = Header(stamp=msg.header.stamp, frame_id=pose.frame)
        self._last_header = header
        for name, out in costmap_messages(grids, header, pose.robot_xy).items():
            self.pubs[name].publish(out)
        sw.lap("publish")
        sw.laps.update(grids.timings_ms)
        self.stats.add_timings(sw.laps)
        self.stats.frames_out += 1

    def _publish_fused(self) -> None:
        if self.mapper.voxels is None or self._last_header is None or self.palette is None:
            return
        cloud = self.mapper.voxels.to_cloud(self.palette)
        if cloud.dtype != CLOUD_DTYPE:
            cloud = cloud.astype(CLOUD_DTYPE)
        self.pubs["fused_points"].publish(convert.cloud_to_msg(cloud, self._last_header))


def main(args: list[str] | None = None) -> int:
    """Console entry point ``costmap_node`` (ROS arguments: ``--ros-args -p name:=value ...``)."""
    return run_node(CostmapNode, "costmap_node", args)


if __name__ == "__main__":
    sys.exit(main())
