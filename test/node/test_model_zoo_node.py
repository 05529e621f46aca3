"""The segmentation node with a torchvision model (random weights) and with a bring-your-own TorchScript model.

``weights: random`` runs an untrained network: it exercises the node's plumbing (shapes, encodings, headers,
label_info, TTA parameters) without any weight file, not the model's quality.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from torch import nn

from seg_perception.core.segmentation.zoo import VOC_CLASSES
from seg_perception.ros import convert
from seg_perception.ros.qos import LATCHED_QOS
from seg_perception.ros.segmentation_node import SegmentationNode


def _start(ros, params: list[Parameter]):  # noqa: ANN001, ANN202
    node = ros.add(SegmentationNode(namespace=ros.ns, context=ros.context, parameter_overrides=params))
    pubs = {
        "image": ros.publisher(Image, "image"),
        "depth": ros.publisher(Image, "depth"),
        "camera_info": ros.publisher(CameraInfo, "camera_info"),
    }
    labels = ros.subscribe(Image, "labels")
    info = ros.subscribe(String, "label_info_json", LATCHED_QOS)
    ros.wait_for_subscribers(list(pubs.values()))
    ros.spin_until(lambda: ros.helper.count_subscribers(f"{ros.ns}/labels") > 0, 5.0)
    return node, pubs, labels, info


def _send(pubs: dict, frame) -> None:  # noqa: ANN001
    pubs["camera_info"].publish(frame.camera_info())
    pubs["depth"].publish(frame.depth())
    pubs["image"].publish(frame.image())


def test_torchvision_lraspp_with_random_weights_labels_a_kitti_frame(ros, kitti_frames) -> None:  # noqa: ANN001
    params = [
        Parameter("model", value="lraspp_mobilenet_v3_large"),
        Parameter("weights", value="random"),
        Parameter("device", value="cpu"),
        Parameter("input_width", value=320),
        Parameter("input_height", value=96),
        Parameter("tta_flip", value=True),
        Parameter("tta_scales", value=[0.5, 1.0]),
    ]
    with pytest.warns(UserWarning, match="RANDOM weights"):
        node, pubs, labels, info = _start(ros, params)
    confidence = ros.subscribe(Image, "confidence")
    ros.spin_until(lambda: ros.helper.count_subscribers(f"{ros.ns}/confidence") > 0, 5.0)
    seg = node.pipeline.segmenter
    assert seg.input_hw == (96, 320) and seg.tta_flip and seg.tta_hws == ((48, 160), (96, 320))
    f = kitti_frames[0]
    _send(pubs, f)
    assert ros.spin_until(lambda: labels and info, 60.0), (len(labels), len(info))
    msg = labels[0]
    assert msg.header == f.header() and msg.encoding == "mono8" and (msg.height, msg.width) == (375, 1242)
    arr = convert.image_to_array(msg)
    # random weights have no right answer of their own: the node must give exactly what the core gives on the same
    # frame with the same network (TTA included), i.e. the ROS path (conversion, sizes, header) adds nothing. An
    # untrained torchvision head is nearly uniform (one class everywhere, confidence ~1/21): exact pixel checks of
    # the plumbing are in test_segmentation_node's fake_pattern test.
    with torch.inference_mode():
        direct = seg(f.rgb)
    assert arr.shape == (375, 1242) and arr.dtype == np.uint8
    np.testing.assert_array_equal(arr, direct.labels)
    assert ros.spin_until(lambda: confidence, 10.0)
    conf = convert.image_to_array(confidence[0])
    np.testing.assert_array_equal(conf, np.rint(direct.confidence * 255).astype(np.uint8))
    assert conf.min() >= np.floor(255 / len(VOC_CLASSES))  # a softmax maximum is at least 1/C
    payload = json.loads(info[0].data)
    assert payload["model"] == "lraspp_mobilenet_v3_large" and payload["ontology"] == "voc"
    assert [c["name"] for c in payload["classes"]] == list(VOC_CLASSES)


def test_custom_torchscript_model_from_a_yaml_path(ros, kitti_frames, tmp_path: Path) -> None:  # noqa: ANN001
    conv = nn.Conv2d(3, 3, 8, stride=8)
    with torch.no_grad():  # constant logits (0, 2, 1) whatever the image: every label must be class 1 ("thing")
        conv.weight.zero_()
        conv.bias.copy_(torch.tensor([0.0, 2.0, 1.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(conv.eval()).save(str(tmp_path / "tiny.pt"))
    spec = {"file": "tiny.pt", "name": "tiny_byo", "classes": ["ground", "thing", "sky"], "ontology": "",
            "palette": [[128, 64, 128], [255, 0, 0], [70, 130, 180]],
            "input": {"scale": "1/255", "size": [256, 80], "size_multiple": 8}, "output": {"stride": 8}}  # fmt: skip
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(spec))
    params = [Parameter("model", value=str(tmp_path / "tiny.yaml")), Parameter("device", value="cpu")]
    node, pubs, labels, info = _start(ros, params)
    assert node.pipeline.segmenter.input_hw == (80, 256)
    f = kitti_frames[1]
    _send(pubs, f)
    assert ros.spin_until(lambda: labels and info, 30.0), (len(labels), len(info))
    assert labels[0].header == f.header() and labels[0].encoding == "mono8"
    assert (convert.image_to_array(labels[0]) == 1).all()
    assert json.loads(info[0].data)["model"] == "tiny_byo"
