"""The built-in pretrained models (facts from the models' papers and the authors' evaluation code)."""

from __future__ import annotations

import dataclasses
import functools

from torch import nn

from seg_perception.core.segmentation.class_info import voc_palette
from seg_perception.core.segmentation.models import ModelSpec
from seg_perception.core.segmentation.nets.cgnet import CGNet
from seg_perception.core.segmentation.nets.espnetv2 import ESPNetv2Segmentation

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle", "background",
)  # fmt: skip
# Standard Cityscapes palette in trainId order; "background" (never predicted) is black.
CITYSCAPES_PALETTE = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
    (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60), (255, 0, 0),
    (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32), (0, 0, 0),
)  # fmt: skip

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip

CAMVID_CLASSES = (
    "sky", "building", "pole", "road", "pavement", "tree", "sign_symbol", "fence", "car", "pedestrian", "bicyclist",
)  # fmt: skip
CAMVID_PALETTE = (
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0), (192, 128, 128),
    (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
)  # fmt: skip


def _speed(network_ms: float, frame_ms: float) -> dict[str, float]:
    """Speed measured here (``seg-perception bench --data ../shared/data/7scenes_kitchen --input-size 640x480
    --all-models``: OpenVINO, 2 cores, idle): the network and the whole frame (both nodes' work) in ms."""
    return {"openvino@640x480/network ms (2-core CPU)": network_ms, "openvino@640x480/frame ms (2-core CPU)": frame_ms}


def _espnetv2(num_classes: int, scale: float = 2.0) -> nn.Module:
    return ESPNetv2Segmentation(num_classes=num_classes, scale=scale)


def _cgnet(num_classes: int) -> nn.Module:
    return CGNet(num_classes=num_classes, m=3, n=21)


_EDGENETS = "https://raw.githubusercontent.com/sacmehta/EdgeNets/2b232d3f7fb60658755dad1ebca0ffc895cc795e/model/segmentation/model_zoo/espnetv2"
_ESPNETV2_PAPER = "Mehta et al., ESPNetv2, CVPR 2019, arXiv:1811.11431"

ESPNETV2_CITY = ModelSpec(
    name="espnetv2_city",
    builder=_espnetv2,
    categories=CITYSCAPES_CLASSES,
    palette=CITYSCAPES_PALETTE,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    input_scale=1.0 / 255.0,
    size_multiple=16,
    default_hw=(512, 1024),
    weights_file="espnetv2_s_2.0_city_1024x512.pth",
    sha256="a72d59699801c7ce8e8b89a53af9097eaaa60dc12180ecde86fd700ba1222fe8",
    url=f"{_EDGENETS}/espnetv2_s_2.0_city_1024x512.pth",
    classifier_key="bu_dec_l4.merge_layer.3.weight",
    ignore_classes=(19,),
    ontology="cityscapes",
    metrics={
        "camvid_test_0001TP@960x720->camvid/mIoU": 48.59,
        "camvid_test_0001TP@960x720->camvid/pixel_acc": 78.63,
        "camvid_val_0016E5@960x720->camvid/mIoU": 55.98,
        "camvid_val_0016E5@960x720->camvid/pixel_acc": 86.24,
        "camvid_test_0001TP@640x480->camvid/mIoU": 52.70,  # measured here (bench --all-models --miou)
        **_speed(108.8, 145.7),
    },
    paper=_ESPNETV2_PAPER,
)

ESPNETV2_PASCAL = ModelSpec(
    name="espnetv2_pascal",
    builder=_espnetv2,
    categories=VOC_CLASSES,
    palette=voc_palette(len(VOC_CLASSES)),
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    input_scale=1.0 / 255.0,
    size_multiple=16,
    default_hw=(384, 384),
    weights_file="espnetv2_s_2.0_pascal_384x384.pth",
    sha256="bc479586b0ba9254e02589020346931a14d99028ad6bac4817198be6d9e719a6",
    url=f"{_EDGENETS}/espnetv2_s_2.0_pascal_384x384.pth",
    classifier_key="bu_dec_l4.merge_layer.3.weight",
    ontology="voc",
    metrics=_speed(108.9, 142.3),
    paper=_ESPNETV2_PAPER,
)

