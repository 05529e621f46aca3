"""Bring your own model: TorchScript / ONNX files + a YAML run like built-in models
(``core.segmentation.custom_model``).

The real check exports our ESPNetv2 Cityscapes port (real weights) to both formats at 512x256 and compares the
labels with the native model's on a real CamVid image.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from seg_perception.core.segmentation.custom_model import CustomModelError, load_spec
from seg_perception.core.segmentation.custom_nets import onnx_providers
from seg_perception.core.segmentation.models import WeightsError, load_model, sha256_of
from seg_perception.core.segmentation.registry import get_model_spec
from seg_perception.core.segmentation.segment import Segmenter, preprocess
from seg_perception.tools.eval_data import read_rgb

SIZE = (256, 512)  # height, width of the exports
_yaml_ids = itertools.count()


def _write_yaml(path: Path, **data: object) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _city_yaml(folder: Path, file: str, **overrides: object) -> Path:
    """The YAML describing an ESPNetv2 Cityscapes export (same facts as the built-in spec)."""
    spec = get_model_spec("espnetv2_city")
    data: dict[str, object] = {
        "file": file,
        "name": f"espnetv2_city_{file.rsplit('.', 1)[1]}",
        "classes": list(spec.categories),
        "palette": [list(c) for c in spec.palette],
        "ignore_classes": list(spec.ignore_classes),
        "ontology": "cityscapes",
        "input": {"color_order": "rgb", "scale": "1/255", "mean": list(spec.mean), "std": list(spec.std),
                  "size": [SIZE[1], SIZE[0]], "size_multiple": 16},  # YAML: [width, height]  # fmt: skip
        "output": {"stride": 1},
    }
    data.update(overrides)
    return _write_yaml(folder / f"{Path(file).stem}_{next(_yaml_ids)}.yaml", **data)


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> dict[str, Path]:
    """ESPNetv2 city (real weights) saved as TorchScript (trace) and ONNX (opset 18) at 512x256."""
    folder = tmp_path_factory.mktemp("byo")
    spec = get_model_spec("espnetv2_city")
    model = load_model(spec, model_dir)
    x = torch.zeros(1, 3, *SIZE)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.jit.trace(model, x, check_trace=False).save(str(folder / "espnetv2_city.pt"))
        # torch's dynamo ONNX exporter needs onnxscript (in requirements.txt); the legacy exporter cannot export
        # ESPNetv2's adaptive pooling
        torch.onnx.export(model, (x,), str(folder / "espnetv2_city.onnx"), dynamo=True, verbose=False,
                          input_names=["image"], output_names=["logits"])  # fmt: skip
    return {"folder": folder, "torchscript": folder / "espnetv2_city.pt", "onnx": folder / "espnetv2_city.onnx"}


@pytest.fixture(scope="module")
def native_labels(model_dir: Path, camvid_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(rgb, labels) of the built-in ESPNetv2 city at 512x256 on a real CamVid image."""
    spec = get_model_spec("espnetv2_city")
    rgb = read_rgb(sorted((camvid_dir / "images").glob("0016E5_*.png"))[10])
    seg = Segmenter(spec, load_model(spec, model_dir), device="cpu", input_hw=SIZE)
    return rgb, seg(rgb).labels


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_runs_like_the_native_model(fmt: str, exports: dict[str, Path], native_labels: tuple) -> None:
    rgb, expected = native_labels
    yaml_path = _city_yaml(exports["folder"], exports[fmt].name, sha256=sha256_of(exports[fmt]))
    spec = get_model_spec(str(yaml_path))  # the node's `model` parameter takes this path
    assert spec.self_contained and spec.num_classes == 20 and spec.ignore_classes == (19,)
    assert spec.fixed_size == (fmt == "onnx")  # the ONNX graph has a static 1x3x256x512 input
    seg = Segmenter(spec, load_model(spec), device="cpu")
    assert seg.input_hw == SIZE
    result = seg(rgb)
    same = float((result.labels == expected).mean())
    assert same >= 0.999, f"{fmt}: {100 * same:.3f} % of labels equal the native model's"
    assert result.labels.shape == rgb.shape[:2] and 19 not in result.labels


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_output_channels_disagreeing_with_the_yaml_name_file_and_both(fmt: str, exports: dict[str, Path]) -> None:
    spec = get_model_spec("espnetv2_city")
    yaml_path = _city_yaml(exports["folder"], exports[fmt].name, classes=list(spec.categories[:19]),
                           palette=[list(c) for c in spec.palette[:19]], ignore_classes=[])  # fmt: skip
    custom = load_spec(yaml_path)
    with pytest.raises(CustomModelError) as e:
        load_model(custom)
    msg = str(e.value)
    assert str(exports[fmt]) in msg and "20 channels" in msg and "19 classes" in msg and str(yaml_path) in msg


