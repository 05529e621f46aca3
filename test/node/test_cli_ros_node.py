"""``tools.common.ros_node``: the tools' own rclpy node opens a DDS participant, so it is tested in the node tier."""

from __future__ import annotations

from seg_perception.tools.common import ros_node


def test_ros_node_shuts_its_own_context_down() -> None:
    with ros_node("cli_common_test") as node:
        context = node.context
        assert context.ok() and node.get_name() == "cli_common_test"
    assert not context.ok()
