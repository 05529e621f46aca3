"""torchvision's semantic-segmentation models (COCO train2017 subset with the 20 PASCAL VOC categories + background).

Six networks, each built by torchvision's own builder with ``weights=None, weights_backbone=None,
num_classes=21, aux_loss=<as the published checkpoint>`` and wrapped by ``TorchvisionSegmentation`` so the
module returns the ``out`` logits tensor (the auxiliary head stays in the state_dict, so the published checkpoint
loads strictly, but is not run). Facts from torchvision 0.29's ``*_Weights.COCO_WITH_VOC_LABELS_V1`` enums:

============================== ============================================ ======== ===== ==========
name                           file (sha256 prefix after the dash)           aux head mIoU  pixel acc
============================== ============================================ ======== ===== ==========
lraspp_mobilenet_v3_large      lraspp_mobilenet_v3_large-d234d4ea.pth        no       57.9  91.2
deeplabv3_mobilenet_v3_large   deeplabv3_mobilenet_v3_large-fc3c493d.pth     yes      60.3  91.2
deeplabv3_resnet50             deeplabv3_resnet50_coco-cd0a2569.pth          yes      66.4  92.4
deeplabv3_resnet101            deeplabv3_resnet101_coco-586e9e4e.pth         yes      67.4  92.4
fcn_resnet50                   fcn_resnet50_coco-1167a1af.pth                yes      60.5  91.4
fcn_resnet101                  fcn_resnet101_coco-7ecb50ca.pth               yes      63.7  91.9
============================== ============================================ ======== ===== ==========

mIoU / pixel accuracy: torchvision's documented "COCO-val2017-VOC-labels" figures (its references/segmentation
evaluation: shorter image side resized to 520, aspect kept, full image, 21 classes).

Input: RGB on [0, 1], ImageNet mean/std (torchvision's ``SemanticSegmentation`` preset). torchvision's preset resizes
the shorter side to 520 and keeps the aspect ratio; ``Segmenter`` runs a fixed network size instead, so
``default_hw`` is (480, 640), i.e. 640x480 (4:3, the 480 crop size torchvision trained with, inside its 260-1040
random-resize range). For torchvision's evaluation protocol set ``input_width``/``input_height`` to the image's
aspect with a 520-pixel shorter side (e.g. 696x520 for 4:3, 1720x520 for KITTI's 1242x375). Any size runs (the
heads upsample to the input size); the size is rounded to the backbone's output stride (16 for the dilated
MobileNetV3, 8 for the dilated ResNets) so feature maps align with pixels.

The weights are never downloaded by a node: ``seg-perception weights download lraspp_mobilenet_v3_large`` fetches
the file from download.pytorch.org, and a file already in torch hub's cache (``torch.hub.get_dir()/checkpoints``,
from an earlier ``torchvision.models...(weights=...)`` call) is found too.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import segmentation
from torchvision.models.segmentation import LRASPP
from torchvision.models.segmentation._utils import _SimpleSegmentationModel

from seg_perception.core.segmentation.class_info import voc_palette
from seg_perception.core.segmentation.models import ModelSpec
from seg_perception.core.segmentation.zoo import IMAGENET_MEAN, IMAGENET_STD, VOC_CLASSES

TORCHVISION_URL = "https://download.pytorch.org/models"
METRIC_PREFIX = "coco-val2017-voc-labels@shorter_side_520"


class TorchvisionSegmentation(nn.Module):
    """A torchvision segmentation model that returns only the ``out`` logits (N, C, H, W) at input size.

    Holds the wrapped model's children under their own names (``backbone``, ``classifier``, ``aux_classifier``),
    so the state_dict keys are exactly torchvision's and its checkpoints load strictly. The auxiliary head is kept
    for those keys but never run. The final upsampling is torchvision's: bilinear, ``align_corners=False``.

    Args:
        model: a ``torchvision.models.segmentation`` ``FCN``, ``DeepLabV3`` or ``LRASPP`` instance.
    Raises:
        TypeError: for any other module.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if not isinstance(model, (LRASPP, _SimpleSegmentationModel)):
            raise TypeError(f"expected a torchvision FCN, DeepLabV3 or LRASPP model, got {type(model).__name__}")
        self.lraspp = isinstance(model, LRASPP)
        for name, child in model.named_children():
            self.add_module(name, child)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised RGB -> (N, C, H, W) logits."""
        backbone = self.get_submodule("backbone")  # registered in __init__ from the torchvision model's children
        classifier = self.get_submodule("classifier")
        features = backbone(x)
        # LR-ASPP's head takes both the stride-8 "low" and stride-16 "high" features; FCN/DeepLab only "out".
        out = classifier(features if self.lraspp else features["out"])
        return F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)


def torchvision_builder(name: str, aux_loss: bool | None) -> Callable[[int], nn.Module]:
    """``builder(num_classes)`` for torchvision's ``models.segmentation.<name>``, untrained, wrapped.

    Args:
        name: builder name in ``torchvision.models.segmentation``.
        aux_loss: passed through (``None`` for LR-ASPP, which has no auxiliary head).
    """

    def build(num_classes: int) -> nn.Module:
        kwargs = {} if aux_loss is None else {"aux_loss": aux_loss}
        fn = getattr(segmentation, name)
        return TorchvisionSegmentation(fn(weights=None, weights_backbone=None, num_classes=num_classes, **kwargs))

    build.__name__ = f"build_{name}"
    return build


_PAPERS = {
    "lraspp": "Howard et al., Searching for MobileNetV3 (LR-ASPP head), ICCV 2019, arXiv:1905.02244",
    "deeplabv3": "Chen et al., Rethinking Atrous Convolution for Semantic Image Segmentation, arXiv:1706.05587",
    "fcn": "Long et al., Fully Convolutional Networks for Semantic Segmentation, CVPR 2015, arXiv:1411.4038",
}
_SIZE_NOTE = (
    "torchvision resizes the shorter side to 520 (aspect kept); default 640x480 = its 480 training crop at 4:3"
)

# name, checkpoint file, aux head in the checkpoint, size multiple (backbone output stride), mIoU, pixel acc
_MODELS = (
    ("lraspp_mobilenet_v3_large", "lraspp_mobilenet_v3_large-d234d4ea.pth", None, 16, 57.9, 91.2),
    ("deeplabv3_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large-fc3c493d.pth", True, 16, 60.3, 91.2),
    ("deeplabv3_resnet50", "deeplabv3_resnet50_coco-cd0a2569.pth", True, 8, 66.4, 92.4),
    ("deeplabv3_resnet101", "deeplabv3_resnet101_coco-586e9e4e.pth", True, 8, 67.4, 92.4),
    ("fcn_resnet50", "fcn_resnet50_coco-1167a1af.pth", True, 8, 60.5, 91.4),
    ("fcn_resnet101", "fcn_resnet101_coco-7ecb50ca.pth", True, 8, 63.7, 91.9),
)


def _spec(name: str, file: str, aux: bool | None, multiple: int, miou: float, acc: float) -> ModelSpec:
    return ModelSpec(
        name=name,
        builder=torchvision_builder(name, aux),
        categories=VOC_CLASSES,
        palette=voc_palette(len(VOC_CLASSES)),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        input_scale=1.0 / 255.0,
        size_multiple=multiple,
        default_hw=(480, 640),
        weights_file=file,
        sha256=file.rsplit("-", 1)[1].removesuffix(".pth"),  # torch hub's check_hash prefix
        url=f"{TORCHVISION_URL}/{file}",
        classifier_key="classifier.high_classifier.weight" if name.startswith("lraspp") else "classifier.4.weight",
        ontology="voc",
        metrics={f"{METRIC_PREFIX}/mIoU": miou, f"{METRIC_PREFIX}/pixel_acc": acc},
        paper=_PAPERS[name.split("_")[0]],
        size_note=_SIZE_NOTE,
    )


TORCHVISION_MODELS: dict[str, ModelSpec] = {m[0]: _spec(*m) for m in _MODELS}
