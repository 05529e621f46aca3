"""The network input size rule: with no explicit size the camera's aspect is kept
(``core.segmentation.segment.aspect_hw``); an explicit size that distorts the aspect by more than 10 % is warned about
once.

The real check runs ESPNetv2 Cityscapes on KITTI frames (1242x375): the default-size road share in the bottom rows
equals the aspect-kept 1024x320 result, while the old default (squashed to 1024x512) loses road.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from seg_perception.core.segmentation.pipeline import SegmentationConfig, SegmentationPipeline
from seg_perception.core.segmentation.registry import get_model_spec
from seg_perception.core.segmentation.segment import Segmenter, aspect_distortion, aspect_hw
from seg_perception.datasets import open_sequence


@pytest.mark.parametrize(
    ("model", "image", "expected"),
    [
        ("espnetv2_city", (375, 1242), (304, 1024)),  # KITTI: width-limited, multiple of 16
        ("espnetv2_city", (480, 640), (512, 688)),  # 4:3: height-limited
        ("espnetv2_city", (1024, 2048), (512, 1024)),  # Cityscapes' own aspect: the default size
        ("espnetv2_pascal", (480, 640), (288, 384)),
        ("cgnet_camvid", (480, 640), (360, 480)),  # same aspect as the default
        ("cgnet_camvid", (375, 1242), (144, 480)),  # multiple of 8
    ],
    ids=["city-kitti", "city-4x3", "city-2x1", "pascal-4x3", "cgnet-4x3", "cgnet-kitti"],
)
def test_aspect_hw(model: str, image: tuple[int, int], expected: tuple[int, int]) -> None:
    """Sizes (height, width), as everywhere in the code."""
    spec = get_model_spec(model)
    size = aspect_hw(spec, image)
    assert size == expected
    assert size[0] <= spec.default_hw[0] and size[1] <= spec.default_hw[1]
    assert aspect_distortion(size, image) < 0.05


def test_aspect_distortion() -> None:
    assert aspect_distortion((512, 1024), (1024, 2048)) == 0.0
    assert aspect_distortion((512, 1024), (375, 1242)) == pytest.approx((1242 / 375) / 2 - 1)
    assert aspect_distortion((512, 512), (480, 640)) == pytest.approx(4 / 3 - 1)
    with pytest.raises(ValueError, match="positive"):
        aspect_hw(get_model_spec("espnetv2_city"), (375, 0))


class _Zeros(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 20, *x.shape[-2:])


def test_segmenter_follows_each_image_aspect() -> None:
    spec = get_model_spec("espnetv2_city")
    seg = Segmenter(spec, _Zeros(), device="cpu", keep_aspect=True, runtime="torch", tta_scales=[1.0, 0.5])
    assert seg.input_hw == (512, 1024)  # before any image
    assert seg.logits(np.zeros((375, 1242, 3), np.uint8)).shape[-2:] == (304, 1024)
    assert seg.input_hw == (304, 1024) and seg.tta_hws == ((304, 1024), (160, 512))
    assert seg(np.zeros((480, 640, 3), np.uint8)).labels.shape == (480, 640)
    assert seg.input_hw == (512, 688)
    seg.warm_up((375, 1242))  # e.g. from camera_info, before the first image
    assert seg.input_hw == (304, 1024)


def test_explicit_distorting_size_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    spec = get_model_spec("espnetv2_city")
    seg = Segmenter(spec, _Zeros(), device="cpu", input_hw=(512, 1024), runtime="torch")
    kitti = np.zeros((375, 1242, 3), np.uint8)
    with caplog.at_level(logging.WARNING, "seg_perception.segment"):
        for _ in range(3):
            seg(kitti)
        seg(np.zeros((512, 1024, 3), np.uint8))  # matching aspect: no warning
        seg(kitti)  # back to a warned size: still only once
    warnings = [r for r in caplog.records if "distorts the aspect" in r.getMessage()]
    assert len(warnings) == 1
    assert "1024x512 distorts the aspect of 1242x375 images by 66 %" in warnings[0].getMessage()
    assert seg.input_hw == (512, 1024)  # an explicit size is kept


def test_small_aspect_change_is_not_warned(caplog: pytest.LogCaptureFixture) -> None:
    seg = Segmenter(get_model_spec("espnetv2_city"), _Zeros(), device="cpu", input_hw=(480, 640), runtime="torch")
    with caplog.at_level(logging.WARNING, "seg_perception.segment"):
        seg(np.zeros((480, 600, 3), np.uint8))  # 6.7 % off
    assert "distorts" not in caplog.text


def _road_share_bottom(labels: np.ndarray, rows: int = 100) -> float:
    return float((labels[-rows:] == 0).mean() * 100)


def test_kitti_default_size_keeps_the_road(kitti_dir: Path, model_dir: Path) -> None:
    """Default parameters on real KITTI frames: the road share in the bottom 100 rows equals the aspect-kept
    1024x320 result (within 2 points), while the squashed 1024x512 input loses road."""
    seq = open_sequence(kitti_dir)
    frames = [seq[i].rgb for i in (0, 20, 40)]

    def shares(**size: int) -> float:
        cfg = SegmentationConfig(weights=str(model_dir), device="cpu", runtime="torch", **size)
        pipe = SegmentationPipeline(cfg)
        out = [_road_share_bottom(pipe.segmenter(rgb).labels) for rgb in frames]
        if not size:
            assert pipe.segmenter.input_hw == (304, 1024)
        return float(np.mean(out))

    default, kept, squashed = shares(), shares(input_width=1024, input_height=320), shares(
        input_width=1024, input_height=512)  # fmt: skip
    print(f"road share in the bottom 100 rows: default {default:.1f} %, 1024x320 {kept:.1f} %, "
          f"1024x512 {squashed:.1f} %")  # fmt: skip
    assert abs(default - kept) <= 2.0
    assert default > squashed + 3.0
