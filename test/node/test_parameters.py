"""Every declared parameter either changes what the node does when set at run time, or is refused (read-only).

One test per run-time parameter: set it on a running node, run the node's own handler on the same input, and
compare with the output before. The tables below must name every declared parameter, so a new parameter without
a test fails here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import pytest
from rclpy.duration import Duration
from rclpy.parameter import Parameter
from std_msgs.msg import Header, String

from seg_perception.core.geometry.camera import Intrinsics
from seg_perception.core.geometry.cloud import CLOUD_DTYPE
from seg_perception.core.segmentation.class_info import label_info_json
from seg_perception.core.segmentation.registry import get_model_spec
from seg_perception.ros import convert
from seg_perception.ros.costmap_node import CostmapNode
from seg_perception.ros.diagnostics import input_health
from seg_perception.ros.segmentation_node import SegmentationNode
from seg_perception.tools.params_doc import FOREIGN, node_rows


@pytest.fixture(scope="module")
def harness(ros_module):  # noqa: ANN001, ANN201
    return ros_module


def _read_only(node, name: str) -> bool:  # noqa: ANN001
    return node.describe_parameter(name).read_only


# --- segmentation node --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seg_node(harness, model_dir):  # noqa: ANN001, ANN201
    return harness.add(SegmentationNode(namespace=harness.ns + "/seg", context=harness.context, parameter_overrides=[
        Parameter("weights", value=str(model_dir)), Parameter("device", value="cpu"),
        Parameter("input_width", value=640), Parameter("input_height", value=192)]))  # fmt: skip


def _frame_outputs(node, f) -> dict:  # noqa: ANN001
    """The node's pipeline on a real KITTI frame (what ``_process`` publishes)."""
    k = Intrinsics.from_k(f.k, f.rgb.shape[1], f.rgb.shape[0])
    r = node.pipeline.process(f.rgb, f.depth_mm, k)
    cloud = r.cloud
    return {"overlay": r.overlay, "cloud": cloud,
            "valid": None if cloud is None else int(np.isfinite(cloud["z"]).sum())}  # fmt: skip


def _pairs_20ms_apart(node, f) -> bool:  # noqa: ANN001
    t = f.stamp_ns + 10**9 * 100  # clear of earlier stamps
    img = f.image()
    img.header.stamp = convert.ns_to_stamp(t)
    depth = f.depth()
    depth.header.stamp = convert.ns_to_stamp(t + 20_000_000)
    node.assembler.add_camera_info(f.camera_info())
    node.assembler.add_image(img)
    paired = node.assembler.add_depth(depth) is not None
    node.assembler.flush()
    return paired


def _staleness_warned(node, _f) -> int:  # noqa: ANN001
    node.stats.frames_in = max(1, node.stats.frames_in)
    node._last_input = node.get_clock().now() - Duration(seconds=0.5)
    node._stale = False
    before = node.stats.warnings["input_timeout"]
    node._check_staleness()
    return node.stats.warnings["input_timeout"] - before


def _image_rate_level(node, _f) -> bytes:  # noqa: ANN001
    """/diagnostics level of the image input for 2 images in the last second."""
    now = time.monotonic()
    return input_health([(now - 0.6, 1.0), (now - 0.1, 1.0)], 2, now, now - 10.0, node.health).level


def _jump_detected(node, _f) -> bool:  # noqa: ANN001
    order = node.assembler.order
    order.reset()
    order.check(10 * 10**9)
    return order.check(10 * 10**9 - 50_000_000) == order.JUMP  # 50 ms back


SEG_RUNTIME: dict[str, tuple[object, Callable]] = {
    # name: (new value, observation on the node; must differ before/after)
    "cloud_stride": (4, lambda n, f: _frame_outputs(n, f)["cloud"].shape),
    "min_depth_m": (20.0, lambda n, f: _frame_outputs(n, f)["valid"]),
    "max_depth_m": (15.0, lambda n, f: _frame_outputs(n, f)["valid"]),
    "overlay_alpha": (0.0, lambda n, f: int(_frame_outputs(n, f)["overlay"].astype(int).sum())),
    "publish_overlay": (False, lambda n, f: _frame_outputs(n, f)["overlay"] is None),
    "publish_cloud": (False, lambda n, f: _frame_outputs(n, f)["cloud"] is None),
    "cloud_color": ("class", lambda n, f: int(_frame_outputs(n, f)["cloud"]["rgb"].view(np.uint32).sum())),
    "sync_slop_s": (0.05, _pairs_20ms_apart),
    "input_timeout_s": (0.2, _staleness_warned),
    "time_jump_s": (0.01, _jump_detected),
    "expected_rate_hz": (50.0, _image_rate_level),
    "diagnostic_updater.period": (0.25, lambda n, f: n.diagnostics.updater.timer.timer_period_ns),
    "use_sim_time": (True, lambda n, f: n.get_clock().ros_time_is_active),  # rclpy's own: the clock follows /clock
}
SEG_READ_ONLY = {"model": "cgnet_camvid", "weights": "random", "device": "cuda", "fp16": True, "input_width": 320,
                 "input_height": 96, "tta_flip": True, "tta_scales": [0.5, 1.0], "use_depth": False,
                 "runtime": "onnxruntime", "num_threads": 1, "diagnostic_updater.use_fqn": True,
                 "image_transport": "compressed", "autostart": False, "max_image_pixels": 1000,
                 "start_type_description_service": False}  # fmt: skip  (the last is rclpy's own)


