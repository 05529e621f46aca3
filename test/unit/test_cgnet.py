"""CGNet port: shapes with random weights, strict loading of the real CamVid checkpoint, golden parity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seg_perception.core.segmentation.models import load_model
from seg_perception.core.segmentation.nets.cgnet import CGNet
from seg_perception.core.segmentation.registry import get_model_spec
from seg_perception.core.segmentation.segment import Segmenter

GOLDEN_IMAGES = ("0001TP_008550", "0001TP_009300", "0001TP_010050")


@pytest.mark.parametrize("hw", [(32, 32), (45, 61), (360, 480)], ids=["32x32", "odd_45x61", "360x480"])
def test_random_weights_output_shape(hw: tuple[int, int]) -> None:
    torch.manual_seed(0)
    net = CGNet(num_classes=11, m=3, n=21).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, *hw))
    assert out.shape == (2, 11, *hw)
    assert torch.isfinite(out).all()


def test_small_variant_and_bad_args() -> None:
    net = CGNet(num_classes=19, m=1, n=2).eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 24, 40)).shape == (1, 19, 24, 40)
    with pytest.raises(ValueError, match="must be >= 1"):
        CGNet(num_classes=0)


def test_strict_load_and_param_count(model_dir: Path) -> None:
    ckpt = torch.load(model_dir / "cgnet_m3n21_camvid.pth", map_location="cpu", weights_only=True)
    state = ckpt["model"]
    net = CGNet(num_classes=11, m=3, n=21)
    assert sorted(net.state_dict()) == sorted(state)
    net.load_state_dict(state, strict=True)
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == 494_258
    assert len(state) == 498


@pytest.fixture(scope="module")
def segmenter(model_dir: Path) -> Segmenter:
    spec = get_model_spec("cgnet_camvid")
    return Segmenter(spec, load_model(spec, model_dir), device="cpu", input_hw=(360, 480))


@pytest.fixture(scope="module")
def golden(model_dir: Path) -> dict[str, dict]:
    entries = json.loads((model_dir / "golden" / "golden.json").read_text())
    return {e["image"].removesuffix(".png"): e for e in entries if e["model"] == "cgnet_camvid_480x360"}


@pytest.mark.parametrize("name", GOLDEN_IMAGES)
def test_golden_parity(name: str, segmenter: Segmenter, golden: dict[str, dict], model_dir: Path,
                       camvid_dir: Path) -> None:
    rgb = np.array(Image.open(camvid_dir / "images" / f"{name}.png").convert("RGB"))
    logits = segmenter.logits(rgb)[0]
    ref = golden[name]
    assert list(logits.shape) == ref["logits_shape"]
    labels = logits.argmax(0).numpy()
    expected = np.array(Image.open(model_dir / "golden" / f"{name}.cgnet_camvid_480x360.labels.png"))
    assert (labels == expected).mean() >= 0.995
    np.testing.assert_allclose(logits.mean(dim=(1, 2)).numpy(), ref["logits_mean_per_class"], atol=2e-3)
    conf = torch.softmax(logits, 0).max(0).values.mean().item()
    assert conf == pytest.approx(ref["max_softmax_mean"], abs=2e-3)
