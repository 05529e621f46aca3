"""The costmap node with TF (the camera mount on /tf_static, odom -> base_link on /tf from the dataset's poses), ground
fitting and temporal fusion, on real 7-Scenes kitchen frames; missing and stale transforms are counted drops."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tf2_ros
from nav_msgs.msg import OccupancyGrid
from rclpy.parameter import Parameter
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header, String
from vision_msgs.msg import LabelInfo
from visualization_msgs.msg import Marker

from seg_perception.core.geometry.gravity import floor_alignment
from seg_perception.core.geometry.transforms import camera_to_base
from seg_perception.core.segmentation.class_info import label_info_json
from seg_perception.core.segmentation.pipeline import SegmentationConfig, SegmentationPipeline
from seg_perception.datasets import open_sequence
from seg_perception.ros import convert
from seg_perception.ros.costmap_node import CostmapNode
from seg_perception.ros.pose_source import transform_msg
from seg_perception.ros.qos import LATCHED_QOS
from seg_perception.tools.bag_from_frames import MOUNTS

FRAME = "camera_color_optical_frame"
MOUNT = camera_to_base(*MOUNTS["7scenes"])  # base_link -> optical frame, as bag-from-frames writes it


@pytest.fixture(scope="module")
def kitchen(kitchen_dir, model_dir):  # noqa: ANN001, ANN201
    """Clouds (PascalVOC ESPNetv2) and z-up odometry poses of a few real kitchen frames."""
    seq = open_sequence(kitchen_dir)
    frames = [seq[i] for i in (0, 10, 20, 30, 40)]
    align = floor_alignment([seq[i].depth_mm for i in range(0, 300, 30)], [seq[i].pose for i in range(0, 300, 30)],
                            seq.intrinsics)  # fmt: skip
    pipe = SegmentationPipeline(SegmentationConfig(model="espnetv2_pascal", weights=str(model_dir), device="cpu",
                                                   input_width=256, input_height=192, cloud_stride=4))  # fmt: skip
    spec = pipe.spec
    out = []
    for f in frames:
        r = pipe.process(f.rgb, f.depth_mm, seq.intrinsics)
        header = Header(stamp=convert.ns_to_stamp(f.stamp_ns), frame_id=FRAME)
        out.append((convert.cloud_to_msg(r.cloud, header), align.t_odom_world @ f.pose, f.stamp_ns))
    info = label_info_json(spec.name, spec.ontology, spec.categories, spec.palette)
    return out, info


def tf_odom(t_odom_cam: np.ndarray, stamp_ns: int) -> object:
    """odom -> base_link such that TF's chain with MOUNT gives the dataset's camera pose back."""
    return transform_msg("odom", "base_link", t_odom_cam @ np.linalg.inv(MOUNT), stamp_ns)


@pytest.fixture
def node_io(ros, kitchen):  # noqa: ANN001, ANN201
    node = ros.add(CostmapNode(
        namespace=ros.ns, context=ros.context,
        parameter_overrides=[
            Parameter("global_frame", value="odom"), Parameter("use_fusion", value=True),
            Parameter("transform_tolerance_s", value=0.5),
            Parameter("resolution", value=0.05), Parameter("width", value=8.0), Parameter("height", value=8.0),
            Parameter("max_range_m", value=4.0), Parameter("drivable_tolerance_m", value=0.06),
            Parameter("min_obstacle_height", value=0.1), Parameter("max_jump_m", value=1.0),
            Parameter("fused_points_period_s", value=0.2), Parameter("fusion.raytrace_max_range_m", value=4.0),
        ],
    ))  # fmt: skip
    pubs = {"cloud": ros.publisher(PointCloud2, "semantic_points"), "tf": tf2_ros.TransformBroadcaster(ros.helper),
            "info": ros.publisher(String, "label_info_json", LATCHED_QOS),
            "label_info": ros.publisher(LabelInfo, "label_info", LATCHED_QOS)}  # fmt: skip
    subs = {t: ros.subscribe(OccupancyGrid, t, LATCHED_QOS) for t in ("drivable_grid", "obstacle_grid")}
    subs["obstacle_points"] = ros.subscribe(PointCloud2, "obstacle_points")
    subs["fused_points"] = ros.subscribe(PointCloud2, "fused_points")
    subs["ground_plane"] = ros.subscribe(Marker, "ground_plane")
    # /tf is volatile: match first
    ros.wait_for_subscribers([pubs["cloud"], pubs["info"], pubs["label_info"], pubs["tf"].pub_tf])
    ros.send_static("base_link", FRAME, MOUNT)
    ros.wait_for_transform(node, "base_link", FRAME)
    pubs["info"].publish(String(data=kitchen[1]))
    pubs["label_info"].publish(convert.label_info_msg([c["name"] for c in json.loads(kitchen[1])["classes"]], Header()))
    assert ros.spin_until(lambda: node.mapper.rules is not None, 10.0)
    return node, pubs, subs


def _send_tf(ros, node, pubs, t_odom_cam, stamp_ns) -> None:  # noqa: ANN001
    pubs["tf"].sendTransform(tf_odom(t_odom_cam, stamp_ns))
    ros.wait_for_transform(node, "odom", "base_link", stamp_ns)


def _send(ros, pubs, subs, cloud, t_odom_cam, stamp_ns, n_before: int) -> None:  # noqa: ANN001
    _send_tf(ros, ros.nodes[-1], pubs, t_odom_cam, stamp_ns)  # (the costmap node is the last one added)
    pubs["cloud"].publish(cloud)
    assert ros.spin_until(lambda: len(subs["obstacle_grid"]) > n_before, 20.0)


def test_fused_grids_in_odom_floor_drivable_furniture_obstacles(ros, node_io, kitchen) -> None:  # noqa: ANN001
    node, pubs, subs = node_io
    known = []
    for i, (cloud, t, stamp) in enumerate(kitchen[0]):
        _send(ros, pubs, subs, cloud, t, stamp, i)
        known.append(int((convert.grid_from_msg(subs["obstacle_grid"][-1]) != -1).sum()))
    grid = subs["obstacle_grid"][-1]
    assert grid.header.frame_id == "odom" and grid.header.stamp == kitchen[0][-1][0].header.stamp
    assert (grid.info.width, grid.info.height) == (160, 160)
    drivable = convert.grid_from_msg(subs["drivable_grid"][-1])
    obstacle = convert.grid_from_msg(grid)
    assert (drivable == 0).sum() > 100  # the kitchen floor in front of the camera
    assert (obstacle == 100).sum() > 100  # table, chairs, counters
    assert known[-1] > known[0]  # fusion accumulates what earlier frames saw
    marker = subs["ground_plane"][-1]
    assert marker.color.g > 0.5 and abs(marker.pose.position.z) < 0.1  # fitted floor at odom z = 0
    pts = convert.msg_to_cloud(subs["obstacle_points"][-1])
    assert subs["obstacle_points"][-1].header.frame_id == "odom" and pts.size > 100
    assert (pts["z"] > 0.05).mean() > 0.95  # obstacle points stand above the floor
    assert ros.spin_until(lambda: subs["fused_points"], 5.0)
    fused = convert.msg_to_cloud(subs["fused_points"][-1])
    assert fused.size > 1000 and {"x", "rgb", "label", "confidence"} <= set(fused.dtype.names)
    assert sum(node.stats.drops.values()) == 0, dict(node.stats.drops)


class _Log:
    """Stands in for the node's logger: keeps the warning lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, line: str) -> None:
        self.lines.append(line)

    info = error = warning