def test_segmentation_tables_cover_every_declared_parameter(seg_node) -> None:  # noqa: ANN001
    declared = set(seg_node._parameters)
    assert declared <= set(SEG_RUNTIME) | set(SEG_READ_ONLY), declared - set(SEG_RUNTIME) - set(SEG_READ_ONLY)
    for name in declared & set(SEG_RUNTIME):
        assert name == "use_sim_time" or not _read_only(seg_node, name), name
    for name in declared & set(SEG_READ_ONLY):
        assert _read_only(seg_node, name), name


@pytest.mark.parametrize("name", sorted(SEG_RUNTIME))
def test_segmentation_runtime_parameter_changes_behaviour(seg_node, kitti_frames, name: str) -> None:  # noqa: ANN001
    value, observe = SEG_RUNTIME[name]
    f = kitti_frames[0]
    old = seg_node.get_parameter(name).value
    before = observe(seg_node, f)
    try:
        result = seg_node.set_parameters([Parameter(name, value=value)])[0]
        assert result.successful, result.reason
        after = observe(seg_node, f)
        assert np.any(before != after), f"{name}={value!r} changed nothing: {before} -> {after}"
    finally:
        assert seg_node.set_parameters([Parameter(name, value=old)])[0].successful


@pytest.mark.parametrize("name", sorted(SEG_READ_ONLY))
def test_segmentation_read_only_parameter_is_refused(seg_node, name: str) -> None:  # noqa: ANN001
    if name not in seg_node._parameters:
        pytest.fail(f"{name} is not declared by the node")
    before = seg_node.get_parameter(name).value
    result = seg_node.set_parameters([Parameter(name, value=SEG_READ_ONLY[name])])[0]
    assert not result.successful and seg_node.get_parameter(name).value == before


# --- costmap node -------------------------------------------------------------------------------------------------

VOC = get_model_spec("espnetv2_pascal")
BACKGROUND, CHAIR = VOC.categories.index("background"), VOC.categories.index("chair")


def _cloud(points: list[tuple[float, float, float, int, float]]) -> np.ndarray:
    """Points given in base_link (x forward, y left, z up [m]), label, confidence -> a cloud in the optical frame
    of a level camera 1.65 m up (optical x = -y, y = -(z - 1.65), z = x)."""
    c = np.zeros(len(points), CLOUD_DTYPE)
    for i, (x, y, z, label, conf) in enumerate(points):
        c[i]["x"], c[i]["y"], c[i]["z"], c[i]["label"], c[i]["confidence"] = -y, -(z - 1.65), x, label, conf
    return c


#: A hand-made scene: a strip of floor ("background", ground_if_flat) 0.1 m high from 1 to 7 m ahead, two chair
#: points 0.4 m up at 3 m, one chair point at 0.4 m at 5 m with confidence 0.5, and floor at 8 m.
SCENE = _cloud(
    [(x, y, 0.1, BACKGROUND, 1.0) for x in np.arange(1.0, 7.0, 0.1) for y in (-0.3, 0.0, 0.3)]
    + [(3.0, 0.0, 0.4, CHAIR, 1.0), (3.02, 0.02, 0.45, CHAIR, 1.0), (5.0, 0.0, 0.4, CHAIR, 0.5)]
    + [(8.0, 0.0, 0.0, BACKGROUND, 1.0)]
)

COST_RUNTIME: dict[str, object] = {
    "ground_height_m": 0.3,
    "drivable_tolerance_m": 0.05,
    "min_obstacle_height": 0.6,
    "max_obstacle_height": 0.3,
    "min_confidence": 0.9,
    "max_range_m": 4.0,
    "inflation_radius": 1.5,
    "cost_scaling_factor": 0.5,
    "inscribed_radius": 0.3,
    "inflate_unknown": False,
    "min_obstacle_points": 2,
}


