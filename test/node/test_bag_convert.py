"""The real ROS 1 bags in ../shared/data/ros1_bags convert with rosbags' converter (``seg-perception bag-convert``),
keep every topic, count and value, and the converted bag replays into the segmentation node (compressed input)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.parameter import Parameter
from rclpy.serialization import deserialize_message
from rosbags.rosbag1 import Reader as Ros1Reader
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from seg_perception.bag import read_messages, resolve_message_class
from seg_perception.cli import main as cli_main
from seg_perception.ros import convert
from seg_perception.ros.compressed import compressed_to_rgb
from seg_perception.ros.segmentation_node import SegmentationNode
from seg_perception.tools.replay import Replayer


@pytest.fixture(scope="module")
def ros1_bags(shared_dir: Path) -> list[Path]:
    bags = sorted((shared_dir / "data" / "ros1_bags").glob("*.bag"))
    assert len(bags) == 3, bags
    return bags


def _ros1(bag: Path) -> dict[str, list]:
    """topic -> deserialized ROS 1 messages (with the definitions stored in the bag)."""
    store = get_typestore(Stores.ROS1_NOETIC)
    out: dict[str, list] = {}
    with Ros1Reader(bag) as r:
        for conn, _, raw in r.messages():
            out.setdefault(conn.topic, []).append(store.deserialize_ros1(raw, conn.msgtype))
    return out


def test_every_ros1_bag_converts_with_all_topics_counts_and_values(ros1_bags, tmp_path) -> None:  # noqa: ANN001
    for bag in ros1_bags:
        dst = tmp_path / bag.stem
        assert cli_main(["bag-convert", str(bag), "-o", str(dst)]) == 0
        src = _ros1(bag)
        got: dict[str, list] = {}
        for m in read_messages(dst):
            got.setdefault(m.topic, []).append(deserialize_message(m.data, resolve_message_class(m.msgtype)))
        assert {t: len(v) for t, v in got.items()} == {t: len(v) for t, v in src.items()}, bag.name
        for topic, msgs in src.items():
            for old, new in zip(msgs, got[topic], strict=True):
                assert (new.header.stamp.sec, new.header.stamp.nanosec) == (old.header.stamp.sec,
                                                                            old.header.stamp.nanosec)  # fmt: skip
                if isinstance(new, CameraInfo):  # ROS 1 K, D, P -> ROS 2 k, d, p
                    assert (new.width, new.height) == (old.width, old.height)
                    np.testing.assert_array_equal(new.k, old.K)
                    np.testing.assert_array_equal(new.d, old.D)
                    np.testing.assert_array_equal(new.p, old.P)
                else:
                    assert isinstance(new, CompressedImage) and new.format == old.format == "jpg"
                    assert bytes(new.data) == bytes(old.data)
                    assert compressed_to_rgb(new).shape[:2] in ((960, 1280), (720, 1280))
    assert cli_main(["bag-convert", str(ros1_bags[0]), "-o", str(tmp_path / ros1_bags[0].stem)]) == 2  # exists


def test_converted_bag_replays_into_the_segmentation_node(ros, model_dir, ros1_bags, tmp_path) -> None:  # noqa: ANN001
    dst = tmp_path / "aruco_images"
    assert cli_main(["bag-convert", str(ros1_bags[0]), "-o", str(dst)]) == 0
    # the node's image is remapped to the bag's base topic: it subscribes <image>/compressed, as image_transport
    node = ros.add(SegmentationNode(namespace=ros.ns, context=ros.context, parameter_overrides=[
        Parameter("weights", value=str(model_dir)), Parameter("device", value="cpu"),
        Parameter("input_width", value=512), Parameter("input_height", value=384),
        Parameter("use_depth", value=False), Parameter("image_transport", value="compressed")],
        cli_args=["--ros-args", "-r", "image:=/raspicam_node/image", "-r", "camera_info:=/raspicam_node/camera_info"]))
    labels = ros.subscribe(Image, "labels")
    infos = ros.subscribe(CameraInfo, "/raspicam_node/camera_info", 20)
    player = rclpy.create_node("player", namespace=ros.ns, context=ros.context)  # not spun: play() publishes
    replayer = Replayer(player, dst)
    assert ros.spin_until(lambda: replayer.subscription_count() >= 3, 10.0)  # node: image + camera_info; helper
    stats: list = []
    thread = threading.Thread(target=lambda: stats.append(replayer.play()), daemon=True)
    thread.start()
    assert ros.spin_until(lambda: labels and len(infos) == 15 and not thread.is_alive(), 60.0), node.stats.as_dict()
    player.destroy_node()
    assert stats[0].counts == {"/raspicam_node/image/compressed": 1, "/raspicam_node/camera_info": 15}
    image = next(deserialize_message(m.data, CompressedImage) for m in read_messages(dst)
                 if m.topic == "/raspicam_node/image/compressed")  # fmt: skip
    assert labels[0].header == image.header  # the outputs carry the bag image's header
    expected = node.pipeline.process(compressed_to_rgb(image), None, None).labels
    np.testing.assert_array_equal(convert.image_to_array(labels[0]), expected)
    assert node.stats.frames_in == node.stats.frames_out == 1
