"""``seg-perception bench`` on real frames: the runtime is compared with torch eager in the same run, every stage
has median / p90 / p99, and ``--all-models`` prints the ladder table (with CamVid mIoU). No timed assertions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seg_perception import cli
from seg_perception.core.segmentation import runtime as rt


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(rt.CACHE_DIR_ENV, str(tmp_path / "cache"))
    return tmp_path


def test_bench_compares_the_runtime_with_torch(kitchen_dir: Path, model_dir: Path, cache: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out_json = cache / "bench.json"
    code = cli.main(["bench", "--data", str(kitchen_dir), "--model", "cgnet_camvid", "--weights", str(model_dir),
                       "--input-size", "320x240", "--repeats", "3", "--warmup", "1", "--runtime", "openvino",
                       "--threads", "2", "--json", str(out_json)])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "runtime openvino" in out and "vs torch eager" in out and "end to end" in out
    res = json.loads(out_json.read_text())
    assert res["runtime"] == "openvino" and res["network_input"] == "320x240" and res["threads"] == 2
    assert res["vs_torch"]["agreement_pct"] >= 99.9  # real 7-Scenes frames, same network inputs
    assert res["vs_torch"]["speedup"] > 0 and res["vs_torch"]["torch_ms"]["median"] > 0
    stages = ("decode", "preprocess", "inference", "postprocess", "overlay", "cloud", "grids", "projection", "total")
    for stage in stages:
        s = res["stage_ms"][stage]
        assert 0 <= s["median"] <= s["p90"] <= s["p99"]


def test_bench_all_models_prints_the_ladder_table(kitchen_dir: Path, camvid_dir: Path, model_dir: Path,
                                                  cache: Path, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out_json = cache / "ladder.json"
    code = cli.main(["bench", "--data", str(kitchen_dir), "--all-models", "--models", "cgnet_camvid",
                     "espnetv2_pascal_s0.5", "--weights", str(model_dir), "--input-size", "320x240", "--repeats", "2",
                     "--warmup", "1", "--runtime", "torch", "--miou", str(camvid_dir),
                     "--json", str(out_json)])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "| model | input | runtime | network ms |" in out
    rows = json.loads(out_json.read_text())
    assert [r["model"] for r in rows] == ["cgnet_camvid", "espnetv2_pascal_s0.5"]
    assert all(r["vs_torch"] is None and r["runtime"] == "torch" for r in rows)
    # CGNet on the 62 CamVid 0001TP images at 320x240 (its reference at 480x360 is 66.54); PASCAL has no road: none
    assert 45.0 < rows[0]["camvid_0001TP_miou"] < 70.0
    assert rows[1]["camvid_0001TP_miou"] is None
    assert "| cgnet_camvid | 320x240 | torch |" in out and "| espnetv2_pascal_s0.5 | 320x240 | torch |" in out
