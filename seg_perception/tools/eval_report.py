"""Reports of ``seg-perception eval``: the confusion-matrix image, the results table and the spec's reference
numbers for the same protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np


def render_confusion(cm_normalized: np.ndarray, class_names: Sequence[str], cell_px: int = 44) -> np.ndarray:
    """Draw a row-normalised confusion matrix as an image (no matplotlib; OpenCV + numpy).

    Args:
        cm_normalized: (C, C) or (C, C + 1) fractions in [0, 1], rows = truth; an extra last column is drawn as
            "none" (predictions without a class).
        class_names: C names for the rows (and the first C columns).
        cell_px: side of one cell in pixels.
    Returns:
        (H, W, 3) uint8 BGR image (``cv2.imwrite`` order).
    """
    rows, cols = cm_normalized.shape
    col_names = list(class_names) + ["none"] * (cols - rows)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.42
    text_w = max(cv2.getTextSize(n, font, scale, 1)[0][0] for n in col_names) + 12
    left, top = text_w, text_w
    height, width = top + rows * cell_px + 30, left + cols * cell_px + 10
    img = np.full((height, width, 3), 255, np.uint8)
    values = np.clip(cm_normalized, 0.0, 1.0)
    colours = cv2.applyColorMap((values * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)
    for r in range(rows):
        for c in range(cols):
            y0, x0 = top + r * cell_px, left + c * cell_px
            img[y0 : y0 + cell_px, x0 : x0 + cell_px] = colours[r, c]
            pct = 100.0 * values[r, c]
            if pct >= 0.5:
                txt = f"{pct:.0f}"
                (tw, th), _ = cv2.getTextSize(txt, font, scale, 1)
                ink = (0, 0, 0) if values[r, c] > 0.6 else (255, 255, 255)
                cv2.putText(img, txt, (x0 + (cell_px - tw) // 2, y0 + (cell_px + th) // 2), font, scale, ink, 1,
                            cv2.LINE_AA)
        cv2.putText(img, class_names[r], (4, top + r * cell_px + cell_px // 2 + 4), font, scale, (0, 0, 0), 1,
                    cv2.LINE_AA)
    # Column names: draw horizontally on a strip, rotate it by 90 degrees to read bottom-up.
    strip = np.full((cols * cell_px, top, 3), 255, np.uint8)
    for c, name in enumerate(col_names):
        cv2.putText(strip, name, (4, c * cell_px + cell_px // 2 + 4), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    img[:top, left : left + cols * cell_px] = cv2.rotate(strip, cv2.ROTATE_90_COUNTERCLOCKWISE)
    cv2.putText(img, "rows: truth, columns: prediction, % of row", (4, height - 10), font, scale, (0, 0, 0), 1,
                cv2.LINE_AA)
    return img


def reference_metrics(metrics: dict[str, float], subset: str | None, input_hw: tuple[int, int], mapped: bool
                      ) -> dict[str, float]:
    """Pick the spec's reference numbers for this run: keys ``"<dataset>_<subset>@WxH[->target]/<metric>"``.

    Args:
        metrics: ``ModelSpec.metrics``.
        subset: subset tag (e.g. ``"0001TP"``); ``None`` matches nothing (no subset, no reference).
        input_hw: network input (height, width).
        mapped: whether a class map is applied (keys containing ``->``).
    Returns:
        ``{"mIoU": ..., "pixel_acc": ...}`` for the matching keys (possibly empty).
    """
    if not subset:
        return {}
    out = {}
    for key, value in metrics.items():
        where, _, name = key.rpartition("/")
        dataset, _, protocol = where.partition("@")
        if subset in dataset.split("_") and protocol.split("->")[0] == f"{input_hw[1]}x{input_hw[0]}" and (
            ("->" in protocol) == mapped
        ):
            out[name] = value
    return out


def format_table(summary: dict[str, Any], reference: dict[str, float]) -> str:
    """Plain-text per-class table (IoU, Dice, accuracy, truth pixels) and the means beside the reference."""

    def f(v: float | None) -> str:
        return "   n/a" if v is None else f"{v:6.2f}"

    lines = [f"{'class':<16} {'IoU':>6} {'Dice':>6} {'acc':>6} {'pixels':>10}"]
    for name in summary["class_names"]:
        lines.append(
            f"{name:<16} {f(summary['per_class_IoU'][name])} {f(summary['per_class_dice'][name])} "
            f"{f(summary['per_class_acc'][name])} {summary['support'][name]:>10d}"
        )
    lines.append("-" * 48)
    for key, label in (("mIoU", "mIoU"), ("pixel_acc", "pixel acc"), ("mean_class_acc", "mean class acc"),
                       ("mean_dice", "mean Dice")):
        ref = reference.get(key)
        extra = ""
        if ref is not None and summary[key] is not None:
            extra = f"   reference {ref:6.2f}  (diff {summary[key] - ref:+.2f})"
        lines.append(f"{label:<16} {f(summary[key])}{extra}")
    return "\n".join(lines)