def test_missing_and_stale_transforms_are_counted_drops_naming_both_frames(ros, node_io, kitchen) -> None:  # noqa: ANN001
    node, pubs, subs = node_io
    log = _Log()
    node.get_logger = lambda: log  # NodeStats logs through the node
    cloud, t, stamp = kitchen[0][0]
    pubs["cloud"].publish(cloud)  # the mount is known, odom -> base_link is not
    assert ros.spin_until(lambda: node.stats.drops["tf_missing"] >= 1, 10.0), node.stats.as_dict()
    assert any("tf_missing" in line and "odom -> base_link" in line for line in log.lines), log.lines
    _send_tf(ros, node, pubs, t, stamp - 2_000_000_000)  # the newest transform is 2 s older than the cloud
    pubs["cloud"].publish(cloud)
    assert ros.spin_until(lambda: node.stats.drops["tf_stale"] >= 1, 10.0), node.stats.as_dict()
    assert any("tf_stale" in line and "odom -> base_link" in line and "2.000 s older" in line for line in log.lines)
    # a camera whose mount nobody publishes
    other = convert.cloud_to_msg(convert.msg_to_cloud(cloud), Header(stamp=cloud.header.stamp, frame_id="cam2"))
    pubs["cloud"].publish(other)
    assert ros.spin_until(lambda: node.stats.drops["tf_missing"] >= 2, 10.0), node.stats.as_dict()
    node.stats._last_log.clear()  # (un-throttle, to read the second line)
    pubs["cloud"].publish(other)
    assert ros.spin_until(lambda: node.stats.drops["tf_missing"] >= 3, 10.0)
    assert any("base_link -> cam2" in line for line in log.lines), log.lines
    # a transform within the tolerance (0.4 s older than the cloud) is used: the node maps
    _send_tf(ros, node, pubs, t, stamp - 400_000_000)
    pubs["cloud"].publish(cloud)
    assert ros.spin_until(lambda: subs["obstacle_grid"], 20.0), node.stats.as_dict()
    assert subs["obstacle_grid"][-1].header.frame_id == "odom"
    blank = np.zeros(4, dtype=convert.msg_to_cloud(cloud).dtype)
    blank["x"] = blank["y"] = blank["z"] = np.nan
    pubs["cloud"].publish(convert.cloud_to_msg(blank, Header(stamp=convert.ns_to_stamp(stamp + 1), frame_id=FRAME)))
    assert ros.spin_until(lambda: node.stats.drops["empty_cloud"] >= 1, 10.0)
    assert node.stats.frames_in == node.stats.frames_out + sum(node.stats.drops.values()) == 6


