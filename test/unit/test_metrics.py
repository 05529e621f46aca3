"""ConfusionMatrix and class mapping against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seg_perception.core.segmentation.metrics import NO_CLASS, ConfusionMatrix, class_map_lut, map_labels


def test_hand_written_matrix_with_ignore_and_absent_class() -> None:
    # 4 classes; class 3 appears in neither truth nor prediction; 255 = ignore.
    truth = np.array([[0, 0, 1, 1], [2, 2, 255, 255]], dtype=np.uint8)
    pred = np.array([[0, 1, 1, 1], [2, 0, 3, 2]], dtype=np.uint8)  # ignored pixels may predict anything
    cm = ConfusionMatrix(4, ignore_index=255)
    cm.update(truth, pred)
    expected = np.array([[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(cm.matrix, expected)
    assert cm.total == 6
    # class 0: TP 1, FP 1, FN 1; class 1: TP 2, FP 1, FN 0; class 2: TP 1, FP 0, FN 1; class 3: 0/0.
    np.testing.assert_allclose(cm.iou[:3], [1 / 3, 2 / 3, 1 / 2])
    assert math.isnan(cm.iou[3])
    assert cm.miou == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    np.testing.assert_allclose(cm.dice[:3], [2 / 4, 4 / 5, 2 / 3])
    assert math.isnan(cm.dice[3])
    assert cm.mean_dice == pytest.approx((2 / 4 + 4 / 5 + 2 / 3) / 3)
    np.testing.assert_allclose(cm.class_accuracy[:3], [1 / 2, 1.0, 1 / 2])
    assert math.isnan(cm.class_accuracy[3])
    assert cm.mean_class_accuracy == pytest.approx(2 / 3)
    assert cm.pixel_accuracy == pytest.approx(4 / 6)
    s = cm.summary(["a", "b", "c", "d"])
    assert s["per_class_IoU"]["d"] is None and s["mIoU"] == pytest.approx(50.0)


def test_predicted_but_absent_from_truth_counts_zero() -> None:
    cm = ConfusionMatrix(3, ignore_index=None)
    cm.update(np.array([0, 0, 1]), np.array([0, 2, 1]))
    np.testing.assert_allclose(cm.iou, [0.5, 1.0, 0.0])
    assert math.isnan(cm.class_accuracy[2])
    assert cm.miou == pytest.approx(0.5)


def test_accumulates_over_images_and_camvid_ignore() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 12, size=(3, 20, 30)).astype(np.uint8)  # 11 = CamVid unlabelled
    pred = rng.integers(0, 11, size=(3, 20, 30)).astype(np.uint8)
    whole = ConfusionMatrix(11, ignore_index=11)
    whole.update(truth, pred)
    per_image = ConfusionMatrix(11, ignore_index=11)
    for t, p in zip(truth, pred, strict=True):
        per_image.update(t, p)
    np.testing.assert_array_equal(whole.matrix, per_image.matrix)
    keep = truth != 11
    assert whole.total == keep.sum()
    assert whole.pixel_accuracy == pytest.approx((truth == pred)[keep].mean())
    # Direct per-class IoU from the definition.
    for c in range(11):
        inter = ((truth == c) & (pred == c) & keep).sum()
        union = (((truth == c) | (pred == c)) & keep).sum()
        assert whole.iou[c] == pytest.approx(inter / union)


def test_no_class_prediction_is_an_error() -> None:
    cm = ConfusionMatrix(2, ignore_index=255)
    cm.update(np.array([0, 0, 1, 255]), np.array([0, NO_CLASS, 1, NO_CLASS]))
    assert cm.total == 3
    assert cm.pixel_accuracy == pytest.approx(2 / 3)
    np.testing.assert_allclose(cm.iou, [0.5, 1.0])  # FN of class 0, no FP anywhere
    np.testing.assert_allclose(cm.normalized()[0], [0.5, 0.0, 0.5])


@pytest.mark.parametrize(
    ("truth", "pred", "match"),
    [
        ([0, 4, 7], [0, 1, 1], r"labels_true .*: 4, 7"),
        ([0, 1, 1], [0, 9, 1], r"labels_pred .*: 9"),
        ([0, 1, 1], [0, -2, 1], r"labels_pred .*: -2"),
        ([-1, 1, 1], [0, 1, 1], r"labels_true .*: -1"),
    ],
    ids=["truth_too_big", "pred_too_big", "pred_negative", "truth_negative"],
)
def test_out_of_range_raises(truth: list[int], pred: list[int], match: str) -> None:
    cm = ConfusionMatrix(3, ignore_index=255)
    with pytest.raises(ValueError, match=match):
        cm.update(np.array(truth), np.array(pred))
    assert cm.total == 0  # nothing half-counted


def test_bad_inputs() -> None:
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="shape"):
        cm.update(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8))
    with pytest.raises(TypeError, match="integer"):
        cm.update(np.zeros(3, np.float32), np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="valid class id"):
        ConfusionMatrix(12, ignore_index=11)
    empty = ConfusionMatrix(2)
    assert math.isnan(empty.miou) and math.isnan(empty.pixel_accuracy)


def test_class_map_lut_and_map_labels() -> None:
    lut = class_map_lut({"road": "ground", "grass": "ground", "car": "thing", "void": None},
                        ["road", "grass", "car", "void"], ["ground", "thing"])
    np.testing.assert_array_equal(lut, [0, 0, 1, NO_CLASS])
    mapped = map_labels(np.array([[0, 1], [2, 3]], np.uint8), lut)
    np.testing.assert_array_equal(mapped, [[0, 0], [1, NO_CLASS]])
    with pytest.raises(ValueError, match="lookup table .*: 4"):
        map_labels(np.array([4]), lut)
    with pytest.raises(ValueError, match=r"without an entry \['void'\]"):
        class_map_lut({"road": "ground"}, ["road", "void"], ["ground"])
    with pytest.raises(ValueError, match="unknown target classes"):
        class_map_lut({"road": "sky"}, ["road"], ["ground"])
