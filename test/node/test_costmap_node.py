"""The costmap node in-process on a real semantic cloud (KITTI frame segmented by the real ESPNetv2 model)."""

from __future__ import annotations

import numpy as np
import pytest
from nav_msgs.msg import OccupancyGrid
from rclpy.parameter import Parameter
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header, String

from seg_perception.core.camera import Intrinsics
from seg_perception.core.class_info import label_info_json
from seg_perception.core.pipeline import SegmentationConfig, SegmentationPipeline
from seg_perception.ros import convert
from seg_perception.ros.costmap_node import CostmapNode
from seg_perception.ros.qos import LATCHED_QOS


@pytest.fixture(scope="module")
def real_cloud(kitti_frames, model_dir):  # noqa: ANN001, ANN201
    pipe = SegmentationPipeline(
        SegmentationConfig(weights=str(model_dir), device="cpu", input_width=640, input_height=192, cloud_stride=1)
    )
    f = kitti_frames[0]
    k = Intrinsics.from_k(f.k, f.rgb.shape[1], f.rgb.shape[0])
    result = pipe.process(f.rgb, f.depth_mm, k)
    spec = pipe.spec
    info = label_info_json(spec.name, spec.ontology, spec.categories, spec.palette)
    return convert.cloud_to_msg(result.cloud, f.header()), info


@pytest.fixture
def costmap(ros):  # noqa: ANN001, ANN201
    node = ros.add(
        CostmapNode(
            namespace=ros.ns,
            context=ros.context,
            parameter_overrides=[Parameter("resolution", value=0.2), Parameter("width", value=40.0),
                                 Parameter("height", value=40.0), Parameter("max_range_m", value=30.0)],
        )  # fmt: skip
    )
    pub_cloud = ros.publisher(PointCloud2, "semantic_points")
    pub_info = ros.publisher(String, "label_info", LATCHED_QOS)
    grids = {t: ros.subscribe(OccupancyGrid, t, LATCHED_QOS) for t in ("drivable_grid", "obstacle_grid")}
    ros.wait_for_subscribers([pub_cloud, pub_info])
    return node, pub_cloud, pub_info, grids


def _ready(ros, costmap, real_cloud):  # noqa: ANN001, ANN202
    """Publish label_info and wait until the node knows the class roles; returns (node, pub, grids, cloud)."""
    node, pub_cloud, pub_info, grids = costmap
    cloud_msg, info = real_cloud
    pub_info.publish(String(data=info))
    assert ros.spin_until(lambda: node.mapper.rules is not None, 10.0)
    return node, pub_cloud, grids, cloud_msg


def _cell(grid: OccupancyGrid, x: float, y: float) -> int:
    occ = convert.grid_from_msg(grid)
    col = int((x - grid.info.origin.position.x) / grid.info.resolution)
    row = int((y - grid.info.origin.position.y) / grid.info.resolution)
    return int(occ[row, col])


def test_real_cloud_gives_drivable_road_and_the_car_ahead(ros, costmap, real_cloud) -> None:  # noqa: ANN001
    node, pub_cloud, grids, cloud_msg = _ready(ros, costmap, real_cloud)
    pub_cloud.publish(cloud_msg)
    assert ros.spin_until(lambda: all(grids.values()), 20.0), dict(node.stats.drops)
    for g in (grids["drivable_grid"][0], grids["obstacle_grid"][0]):
        assert g.header.frame_id == "base_link" and g.header.stamp == cloud_msg.header.stamp
        assert (g.info.width, g.info.height, g.info.resolution) == (200, 200, pytest.approx(0.2))
        assert (g.info.origin.position.x, g.info.origin.position.y) == (-20.0, -20.0)
    drivable = convert.grid_from_msg(grids["drivable_grid"][0])
    obstacle = convert.grid_from_msg(grids["obstacle_grid"][0])
    assert set(np.unique(drivable)) <= {-1, 0, 100}
    assert (drivable == 0).sum() >= 20 and (drivable == 100).sum() >= 20
    assert (obstacle == 100).sum() >= 10 and ((obstacle > 0) & (obstacle < 100)).sum() > 0
    assert (obstacle[:, :100] == -1).all()  # nothing is seen behind the forward camera
    # the road just ahead of the car (LiDAR starts ~5 m ahead) is drivable
    ahead = [_cell(grids["drivable_grid"][0], x, y) for x in np.arange(6.0, 9.0, 0.2) for y in (-0.5, 0.0, 0.5)]
    assert ahead.count(0) > len(ahead) // 2, ahead
    # the car ahead (~10-15 m, in lane) is lethal somewhere along the lane centre line
    lane = [_cell(grids["obstacle_grid"][0], x, y) for x in np.arange(8.0, 20.0, 0.2) for y in (-0.4, 0.0, 0.4)]
    assert 100 in lane


def test_cloud_before_label_info_and_malformed_cloud_are_counted_drops(ros, costmap, real_cloud) -> None:  # noqa: ANN001
    node, pub_cloud, pub_info, grids = costmap
    cloud_msg, info = real_cloud
    pub_cloud.publish(cloud_msg)
    assert ros.spin_until(lambda: node.stats.drops["no_label_info"] >= 1, 10.0)
    pub_info.publish(String(data=info))
    assert ros.spin_until(lambda: node.mapper.rules is not None, 10.0)
    bad = PointCloud2(header=Header(frame_id="cam"), height=1, width=10, point_step=24, row_step=240,
                      fields=cloud_msg.fields, data=b"\x00" * 100)  # fmt: skip
    pub_cloud.publish(bad)
    assert ros.spin_until(lambda: node.stats.drops["data_length"] >= 1, 10.0)
    no_label = PointCloud2(header=Header(frame_id="cam"), height=1, width=1, point_step=24, row_step=24,
                           fields=[f for f in cloud_msg.fields if f.name != "label"], data=b"\x00" * 24)  # fmt: skip
    pub_cloud.publish(no_label)
    assert ros.spin_until(lambda: node.stats.drops["fields"] >= 1, 10.0)
    assert grids["drivable_grid"] == []
    pub_cloud.publish(cloud_msg)
    assert ros.spin_until(lambda: grids["drivable_grid"], 20.0)
    assert node.stats.frames_out == 1


def test_runtime_inflation_change_widens_the_inflated_band(ros, costmap, real_cloud) -> None:  # noqa: ANN001
    node, pub_cloud, grids, cloud_msg = _ready(ros, costmap, real_cloud)
    pub_cloud.publish(cloud_msg)
    assert ros.spin_until(lambda: len(grids["obstacle_grid"]) == 1, 20.0)
    before = int((convert.grid_from_msg(grids["obstacle_grid"][0]) > 0).sum())
    assert all(r.successful for r in node.set_parameters([Parameter("inflation_radius", value=1.5)]))
    refused = node.set_parameters([Parameter("min_obstacle_height", value=3.0)])  # above max_obstacle_height
    assert not refused[0].successful and "min_obstacle_height" in refused[0].reason
    assert not node.set_parameters([Parameter("resolution", value=0.5)])[0].successful  # read-only geometry
    pub_cloud.publish(cloud_msg)
    assert ros.spin_until(lambda: len(grids["obstacle_grid"]) == 2, 20.0)
    after = int((convert.grid_from_msg(grids["obstacle_grid"][1]) > 0).sum())
    assert after > before * 1.2  # the same obstacles, inflated 1.5 m instead of 0.55 m
