"""int8 post-training quantisation with NNCF (``core.segmentation.quantize``, ``seg-perception quantize``,
``eval --int8``) on real CamVid frames: calibrated on val (0016E5), scored on test (0001TP), cached like the float
exports."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from seg_perception import cli
from seg_perception.core.segmentation import runtime as rt
from seg_perception.core.segmentation.models import load_model
from seg_perception.core.segmentation.quantize import Int8Net, calibration_inputs, int8_key, quantize
from seg_perception.core.segmentation.registry import get_model_spec
from seg_perception.core.segmentation.segment import Segmenter
from seg_perception.tools.eval_data import read_rgb
from seg_perception.tools.quantize import calibration_images

SIZE = (176, 240)  # (height, width): small network input (CGNet, multiple 8) to keep the test quick


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(rt.CACHE_DIR_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache" / "exports"


def test_calibration_images_are_evenly_spaced(camvid_dir: Path, tmp_path: Path) -> None:
    files = calibration_images(camvid_dir / "images", "0016E5_*", 10)
    assert len(files) == 10 and all(p.name.startswith("0016E5_") for p in files)
    everything = sorted((camvid_dir / "images").glob("0016E5_*.png"))
    assert files[0] == everything[0] and files[-1] == everything[-1]
    with pytest.raises(FileNotFoundError, match="no images"):
        calibration_images(tmp_path)


def test_int8_is_cached_and_keyed_by_its_calibration(camvid_dir: Path, model_dir: Path, cache: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    spec = get_model_spec("cgnet_camvid")
    net = load_model(spec, model_dir)
    files = calibration_images(camvid_dir / "images", "0016E5_*", 8)
    inputs = calibration_inputs(spec, [read_rgb(p) for p in files], SIZE)
    with caplog.at_level(logging.INFO, "seg_perception.quantize"):
        path = quantize(spec.name, net, SIZE, inputs)
        assert quantize(spec.name, net, SIZE, inputs) == path  # second call: from the cache
    assert caplog.text.count("quantising cgnet_camvid at 240x176 to int8 on 8 calibration inputs") == 1
    assert path.parent.parent == cache and path.is_file() and (path.parent / "manifest.json").is_file()
    manifest = json.loads((path.parent / "manifest.json").read_text())
    assert manifest["key"]["runtime"] == "openvino-int8" and "8 inputs" in manifest["key"]["extra"]
    assert int8_key(spec.name, net, SIZE, inputs[:7]) != int8_key(spec.name, net, SIZE, inputs)
    with pytest.raises(ValueError, match="calibration inputs must all be"):
        quantize(spec.name, net, (176, 256), inputs)

    # the int8 network labels a held-out test image mostly like the float one
    rgb = read_rgb(sorted((camvid_dir / "images").glob("0001TP_*.png"))[5])
    fp32 = Segmenter(spec, net, device="cpu", input_hw=SIZE, runtime="torch")(rgb).labels
    int8 = Segmenter(spec, Int8Net(path, SIZE), device="cpu", input_hw=SIZE, runtime="torch")(rgb).labels
    assert float((fp32 == int8).mean()) >= 0.9
    with pytest.raises(ValueError, match="runs at 1x3x176x240"):
        Int8Net(path, SIZE)(torch.zeros(1, 3, 64, 64))


def test_eval_reports_int8_beside_fp32(camvid_dir: Path, model_dir: Path, cache: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    code = cli.main(["eval",
        "--model", "cgnet_camvid", "--dataset", str(camvid_dir), "--prefix", "0001TP_", "--limit", "6",
        "--weights", str(model_dir), "--input-size", f"{SIZE[1]}x{SIZE[0]}", "--runtime", "openvino",
        "--int8", str(camvid_dir / "images"), "--int8-glob", "0016E5_*", "--int8-limit", "8",
        "--output", str(tmp_path / "out"), "--no-progress",
    ])  # fmt: skip
    assert code == 0
    assert "int8 (NNCF, OpenVINO, 8 calibration images" in capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert report["runtime"] == "openvino" and report["int8"]["calibration"]["images"] == 8
    assert abs(report["int8"]["mIoU"] - report["mIoU"]) < 5.0  # 6 images, 8 calibration frames: a coarse bound
    assert np.isfinite(report["int8"]["seconds_per_image"])