def test_robot_pose_jump_resets_the_window_and_no_ground_falls_back(ros, node_io, kitchen) -> None:  # noqa: ANN001
    node, pubs, subs = node_io
    for i, (cloud, t, stamp) in enumerate(kitchen[0][:3]):
        _send(ros, pubs, subs, cloud, t, stamp, i)
    known_before = int((convert.grid_from_msg(subs["obstacle_grid"][-1]) != -1).sum())
    cloud, t, stamp = kitchen[0][3]
    jumped = t.copy()
    jumped[0, 3] += 5.0  # 5 m in one step: relocalisation
    _send(ros, pubs, subs, cloud, jumped, stamp, 3)
    known_after = int((convert.grid_from_msg(subs["obstacle_grid"][-1]) != -1).sum())
    assert known_after < known_before  # the fused window was reset: only this cloud is in it
    # a cloud without floor (only points 1-2 m above it): the ground fit fails, the flat fallback is used
    pts = convert.msg_to_cloud(cloud).copy()
    world = convert.msg_to_cloud(cloud)
    xyz = np.stack([world["x"], world["y"], world["z"]], -1).reshape(-1, 3)
    z_odom = xyz @ jumped[2, :3] + jumped[2, 3]
    pts.reshape(-1)["z"][z_odom < 1.0] = np.nan
    high = convert.cloud_to_msg(pts, Header(stamp=convert.ns_to_stamp(stamp + 33_000_000), frame_id=FRAME))
    _send_tf(ros, node, pubs, jumped, stamp + 33_000_000)
    n = len(subs["ground_plane"])
    pubs["cloud"].publish(high)
    assert ros.spin_until(lambda: len(subs["ground_plane"]) > n, 20.0)
    assert subs["ground_plane"][-1].color.r == pytest.approx(1.0)  # orange: fallback plane


def test_tf_jumping_back_in_time_resets_once_and_maps_the_new_timeline(ros, node_io, kitchen) -> None:  # noqa: ANN001
    """A bag loop: /tf jumps back (seen before any cloud of the new pass), the window and the tf buffer's old
    timeline are cleared once, and the new pass maps from its first cloud."""
    node, pubs, subs = node_io
    for i, (cloud, t, stamp) in enumerate(kitchen[0][:4]):
        _send(ros, pubs, subs, cloud, t, stamp, i)
    cloud, t, stamp = kitchen[0][0]  # frame 0 again, 1.3 s back
    pubs["tf"].sendTransform(tf_odom(t, stamp))
    assert ros.spin_until(lambda: node.stats.warnings["time_jump"] == 1, 10.0), node.stats.as_dict()
    ros.wait_for_transform(node, "odom", "base_link", stamp)
    pubs["cloud"].publish(cloud)
    assert ros.spin_until(lambda: len(subs["obstacle_grid"]) > 4, 20.0), node.stats.as_dict()
    assert subs["obstacle_grid"][-1].header.stamp == cloud.header.stamp
    assert node.stats.warnings["time_jump"] == 1 and sum(node.stats.drops.values()) == 0, node.stats.as_dict()
