"""The segmentation node in-process on real KITTI frames: outputs, headers, and bad input that must not kill it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header, String
from vision_msgs.msg import LabelInfo

from seg_perception.core.segmentation.fake import FAKE_CONFIDENCE, FAKE_PALETTE
from seg_perception.core.segmentation.zoo import CITYSCAPES_CLASSES
from seg_perception.ros import convert
from seg_perception.ros.qos import LATCHED_QOS
from seg_perception.ros.segmentation_node import SegmentationNode

OUT_TOPICS = {"labels": Image, "confidence": Image, "overlay": Image, "semantic_points": PointCloud2}


@pytest.fixture
def seg(ros, model_dir):  # noqa: ANN001, ANN201
    """The node (real ESPNetv2 Cityscapes, small network input for speed) + publishers + recorders."""
    node = ros.add(
        SegmentationNode(
            namespace=ros.ns,
            context=ros.context,
            parameter_overrides=[
                Parameter("weights", value=str(model_dir)),
                Parameter("device", value="cpu"),
                Parameter("input_width", value=640),
                Parameter("input_height", value=192),
                Parameter("cloud_stride", value=2),
            ],
        )
    )
    pubs = {
        "image": ros.publisher(Image, "image"),
        "depth": ros.publisher(Image, "depth"),
        "camera_info": ros.publisher(CameraInfo, "camera_info"),
    }
    outs = {t: ros.subscribe(cls, t) for t, cls in OUT_TOPICS.items()}
    ros.wait_for_subscribers(list(pubs.values()))
    ros.spin_until(lambda: all(ros.helper.count_subscribers(f"{ros.ns}/{t}") > 0 for t in OUT_TOPICS), 5.0)
    return node, pubs, outs


def _send(pubs: dict, image: Image, depth: Image, info: CameraInfo) -> None:
    pubs["camera_info"].publish(info)
    pubs["depth"].publish(depth)
    pubs["image"].publish(image)


def test_real_frame_gives_all_outputs_with_the_input_header(ros, seg, kitti_frames) -> None:  # noqa: ANN001
    node, pubs, outs = seg
    f = kitti_frames[0]
    _send(pubs, f.image(), f.depth(), f.camera_info())
    assert ros.spin_until(lambda: all(outs[t] for t in OUT_TOPICS), 60.0), {t: len(v) for t, v in outs.items()}

    for t in OUT_TOPICS:
        assert outs[t][0].header == f.header(), t
    labels, conf, overlay = (convert.image_to_array(outs[t][0]) for t in ("labels", "confidence", "overlay"))
    assert outs["labels"][0].encoding == "mono8" and labels.shape == (375, 1242)
    assert outs["confidence"][0].encoding == "mono8" and conf.shape == (375, 1242)
    assert outs["overlay"][0].encoding == "rgb8" and overlay.shape == (375, 1242, 3)
    # a street scene: road (0) and car (13) cover much of the image, and nothing is "background" (19)
    hist = np.bincount(labels.ravel(), minlength=20) / labels.size
    assert hist[0] > 0.10 and hist[13] > 0.10 and hist[19] == 0.0
    assert conf.min() >= 255 // 20 and np.median(conf) > 0.6 * 255  # softmax max >= 1/C

    cloud_msg = outs["semantic_points"][0]
    assert (cloud_msg.height, cloud_msg.width, cloud_msg.is_dense) == (188, 621, False)
    assert [f.name for f in cloud_msg.fields] == ["x", "y", "z", "rgb", "label", "confidence"]
    cloud = convert.msg_to_cloud(cloud_msg)
    finite = np.isfinite(cloud["z"])
    assert 0.02 < finite.mean() < 0.06  # sparse LiDAR depth: ~3.5 % valid
    assert np.isnan(cloud["x"][~finite]).all()
    # labels in the cloud are the label image decimated by 2
    np.testing.assert_array_equal(cloud["label"], labels[::2, ::2])
    assert node.stats.frames_out == 1 and sum(node.stats.drops.values()) == 0


def test_fake_model_outputs_are_the_known_pattern(ros, fake_pattern_expected) -> None:  # noqa: ANN001
    """The node's plumbing against oracles computed from definitions only: ``fake_pattern``'s regions and
    confidence (no CNN), the overlay at alpha 1 (the palette), the pinhole model for the cloud (REP-118 depth)."""
    height, width, net_h, net_w, stride, fx, fy, cx, cy = 120, 160, 48, 64, 2, 100.0, 90.0, 79.5, 60.0
    node = ros.add(SegmentationNode(namespace=ros.ns, context=ros.context, parameter_overrides=[
        Parameter("model", value="fake_pattern"), Parameter("device", value="cpu"),
        Parameter("input_width", value=net_w), Parameter("input_height", value=net_h),
        Parameter("cloud_stride", value=stride), Parameter("overlay_alpha", value=1.0),
        Parameter("cloud_color", value="class")]))  # fmt: skip
    pubs = {t: ros.publisher(cls, t) for t, cls in (("image", Image), ("depth", Image), ("camera_info", CameraInfo))}
    outs = {t: ros.subscribe(cls, t) for t, cls in OUT_TOPICS.items()}
    ros.wait_for_subscribers(list(pubs.values()))
    ros.spin_until(lambda: all(ros.helper.count_subscribers(f"{ros.ns}/{t}") > 0 for t in OUT_TOPICS), 5.0)

    rgb = np.random.default_rng(7).integers(0, 256, (height, width, 3), dtype=np.uint8)
    depth_mm = np.full((height, width), 2500, np.uint16)
    depth_mm[:20, :30] = 0  # invalid (REP-118: 0 mm)
    header = Header(stamp=convert.ns_to_stamp(1_700_000_000_000_000_000), frame_id="cam_optical")
    info = CameraInfo(header=header, width=width, height=height, k=[fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0])
    _send(pubs, convert.array_to_image(rgb, "rgb8", header), convert.array_to_image(depth_mm, "16UC1", header), info)
    assert ros.spin_until(lambda: all(outs[t] for t in OUT_TOPICS), 30.0), {t: len(v) for t, v in outs.items()}

    labels = convert.image_to_array(outs["labels"][0])
    expected = fake_pattern_expected(height, width, net_h, net_w)
    sure = expected != 255
    np.testing.assert_array_equal(labels[sure], expected[sure])
    assert sure.mean() > 0.9  # the border bands are narrow
    assert (convert.image_to_array(outs["confidence"][0]) == round(FAKE_CONFIDENCE * 255)).all()
    palette = np.array(FAKE_PALETTE, np.uint8)
    np.testing.assert_array_equal(convert.image_to_array(outs["overlay"][0]), palette[labels])

    cloud = convert.msg_to_cloud(outs["semantic_points"][0])
    assert cloud.shape == (height // stride, width // stride) and outs["semantic_points"][0].header == header
    np.testing.assert_array_equal(cloud["label"], labels[::stride, ::stride])
    np.testing.assert_allclose(cloud["confidence"], FAKE_CONFIDENCE, rtol=1e-6)
    v, u = np.mgrid[0:height:stride, 0:width:stride].astype(np.float64)
    valid = depth_mm[::stride, ::stride] > 0
    assert np.isnan(cloud["z"][~valid]).all() and np.isnan(cloud["x"][~valid]).all()
    np.testing.assert_allclose(cloud["z"][valid], 2.5, rtol=1e-6)
    np.testing.assert_allclose(cloud["x"][valid], ((u - cx) * 2.5 / fx)[valid], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cloud["y"][valid], ((v - cy) * 2.5 / fy)[valid], rtol=1e-5, atol=1e-6)
    rgb_u32 = np.ascontiguousarray(cloud["rgb"]).view(np.uint32)
    packed = palette[cloud["label"]].astype(np.uint32)
    np.testing.assert_array_equal(rgb_u32, (packed[..., 0] << 16) | (packed[..., 1] << 8) | packed[..., 2])
    assert node.stats.frames_out == 1 and sum(node.stats.drops.values()) == 0


def test_label_info_is_latched_label_info_and_json(ros, seg) -> None:  # noqa: ANN001
    # both subscribe after the node published them (transient local)
    late_std, late = ros.subscribe(LabelInfo, "label_info", LATCHED_QOS), ros.subscribe(String, "label_info_json",
                                                                                          LATCHED_QOS)  # fmt: skip
    assert ros.spin_until(lambda: late_std and late, 10.0)
    assert [(c.class_id, c.class_name) for c in late_std[0].class_map] == list(enumerate(CITYSCAPES_CLASSES))
    info = json.loads(late[0].data)
    assert info["model"] == "espnetv2_city" and info["ontology"] == "cityscapes"
    assert [c["name"] for c in info["classes"]] == list(CITYSCAPES_CLASSES)
    assert info["classes"][0]["color"] == [128, 64, 128]


def _unsupported_encoding(f):  # noqa: ANN001, ANN202
    img = f.image()
    img.encoding = "yuv422"
    return img, f.depth(), f.camera_info()


def _depth_size_mismatch(f):  # noqa: ANN001, ANN202
    small = convert.array_to_image(np.ascontiguousarray(f.depth_mm[::2, ::2]), "16UC1", f.header())
    return f.image(), small, f.camera_info()


def _zero_focal_length(f):  # noqa: ANN001, ANN202
    info = f.camera_info()
    info.k[0] = 0.0
    return f.image(), f.depth(), info


def _truncated_data(f):  # noqa: ANN001, ANN202
    img = f.image()
    img.data = bytes(img.data)[: -img.step // 2]
    return img, f.depth(), f.camera_info()


@pytest.mark.parametrize(
    ("make_bad", "reason"),
    [
        (_unsupported_encoding, "encoding"),
        (_depth_size_mismatch, "size_mismatch"),
        (_zero_focal_length, "camera_info_focal"),
        (_truncated_data, "data_length"),
    ],
    ids=["unsupported-encoding", "depth-size-mismatch", "zero-focal-length", "truncated-data"],
)
def test_bad_input_is_counted_dropped_and_the_next_frame_is_processed(ros, seg, kitti_frames, make_bad, reason):  # noqa: ANN001
    node, pubs, outs = seg
    bad = kitti_frames[1]
    _send(pubs, *make_bad(bad))
    stats = node.stats
    assert ros.spin_until(lambda: stats.drops[reason] + stats.rejected[reason] >= 1, 20.0), stats.as_dict()
    good = kitti_frames[2]
    _send(pubs, good.image(), good.depth(), good.camera_info())
    assert ros.spin_until(lambda: outs["semantic_points"] and outs["labels"], 60.0), dict(node.stats.drops)
    # one publisher delivers in order: an output of the bad frame would have come before the good one's
    assert [m.header.stamp for m in outs["labels"]] == [good.header().stamp], "a bad frame must produce no output"
    assert node.stats.frames_out == 1
    # every colour frame is accounted for: the bad one is a drop (its own reason, or no_camera_info after a
    # refused camera_info), the good one an output
    assert node.worker.wait_idle(10.0)
    assert stats.frames_in == 2 and stats.frames_out + sum(stats.drops.values()) + stats.pending == 2, stats.as_dict()


def test_runtime_parameter_changes_are_validated_and_applied(ros, seg, kitti_frames) -> None:  # noqa: ANN001
    node, pubs, outs = seg
    ok = node.set_parameters([Parameter("cloud_stride", value=4), Parameter("overlay_alpha", value=0.0)])
    assert all(r.successful for r in ok)
    assert node.pipeline.cfg.cloud_stride == 4
    bad = node.set_parameters([Parameter("min_depth_m", value=90.0)])  # above max_depth_m (80): rejected
    assert not bad[0].successful and "min_depth_m" in bad[0].reason
    assert node.pipeline.cfg.min_depth_m == pytest.approx(0.1)
    frozen = node.set_parameters([Parameter("model", value="cgnet_camvid")])  # needs a restart: read-only
    assert not frozen[0].successful and node.pipeline.spec.name == "espnetv2_city"
    f = kitti_frames[0]
    _send(pubs, f.image(), f.depth(), f.camera_info())
    assert ros.spin_until(lambda: outs["semantic_points"] and outs["overlay"], 60.0)
    assert (outs["semantic_points"][0].height, outs["semantic_points"][0].width) == (94, 311)  # stride 4
    np.testing.assert_array_equal(convert.image_to_array(outs["overlay"][0]), f.rgb)  # alpha 0: the image itself
