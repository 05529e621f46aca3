"""``config/seg_perception.rviz`` against what the nodes publish and what TF provides in the demos (issue 8 item 6).

RViz 2 cannot run here. The publishers are read from the node modules' source (every ``create_publisher`` /
``create_lifecycle_publisher`` call: message class resolved through the module's imports, topic, QoS profile name;
``diagnostic_updater.Updater`` adds ``/diagnostics``), so a renamed topic or a changed type fails here;
``test/e2e/launch_test_seg_perception.py`` checks the same displays against the running nodes' graph.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import rviz_displays  # noqa: E402  (test/rviz_displays.py)

REPO = Path(__file__).resolve().parents[2]
NODE_MODULES = ("segmentation_node.py", "costmap_node.py", "diagnostics.py")
NAMESPACE = "/seg_perception"  # the launch file's default


def node_publishers() -> dict[str, tuple[str, str, str]]:
    """Absolute topic -> (message type, QoS profile name, reliability as RViz names it) of every publisher the nodes
    create: their ``OUTPUTS`` tables (the loops that create the publishers read them) and diagnostic_updater's
    ``/diagnostics`` (``create_publisher(..., 1)``: rclpy's default QoS, reliable)."""
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

    from seg_perception.ros import costmap_node, segmentation_node

    pubs: dict[str, tuple[str, str, str]] = {
        "/diagnostics": ("diagnostic_msgs/msg/DiagnosticArray", "diagnostic_updater", "Reliable")
    }
    for module in (segmentation_node, costmap_node):
        for topic, (cls, qos) in module.OUTPUTS.items():
            pkg = cls.__module__.split(".")[0]
            latched = qos.durability == DurabilityPolicy.TRANSIENT_LOCAL
            reliable = "Reliable" if qos.reliability == ReliabilityPolicy.RELIABLE else "Best Effort"
            name = "LATCHED_QOS" if latched else "OUTPUT_QOS"
            pubs[f"{NAMESPACE}/{topic}"] = (f"{pkg}/msg/{cls.__name__}", name, reliable)
    return pubs


def test_the_source_reading_finds_the_nodes_publishers() -> None:
    pubs = node_publishers()
    assert pubs[f"{NAMESPACE}/labels"] == ("sensor_msgs/msg/Image", "OUTPUT_QOS", "Reliable")
    assert pubs[f"{NAMESPACE}/label_info"] == ("vision_msgs/msg/LabelInfo", "LATCHED_QOS", "Reliable")
    assert pubs[f"{NAMESPACE}/obstacle_grid"] == ("nav_msgs/msg/OccupancyGrid", "LATCHED_QOS", "Reliable")
    assert pubs["/diagnostics"][0] == "diagnostic_msgs/msg/DiagnosticArray"


def test_every_display_shows_a_topic_the_nodes_publish_with_its_type_and_qos() -> None:
    pubs = node_publishers()
    _, displays = rviz_displays.load()
    assert {d.name for d in displays} >= {"drivable_grid", "obstacle_grid", "semantic_points", "overlay"}
    for d in displays:
        assert d.topic in pubs, f"display {d.name!r}: nobody publishes {d.topic} (publishers: {sorted(pubs)})"
        msg_type, qos, reliability = pubs[d.topic]
        assert d.msg_type == msg_type, f"display {d.name!r} reads {d.msg_type}, {d.topic} is {msg_type}"
        # a transient-local subscription only matches transient-local publishers (the latched grids)
        assert d.durability == "Volatile" or qos == "LATCHED_QOS", (d, qos)
        # a reliable subscription only matches reliable publishers; a best-effort one matches both
        assert d.reliability in ("Reliable", "Best Effort"), d  # a typo in the file would fall back silently
        assert d.reliability == "Best Effort" or reliability == "Reliable", (d, reliability)


def _tf_frames(bag: Path) -> set[str]:
    from seg_perception.bag import read_messages, typestore

    store = typestore()
    frames = set()
    for m in read_messages(bag, ["/tf", "/tf_static"]):
        for t in store.deserialize_cdr(m.data, m.msgtype).transforms:
            frames |= {t.header.frame_id, t.child_frame_id}
    return frames


@pytest.mark.parametrize("preset", ["kitti", "kitchen"])
def test_the_fixed_frame_and_the_grids_frame_are_in_the_demos_tf(preset: str, tmp_path: Path, shared_dir) -> None:  # noqa: ANN001
    from seg_perception.datasets import open_sequence
    from seg_perception.tools.bag_from_frames import write_bag
    from seg_perception.tools.demo import PRESETS
    from seg_perception.workspace import merged_params

    data, files, _, _ = PRESETS[preset]
    bag = tmp_path / "bag"
    write_bag(open_sequence(shared_dir / "data" / Path(data).name), bag, limit=2, progress=False)
    frames = _tf_frames(bag)
    cfg, _ = rviz_displays.load()
    fixed = cfg["Visualization Manager"]["Global Options"]["Fixed Frame"]
    assert fixed in frames, (fixed, frames)
    costmap = merged_params([REPO / "config" / f for f in files])["/**/costmap"]["ros__parameters"]
    grid_frame = costmap["global_frame"] or costmap["robot_base_frame"]  # "" = grids in robot_base_frame
    assert grid_frame == {"kitti": "base_link", "kitchen": "odom"}[preset]
    assert grid_frame in frames and "camera_color_optical_frame" in frames, frames
