"""Semantic-segmentation metrics from a confusion matrix accumulated over a whole data set.

All scores are computed from the pixel counts summed over every image of the set (not averaged per image), as in
the PASCAL VOC / Cityscapes / CamVid protocols: for class ``c``

- ``IoU_c = TP / (TP + FP + FN)`` (Jaccard index), ``mIoU`` = mean over classes;
- ``Dice_c = 2 TP / (2 TP + FP + FN)`` (F1 score), ``mean Dice`` = mean over classes;
- ``acc_c = TP / (TP + FN)`` (recall), ``mean class accuracy`` = mean over classes;
- ``pixel accuracy = sum_c TP_c / number of evaluated pixels``.

Rule for classes without data: a class absent from both the ground truth and the prediction has an undefined
(0 / 0) IoU and Dice; it is reported as NaN and left out of the means (``numpy.nanmean``). A class absent from the
truth but predicted somewhere gets IoU = Dice = 0 (its false positives count); its accuracy is NaN (no truth
pixels). When every class occurs in the truth, which is the case for the CamVid subsets, the means are plain
means over all classes (the reference protocol's "mean over the 11 classes").

Predictions that have no class in the evaluated label set (e.g. Cityscapes "background" when scoring against
CamVid) are given the id ``NO_CLASS`` by ``map_labels``; such a pixel is an error: a false negative of its true
class and a false positive of no class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["NO_CLASS", "ConfusionMatrix", "class_map_lut", "map_labels"]

NO_CLASS = -1
"""Prediction id for "no class in the evaluated label set": always counted as an error."""


def _as_int_labels(name: str, labels: np.ndarray) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array of class ids, got dtype {arr.dtype}")
    return arr


def _bad_values_message(name: str, values: np.ndarray, allowed: str) -> str:
    uniq = np.unique(values)
    shown = ", ".join(str(int(v)) for v in uniq[:10]) + (", ..." if uniq.size > 10 else "")
    return f"{name} contains ids outside {allowed}: {shown} ({values.size} pixels)"


class ConfusionMatrix:
    """Pixel confusion matrix of a segmentation, accumulated image by image over a data set.

    ``matrix[t, p]`` counts pixels of true class ``t`` predicted as class ``p``; ``no_class[t]`` counts pixels of
    true class ``t`` whose prediction was ``NO_CLASS``. Pixels whose truth is ``ignore_index`` are skipped.

    A class absent from both truth and prediction has NaN IoU and Dice and is excluded from the means
    (``nanmean``); a class absent from the truth only has NaN accuracy (see the module docstring).

    Args:
        num_classes: number of classes ``C`` (ids ``0 .. C-1``), >= 1.
        ignore_index: truth id that is not evaluated (255 by default; CamVid uses 11, Cityscapes trainIds 255);
            must lie outside ``[0, C)``. ``None`` evaluates every pixel.
    Raises:
        ValueError: if ``num_classes < 1`` or ``ignore_index`` is a valid class id.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if ignore_index is not None and 0 <= ignore_index < num_classes:
            raise ValueError(f"ignore_index {ignore_index} is a valid class id (0..{num_classes - 1})")
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.no_class = np.zeros(num_classes, dtype=np.int64)

    def reset(self) -> None:
        """Zero all counts."""
        self.matrix[:] = 0
        self.no_class[:] = 0

    def update(self, labels_true: np.ndarray, labels_pred: np.ndarray) -> None:
        """Add one image (or a batch of any shape) to the counts.

        Args:
            labels_true: integer class ids, any shape; ``ignore_index`` marks pixels that are not evaluated.
            labels_pred: integer class ids of the same shape; ``NO_CLASS`` (-1) marks a prediction without a
                class in this label set (counted as an error).
        Raises:
            ValueError: if the shapes differ, or an id (other than ``ignore_index`` in the truth and ``NO_CLASS``
                in the prediction) lies outside ``[0, num_classes)``; the message names the bad values.
            TypeError: if either array is not of an integer dtype.
        """
        t = _as_int_labels("labels_true", labels_true)
        p = _as_int_labels("labels_pred", labels_pred)
        if t.shape != p.shape:
            raise ValueError(f"labels_true {t.shape} and labels_pred {p.shape} differ in shape")
        t = t.ravel()
        p = p.ravel()
        n = self.num_classes
        if self.ignore_index is not None:
            keep = t != self.ignore_index
            if not keep.all():
                t = t[keep]
                p = p[keep]
        t = t.astype(np.int64, copy=False)
        p = p.astype(np.int64, copy=False)
        bad_t = (t < 0) | (t >= n)
        if bad_t.any():
            raise ValueError(
                _bad_values_message("labels_true", t[bad_t], f"[0, {n}) and ignore_index {self.ignore_index}")
            )
        bad_p = ((p < 0) | (p >= n)) & (p != NO_CLASS)
        if bad_p.any():
            raise ValueError(_bad_values_message("labels_pred", p[bad_p], f"[0, {n}) and NO_CLASS ({NO_CLASS})"))
        missed = p == NO_CLASS
        if missed.any():
            self.no_class += np.bincount(t[missed], minlength=n)
            t = t[~missed]
            p = p[~missed]
        self.matrix += np.bincount(t * n + p, minlength=n * n).reshape(n, n)

    # Counts -------------------------------------------------------------------------------------------------
    @property
    def true_positives(self) -> np.ndarray:
        """(C,) int64 TP per class."""
        return np.diag(self.matrix).copy()

    @property
    def false_positives(self) -> np.ndarray:
        """(C,) int64 FP per class: predicted as the class, truth another class."""
        return self.matrix.sum(axis=0) - np.diag(self.matrix)

    @property
    def false_negatives(self) -> np.ndarray:
        """(C,) int64 FN per class: truth the class, predicted another class or ``NO_CLASS``."""
        return self.matrix.sum(axis=1) - np.diag(self.matrix) + self.no_class

    @property
    def support(self) -> np.ndarray:
        """(C,) int64 number of evaluated truth pixels per class."""
        return self.matrix.sum(axis=1) + self.no_class

    @property
    def total(self) -> int:
        """Number of evaluated (non-ignored) pixels."""
        return int(self.matrix.sum() + self.no_class.sum())

    # Scores (fractions in [0, 1]; NaN where undefined) --------------------------------------------------------
    @staticmethod
    def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        num = num.astype(np.float64)
        den = den.astype(np.float64)
        out = np.full(num.shape, np.nan)
        np.divide(num, den, out=out, where=den > 0)
        return out

    @staticmethod
    def _mean(values: np.ndarray) -> float:
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")

    @property
    def iou(self) -> np.ndarray:
        """(C,) float64 per-class IoU ``TP / (TP + FP + FN)``; NaN for a class absent from truth and prediction."""
        tp = self.true_positives
        return self._ratio(tp, tp + self.false_positives + self.false_negatives)

    @property
    def miou(self) -> float:
        """Mean IoU over the classes with a defined IoU (``nanmean``); NaN if there are none."""
        return self._mean(self.iou)

    @property
    def dice(self) -> np.ndarray:
        """(C,) float64 per-class Dice / F1 ``2 TP / (2 TP + FP + FN)``; NaN when absent from truth and prediction."""
        tp = self.true_positives
        return self._ratio(2 * tp, 2 * tp + self.false_positives + self.false_negatives)

    @property
    def mean_dice(self) -> float:
        """Mean Dice over the classes with a defined Dice (``nanmean``); NaN if there are none."""
        return self._mean(self.dice)

    @property
    def class_accuracy(self) -> np.ndarray:
        """(C,) float64 per-class accuracy (recall) ``TP / (TP + FN)``; NaN for a class absent from the truth."""
        return self._ratio(self.true_positives, self.support)

    @property
    def mean_class_accuracy(self) -> float:
        """Mean per-class accuracy over the classes present in the truth (``nanmean``)."""
        return self._mean(self.class_accuracy)

    @property
    def pixel_accuracy(self) -> float:
        """Correct pixels / evaluated pixels; NaN when no pixel was evaluated."""
        total = self.total
        return float(np.trace(self.matrix) / total) if total else float("nan")

    def normalized(self) -> np.ndarray:
        """(C, C + 1) float64 row-normalised matrix (each truth row sums to 1; last column = ``NO_CLASS``).

        Rows of classes absent from the truth are all zero.
        """
        full = np.concatenate([self.matrix, self.no_class[:, None]], axis=1).astype(np.float64)
        rows = full.sum(axis=1, keepdims=True)
        return np.divide(full, rows, out=np.zeros_like(full), where=rows > 0)

    def summary(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        """JSON-ready scores in percent (NaN becomes ``None``) and the raw counts.

        Args:
            class_names: one name per class; defaults to ``"0" .. "C-1"``.
        Raises:
            ValueError: if the number of names differs from ``num_classes``.
        """
        names = list(class_names) if class_names is not None else [str(i) for i in range(self.num_classes)]
        if len(names) != self.num_classes:
            raise ValueError(f"{len(names)} class names for {self.num_classes} classes")

        def pct(x: float) -> float | None:
            return None if not np.isfinite(x) else round(100.0 * float(x), 4)

        def per_class(values: np.ndarray) -> dict[str, float | None]:
            return {name: pct(v) for name, v in zip(names, values, strict=True)}

        return {
            "mIoU": pct(self.miou),
            "pixel_acc": pct(self.pixel_accuracy),
            "mean_class_acc": pct(self.mean_class_accuracy),
            "mean_dice": pct(self.mean_dice),
            "per_class_IoU": per_class(self.iou),
            "per_class_dice": per_class(self.dice),
            "per_class_acc": per_class(self.class_accuracy),
            "support": {name: int(s) for name, s in zip(names, self.support, strict=True)},
            "evaluated_pixels": self.total,
            "no_class_pixels": int(self.no_class.sum()),
            "ignore_index": self.ignore_index,
            "class_names": names,
            "confusion_matrix": self.matrix.tolist(),
            "no_class_per_true_class": self.no_class.tolist(),
        }


def class_map_lut(
    mapping: Mapping[str, str | None], source_classes: Sequence[str], target_classes: Sequence[str]
) -> np.ndarray:
    """Build a lookup table from source class ids to target class ids, by class name.

    Args:
        mapping: source class name -> target class name, or ``None`` for "no target class" (an error when
            scored). Every source class must appear, so a misspelt or forgotten name cannot pass silently.
        source_classes: names of the source ids ``0 .. S-1`` (e.g. the model's categories).
        target_classes: names of the target ids ``0 .. T-1`` (e.g. the data set's classes).
    Returns:
        (S,) int64 table: ``lut[s]`` is the target id of source id ``s`` or ``NO_CLASS``.
    Raises:
        ValueError: naming the unknown source or target names and the source classes missing from ``mapping``.
    """
    target_ids = {name: i for i, name in enumerate(target_classes)}
    unknown_src = sorted(set(mapping) - set(source_classes))
    unknown_dst = sorted({str(v) for v in mapping.values() if v is not None and v not in target_ids})
    missing = [name for name in source_classes if name not in mapping]
    problems = []
    if unknown_src:
        problems.append(f"unknown source classes {unknown_src} (known: {list(source_classes)})")
    if unknown_dst:
        problems.append(f"unknown target classes {unknown_dst} (known: {list(target_classes)})")
    if missing:
        problems.append(f"source classes without an entry {missing} (map them to null for 'no class')")
    if problems:
        raise ValueError("bad class map: " + "; ".join(problems))
    lut = np.full(len(source_classes), NO_CLASS, dtype=np.int64)
    for s, name in enumerate(source_classes):
        dst = mapping[name]
        if dst is not None:
            lut[s] = target_ids[dst]
    return lut


def map_labels(labels: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Map predicted class ids through a lookup table (e.g. Cityscapes trainIds -> CamVid ids).

    Args:
        labels: integer class ids, any shape, each in ``[0, len(lut))``.
        lut: (S,) integer table from ``class_map_lut``; ``NO_CLASS`` entries mark ids without a target class,
            which ``ConfusionMatrix.update`` counts as errors.
    Returns:
        int16 array of ``labels``' shape with target ids or ``NO_CLASS``.
    Raises:
        ValueError: if an id is outside the table (the message names the bad ids).
        TypeError: if ``labels`` is not an integer array.
    """
    arr = _as_int_labels("labels", labels)
    table = np.asarray(lut)
    bad = (arr < 0) | (arr >= table.shape[0])
    if bad.any():
        raise ValueError(_bad_values_message("labels", arr[bad], f"the lookup table [0, {table.shape[0]})"))
    return table.astype(np.int16)[arr]
