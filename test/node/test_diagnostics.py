"""/diagnostics of the segmentation node with real messages: OK, WARN (rate below expected_rate_hz), ERROR (silent
for input_timeout_s), and counters equal to the node's NodeStats."""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo

from seg_perception.ros.diagnostics import stats_from_statuses
from seg_perception.ros.segmentation_node import SegmentationNode


def _latest(arrays: list, node_fqn: str) -> dict:
    """The node's statuses in the newest full array (the Updater also sends one-status 'starting up' arrays)."""
    for arr in reversed(arrays):
        statuses = [s for s in arr.status if s.hardware_id == node_fqn]
        if any(s.name.endswith(": frames") for s in statuses):
            return stats_from_statuses(statuses)
    return {}


def test_input_rate_and_timeout_give_ok_warn_error(ros, model_dir, kitti_frames) -> None:  # noqa: ANN001
    node = ros.add(SegmentationNode(namespace=ros.ns, context=ros.context, parameter_overrides=[
        Parameter("weights", value=str(model_dir)), Parameter("device", value="cpu"),
        Parameter("expected_rate_hz", value=5.0), Parameter("input_timeout_s", value=1.5),
        Parameter("diagnostic_updater.period", value=0.2),
    ]))  # fmt: skip
    fqn = node.get_fully_qualified_name()
    arrays = ros.subscribe(DiagnosticArray, "/diagnostics")
    pub = ros.publisher(CameraInfo, "camera_info")
    ros.wait_for_subscribers([pub])
    info = kitti_frames[0].camera_info()
    clock = ros.helper.get_clock()

    sent = [0]

    def send() -> None:
        info.header.stamp = clock.now().to_msg()
        pub.publish(info)
        sent[0] += 1

    topic = f"{ros.ns}/camera_info"

    def level(want: bytes, min_messages: int = 0) -> bool:
        inp = _latest(arrays, fqn).get("inputs", {}).get(topic)
        return bool(inp) and inp["level"] == want[0] and int(inp["values"]["messages"]) >= min_messages

    timer = ros.helper.create_timer(0.05, send)  # 20 Hz, expected 5 Hz
    assert ros.spin_until(lambda: level(DiagnosticStatus.OK, 20), 30.0), _latest(arrays, fqn)
    ok = _latest(arrays, fqn)["inputs"][topic]
    # 20 messages of a 20 Hz timer over ~1 s (measured: 19.4 Hz); the bounds leave room for a loaded machine
    print("rate at 20 Hz:", ok["values"]["rate_hz"])
    assert 12.0 <= float(ok["values"]["rate_hz"]) <= 28.0, ok
    assert 0.0 <= float(ok["values"]["stamp_delay_median_ms"]) < 1000.0  # stamped now by the publisher
    # the colour image never came: ERROR once input_timeout_s has passed since start-up
    assert ros.spin_until(lambda: _latest(arrays, fqn)["inputs"][f"{ros.ns}/image"]["level"] == 2, 30.0)
    image = _latest(arrays, fqn)["inputs"][f"{ros.ns}/image"]
    assert image["level"] == DiagnosticStatus.ERROR[0] and image["message"].startswith("no input yet"), image

    timer.cancel()
    ros.helper.destroy_timer(timer)
    timer = ros.helper.create_timer(0.5, send)  # 2 Hz < 5 Hz
    # WARN comes while 20 Hz messages are still in the 5 s window (MIN_WINDOW_S; first seen at 4.8 Hz): wait for
    # 11 messages at 2 Hz (5.5 s), then the window holds only those: 10-11 in 5 s = 2.0-2.2 Hz
    n_switch = sent[0]
    assert ros.spin_until(lambda: level(DiagnosticStatus.WARN, n_switch + 11), 30.0), _latest(arrays, fqn)
    warn = _latest(arrays, fqn)["inputs"][topic]
    print("rate at 2 Hz:", warn["values"]["rate_hz"])
    assert 1.2 <= float(warn["values"]["rate_hz"]) <= 3.0 and "below expected_rate_hz" in warn["message"], warn

    timer.cancel()
    ros.helper.destroy_timer(timer)
    assert ros.spin_until(lambda: level(DiagnosticStatus.ERROR), 30.0), _latest(arrays, fqn)
    assert _latest(arrays, fqn)["inputs"][topic]["message"].startswith("no input for")

    # a real camera_info with a broken K is a counted reject, reported under its reason
    bad = kitti_frames[0].camera_info()
    bad.k = [0.0] * 9
    pub.publish(bad)
    assert ros.spin_until(lambda: _latest(arrays, fqn)["rejected"].get("camera_info_focal") == 1, 30.0)
    report = _latest(arrays, fqn)
    assert report["rejected"] == dict(node.stats.rejected)
    assert (report["frames_in"], report["frames_out"]) == (node.stats.frames_in, node.stats.frames_out) == (0, 0)
