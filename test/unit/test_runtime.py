"""Inference runtimes (``core.segmentation.runtime``): selection and fallback, the export cache, and label parity with
torch.

Parity: every built-in model, exported to OpenVINO and ONNX Runtime from our torch modules (real weights), gives the
same argmax labels as torch eager on the three golden CamVid images at the golden network sizes.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from seg_perception.core.segmentation import runners
from seg_perception.core.segmentation import runtime as rt
from seg_perception.core.segmentation.models import load_model
from seg_perception.core.segmentation.pipeline import SegmentationConfig
from seg_perception.core.segmentation.registry import get_model_spec
from seg_perception.core.segmentation.runtime import CompiledNet, ExportKey, check_entry, select_runtime
from seg_perception.core.segmentation.segment import Segmenter

GOLDEN_IMAGES = ("0001TP_008550", "0001TP_009300", "0001TP_010050")
GOLDEN_SIZES = {"espnetv2_city": (720, 960), "espnetv2_pascal": (384, 384), "cgnet_camvid": (360, 480)}  # (h, w)
MIN_AGREEMENT_PCT = 99.9
CPU = torch.device("cpu")


def _without(monkeypatch: pytest.MonkeyPatch, *missing: str) -> None:
    """Make the named runtime packages look uninstalled (their import fails)."""
    real = rt._import
    monkeypatch.setattr(rt, "_import", lambda name: None if name in missing else real(name))


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 5, 1)).eval()


def _entries(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if not p.name.startswith("."))


def test_auto_is_openvino_on_the_cpu_and_torch_on_cuda(caplog: pytest.LogCaptureFixture) -> None:
    assert select_runtime("auto", CPU) == "openvino"
    assert select_runtime("torch", CPU) == "torch"
    assert select_runtime("onnxruntime", CPU) == "onnxruntime"
    with caplog.at_level(logging.WARNING, "seg_perception.runtime"):
        assert select_runtime("auto", torch.device("cuda")) == "torch"
        assert not caplog.records  # auto on CUDA is torch by design, nothing to warn about
        assert select_runtime("openvino", torch.device("cuda:0")) == "torch"
    assert "CPU only" in caplog.text


def test_unknown_runtime_is_rejected() -> None:
    with pytest.raises(ValueError, match="runtime must be one of auto, torch, openvino, onnxruntime"):
        select_runtime("tensorrt", CPU)
    with pytest.raises(ValueError, match="runtime must be one of"):
        SegmentationConfig(runtime="tensorrt")


@pytest.mark.parametrize("requested", ["auto", "openvino"])
def test_missing_openvino_falls_back_to_torch_logged(requested: str, monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    _without(monkeypatch, "openvino")
    with caplog.at_level(logging.INFO, "seg_perception.runtime"):
        assert select_runtime(requested, CPU) == "torch"
    record = caplog.records[-1]
    assert "'openvino' is not importable; falling back to torch" in record.getMessage()
    assert record.levelno == (logging.INFO if requested == "auto" else logging.WARNING)


def test_segmenter_without_openvino_runs_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "openvino", "onnxruntime")
    spec = get_model_spec("cgnet_camvid")
    net = _tiny()
    seg = Segmenter(spec, net, device="cpu", runtime="auto")
    assert seg.runtime == "torch" and seg.model is net
    seg = Segmenter(spec, net, device="cpu", runtime="onnxruntime")
    assert seg.runtime == "torch" and seg.model is net


def test_segmenter_with_openvino_runs_a_compiled_net(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(rt.CACHE_DIR_ENV, str(tmp_path))
    seg = Segmenter(get_model_spec("cgnet_camvid"), _tiny(), device="cpu", runtime="auto", input_hw=(48, 64))
    assert seg.runtime == "openvino" and isinstance(seg.model, CompiledNet)
    logits = seg.logits(np.zeros((48, 64, 3), np.uint8))
    assert logits.shape == (1, 5, 48, 64) and logits.dtype == torch.float32
    assert [p.name.split("_")[:3] for p in _entries(tmp_path / "exports")] == [["cgnet", "camvid", "64x48"]]


def test_cache_key_changes_with_model_size_weights_and_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    base = ExportKey("espnetv2_city", "ab" * 32, 1024, 512, "openvino", "2026.4.1", "2.14.1")
    variants = [
        ExportKey("cgnet_camvid", "ab" * 32, 1024, 512, "openvino", "2026.4.1", "2.14.1"),
        ExportKey("espnetv2_city", "cd" * 32, 1024, 512, "openvino", "2026.4.1", "2.14.1"),
        ExportKey("espnetv2_city", "ab" * 32, 1024, 320, "openvino", "2026.4.1", "2.14.1"),
        ExportKey("espnetv2_city", "ab" * 32, 1024, 512, "onnxruntime", "1.31.1", "2.14.1"),
        ExportKey("espnetv2_city", "ab" * 32, 1024, 512, "openvino", "2026.5.0", "2.14.1"),
        ExportKey("espnetv2_city", "ab" * 32, 1024, 512, "openvino", "2026.4.1", "2.15.0"),
    ]
    names = {base.entry_name()} | {v.entry_name() for v in variants}
    assert len(names) == 1 + len(variants)
    assert base.entry_name().startswith("espnetv2_city_1024x512_openvino_")

    net = CompiledNet(_tiny(), "tiny", "openvino")
    other = _tiny()
    with torch.no_grad():
        other[0].weight[0, 0, 0, 0] += 1e-3  # one weight differs: another export
    assert CompiledNet(other, "tiny", "openvino").key(32, 32) != net.key(32, 32)
    assert net.key(32, 32) != net.key(48, 32)
    assert net.key(32, 32).runtime_version == rt.runtime_version("openvino") != ""
    monkeypatch.setattr(rt, "runtime_version", lambda name: "0.0.1")
    assert net.key(32, 32).runtime_version == "0.0.1"


@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime"])
def test_export_is_cached_and_rebuilt_when_the_version_changes(runtime: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    x = torch.randn(1, 3, 32, 40)
    with torch.no_grad():
        expected = _tiny()(x)
    calls: list[str] = []
    export, filename, runner = runners.EXPORTERS[runtime]
    monkeypatch.setitem(runners.EXPORTERS, runtime,
                        (lambda *a: (calls.append("export"), export(*a))[1], filename, runner))  # fmt: skip

    first = CompiledNet(_tiny(), "tiny", runtime, num_threads=1, root=tmp_path)
    torch.testing.assert_close(first(x), expected, rtol=1e-4, atol=1e-4)
    (entry,) = _entries(tmp_path)
    assert calls == ["export"] and check_entry(entry, first.key(40, 32)) == ""
    assert sorted(json.loads((entry / "manifest.json").read_text())["files"]) == sorted(
        p.name for p in entry.iterdir() if p.name != "manifest.json")  # fmt: skip
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # temp folder moved in, nothing left

    second = CompiledNet(_tiny(), "tiny", runtime, root=tmp_path)  # same weights, size, versions: from the cache
    torch.testing.assert_close(second(x), expected, rtol=1e-4, atol=1e-4)
    assert calls == ["export"] and len(_entries(tmp_path)) == 1

    monkeypatch.setattr(rt, "runtime_version", lambda name: "999.0")  # a runtime upgrade: exported anew
    third = CompiledNet(_tiny(), "tiny", runtime, root=tmp_path)
    torch.testing.assert_close(third(x), expected, rtol=1e-4, atol=1e-4)
    assert calls == ["export", "export"] and len(_entries(tmp_path)) == 2


@pytest.mark.parametrize("damage", ["truncated_weights", "garbage_model", "no_manifest", "valid_manifest_bad_file"])
def test_corrupt_cache_entry_is_rebuilt_with_a_warning(damage: str, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = _tiny()(x)
    CompiledNet(_tiny(), "tiny", "openvino", root=tmp_path)(x)
    (entry,) = _entries(tmp_path)
    if damage == "truncated_weights":
        data = (entry / "model.bin").read_bytes()
        (entry / "model.bin").write_bytes(data[: len(data) // 2])
    elif damage == "garbage_model":
        (entry / "model.xml").write_text("<net>not a model")
    elif damage == "no_manifest":
        (entry / "manifest.json").unlink()
    else:  # a file the runtime cannot read, although the manifest agrees (e.g. written by a broken exporter)
        (entry / "model.xml").write_text("<net>not a model")
        manifest = json.loads((entry / "manifest.json").read_text())
        manifest["files"] = rt._file_hashes(entry)
        (entry / "manifest.json").write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING, "seg_perception.runtime"):
        rebuilt = CompiledNet(_tiny(), "tiny", "openvino", root=tmp_path)
        torch.testing.assert_close(rebuilt(x), expected, rtol=1e-4, atol=1e-4)
    assert "rebuilding it" in caplog.text and str(entry) in caplog.text
    assert check_entry(entry, rebuilt.key(32, 32)) == ""


@pytest.fixture(scope="module")
def export_cache(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """A private export cache for the parity tests (exports of the real models, built once per module)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(rt.CACHE_DIR_ENV, str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def torch_models(model_dir: Path) -> dict[str, nn.Module]:
    return {name: load_model(get_model_spec(name), model_dir) for name in GOLDEN_SIZES}


@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime"])
@pytest.mark.parametrize("name", list(GOLDEN_SIZES))
def test_labels_match_torch_eager_on_golden_images(name: str, runtime: str, torch_models: dict, export_cache: None,
                                                   model_dir: Path) -> None:  # fmt: skip
    spec, size = get_model_spec(name), GOLDEN_SIZES[name]
    eager = Segmenter(spec, torch_models[name], device="cpu", input_hw=size, runtime="torch")
    fast = Segmenter(spec, torch_models[name], device="cpu", input_hw=size, runtime=runtime, num_threads=2)
    assert fast.runtime == runtime and isinstance(fast.model, CompiledNet)
    for image in GOLDEN_IMAGES:
        rgb = np.array(Image.open(model_dir / "golden" / f"{image}.png").convert("RGB"))
        a, b = eager(rgb), fast(rgb)
        agreement_pct = float((a.labels == b.labels).mean() * 100)
        print(f"{name} {runtime} {image}: {agreement_pct:.3f} % identical labels")
        assert agreement_pct >= MIN_AGREEMENT_PCT
        assert float(np.abs(a.confidence - b.confidence).max()) < 1e-2
    # the runtimes flush denormals in their own work only: this thread keeps IEEE subnormal floats
    tiny = np.float32(1e-39)
    assert tiny != 0 and np.array([tiny], np.float32)[0] + np.float32(0) == tiny


def test_pipeline_exports_at_start_up_when_the_size_is_known(model_dir: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from seg_perception.core.segmentation.pipeline import SegmentationPipeline

    monkeypatch.setenv(rt.CACHE_DIR_ENV, str(tmp_path))
    exports = tmp_path / "exports"
    base = {"model": "cgnet_camvid", "weights": str(model_dir), "device": "cpu", "runtime": "auto"}
    pipe = SegmentationPipeline(SegmentationConfig(**base, input_width=96, input_height=64))
    assert pipe.segmenter.runtime == "openvino"
    assert [p.name.split("_openvino_")[0] for p in _entries(exports)] == ["cgnet_camvid_96x64"]

    pipe = SegmentationPipeline(SegmentationConfig(**base))  # aspect kept: the size comes with the first image
    assert len(_entries(exports)) == 1
    pipe.process(np.zeros((120, 160, 3), np.uint8))
    assert pipe.segmenter.input_hw == (360, 480)
    assert sorted(p.name.split("_openvino_")[0] for p in _entries(exports)) == ["cgnet_camvid_480x360",
                                                                               "cgnet_camvid_96x64"]  # fmt: skip

    untrained = SegmentationPipeline(SegmentationConfig(**{**base, "weights": "random"}))  # nothing worth exporting
    assert untrained.segmenter.runtime == "torch" and len(_entries(exports)) == 2
