"""Model registry and weights handling: lookup order, sha256 checks, download, class-count mismatch."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch

from seg_perception.core.segmentation import models
from seg_perception.core.segmentation.models import WeightsError, find_weights, load_model
from seg_perception.core.segmentation.registry import get_model_spec, list_models
from seg_perception.tools import weights as weights_tool


def test_registry_lists_the_three_real_models() -> None:
    assert {"espnetv2_city", "espnetv2_pascal", "cgnet_camvid"} <= set(list_models())
    city = get_model_spec("espnetv2_city")
    assert city.num_classes == 20 and city.categories[0] == "road" and city.palette[13] == (0, 0, 142)
    assert city.input_hw(375, 1242) == (368, 1248) and city.input_hw(1, 1) == (16, 16)
    with pytest.raises(KeyError, match="known models"):
        get_model_spec("nope")


def test_lookup_order_explicit_then_env_then_cache(tmp_path, model_dir, monkeypatch) -> None:  # noqa: ANN001
    spec = get_model_spec("cgnet_camvid")
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    shutil.copy(model_dir / spec.weights_file, env_dir)
    monkeypatch.setenv(models.MODEL_DIR_ENV, str(env_dir))
    assert find_weights(spec) == env_dir / spec.weights_file
    assert find_weights(spec, model_dir) == model_dir / spec.weights_file  # explicit folder wins
    assert find_weights(spec, model_dir / spec.weights_file) == model_dir / spec.weights_file
    monkeypatch.delenv(models.MODEL_DIR_ENV)
    monkeypatch.setattr(models, "default_model_dirs", lambda: [tmp_path / "cache"])
    with pytest.raises(WeightsError, match="seg-perception weights download cgnet_camvid"):
        find_weights(spec)


def test_corrupt_file_is_rejected_with_both_digests(tmp_path) -> None:  # noqa: ANN001
    spec = get_model_spec("espnetv2_city")
    bad = tmp_path / spec.weights_file
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match=f"expected {spec.sha256}") as e:
        find_weights(spec, tmp_path)
    assert "seg-perception weights download espnetv2_city" in str(e.value)


def test_checkpoint_with_other_class_count_names_both(model_dir) -> None:  # noqa: ANN001
    city = get_model_spec("espnetv2_city")
    wrong = dataclasses.replace(city, name="espnetv2_wrong", categories=city.categories[:19], palette=city.palette[:19])
    with pytest.raises(WeightsError, match=r"has 20 output classes but model 'espnetv2_wrong' has 19"):
        load_model(wrong, model_dir / city.weights_file)
    # a checkpoint of another architecture: a short message, not torch's thousand-line dump
    cgnet = get_model_spec("cgnet_camvid")
    unverified = dataclasses.replace(city, sha256="")  # skip the hash check to reach strict loading
    expected = r"does not fit model 'espnetv2_city': 526 missing key\(s\).*2 unexpected key\(s\) \(epoch, model\)"
    with pytest.raises(WeightsError, match=expected) as e:
        load_model(unverified, model_dir / cgnet.weights_file)
    assert len(str(e.value)) < 400


def test_download_checks_the_hash(tmp_path, model_dir, monkeypatch) -> None:  # noqa: ANN001
    spec = get_model_spec("cgnet_camvid")
    local = dataclasses.replace(spec, url=(model_dir / spec.weights_file).as_uri())
    monkeypatch.setattr(weights_tool, "get_model_spec", lambda name: local)
    path = weights_tool.download("cgnet_camvid", str(tmp_path / "dl"))
    assert path == tmp_path / "dl" / spec.weights_file and models.sha256_of(path) == spec.sha256
    tampered = dataclasses.replace(local, sha256="0" * 64)
    monkeypatch.setattr(weights_tool, "get_model_spec", lambda name: tampered)
    with pytest.raises(WeightsError, match="expected 0000"):
        weights_tool.download("cgnet_camvid", str(tmp_path / "dl2"))
    assert not any((tmp_path / "dl2").iterdir())  # the partial file is removed


def test_random_weights_build_without_files() -> None:
    model = load_model(get_model_spec("espnetv2_pascal"), pretrained=False)
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 21, 32, 32)


def test_weights_cli_lists_and_verifies(model_dir, capsys) -> None:  # noqa: ANN001
    from seg_perception.cli import main

    assert main(["weights", "verify", "espnetv2_city", "--dir", str(model_dir)]) == 0
    assert main(["models", "--dir", str(model_dir)]) == 0
    out = capsys.readouterr().out
    assert "espnetv2_city" in out and "ok" in out
    assert main(["weights", "verify", "espnetv2_city", "--dir", str(Path("/nonexistent"))]) == 1


def test_negligible_weights_are_flushed_to_zero(model_dir) -> None:  # noqa: ANN001
    """CGNet's checkpoint holds 256,385 subnormal values (41 % of some conv kernels) and more below 1e-20: load_model
    zeroes every weight under NEGLIGIBLE_WEIGHT and leaves the others bit for bit."""
    from seg_perception.core.segmentation.models import NEGLIGIBLE_WEIGHT, flush_denormals

    spec = get_model_spec("cgnet_camvid")
    raw = torch.load(model_dir / spec.weights_file, map_location="cpu", weights_only=True)["model"]
    tiny = torch.finfo(torch.float32).tiny
    assert sum(int(((v.abs() < tiny) & (v != 0)).sum()) for v in raw.values() if v.is_floating_point()) == 256_385
    small = sum(int(((v.abs() < NEGLIGIBLE_WEIGHT) & (v != 0)).sum()) for v in raw.values() if v.is_floating_point())
    assert small > 256_385
    model = load_model(spec, model_dir)
    for k, v in model.state_dict().items():
        if v.is_floating_point():
            assert not ((v.abs() < NEGLIGIBLE_WEIGHT) & (v != 0)).any(), k
            keep = raw[k].abs() >= NEGLIGIBLE_WEIGHT
            assert torch.equal(v[keep], raw[k][keep])  # the rest untouched
    assert flush_denormals(model) == 0
