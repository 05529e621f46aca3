"""`seg-perception eval` on a few real CamVid images, and its errors for bad data sets."""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seg_perception import cli
from seg_perception.core.segmentation.fake import FAKE_CLASSES
from seg_perception.core.segmentation.models import load_model
from seg_perception.core.segmentation.registry import get_model_spec
from seg_perception.core.segmentation.segment import Segmenter
from seg_perception.tools import eval as eval_tool
from seg_perception.tools import eval_data, eval_report
from seg_perception.tools.common import parse_size

N_PER_SUBSET = 6


@pytest.fixture(scope="module")
def cgnet(model_dir: Path) -> Segmenter:
    spec = get_model_spec("cgnet_camvid")
    return Segmenter(spec, load_model(spec, model_dir), device="cpu")


@pytest.mark.parametrize(("prefix", "min_miou", "min_acc"), [("0001TP_", 40.0, 80.0), ("0016E5_", 60.0, 90.0)],
                         ids=["test_0001TP", "val_0016E5"])
def test_eval_matches_direct_computation(prefix: str, min_miou: float, min_acc: float, camvid_dir: Path,
                                         model_dir: Path, cgnet: Segmenter, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["eval",
        "--model", "cgnet_camvid", "--dataset", str(camvid_dir), "--prefix", prefix,
        "--limit", str(N_PER_SUBSET), "--weights", str(model_dir), "--output", str(tmp_path), "--no-progress",
    ])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "mIoU" in out and "sign_symbol" in out
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["images"] == N_PER_SUBSET and report["ignore_index"] == 11
    assert (tmp_path / "confusion.png").stat().st_size > 0

    # Independent computation: per-class intersection and union summed over the same images.
    names = sorted(p.name for p in (camvid_dir / "images").glob(f"{prefix}*.png"))[:N_PER_SUBSET]
    inter = np.zeros(11)
    union = np.zeros(11)
    correct = valid = 0
    for name in names:
        rgb = np.array(Image.open(camvid_dir / "images" / name).convert("RGB"))
        truth = np.array(Image.open(camvid_dir / "labels" / name))
        pred = cgnet(rgb).labels
        keep = truth != 11
        correct += ((pred == truth) & keep).sum()
        valid += keep.sum()
        for c in range(11):
            inter[c] += ((pred == c) & (truth == c) & keep).sum()
            union[c] += (((pred == c) | (truth == c)) & keep).sum()
    present = union > 0
    iou = 100 * inter[present] / union[present]
    assert report["mIoU"] == pytest.approx(iou.mean(), abs=1e-3)
    assert report["pixel_acc"] == pytest.approx(100 * correct / valid, abs=1e-3)
    assert report["evaluated_pixels"] == valid
    assert min_miou < report["mIoU"] <= 100 and min_acc < report["pixel_acc"] <= 100
    assert 0 < report["mean_dice"] <= 100 and report["mean_dice"] >= report["mIoU"]  # Dice >= IoU per class


def _tiny_dataset(root: Path, camvid_dir: Path, names: list[str]) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for name in names:
        (root / "images" / name).symlink_to(camvid_dir / "images" / name)
    return root


def test_missing_label_file_is_a_clear_error(camvid_dir: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    names = sorted(p.name for p in (camvid_dir / "images").glob("0001TP_*.png"))[:2]
    root = _tiny_dataset(tmp_path / "ds", camvid_dir, names)
    (root / "labels" / names[0]).symlink_to(camvid_dir / "labels" / names[0])
    with pytest.raises(eval_data.DatasetError, match=rf"1 label file\(s\) missing: .*labels/{names[1]}"):
        eval_data.find_samples(root / "images", root / "labels")
    code = cli.main(["eval", "--model", "cgnet_camvid", "--dataset", str(root), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "label file(s) missing" in err and names[1] in err


def test_mismatched_label_size_is_a_clear_error(camvid_dir: Path, tmp_path: Path) -> None:
    name = sorted(p.name for p in (camvid_dir / "images").glob("0016E5_*.png"))[0]
    root = _tiny_dataset(tmp_path / "ds", camvid_dir, [name])
    Image.fromarray(np.zeros((180, 240), np.uint8)).save(root / "labels" / name)
    samples = eval_data.find_samples(root / "images", root / "labels")
    with pytest.raises(eval_data.DatasetError, match=rf"{name} is 240x180, expected 480x360"):
        eval_data.check_sizes(samples)


def test_cityscapes_layout_pairing(tmp_path: Path) -> None:
    img_dir, lab_dir = tmp_path / "leftImg8bit" / "val" / "frankfurt", tmp_path / "gtFine" / "val" / "frankfurt"
    img_dir.mkdir(parents=True)
    lab_dir.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 16, 3), np.uint8)).save(img_dir / "frankfurt_000000_000294_leftImg8bit.png")
    Image.fromarray(np.zeros((8, 16), np.uint8)).save(lab_dir / "frankfurt_000000_000294_gtFine_labelTrainIds.png")
    samples = eval_data.find_samples(tmp_path / "leftImg8bit", tmp_path / "gtFine")
    assert [s.label.name for s in samples] == ["frankfurt_000000_000294_gtFine_labelTrainIds.png"]
    assert eval_data.detect_layout(tmp_path / "leftImg8bit") == "cityscapes"
    eval_data.check_sizes(samples)


