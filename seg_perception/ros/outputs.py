"""Results -> output messages, for the nodes and ``seg-perception process`` alike (offline equals online).

Each function turns one frame's core results into the messages the node publishes, keyed by the relative topic
name; the nodes publish them, ``process`` writes them to a bag. Building them in one place is what makes the offline
outputs the same as the launched nodes'.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from seg_perception.core.geometry.ground import GroundPlane
from seg_perception.core.geometry.transforms import rotation_between
from seg_perception.core.mapping.ontology import PointRole
from seg_perception.core.mapping.pipeline import GridResult
from seg_perception.ros import convert

if TYPE_CHECKING:  # the costmap node uses this module too and must not load torch
    from seg_perception.core.segmentation.pipeline import FrameResult

#: Points of ``obstacle_points``: x, y, z float32 [m] in the grid frame, label uint32.
OBSTACLE_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("label", "<u4")])


def confidence_u8(confidence: np.ndarray) -> np.ndarray:
    """(H, W) float32 confidence in [0, 1] -> mono8 (x 255, rounded)."""
    out: np.ndarray = np.rint(confidence * 255.0).astype(np.uint8)
    return out


def segmentation_messages(result: FrameResult, header: Header) -> dict[str, Image | PointCloud2]:
    """``labels`` (mono8 class ids), ``confidence`` (mono8), ``overlay`` (rgb8, when made) and ``semantic_points``
    (when made), all with the colour image's header."""
    out: dict[str, Image | PointCloud2] = {
        "labels": convert.array_to_image(result.labels, "mono8", header),
        "confidence": convert.array_to_image(confidence_u8(result.confidence), "mono8", header),
    }
    if result.overlay is not None:
        out["overlay"] = convert.array_to_image(result.overlay, "rgb8", header)
    if result.cloud is not None:
        out["semantic_points"] = convert.cloud_to_msg(result.cloud, header)
    return out


def costmap_messages(grids: GridResult, header: Header, robot_xy: tuple[float, float]) -> dict[str, Any]:
    """``drivable_grid``, ``obstacle_grid`` and ``semantic_grid`` (OccupancyGrid), ``obstacle_points`` (this cloud's
    obstacle points in the grid frame) and ``ground_plane`` (Marker, when a plane was used); ``header`` = cloud
    stamp + grid frame."""
    geo = grids.geometry
    origin = (geo.origin_x, geo.origin_y)
    out: dict[str, Any] = {
        "drivable_grid": convert.grid_to_msg(grids.drivable_occupancy, geo.resolution, origin, header),
        "obstacle_grid": convert.grid_to_msg(grids.obstacle_occupancy, geo.resolution, origin, header),
    }
    if grids.semantic is not None:
        out["semantic_grid"] = convert.grid_to_msg(grids.semantic, geo.resolution, origin, header)
    keep = grids.roles == PointRole.OBSTACLE
    pts = np.empty(int(keep.sum()), dtype=OBSTACLE_DTYPE)
    pts["x"], pts["y"], pts["z"] = grids.points[keep, 0], grids.points[keep, 1], grids.points[keep, 2]
    pts["label"] = grids.labels[keep]
    out["obstacle_points"] = convert.cloud_to_msg(pts, header)
    if grids.ground is not None:
        out["ground_plane"] = ground_marker(grids.ground, grids.ground_fitted, robot_xy, header)
    return out


def ground_marker(plane: GroundPlane, fitted: bool, center_xy: tuple[float, float], header: Header) -> Marker:
    """A thin square (10 m) on the ground plane under ``center_xy`` for RViz; green when fitted, orange otherwise."""
    m = Marker(header=header, ns="ground_plane", id=0, type=Marker.CUBE, action=Marker.ADD)
    n = plane.normal
    x, y = center_xy
    z = float(-(plane.offset + n[0] * x + n[1] * y) / n[2])
    m.pose.position.x, m.pose.position.y, m.pose.position.z = x, y, z
    q = rotation_between((0.0, 0.0, 1.0), n)
    m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z, m.pose.orientation.w = (float(v) for v in q)
    m.scale.x = m.scale.y = 10.0
    m.scale.z = 0.01
    m.color.a = 0.4
    m.color.r, m.color.g, m.color.b = (0.1, 0.8, 0.2) if fitted else (1.0, 0.5, 0.0)
    return m


def msgtype_of(msg: object) -> str:
    """The ROS 2 type name of an rclpy message, e.g. ``sensor_msgs/msg/Image`` (for bag connections)."""
    pkg = type(msg).__module__.split(".")[0]
    return f"{pkg}/msg/{type(msg).__name__}"
