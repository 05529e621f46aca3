"""torchvision's segmentation models in the registry: builders, key layout, metadata, weights lookup and download.

No pretrained file is available here (and none is ever downloaded): the key layout is proven by strictly loading
state_dicts of random-init models built by torchvision's own builders, as the published checkpoints were saved.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torchvision.models import segmentation as tv_seg

from seg_perception.core.segmentation import models
from seg_perception.core.segmentation.models import WeightsError, find_weights, load_model, sha256_of
from seg_perception.core.segmentation.registry import get_model_spec, list_models
from seg_perception.core.segmentation.torchvision_zoo import TORCHVISION_MODELS
from seg_perception.core.segmentation.zoo import IMAGENET_MEAN, IMAGENET_STD, VOC_CLASSES
from seg_perception.tools import weights as weights_tool

NAMES = sorted(TORCHVISION_MODELS)
# name -> (file name, aux head in the checkpoint, documented COCO-val2017-VOC-labels mIoU)
EXPECTED = {
    "lraspp_mobilenet_v3_large": ("lraspp_mobilenet_v3_large-d234d4ea.pth", False, 57.9),
    "deeplabv3_mobilenet_v3_large": ("deeplabv3_mobilenet_v3_large-fc3c493d.pth", True, 60.3),
    "deeplabv3_resnet50": ("deeplabv3_resnet50_coco-cd0a2569.pth", True, 66.4),
    "deeplabv3_resnet101": ("deeplabv3_resnet101_coco-586e9e4e.pth", True, 67.4),
    "fcn_resnet50": ("fcn_resnet50_coco-1167a1af.pth", True, 60.5),
    "fcn_resnet101": ("fcn_resnet101_coco-7ecb50ca.pth", True, 63.7),
}


def _torchvision_model(name: str) -> torch.nn.Module:
    """The model exactly as torchvision builds it for its pretrained weights (random init here)."""
    aux = {} if name.startswith("lraspp") else {"aux_loss": True}
    return getattr(tv_seg, name)(weights=None, weights_backbone=None, num_classes=21, **aux).eval()


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_all_six_are_registered() -> None:
    assert set(NAMES) == set(EXPECTED)
    assert set(NAMES) <= set(list_models())


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_builder_gives_logits_at_input_size(name: str) -> None:
    """The wrapper returns a (1, 21, H, W) tensor; shapes only, so on the meta device (no weights, no arithmetic:
    a ResNet-101 costs 0.8 s instead of 4 s; the real computation is checked by the strict-loading test below)."""
    with torch.device("meta"):
        model = get_model_spec(name).builder(21).eval()
        out = model(torch.rand(1, 3, 48, 64))
    assert isinstance(out, torch.Tensor) and out.shape == (1, 21, 48, 64)


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_spec_metadata(name: str) -> None:
    spec = get_model_spec(name)
    file, _, miou = EXPECTED[name]
    assert spec.categories == VOC_CLASSES and spec.num_classes == 21 and spec.ontology == "voc"
    assert spec.palette[0] == (0, 0, 0) and spec.palette[15] == (192, 128, 128)  # VOC colour map: person
    assert (spec.mean, spec.std, spec.input_scale) == (IMAGENET_MEAN, IMAGENET_STD, 1 / 255)
    assert spec.default_hw == (480, 640) and spec.channel_order == "rgb"
    assert spec.size_multiple == (16 if "mobilenet" in name else 8)
    assert spec.input_hw(*spec.default_hw) == spec.default_hw
    assert spec.weights_file == file and spec.sha256 == file.rsplit("-", 1)[1][:8]
    assert spec.url == f"https://download.pytorch.org/models/{file}"
    assert spec.metrics["coco-val2017-voc-labels@shorter_side_520/mIoU"] == miou
    assert "arXiv" in spec.paper and "520" in spec.size_note


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_key_layout_is_torchvisions_including_the_aux_head(name: str) -> None:
    """torchvision's checkpoints are ``model.state_dict()`` of these models: ours must take them strictly.

    Built on the meta device (shapes only, no memory, no init cost); the strict load of real tensors and the
    forward comparison are in the next test.
    """
    spec = get_model_spec(name)
    with torch.device("meta"):
        state = _torchvision_model(name).state_dict()
        ours = spec.builder(21)
    _, aux, _ = EXPECTED[name]
    assert ("aux_classifier.4.weight" in state) == aux
    assert state[spec.classifier_key].shape[0] == 21
    assert models._state_dict_mismatch(ours.state_dict(), state) == ""
    ours.load_state_dict(state, strict=True, assign=True)


@pytest.mark.parametrize("name", ["lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large"])
def test_saved_random_checkpoint_loads_strictly_through_load_model(name: str, tmp_path: Path) -> None:
    """A checkpoint saved as torchvision saves its own (``state_dict()`` of its builder's model, aux head included)
    loads strictly through ``load_model``, and the wrapper's output is torchvision's ``out``."""
    reference = _torchvision_model(name)
    spec = get_model_spec(name)
    path = tmp_path / spec.weights_file
    torch.save(reference.state_dict(), path)
    # the file's real digest differs from the published prefix: rejected, naming both
    with pytest.raises(WeightsError, match=f"expected sha256 prefix {spec.sha256}"):
        find_weights(spec, tmp_path)
    ours = dataclasses.replace(spec, sha256=sha256_of(path)[:8])  # a prefix, checked as torch hub does
    model = load_model(ours, tmp_path)
    x = torch.rand(1, 3, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x)["out"], rtol=0, atol=0)


def test_checkpoint_with_other_class_count_names_both(tmp_path: Path) -> None:
    spec = get_model_spec("lraspp_mobilenet_v3_large")
    other = tv_seg.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=19)
    path = tmp_path / spec.weights_file
    torch.save(other.state_dict(), path)
    with pytest.raises(WeightsError, match=r"has 19 output classes but model 'lraspp_mobilenet_v3_large' has 21"):
        load_model(dataclasses.replace(spec, sha256=""), path)


def test_found_in_torch_hub_cache_and_missing_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = get_model_spec("lraspp_mobilenet_v3_large")
    monkeypatch.delenv(models.MODEL_DIR_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr("platformdirs.user_cache_dir", lambda app: str(tmp_path / "cache" / app))
    assert models.default_model_dirs()[-1] == tmp_path / "hub" / "checkpoints"
    with pytest.raises(WeightsError) as e:
        load_model(spec)
    msg = str(e.value)
    assert "seg-perception weights download lraspp_mobilenet_v3_large" in msg
    assert str(tmp_path / "hub" / "checkpoints" / spec.weights_file) in msg  # the places searched

    ckpt = tmp_path / "hub" / "checkpoints" / spec.weights_file
    ckpt.parent.mkdir(parents=True)
    torch.save(_torchvision_model(spec.name).state_dict(), ckpt)
    unverified = dataclasses.replace(spec, sha256=sha256_of(ckpt)[:10])
    assert find_weights(unverified) == ckpt


def test_download_checks_the_hash_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = get_model_spec("lraspp_mobilenet_v3_large")
    upstream = tmp_path / "upstream" / spec.weights_file
    upstream.parent.mkdir()
    torch.save(_torchvision_model(spec.name).state_dict(), upstream)
    local = dataclasses.replace(spec, url=upstream.as_uri(), sha256=sha256_of(upstream)[:8])
    monkeypatch.setattr(weights_tool, "get_model_spec", lambda name: local)
    path = weights_tool.download(spec.name, str(tmp_path / "dl"))
    assert path == tmp_path / "dl" / spec.weights_file and sha256_of(path) == sha256_of(upstream)
    assert load_model(local, path)(torch.rand(1, 3, 32, 32)).shape == (1, 21, 32, 32)

    published = dataclasses.replace(local, sha256=spec.sha256)  # this file is not torchvision's
    monkeypatch.setattr(weights_tool, "get_model_spec", lambda name: published)
    with pytest.raises(WeightsError, match=f"expected sha256 prefix {spec.sha256}"):
        weights_tool.download(spec.name, str(tmp_path / "dl2"))
    assert not any((tmp_path / "dl2").iterdir())


def test_random_weights_warn_loudly() -> None:
    spec = get_model_spec("lraspp_mobilenet_v3_large")
    with pytest.warns(UserWarning, match="RANDOM weights"):
        model = load_model(spec, "random")
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 21, 32, 32)
