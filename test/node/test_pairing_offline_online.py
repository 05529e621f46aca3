"""Offline equals online for colour/depth pairing (message_filters' ApproximateTimeSynchronizer in
``ros/pairing.py``): the messages of a real kitchen bag, with depth 4 ms late, one depth and one colour image
removed, paired by ``RGBDAssembler`` as ``seg-perception process`` does and by a live segmentation node: the same
colour frames are paired and the same ones dropped, for the same reasons."""

from __future__ import annotations

from collections import Counter

import pytest
from rclpy.parameter import Parameter
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, Image

from seg_perception.bag import read_messages
from seg_perception.datasets import open_sequence
from seg_perception.ros import convert
from seg_perception.ros.assembler import RGBDAssembler
from seg_perception.ros.segmentation_node import SegmentationNode
from seg_perception.tools.bag_from_frames import write_bag
from seg_perception.workspace import DEFAULT_REMAPS

SLOP_S = 0.010
TOPICS = {DEFAULT_REMAPS[k]: k for k in ("image", "depth", "camera_info")}


@pytest.fixture(scope="module")
def jittered_stream(tmp_path_factory, kitchen_dir) -> list[tuple[str, object]]:  # noqa: ANN001
    """(kind, message) in bag order: depth stamped 4 ms after its colour image, the depth of the 3rd frame and the
    colour image of the 6th removed."""
    bag = tmp_path_factory.mktemp("kitchen") / "bag"
    write_bag(open_sequence(kitchen_dir), bag, limit=8, progress=False)
    stream, seen = [], Counter()
    for m in read_messages(bag, set(TOPICS)):
        kind = TOPICS[m.topic]
        msg = deserialize_message(m.data, CameraInfo if kind == "camera_info" else Image)
        seen[kind] += 1
        if (kind, seen[kind]) in (("depth", 3), ("image", 6)):
            continue
        if kind == "depth":
            msg.header.stamp = convert.ns_to_stamp(convert.stamp_to_ns(msg.header.stamp) + 4_000_000)
        stream.append((kind, msg))
    assert seen["image"] == 8 and seen["depth"] == 8
    return stream


def _offline(stream: list) -> tuple[list[int], Counter, Counter]:
    """As ``tools/process.py::segmented_frames`` pairs a bag's messages."""
    drops, rejected, paired = Counter(), Counter(), []
    asm = RGBDAssembler(lambda r, _d: drops.update([r]), slop_ns=int(SLOP_S * 1e9), queue_depth=30,
                        reject=lambda r, _d: rejected.update([r]))  # fmt: skip
    for kind, msg in stream:
        frame = getattr(asm, f"add_{kind}")(msg)
        if frame is not None:
            paired.append(convert.stamp_to_ns(frame.image.header.stamp))
    asm.flush()
    return paired, drops, rejected


def test_node_and_process_pair_the_same_frames_of_a_real_bag(ros, model_dir, jittered_stream) -> None:  # noqa: ANN001
    paired, drops, rejected = _offline(jittered_stream)
    # colour 3 (no depth) leaves when frame 4 pairs, depth 6 (no colour) when frame 7 pairs
    assert len(paired) == 6 and drops == Counter(superseded=1) and rejected == Counter(unpaired_depth=1), (
        paired, drops, rejected)  # fmt: skip

    node = ros.add(SegmentationNode(namespace=ros.ns, context=ros.context, parameter_overrides=[
        Parameter("weights", value=str(model_dir)), Parameter("device", value="cpu"),
        Parameter("input_width", value=256), Parameter("input_height", value=192),
        Parameter("sync_slop_s", value=SLOP_S)]))  # fmt: skip
    pubs = {k: ros.publisher(CameraInfo if k == "camera_info" else Image, k) for k in ("image", "depth", "camera_info")}
    labels = ros.subscribe(Image, "labels")
    ros.wait_for_subscribers(list(pubs.values()))
    for kind, msg in jittered_stream:  # one at a time: keep-last-1 sensor QoS and the newest-frame worker skip
        n = node.stats.received_total[kind]
        pubs[kind].publish(msg)
        assert ros.spin_until(lambda k=kind, n=n: node.stats.received_total[k] > n, 10.0), kind
        assert node.worker.wait_idle(60.0)
    assert ros.spin_until(lambda: len(labels) >= len(paired), 30.0), (len(labels), node.stats.as_dict())
    node.finish()  # what is still waiting is counted, as process's final flush does
    assert [convert.stamp_to_ns(m.header.stamp) for m in labels] == paired
    s = node.stats.as_dict()
    assert s["frames_out"] == len(paired) and Counter(s["drops"]) == drops
    assert Counter(s["rejected"]) == rejected and s["pending"] == 0