@pytest.fixture(scope="module")
def cost_node(harness, kitti_costmap):  # noqa: ANN001, ANN201
    node = kitti_costmap(harness, [Parameter("resolution", value=0.1), Parameter("width", value=20.0),
                                   Parameter("height", value=20.0), Parameter("fit_ground", value=False)],
                         namespace=harness.ns + "/cost")  # fmt: skip
    node._on_label_info_json(String(data=label_info_json(VOC.name, VOC.ontology, VOC.categories, VOC.palette)))
    node._on_label_info(convert.label_info_msg(VOC.categories, Header()))
    return node


def _grids(node) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """The grids the node publishes for SCENE (its own cloud handler; publishers captured)."""
    got: dict[str, object] = {}
    node.pubs["drivable_grid"].publish = lambda m: got.update(d=m)
    node.pubs["obstacle_grid"].publish = lambda m: got.update(o=m)
    stamp = convert.ns_to_stamp(time.time_ns())
    node._on_cloud(convert.cloud_to_msg(SCENE, Header(stamp=stamp, frame_id="camera_color_optical_frame")))
    assert "o" in got, node.stats.as_dict()
    return convert.grid_from_msg(got["d"]).copy(), convert.grid_from_msg(got["o"]).copy()


def test_costmap_tables_cover_every_declared_parameter(cost_node) -> None:  # noqa: ANN001
    runtime = {n for n in cost_node._parameters if not _read_only(cost_node, n)} - {"use_sim_time"}
    health = {"expected_rate_hz", "input_timeout_s", "diagnostic_updater.period"}  # tested on the segmentation node
    assert runtime == set(COST_RUNTIME) | health, runtime ^ (set(COST_RUNTIME) | health)


@pytest.mark.parametrize("name", sorted(COST_RUNTIME))
def test_costmap_runtime_parameter_changes_the_grids(cost_node, name: str) -> None:  # noqa: ANN001
    old = cost_node.get_parameter(name).value
    before = _grids(cost_node)
    try:
        result = cost_node.set_parameters([Parameter(name, value=COST_RUNTIME[name])])[0]
        assert result.successful, result.reason
        after = _grids(cost_node)
        assert any(np.any(b != a) for b, a in zip(before, after, strict=True)), f"{name} changed neither grid"
    finally:
        assert cost_node.set_parameters([Parameter(name, value=old)])[0].successful
    assert all(np.array_equal(b, a) for b, a in zip(before, _grids(cost_node), strict=True))  # and back


def test_costmap_read_only_parameters_are_refused(cost_node) -> None:  # noqa: ANN001
    read_only = [n for n in cost_node._parameters if _read_only(cost_node, n)]
    frozen = {"resolution", "width", "height", "global_frame", "robot_base_frame", "use_fusion", "fusion.hit_log_odds"}
    assert frozen <= set(read_only)
    for name in read_only:
        p = cost_node.get_parameter(name)
        new = {bool: lambda v: not v, int: lambda v: v + 1, float: lambda v: v + 0.5, str: lambda v: v + "x",
               list: lambda v: [x + 0.1 for x in v]}[type(p.value)](p.value)  # fmt: skip
        result = cost_node.set_parameters([Parameter(name, value=new)])[0]
        assert not result.successful and cost_node.get_parameter(name).value == p.value, name


def test_declared_defaults_reach_the_node_descriptor(ros_module) -> None:  # noqa: ANN001
    """What a running node declares is exactly the table: names, defaults, read-only flags and ranges."""
    node = ros_module.add(CostmapNode(namespace=ros_module.ns + "/docs", context=ros_module.context,
                                      parameter_overrides=[Parameter("autostart", value=False)]))  # fmt: skip
    rows = {r.name: r for r in node_rows("costmap")}
    declared = set(node._parameters) - set(FOREIGN)
    assert declared == set(rows)
    for name, row in rows.items():
        value = node.get_parameter(name).value
        expected = row.default if name != "autostart" else False
        assert (list(value) if isinstance(value, list | tuple) else value) == expected or (
            isinstance(expected, float) and math.isinf(expected) and math.isinf(value)), name
        d = node.describe_parameter(name)
        assert d.read_only == row.read_only, name
        assert d.description == row.description, name
        if row.type_name == "double" and row.range is not None:
            r = d.floating_point_range[0]
            assert (r.from_value, r.to_value) == row.range, name
