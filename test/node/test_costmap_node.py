"""The costmap node in-process on a real semantic cloud (KITTI frame segmented by the real ESPNetv2 model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from nav_msgs.msg import OccupancyGrid
from rclpy.parameter import Parameter
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header, String
from vision_msgs.msg import LabelInfo, VisionClass

from seg_perception.core.mapping.ontology import Role, open_ontology
from seg_perception.core.segmentation.registry import get_model_spec
from seg_perception.ros import convert
from seg_perception.ros.qos import LATCHED_QOS


def label_info_of(info_json: str) -> LabelInfo:
    """The vision_msgs/LabelInfo a segmentation node publishes beside ``info_json`` (same ids and names)."""
    return convert.label_info_msg([c["name"] for c in json.loads(info_json)["classes"]], Header())


@pytest.fixture
def costmap(ros, kitti_costmap):  # noqa: ANN001, ANN201
    node = kitti_costmap(ros, [Parameter("resolution", value=0.2), Parameter("width", value=40.0),
                               Parameter("height", value=40.0), Parameter("max_range_m", value=30.0)])  # fmt: skip
    pub_cloud = ros.publisher(PointCloud2, "semantic_points")
    pub_info = ros.publisher(String, "label_info_json", LATCHED_QOS)
    pub_std = ros.publisher(LabelInfo, "label_info", LATCHED_QOS)
    grids = {t: ros.subscribe(OccupancyGrid, t, LATCHED_QOS) for t in ("drivable_grid", "obstacle_grid")}
    ros.wait_for_subscribers([pub_cloud, pub_info, pub_std])
    pub_info.std = pub_std  # the LabelInfo publisher travels with the JSON one
    return node, pub_cloud, pub_info, grids


def _ready(ros, costmap, real_cloud):  # noqa: ANN001, ANN202
    """Publish label_info (LabelInfo + JSON extras) and wait until the node knows the class roles; returns (node,
    pub, grids, cloud)."""
    node, pub_cloud, pub_info, grids = costmap
    cloud_msg, info = real_cloud
    pub_info.publish(String(data=info))
    pub_info.std.publish(label_info_of(info))
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
    pub_info.std.publish(label_info_of(info))
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


#: The five label_info payloads that used to stop the node (one change each to a valid label_info), and the
#: reason each must be counted under now.
HOSTILE_LABEL_INFO = {
    "color_300": (lambda d: d["classes"][0].update(color=[300, 0, 0]), "label_info_color"),
    "color_neg": (lambda d: d["classes"][0].update(color=[-1, 0, 0]), "label_info_color"),
    "ontology_long": (lambda d: d.update(ontology="a" * 300), "label_info_ontology"),
    "ontology_path": (lambda d: d.update(ontology=str(Path(__file__).resolve().parents[2] / "README.md")),
                      "label_info_ontology"),
    "deep_json": (None, "label_info_size"),
}


def _hostile(info: str, name: str) -> str:
    mutate, _ = HOSTILE_LABEL_INFO[name]
    if mutate is None:
        return "[" * 100_000
    d = json.loads(info)
    mutate(d)
    return json.dumps(d)


def test_hostile_label_info_is_counted_and_the_last_good_metadata_kept(ros, costmap, real_cloud) -> None:  # noqa: ANN001
    node, pub_cloud, grids, cloud_msg = _ready(ros, costmap, real_cloud)
    _, _, pub_info, _ = costmap
    good_roles = node.mapper.rules.roles.copy()
    for i, name in enumerate(HOSTILE_LABEL_INFO, start=1):
        pub_info.publish(String(data=_hostile(real_cloud[1], name)))
        assert ros.spin_until(lambda i=i: sum(node.stats.rejected.values()) >= i, 10.0), node.stats.as_dict()
    expected = {}
    for _, reason in HOSTILE_LABEL_INFO.values():
        expected[reason] = expected.get(reason, 0) + 1
    assert dict(node.stats.rejected) == expected
    np.testing.assert_array_equal(node.mapper.rules.roles, good_roles)  # the last good metadata is still used
    pub_cloud.publish(cloud_msg)
    assert ros.spin_until(lambda: grids["obstacle_grid"], 20.0), node.stats.as_dict()
    assert node.stats.frames_out == 1 and sum(node.stats.drops.values()) == 0


def test_restart_with_a_bad_latched_label_info_starts(ros, costmap, real_cloud, kitti_costmap) -> None:  # noqa: ANN001
    """A node started while a bad label_info is latched on the topic refuses it, keeps running and maps once a
    good one comes (no crash loop)."""
    _, pub_cloud, pub_info, _ = costmap
    pub_info.publish(String(data=_hostile(real_cloud[1], "ontology_path")))
    pub_info.std.publish(label_info_of(real_cloud[1]))
    fresh = kitti_costmap(ros, [Parameter("resolution", value=0.2), Parameter("width", value=20.0),
                                Parameter("height", value=20.0)])  # fmt: skip
    assert ros.spin_until(lambda: fresh.stats.rejected["label_info_ontology"] >= 1, 10.0), fresh.stats.as_dict()
    pub_cloud.publish(real_cloud[0])
    assert ros.spin_until(lambda: fresh.stats.drops["no_label_info"] >= 1, 10.0)
    pub_info.publish(String(data=real_cloud[1]))
    assert ros.spin_until(lambda: fresh.mapper.rules is not None, 10.0)
    pub_cloud.publish(real_cloud[0])
    assert ros.spin_until(lambda: fresh.stats.frames_out >= 1, 20.0), fresh.stats.as_dict()


def test_latched_label_info_alone_reaches_a_late_costmap_node_that_maps_with_its_ontology_parameter(
    ros, real_cloud, kitti_costmap
) -> None:  # noqa: ANN001
    """Standard LabelInfo only (no JSON extras, as from Isaac ROS): published before the node exists, received on
    the transient-local topic, class names -> roles through the ``ontology`` parameter; grids from a real cloud."""
    cloud_msg, info_json = real_cloud
    pub_std = ros.publisher(LabelInfo, "label_info", LATCHED_QOS)
    pub_std.publish(label_info_of(info_json))
    node = kitti_costmap(ros, [Parameter("ontology", value="cityscapes"), Parameter("resolution", value=0.2),
                               Parameter("width", value=40.0), Parameter("height", value=40.0),
                               Parameter("max_range_m", value=30.0)])  # fmt: skip
    assert ros.spin_until(lambda: node.mapper.rules is not None, 10.0), node.stats.as_dict()
    names = [c["name"] for c in json.loads(info_json)["classes"]]
    assert node.class_info.categories == tuple(names) and node.class_info.ontology == ""
    ontology = open_ontology("cityscapes")
    np.testing.assert_array_equal(node.mapper.rules.roles, ontology.roles_lut(names))
    assert node.mapper.rules.roles[names.index("road")] == Role.DRIVABLE
    assert node.mapper.rules.roles[names.index("car")] == Role.OBSTACLE
    grids = {t: ros.subscribe(OccupancyGrid, t, LATCHED_QOS) for t in ("drivable_grid", "obstacle_grid")}
    pub_cloud = ros.publisher(PointCloud2, "semantic_points")
    ros.wait_for_subscribers([pub_cloud])
    pub_cloud.publish(cloud_msg)
    assert ros.spin_until(lambda: all(grids.values()), 20.0), node.stats.as_dict()
    assert (convert.grid_from_msg(grids["drivable_grid"][0]) == 0).sum() >= 20  # road seen drivable
    assert (convert.grid_from_msg(grids["obstacle_grid"][0]) == 100).sum() >= 10  # the car is lethal


def _label_info(pairs: list[tuple[int, str]]) -> LabelInfo:
    return LabelInfo(class_map=[VisionClass(class_id=i, class_name=n) for i, n in pairs])


def test_bad_label_info_and_mismatched_extras_are_counted_and_the_last_good_metadata_kept(
    ros, costmap, real_cloud
) -> None:  # noqa: ANN001
    node, pub_cloud, grids, cloud_msg = _ready(ros, costmap, real_cloud)
    _, _, pub_info, _ = costmap
    good = node.mapper.rules.roles.copy()
    names = list(node.class_info.categories)
    bad = {
        "label_info_classes": _label_info([(i, f"c{i}") for i in range(300)]),  # > 255 classes
        "label_info_id": _label_info([(0, "road"), (0, "car")]),  # an id twice
        "label_info_name": _label_info([(0, "road"), (1, "x" * 65)]),  # a 65-character name
    }
    for i, (reason, msg) in enumerate(bad.items(), start=1):
        pub_info.std.publish(msg)
        assert ros.spin_until(lambda r=reason: node.stats.rejected[r] == 1, 10.0), node.stats.as_dict()
        assert sum(node.stats.rejected.values()) == i
    np.testing.assert_array_equal(node.mapper.rules.roles, good)
    # a valid LabelInfo of another model (CamVid's 11 classes) does not fit the cityscapes extras: counted, and
    # with no ontology for it the node keeps the last good metadata
    camvid = get_model_spec("cgnet_camvid").categories
    pub_info.std.publish(_label_info(list(enumerate(camvid))))
    assert ros.spin_until(lambda: node.stats.rejected["label_info_mismatch"] == 1, 10.0), node.stats.as_dict()
    assert list(node.class_info.categories) == names
    np.testing.assert_array_equal(node.mapper.rules.roles, good)
    pub_cloud.publish(cloud_msg)
    assert ros.spin_until(lambda: grids["obstacle_grid"], 20.0), node.stats.as_dict()


def _cloud_with(cloud_msg: PointCloud2, **changes: object) -> PointCloud2:
    fields = [PointField(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count) for f in cloud_msg.fields]
    msg = PointCloud2(header=cloud_msg.header, height=cloud_msg.height, width=cloud_msg.width,
                      point_step=cloud_msg.point_step, row_step=cloud_msg.row_step, fields=fields,
                      is_bigendian=False, is_dense=False, data=bytes(cloud_msg.data))  # fmt: skip
    field_changes = changes.pop("field", None)
    for k, v in changes.items():
        setattr(msg, k, v)
    if field_changes is not None:
        name, attr, value = field_changes  # type: ignore[misc]
        setattr(next(f for f in msg.fields if f.name == name), attr, value)
    return msg


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda m: {"point_step": 8, "row_step": 8 * m.width}, "field_offset"),
        (lambda m: {"field": ("x", "offset", m.point_step)}, "field_offset"),
        (lambda m: {"field": ("confidence", "offset", m.point_step - 2)}, "point_step"),
        (lambda m: {"field": ("x", "datatype", 42)}, "field_datatype"),
        (lambda m: {"field": ("label", "datatype", PointField.FLOAT32)}, "label_datatype"),
        (lambda m: {"field": ("z", "datatype", PointField.UINT32)}, "xyz_datatype"),
    ],
    ids=["point_step_small", "offset_past", "field_ends_past", "unknown_datatype", "float_label", "int_z"],
)
def test_malformed_cloud_fields_have_named_reasons(ros, costmap, real_cloud, change, reason) -> None:  # noqa: ANN001
    node, pub_cloud, grids, cloud_msg = _ready(ros, costmap, real_cloud)
    pub_cloud.publish(_cloud_with(cloud_msg, **change(cloud_msg)))
    assert ros.spin_until(lambda: node.stats.drops[reason] >= 1, 10.0), node.stats.as_dict()
    assert node.stats.drops.get("exception", 0) == 0
    pub_cloud.publish(cloud_msg)
    assert ros.spin_until(lambda: grids["obstacle_grid"], 20.0)


def test_an_unexpected_exception_is_a_counted_drop_and_the_node_goes_on(ros, costmap, real_cloud) -> None:  # noqa: ANN001
    node, pub_cloud, grids, cloud_msg = _ready(ros, costmap, real_cloud)
    real_update = node.mapper.update
    node.mapper.update = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom"))  # a bug deep in the core
    pub_cloud.publish(cloud_msg)
    assert ros.spin_until(lambda: node.stats.drops["exception"] >= 1, 10.0)
    node.mapper.update = real_update
    pub_cloud.publish(cloud_msg)
    assert ros.spin_until(lambda: grids["obstacle_grid"], 20.0)
    s = node.stats
    assert s.frames_in == 2 and s.frames_out == 1 and sum(s.drops.values()) == 1
