"""The costmap node's ground projection in-process: camera_info rays make the drivable grid of a real KITTI cloud
denser; a camera_info of another image size or another frame, or a broken one, is a counted reject and the cloud is
still mapped (depth only)."""

from __future__ import annotations

import copy
import json

import numpy as np
from nav_msgs.msg import OccupancyGrid
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, PointCloud2
from std_msgs.msg import Header, String
from vision_msgs.msg import LabelInfo

from seg_perception.ros import convert
from seg_perception.ros.qos import LATCHED_QOS


def label_info_of(info_json: str) -> LabelInfo:
    """The vision_msgs/LabelInfo a segmentation node publishes beside ``info_json`` (same ids and names)."""
    return convert.label_info_msg([c["name"] for c in json.loads(info_json)["classes"]], Header())


def _later(msg: PointCloud2, dt_ns: int) -> PointCloud2:
    out = copy.copy(msg)
    out.header = copy.deepcopy(msg.header)
    out.header.stamp = convert.ns_to_stamp(convert.stamp_to_ns(msg.header.stamp) + dt_ns)
    return out


def test_camera_info_rays_densify_the_drivable_grid(ros, kitti_costmap, real_cloud, kitti_frames) -> None:  # noqa: ANN001
    node = kitti_costmap(ros, [Parameter("resolution", value=0.2), Parameter("width", value=40.0),
                               Parameter("height", value=40.0), Parameter("max_range_m", value=30.0)])  # fmt: skip
    assert node.mapper.projection is not None  # ground_projection.enabled defaults to true
    pub_cloud = ros.publisher(PointCloud2, "semantic_points")
    pub_info = ros.publisher(String, "label_info_json", LATCHED_QOS)
    pub_std = ros.publisher(LabelInfo, "label_info", LATCHED_QOS)
    pub_cam = ros.publisher(CameraInfo, "camera_info")
    grids = ros.subscribe(OccupancyGrid, "drivable_grid", LATCHED_QOS)
    ros.wait_for_subscribers([pub_cloud, pub_info, pub_std, pub_cam])
    cloud_msg, info = real_cloud
    pub_info.publish(String(data=info))
    pub_std.publish(label_info_of(info))
    assert ros.spin_until(lambda: node.mapper.rules is not None, 10.0)

    def drivable_cells(msg: PointCloud2) -> int:
        n = len(grids)
        pub_cloud.publish(msg)
        assert ros.spin_until(lambda: len(grids) > n, 20.0), dict(node.stats.drops)
        return int((convert.grid_from_msg(grids[-1]) == 0).sum())

    depth_only = drivable_cells(cloud_msg)  # no camera_info yet: depth only
    cam = kitti_frames[0].camera_info()
    pub_cam.publish(cam)
    assert ros.spin_until(lambda: node._camera is not None, 10.0)
    dense = drivable_cells(_later(cloud_msg, 100_000_000))
    assert dense > 1.5 * depth_only > 0, (depth_only, dense)  # 1.85x (the boundary margin keeps road off the cars)

    # a camera_info of another image size: counted reject, the cloud is mapped without projection
    small = copy.deepcopy(cam)
    small.width, small.height = 640, 480
    pub_cam.publish(small)
    assert ros.spin_until(lambda: node._camera is not None and node._camera[0].width == 640, 10.0)
    assert drivable_cells(_later(cloud_msg, 200_000_000)) == depth_only
    assert node.stats.rejected["camera_info_stride"] == 1
    # another frame: counted reject too
    other = copy.deepcopy(cam)
    other.header.frame_id = "another_camera_optical_frame"
    pub_cam.publish(other)
    assert ros.spin_until(lambda: node._camera is not None and node._camera[1] == other.header.frame_id, 10.0)
    assert drivable_cells(_later(cloud_msg, 300_000_000)) == depth_only
    assert node.stats.rejected["camera_info_frame"] == 1
    # a broken camera_info is refused and the last good one stays in use
    pub_cam.publish(cam)
    assert ros.spin_until(lambda: node._camera is not None and node._camera[1] == cam.header.frame_id, 10.0)
    bad = copy.deepcopy(cam)
    bad.k = [float("nan")] * 9
    pub_cam.publish(bad)
    assert ros.spin_until(lambda: node.stats.rejected["camera_info_k"] == 1, 10.0)
    assert drivable_cells(_later(cloud_msg, 400_000_000)) == dense
    assert np.isfinite(node._camera[0].fx)


def test_semantic_grid_and_its_label_info(ros, kitti_costmap, real_cloud, kitti_frames) -> None:  # noqa: ANN001
    node = kitti_costmap(ros, [Parameter("resolution", value=0.2), Parameter("width", value=40.0),
                               Parameter("height", value=40.0)])  # fmt: skip
    pub_cloud = ros.publisher(PointCloud2, "semantic_points")
    pub_info = ros.publisher(String, "label_info_json", LATCHED_QOS)
    pub_std = ros.publisher(LabelInfo, "label_info", LATCHED_QOS)
    pub_cam = ros.publisher(CameraInfo, "camera_info")
    grids = {t: ros.subscribe(OccupancyGrid, t, LATCHED_QOS) for t in ("drivable_grid", "obstacle_grid",
                                                                         "semantic_grid")}  # fmt: skip
    classes = ros.subscribe(LabelInfo, "semantic_grid/label_info", LATCHED_QOS)
    ros.wait_for_subscribers([pub_cloud, pub_info, pub_std, pub_cam])
    cloud_msg, info = real_cloud
    pub_info.publish(String(data=info))
    sent = label_info_of(info)
    pub_std.publish(sent)
    pub_cam.publish(kitti_frames[0].camera_info())
    assert ros.spin_until(lambda: node.mapper.rules is not None and node._camera is not None and classes, 10.0)
    assert convert.label_info_pairs(classes[-1]) == convert.label_info_pairs(sent)  # the ids of semantic_grid
    pub_cloud.publish(cloud_msg)
    assert ros.spin_until(lambda: all(grids.values()), 20.0), dict(node.stats.drops)
    drv, obs, sem = (convert.grid_from_msg(grids[t][-1]) for t in ("drivable_grid", "obstacle_grid", "semantic_grid"))
    assert grids["semantic_grid"][-1].info == grids["drivable_grid"][-1].info
    names = dict(convert.label_info_pairs(sent))
    assert {names[c] for c in np.unique(sem[drv == 0]).tolist()} == {"road"}
    assert (sem[drv == -1] == -1).all()
    obstacle_names = {names[c] for c in np.unique(sem[obs == 100]).tolist() if c >= 0}
    assert "car" in obstacle_names and "road" not in obstacle_names, obstacle_names
