"""ESPNetv2 port (Mehta et al., CVPR 2019, arXiv:1811.11431): shapes, strict loading and golden parity.

The golden label maps and per-class mean logits in ``models/golden`` were computed with the authors' code and the
real checkpoints, on CamVid 480x360 images resized with PIL bilinear to 960x720 (city) and 384x384 (pascal).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from seg_perception.core.segmentation.models import ModelSpec, load_model
from seg_perception.core.segmentation.nets.espnetv2 import ESPNetv2Segmentation, branch_dilations
from seg_perception.core.segmentation.registry import get_model_spec
from seg_perception.core.segmentation.segment import Segmenter

GOLDEN_IMAGES = ("0001TP_008550", "0001TP_009300", "0001TP_010050")
# registry name -> (golden tag, network input (width, height), learnable parameters per the models README)
MODELS = {
    "espnetv2_city": ("espnetv2_city_960x720", (720, 960), 789_242),
    "espnetv2_pascal": ("espnetv2_pascal_384x384", (384, 384), 789_253),
}
MIN_AGREEMENT_PCT = 99.5
MEAN_LOGIT_ATOL = 0.05


@pytest.fixture(scope="module")
def loaded(model_dir: Path) -> dict[str, tuple[ModelSpec, nn.Module]]:
    """Both real checkpoints, each loaded once (strictly) for the whole module."""
    out = {}
    for name in MODELS:
        spec = get_model_spec(name)
        out[name] = (spec, load_model(spec, weights=model_dir))
    return out


@pytest.fixture(scope="module")
def golden(model_dir: Path) -> dict[tuple[str, str], dict]:
    """golden.json entries keyed by (image stem, model tag)."""
    entries = json.loads((model_dir / "golden" / "golden.json").read_text())
    return {(Path(e["image"]).stem, e["model"]): e for e in entries}


def _rgb(model_dir: Path, image: str) -> np.ndarray:
    return np.array(Image.open(model_dir / "golden" / f"{image}.png").convert("RGB"))


def _compare(
    seg: Segmenter, rgb: np.ndarray, model_dir: Path, golden: dict, image: str, tag: str
) -> tuple[float, float]:
    """Percent of pixels whose argmax equals the golden label map, and max |mean logit - golden| over classes."""
    logits = seg.logits(rgb)[0]
    expected_labels = np.asarray(Image.open(model_dir / "golden" / f"{image}.{tag}.labels.png"))
    entry = golden[(image, tag)]
    assert list(logits.shape) == entry["logits_shape"]
    labels = logits.argmax(dim=0).numpy()
    agreement_pct = float((labels == expected_labels).mean() * 100.0)
    mean_logits = logits.mean(dim=(1, 2)).numpy()
    max_mean_diff = float(np.abs(mean_logits - np.asarray(entry["logits_mean_per_class"])).max())
    print(f"{tag} {image}: {agreement_pct:.3f} % identical pixels, max |d mean logit| {max_mean_diff:.5f}")
    return agreement_pct, max_mean_diff


@pytest.mark.parametrize("num_classes", [20, 21], ids=["c20", "c21"])
def test_random_weights_output_shape(num_classes: int) -> None:
    torch.manual_seed(0)
    model = ESPNetv2Segmentation(num_classes=num_classes, scale=2.0).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 32, 32))
    assert out.shape == (1, num_classes, 32, 32)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("hw", [(32, 40), (24, 32), (30, 30)], ids=["w40", "h24", "h30w30"])
def test_rejects_size_not_multiple_of_16(hw: tuple[int, int]) -> None:
    model = ESPNetv2Segmentation(num_classes=20).eval()
    with torch.no_grad(), pytest.raises(ValueError, match="multiples of 16"):
        model(torch.zeros(1, 3, *hw))


def test_rejects_non_rgb_input() -> None:
    model = ESPNetv2Segmentation(num_classes=20).eval()
    with torch.no_grad(), pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        model(torch.zeros(1, 1, 32, 32))


@pytest.mark.parametrize(
    ("limit", "expected"), [(13, [1, 2, 3, 4]), (9, [1, 2, 3, 4]), (7, [1, 1, 2, 3]), (5, [1, 1, 1, 2])]
)
def test_branch_dilations(limit: int, expected: list[int]) -> None:
    # effective kernel sizes 3, 5, 7, 9; those above the limit fall back to 3 (dilation 1), then sorted
    assert branch_dilations(4, limit) == expected


@pytest.mark.parametrize("name", list(MODELS))
def test_strict_load_and_parameter_count(name: str, loaded: dict, model_dir: Path) -> None:
    spec, model = loaded[name]
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == MODELS[name][2]
    ckpt = torch.load(model_dir / spec.weights_file, map_location="cpu", weights_only=True)
    assert len(ckpt) == 526
    state = model.state_dict()
    assert set(state) == set(ckpt)
    assert all(state[k].shape == v.shape for k, v in ckpt.items())
    assert not model.training


@pytest.mark.parametrize("image", GOLDEN_IMAGES)
@pytest.mark.parametrize("name", list(MODELS))
def test_golden_parity_authors_resize(name: str, image: str, loaded: dict, golden: dict, model_dir: Path) -> None:
    """The network itself: the authors' input (PIL bilinear resize) through ``Segmenter.logits``.

    The image already has the network size, so ``preprocess`` only normalises.
    """
    tag, size, _ = MODELS[name]
    spec, model = loaded[name]
    seg = Segmenter(spec, model, device="cpu", input_hw=size)
    rgb = np.array(Image.fromarray(_rgb(model_dir, image)).resize(size[::-1], Image.Resampling.BILINEAR))  # PIL: (w, h)
    agreement_pct, max_mean_diff = _compare(seg, rgb, model_dir, golden, image, tag)
    assert agreement_pct >= MIN_AGREEMENT_PCT
    assert max_mean_diff <= MEAN_LOGIT_ATOL


@pytest.mark.parametrize("image", GOLDEN_IMAGES)
@pytest.mark.parametrize("name", list(MODELS))
def test_golden_parity_own_resize(name: str, image: str, loaded: dict, golden: dict, model_dir: Path) -> None:
    """The whole ``Segmenter.logits`` path from the 480x360 image, resize included."""
    tag, size, _ = MODELS[name]
    spec, model = loaded[name]
    seg = Segmenter(spec, model, device="cpu", input_hw=size)
    agreement_pct, max_mean_diff = _compare(seg, _rgb(model_dir, image), model_dir, golden, image, tag)
    assert agreement_pct >= MIN_AGREEMENT_PCT
    assert max_mean_diff <= MEAN_LOGIT_ATOL


# The width ladder: (learnable parameters of our port, encoder level-4 channels per the paper's Table 1)
LADDER = {0.5: (80_342, 128), 1.0: (234_010, 256), 1.5: (468_362, 384)}


@pytest.mark.parametrize("data", ["city", "pascal"])
@pytest.mark.parametrize("scale", list(LADDER))
def test_ladder_loads_strictly_and_segments(scale: float, data: str, model_dir: Path, golden: dict) -> None:
    """Each registered width loads its checkpoint strictly (sha256 checked) and labels a real CamVid image mostly
    like the s=2.0 model (measured: city 67 / 73 / 78 %, pascal 94 / 97 / 97 % for s = 0.5 / 1.0 / 1.5)."""
    spec = get_model_spec(f"espnetv2_{data}_s{scale}")
    big = get_model_spec(f"espnetv2_{data}")
    assert spec.weights_file == f"espnetv2_s_{scale}_{data}_{big.default_hw[1]}x{big.default_hw[0]}.pth"
    assert (spec.categories, spec.default_hw, spec.size_multiple) == (big.categories, big.default_hw, 16)
    model = load_model(spec, weights=model_dir)
    params, channels = LADDER[scale]
    assert sum(p.numel() for p in model.parameters()) == params + (1 if data == "pascal" else 0) * 11
    assert model.state_dict()["bu_dec_l4.merge_layer.3.weight"].shape[0] == spec.num_classes
    level4 = [v for k, v in model.state_dict().items() if k.startswith("base_net.level4") and v.ndim]
    assert any(v.shape[0] == channels for v in level4)
    tag, size, _ = MODELS[f"espnetv2_{data}"]
    rgb = _rgb(model_dir, GOLDEN_IMAGES[0])
    labels = Segmenter(spec, model, device="cpu", input_hw=size)(rgb).labels
    expected = np.asarray(Image.open(model_dir / "golden" / f"{GOLDEN_IMAGES[0]}.{tag}.labels.png"))
    expected = np.asarray(Image.fromarray(expected).resize(rgb.shape[1::-1], Image.Resampling.NEAREST))
    agreement = float((labels == expected).mean())
    print(f"{spec.name}: {100 * agreement:.1f} % of labels equal the s=2.0 golden labels")
    assert agreement >= 0.6