def test_wrong_sha256_and_static_size_mismatch(exports: dict[str, Path]) -> None:
    bad_hash = _city_yaml(exports["folder"], "espnetv2_city.onnx", sha256="0" * 64)
    with pytest.raises(CustomModelError, match="is corrupt: sha256 .* expected 0000"):
        load_model(load_spec(bad_hash))
    other_size = _city_yaml(exports["folder"], "espnetv2_city.onnx",
                            input={"size": [640, 480], "size_multiple": 16})  # fmt: skip
    with pytest.raises(CustomModelError, match=r"takes 512x256 \(static input shape\) but .* 640x480"):
        load_spec(other_size)
    spec = load_spec(_city_yaml(exports["folder"], "espnetv2_city.onnx"))
    with pytest.raises(ValueError, match="only runs at 512x256"):
        spec.input_hw(192, 640)


def _save_script(module: nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(module.eval()).save(str(path))
    return path


class _Strided(nn.Module):
    """3 classes at stride 4 (a 4x4 stride-4 conv), returned in a dict like torchvision's models."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 4, stride=4)
        with torch.no_grad():  # known logits: class k = the mean of colour channel k over each 4x4 patch
            self.conv.weight.zero_()
            for k in range(3):
                self.conv.weight[k, k] = 1.0 / 16
            self.conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.conv(x)}


def test_strided_output_is_upsampled_and_a_wrong_stride_is_named(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model_file = _save_script(_Strided(), tmp_path / "strided.pt")
    base = {"file": "strided.pt", "classes": ["x", "y", "z"],
            "input": {"size": [64, 32], "size_multiple": 4, "scale": "1/255"}}
    spec = load_spec(_write_yaml(tmp_path / "s4.yaml", **base, output={"stride": 4}))
    assert spec.palette == ((0, 0, 0), (128, 0, 0), (0, 128, 0))  # default: the VOC colour map
    model = load_model(spec)
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 64)).shape == (1, 3, 32, 64)
    seg = Segmenter(spec, model, device="cpu", input_hw=(48, 96))  # any size: not a fixed export
    image = np.zeros((50, 70, 3), np.uint8)
    image[:, :35, 0] = 200  # left half red -> class 0, right half blue -> class 2
    image[:, 35:, 2] = 200
    out = seg(image)
    assert out.labels.shape == (50, 70)
    # away from the border (one output stride = 4 network px = 3 image px, bilinear upsampling on both sides)
    assert (out.labels[:, :30] == 0).all() and (out.labels[:, 40:] == 2).all()
    # softmax of the logits (200 * input scale, 0, 0) inside the red region (scale 1/255: p = 0.52)
    p = 1.0 / (1.0 + 2.0 * np.exp(-200.0 * spec.input_scale))
    np.testing.assert_allclose(out.confidence[:, :30], p, rtol=1e-4)
    at_stride_1 = load_spec(_write_yaml(tmp_path / "s1.yaml", **base))
    with pytest.raises(CustomModelError, match=r"output 16x8 for a 64x32 input does not fit output.stride 1"):
        load_model(at_stride_1)
    assert str(model_file) in str(pytest.raises(CustomModelError, load_model, at_stride_1).value)


def test_yaml_errors_name_the_file_and_key(tmp_path: Path) -> None:
    _save_script(nn.Conv2d(3, 2, 1), tmp_path / "m.pt")
    good = {"file": "m.pt", "classes": ["a", "b"], "input": {"size": [32, 32]}}
    cases = [
        ({**good, "colour": 1}, r"unknown key\(s\) \['colour'\]"),
        ({**good, "input": {"size": [32, 32], "scale": "1/0"}}, "input.scale must be a number"),
        ({**good, "input": {"size": [32]}}, r"input.size must be \[width, height\]"),
        ({**good, "input": {"size": [32, 32], "color_order": "grb"}}, "channel_order must be 'rgb' or 'bgr'"),
        ({**good, "classes": []}, "'classes' must be a list"),
        ({**good, "palette": [[0, 0, 0]]}, "palette has 1 colours for 2 classes"),
        ({**good, "ignore_classes": [5]}, r"ignore_classes \[5\] outside 0..1"),
        ({k: v for k, v in good.items() if k != "file"}, "missing key 'file'"),
    ]
    for i, (data, message) in enumerate(cases):
        path = _write_yaml(tmp_path / f"bad{i}.yaml", **data)
        with pytest.raises(CustomModelError, match=message) as e:
            load_spec(path)
        assert str(path) in str(e.value)
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        load_spec(_write_yaml(tmp_path / "missing.yaml", **{**good, "file": "nope.onnx"}))
    with pytest.raises(WeightsError, match="loads its own file"):
        load_model(load_spec(_write_yaml(tmp_path / "ok.yaml", **good)), "random")


def test_bgr_order_flips_channels_before_mean_and_std(tmp_path: Path) -> None:
    _save_script(nn.Conv2d(3, 2, 1), tmp_path / "m.pt")
    common = {"file": "m.pt", "classes": ["a", "b"]}
    inp = {"size": [8, 8], "scale": 1, "mean": [10, 20, 30], "std": [2, 4, 8]}
    bgr = load_spec(_write_yaml(tmp_path / "bgr.yaml", **common, input={**inp, "color_order": "bgr"}))
    rgb_spec = load_spec(_write_yaml(tmp_path / "rgb.yaml", **common, input=inp))
    image = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    cpu = torch.device("cpu")
    torch.testing.assert_close(preprocess(image, bgr, (8, 8), cpu), preprocess(image[..., ::-1].copy(), rgb_spec,
                                                                                (8, 8), cpu))  # fmt: skip
    expected = (float(image[0, 0, 2]) - 10) / 2  # channel 0 of the network input is blue, minus mean[0]
    assert preprocess(image, bgr, (8, 8), cpu)[0, 0, 0, 0].item() == pytest.approx(expected)


def test_onnx_providers_follow_the_device_parameter() -> None:
    assert onnx_providers(torch.device("cpu"), ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    both = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnx_providers(torch.device("cuda:1"), both) == [
        ("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"
    ]
    with pytest.raises(ValueError, match="no CUDAExecutionProvider.*onnxruntime-gpu"):
        onnx_providers(torch.device("cuda"), ["CPUExecutionProvider"])


@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime"])
def test_onnx_file_runs_on_either_runtime(runtime: str, exports: dict[str, Path], native_labels: tuple) -> None:
    rgb, expected = native_labels
    spec = get_model_spec(str(_city_yaml(exports["folder"], exports["onnx"].name)))
    seg = Segmenter(spec, load_model(spec), device="cpu", runtime=runtime, num_threads=2)
    assert seg.runtime == runtime and seg.model.runtime == runtime
    same = float((seg(rgb).labels == expected).mean())
    assert same >= 0.999, f"{runtime}: {100 * same:.3f} % of labels equal the native model's"