def test_reference_lookup_and_size_parsing() -> None:
    spec = get_model_spec("espnetv2_city")
    assert eval_report.reference_metrics(spec.metrics, "0016E5", (720, 960), mapped=True) == {
        "mIoU": 55.98, "pixel_acc": 86.24}
    assert eval_report.reference_metrics(spec.metrics, "0016E5", (512, 1024), mapped=True) == {}
    size = parse_size("960x720")
    assert (size.height, size.width, size.hw) == (720, 960, (720, 960))
    for bad in ("960", "960x", "0x720", "axb"):
        with pytest.raises(argparse.ArgumentTypeError, match="WIDTHxHEIGHT|positive"):
            parse_size(bad)


def test_cityscapes_to_camvid_class_map() -> None:
    spec = get_model_spec("espnetv2_city")
    path = eval_tool.resolve_class_map(Path("cityscapes_to_camvid"))
    lut, target = eval_tool.load_class_map(path, spec.categories)
    assert target == list(get_model_spec("cgnet_camvid").categories)
    by_name = {src: (target[d] if d >= 0 else None) for src, d in zip(spec.categories, lut, strict=True)}
    assert by_name["wall"] == "building" and by_name["traffic light"] == "sign_symbol"
    assert by_name["terrain"] == "tree" and by_name["train"] == "car" and by_name["rider"] == "bicyclist"
    assert by_name["background"] is None
    with pytest.raises(FileNotFoundError, match="no_such_map"):
        eval_tool.resolve_class_map(Path("no_such_map"))


def test_resize_labels_samples_pixel_centres() -> None:
    labels = np.arange(16, dtype=np.uint8).reshape(4, 4)
    # A 2x reduction keeps the odd rows and columns (PIL NEAREST, as the reference protocol), not the even ones.
    np.testing.assert_array_equal(eval_data.resize_labels(labels, (2, 2)), [[5, 7], [13, 15]])
    assert eval_data.resize_labels(labels, (4, 4)) is labels
    wide = np.arange(24, dtype=np.uint8).reshape(4, 6)
    np.testing.assert_array_equal(eval_data.resize_labels(wide, (2, 3)), [[7, 9, 11], [19, 21, 23]])  # (H, W)


@pytest.mark.parametrize("eval_hw", [None, (20, 40)], ids=["label_size", "eval_size_20x40"])
def test_eval_scores_the_known_pattern_with_the_node_postprocess(eval_hw: tuple[int, int] | None, tmp_path: Path,
                                                                 fake_pattern_expected) -> None:  # noqa: ANN001  # fmt: skip
    """``fake_pattern`` (known labels, no weights) on an image of another size than its labels: eval's prediction is
    the node's (``Segmenter.__call__``) at the image size, and scores 100 % against the pattern's definition."""
    spec = get_model_spec("fake_pattern")
    seg = Segmenter(spec, load_model(spec), device="cpu", input_hw=(48, 64), runtime="torch")
    rgb = np.random.default_rng(5).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(eval_tool.predict_labels(seg, rgb, (48, 64)), seg(rgb).labels)
    truth = fake_pattern_expected(30, 40, 48, 64)  # (H, W) = (30, 40); 255 (ignored) next to region borders
    for folder, array in (("images", rgb), ("labels", truth)):
        (tmp_path / folder).mkdir()
        Image.fromarray(array).save(tmp_path / folder / "a.png")
    samples = eval_data.find_samples(tmp_path / "images", tmp_path / "labels", "camvid", None, None, None)
    predict = functools.partial(eval_tool.predict_labels, seg)
    cm, _ = eval_tool.evaluate(predict, samples, len(FAKE_CLASSES), 255, eval_hw, progress=False)
    summary = cm.summary(list(FAKE_CLASSES))
    scored = truth if eval_hw is None else eval_data.resize_labels(truth, eval_hw)
    assert scored.shape == (eval_hw or (30, 40))
    assert summary["evaluated_pixels"] == int((scored != 255).sum()) > 0.8 * scored.size
    assert summary["mIoU"] == 100.0 and summary["pixel_acc"] == 100.0