CGNET_CAMVID = ModelSpec(
    name="cgnet_camvid",
    builder=_cgnet,
    categories=CAMVID_CLASSES,
    palette=CAMVID_PALETTE,
    mean=(105.65775, 103.329834, 99.625404),
    std=(1.0, 1.0, 1.0),
    input_scale=1.0,
    size_multiple=8,
    default_hw=(360, 480),
    weights_file="cgnet_m3n21_camvid.pth",
    sha256="3676a50e6587379426bf04924b0a2d98f332d3468adb990a40e0446e4f32a63e",
    url=(
        "https://raw.githubusercontent.com/wutianyiRosun/CGNet/ebc812c445b2f10a6cf64a2b16bbfe1cc2fec10f/"
        "checkpoint/camvid/CGNet_M3N21bs8gpu1_ontrainval/model_800.pth"
    ),
    state_dict_key="model",
    classifier_key="classifier.0.conv.weight",
    ontology="camvid",
    metrics={
        "camvid_test_0001TP@480x360/mIoU": 66.54,
        "camvid_test_0001TP@480x360/pixel_acc": 90.02,
        "camvid_val_0016E5@480x360/mIoU": 85.68,
        "camvid_val_0016E5@480x360/pixel_acc": 97.09,
        "camvid_test_0001TP@640x480/mIoU": 67.49,  # measured here (bench --all-models --miou)
        **_speed(61.3, 89.2),
    },
    paper="Wu et al., CGNet, IEEE TIP 30:1169-1179, 2020, arXiv:1811.08201",
)


# The ESPNetv2 width ladder (same architecture, width scale s; same repository and commit as s=2.0). Metrics: the
# authors' mIoU on Cityscapes val (1024x512) / PASCAL VOC val (384x384) from their model_zoo README.
# Measured here: mIoU on CamVid 0001TP at a 640x480 network input, Cityscapes ids mapped to CamVid's
# (`seg-perception bench --all-models --miou --input-size 640x480`).
_MEASURED_CAMVID_640 = {0.5: 37.12, 1.0: 52.30, 1.5: 54.02}
# Measured here: OpenVINO network / whole-frame ms at 640x480 (README "Model ladder").
_MEASURED_MS_640 = {(0.5, "city"): (89.2, 130.9), (1.0, "city"): (94.1, 136.5), (1.5, "city"): (103.9, 148.7),
                    (0.5, "pascal"): (90.4, 121.3), (1.0, "pascal"): (94.8, 124.8), (1.5, "pascal"): (115.8, 152.6)}
_LADDER = {
    # (scale, dataset): (sha256, authors' mIoU)
    (0.5, "city"): ("9412a86a30f137540ef945d08da3cb7191448956c56c41a64210dab443a9f65f", 53.9),
    (1.0, "city"): ("0918c833fed889e32901ce739b1784fdd2b79f95a9aea199a469ca3394dd7a14", 60.1),
    (1.5, "city"): ("0dbbda9126583d62f73dfdc28a59a30ab4564094ee6d28428b897a4e36c466b4", 63.8),
    (0.5, "pascal"): ("3352b32b209e1e6492d1481734f5333876b28d8866f5c1702d01ec70255eb20c", 47.18),
    (1.0, "pascal"): ("7ce2df106b62661a4e8e30098398d6b96a2a946b9546d2287500379f984301a8", 60.22),
    (1.5, "pascal"): ("75f67549659cb5db6a8323a7595e3ce1bc3cbea7f95731105dec7a6d034b516b", 63.67),
}
ESPNETV2_LADDER: dict[str, ModelSpec] = {}
for (_scale, _data), (_sha, _miou) in _LADDER.items():
    _base = ESPNETV2_CITY if _data == "city" else ESPNETV2_PASCAL
    _file = f"espnetv2_s_{_scale}_{_data}_{_base.default_hw[1]}x{_base.default_hw[0]}.pth"
    _protocol = "cityscapes_val@1024x512" if _data == "city" else "voc_val@384x384"
    ESPNETV2_LADDER[f"espnetv2_{_data}_s{_scale}"] = dataclasses.replace(
        _base,
        name=f"espnetv2_{_data}_s{_scale}",
        builder=functools.partial(_espnetv2, scale=_scale),
        weights_file=_file,
        sha256=_sha,
        url=f"{_EDGENETS}/{_file}",
        metrics={f"{_protocol}/mIoU (authors)": _miou, **_speed(*_MEASURED_MS_640[(_scale, _data)])}
        | ({"camvid_test_0001TP@640x480->camvid/mIoU": _MEASURED_CAMVID_640[_scale]} if _data == "city" else {}),
        size_note=f"ESPNetv2 width scale s={_scale}; trained at the s=2.0 model's size",
    )

BUILTIN_SPECS: tuple[ModelSpec, ...] = (ESPNETV2_CITY, ESPNETV2_PASCAL, CGNET_CAMVID, *ESPNETV2_LADDER.values())
