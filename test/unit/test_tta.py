"""Test-time augmentation in ``Segmenter``: probabilities averaged over a horizontal flip and input scales."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from seg_perception import cli
from seg_perception.core.segmentation.models import ModelSpec, load_model
from seg_perception.core.segmentation.pipeline import SegmentationConfig, SegmentationPipeline
from seg_perception.core.segmentation.registry import get_model_spec
from seg_perception.core.segmentation.segment import Segmenter, class_probabilities, postprocess, preprocess
from seg_perception.tools import eval_data

CLASSES = ("a", "b", "c", "d")


def _spec(builder: object = None, **kw: object) -> ModelSpec:
    base = ModelSpec(
        name="tiny", builder=builder or (lambda n: nn.Conv2d(3, n, 1)), categories=CLASSES,
        palette=((0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255)), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
        input_scale=1 / 255, size_multiple=8, default_hw=(48, 64), weights_file="", sha256="", url="",
    )  # fmt: skip
    return dataclasses.replace(base, **kw)


def _pointwise() -> nn.Module:
    """A 1x1 conv: its output at a pixel depends on that pixel only, so it commutes with a mirror."""
    torch.manual_seed(0)
    return nn.Conv2d(3, len(CLASSES), 1).eval()


def _spatial() -> nn.Module:
    """A 3x3 conv with random (asymmetric) kernels: mirroring changes its output."""
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, len(CLASSES), 3, padding=1)).eval()


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def test_flip_on_a_mirror_symmetric_image_equals_no_tta(rgb: np.ndarray) -> None:
    sym = rgb.copy()
    sym[:, 32:] = sym[:, :32][:, ::-1]
    spec = _spec()
    plain = Segmenter(spec, _pointwise(), device="cpu")
    flipped = Segmenter(spec, _pointwise(), device="cpu", tta_flip=True)
    assert flipped.tta and not plain.tta
    torch.testing.assert_close(flipped.probs(sym), plain.probs(sym), rtol=0, atol=1e-7)
    a, b = plain(sym), flipped(sym)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-7)


def test_scale_one_equals_no_tta_exactly(rgb: np.ndarray) -> None:
    spec = _spec(ignore_classes=(3,))
    seg = Segmenter(spec, _spatial(), device="cpu", tta_scales=[1.0])
    assert not seg.tta and seg.tta_hws == ((48, 64),)
    logits = seg.logits(rgb)
    assert torch.equal(seg.probs(rgb), class_probabilities(logits, spec.ignore_classes))
    ref, got = postprocess(logits, (48, 64), spec.ignore_classes), seg(rgb)
    np.testing.assert_array_equal(got.labels, ref.labels)
    np.testing.assert_array_equal(got.confidence, ref.confidence)


def test_flip_averages_the_mirrored_run(rgb: np.ndarray) -> None:
    spec = _spec()
    net = _spatial()
    seg = Segmenter(spec, net, device="cpu", tta_flip=True)
    x = preprocess(rgb, spec, (48, 64), torch.device("cpu"))
    with torch.no_grad():
        expected = (torch.softmax(net(x), 1) + torch.softmax(net(x.flip(-1)), 1).flip(-1)) / 2
    torch.testing.assert_close(seg.probs(rgb), expected)
    assert not torch.allclose(seg.probs(rgb), torch.softmax(net(x), 1), atol=1e-3)  # the flip did something


def test_multi_scale_shapes_and_rounding() -> None:
    spec = _spec(ignore_classes=(0,))
    seg = Segmenter(spec, _spatial(), device="cpu", input_hw=(48, 64), tta_flip=True, tta_scales=[0.75, 1.0, 1.25])
    # 48x36 -> 48x32 and 80x60 -> 80x64 (rounded to the multiple of 8)
    assert seg.tta_hws == ((32, 48), (48, 64), (64, 80))
    image = np.random.default_rng(1).integers(0, 256, (70, 100, 3), dtype=np.uint8)
    probs = seg.probs(image)
    assert probs.shape == (1, 4, 48, 64) and probs.dtype == torch.float32
    torch.testing.assert_close(probs.sum(1), torch.ones(1, 48, 64))
    assert float(probs[:, 0].max()) == 0.0  # the ignored class never gets probability
    out = seg(image)
    assert out.labels.shape == (70, 100) and out.labels.dtype == np.uint8 and out.labels.min() >= 1
    assert out.confidence.shape == (70, 100) and out.confidence.dtype == np.float32


def test_bad_scales_and_fixed_size_models_fail_at_start() -> None:
    for scales in ([], [0.0], [1.0, -0.5], [float("nan")]):
        with pytest.raises(ValueError, match="tta scales"):
            Segmenter(_spec(), _pointwise(), device="cpu", tta_scales=scales)
    fixed = _spec(fixed_size=True)
    Segmenter(fixed, _pointwise(), device="cpu", tta_flip=True)  # flip needs no other size
    with pytest.raises(ValueError, match=r"tta scale 0.75: model 'tiny' only runs at 64x48"):
        Segmenter(fixed, _pointwise(), device="cpu", tta_scales=[0.75, 1.0])
    with pytest.raises(ValueError, match="tta_scales"):
        SegmentationConfig(tta_scales=())


def test_pipeline_takes_tta_from_the_config(rgb: np.ndarray) -> None:
    cfg = SegmentationConfig(model="lraspp_mobilenet_v3_large", weights="random", device="cpu", input_width=64,
                             input_height=48, tta_flip=True, tta_scales=(0.5, 1.0), publish_overlay=False,
                             runtime="torch")  # fmt: skip  (no export per size: TTA is the subject here)
    with pytest.warns(UserWarning, match="RANDOM"):
        pipe = SegmentationPipeline(cfg)
    assert pipe.segmenter.tta_flip and pipe.segmenter.tta_hws == ((32, 32), (48, 64))
    assert pipe.process(rgb).labels.shape == (48, 64)


def test_eval_cli_with_tta(model_dir: Path, camvid_dir: Path, tmp_path: Path) -> None:
    code = cli.main(["eval",
        "--model", "cgnet_camvid", "--weights", str(model_dir), "--dataset", str(camvid_dir), "--prefix", "0001TP_",
        "--limit", "2", "--no-progress", "--tta-flip", "--tta-scales", "0.75", "1.0", "--output", str(tmp_path),
    ])  # fmt: skip
    assert code == 0
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["tta"] == {"flip": True, "scales": [0.75, 1.0], "sizes": ["360x272", "480x360"]}
    assert report["mIoU"] > 40  # a real model on real images, averaged over 4 views


def test_tta_keeps_a_real_model_right(model_dir: Path, camvid_dir: Path) -> None:
    """CGNet with flip + scales agrees with single-scale CGNet on most pixels of a real CamVid image."""
    spec = get_model_spec("cgnet_camvid")
    model = load_model(spec, model_dir)
    image = next(iter(sorted((camvid_dir / "images").glob("0001TP_*.png"))))
    rgb = eval_data.read_rgb(image)
    plain = Segmenter(spec, model, device="cpu")(rgb).labels
    tta = Segmenter(spec, model, device="cpu", tta_flip=True, tta_scales=[0.75, 1.0, 1.25])(rgb).labels
    assert 0.9 < (plain == tta).mean() < 1.0
