"""Costmap node: semantic point cloud in; drivable-area grid and inflated obstacle costmap out (Nav2 conventions).

Subscribed topics (relative; remap in launch):
    semantic_points (sensor_msgs/PointCloud2): fields x, y, z float32 [m] in the camera optical frame, label
        uint32 class id, optional confidence float32 (as published by the segmentation node).
    label_info (std_msgs/String, transient local): the segmentation node's class list (JSON, see README.md); it
        names the model's ontology and class names, which give each class its role (drivable / obstacle / ignore).

Published topics (reliable + transient local, depth 1; frame ``base_frame``; stamp of the cloud):
    drivable_grid (nav_msgs/OccupancyGrid): 0 = seen drivable, 100 = seen not drivable, -1 = unknown.
    obstacle_grid (nav_msgs/OccupancyGrid): 100 at obstacle cells, Nav2's exponential inflation (1-99) around them,
        0 = seen free, -1 = unknown (Nav2's cost translation table).
    ~/stats (std_msgs/String, transient local): frames in/out, drops per reason, stage timings [ms] as JSON.

Parameters: the fields of ``core.costmap.CostmapConfig`` (Nav2 names: ``resolution`` [m/cell], ``width`` and
``height`` [m], ``min_obstacle_height``/``max_obstacle_height`` [m above ground], ``inflation_radius`` [m],
``cost_scaling_factor`` [1/m], ...; see the descriptors), plus
    base_frame (string, "base_link"): frame of the grids (REP-105), robot-centred.
    camera_translation (double[3], [0, 0, 1.65]): camera origin in base_frame [m].
    camera_rpy (double[3], [0, 0, 0]): roll, pitch, yaw [rad] of the camera BODY frame (x forward, y left, z up)
        in base_frame, URDF convention; the optical rotation is applied on top (REP-103). Pitch > 0 looks down.
    ontology (string, ""): ontology name (config/ontology/<name>.yaml) or YAML path; "" = the one label_info names.
"""

from __future__ import annotations

import json
import sys

from nav_msgs.msg import OccupancyGrid
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header, String

from seg_perception.core.costmap import CostmapConfig, load_ontology
from seg_perception.core.mapper import GridMapper, cloud_arrays
from seg_perception.ros import convert
from seg_perception.ros.node_utils import NodeStats, Stopwatch, run_node
from seg_perception.ros.params import declare_config
from seg_perception.ros.qos import CLOUD_IN_QOS, LATCHED_QOS
from seg_perception.ros.validate import reason, validate_cloud


class CostmapNode(Node):
    """See the module docstring for topics and parameters.

    Raises (from ``__init__``): ValueError for invalid parameters (grid over the memory bound, bad extrinsic...).
    """

    def __init__(self, **kwargs) -> None:  # noqa: ANN003
        super().__init__("costmap", **kwargs)
        self.cfg = declare_config(self, CostmapConfig)
        self.base_frame = self.declare_parameter(
            "base_frame", "base_link", ParameterDescriptor(description="frame of the grids (REP-105)")
        ).value
        translation = self.declare_parameter(
            "camera_translation", [0.0, 0.0, 1.65], ParameterDescriptor(description="camera origin in base_frame [m]")
        ).value
        rpy = self.declare_parameter(
            "camera_rpy",
            [0.0, 0.0, 0.0],
            ParameterDescriptor(description="roll, pitch, yaw of the camera body frame in base_frame [rad]"),
        ).value
        self.ontology_param = self.declare_parameter(
            "ontology", "", ParameterDescriptor(description="ontology name or YAML path; empty = from label_info")
        ).value
        self.mapper = GridMapper(self.cfg, translation, rpy)
        self.stats = NodeStats(self)
        self.pub_drivable = self.create_publisher(OccupancyGrid, "drivable_grid", LATCHED_QOS)
        self.pub_obstacle = self.create_publisher(OccupancyGrid, "obstacle_grid", LATCHED_QOS)
        self.create_subscription(String, "label_info", self._on_label_info, LATCHED_QOS)
        self.create_subscription(PointCloud2, "semantic_points", self._on_cloud, CLOUD_IN_QOS)
        self.get_logger().info(
            f"grid {self.mapper.geometry.width_cells}x{self.mapper.geometry.height_cells} cells at "
            f"{self.cfg.resolution} m in "
            f"{self.base_frame}; camera at {list(translation)} m, rpy {list(rpy)} rad"
        )

    def _on_label_info(self, msg: String) -> None:
        try:
            info = json.loads(msg.data)
            categories = [c["name"] for c in sorted(info["classes"], key=lambda c: c["id"])]
            name = self.ontology_param or info["ontology"]
            self.mapper.roles_lut = load_ontology(name, categories).roles_lut(categories)
            self.get_logger().info(f"ontology {name!r} for model {info.get('model')!r} ({len(categories)} classes)")
        except (ValueError, KeyError, TypeError, FileNotFoundError) as e:
            self.stats.drop("label_info", f"cannot use label_info: {type(e).__name__}: {e}")

    def _on_cloud(self, msg: PointCloud2) -> None:
        """validate -> convert -> core (transform, classify, rasterize, inflate) -> convert -> publish."""
        self.stats.frames_in += 1
        problems = validate_cloud(msg, ("x", "y", "z", "label"))
        if problems:
            self.stats.drop(reason(problems[0]), "semantic_points: " + "; ".join(problems))
            return
        if self.mapper.roles_lut is None:
            self.stats.drop("no_label_info", "no usable label_info yet: class roles unknown")
            return
        sw = Stopwatch()
        try:
            has_conf = any(f.name == "confidence" for f in msg.fields)
            cloud = convert.msg_to_cloud(msg, ["x", "y", "z", "label"] + (["confidence"] if has_conf else []))
            sw.lap("decode")
            grids = self.mapper.update(*cloud_arrays(cloud))
            sw.skip()
            header = Header(stamp=msg.header.stamp, frame_id=self.base_frame)
            geo = grids.geometry
            for pub, occ in ((self.pub_drivable, grids.drivable), (self.pub_obstacle, grids.obstacle)):
                pub.publish(convert.grid_to_msg(occ, geo.resolution, (geo.origin_x, geo.origin_y), header))
            sw.lap("publish")
            sw.laps.update(grids.timings_ms)
            self.stats.add_timings(sw.laps)
            self.stats.frames_out += 1
        except Exception as e:  # noqa: BLE001 - one bad cloud must not stop the node
            self.stats.drop_exception(e)


def main(args: list[str] | None = None) -> int:
    """Console entry point ``costmap_node`` (ROS arguments: ``--ros-args -p name:=value ...``)."""
    return run_node(CostmapNode, "costmap_node", args)


if __name__ == "__main__":
    sys.exit(main())
