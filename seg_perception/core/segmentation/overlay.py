"""Colour renders of segmentation results (no ROS imports)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def palette_array(palette: Sequence[tuple[int, int, int]]) -> np.ndarray:
    """A (256, 3) uint8 lookup table from a class palette; ids past the palette are black."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(palette)] = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    return lut


def colorize(labels: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Map (H, W) uint8 class ids to (H, W, 3) uint8 RGB with a (256, 3) lookup table."""
    return lut[labels]


def blend(rgb: np.ndarray, labels: np.ndarray, lut: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a colour image with its label colours: ``(1 - alpha) * rgb + alpha * palette[labels]``.

    Args:
        rgb: (H, W, 3) uint8 image.
        labels: (H, W) uint8 class ids.
        lut: (256, 3) uint8 palette lookup (``palette_array``).
        alpha: weight of the label colour in [0, 1].
    Returns:
        (H, W, 3) uint8 RGB overlay.
    Raises:
        ValueError: if the sizes differ or alpha is outside [0, 1].
    """
    if rgb.shape[:2] != labels.shape:
        raise ValueError(f"labels {labels.shape} do not match image {rgb.shape[:2]}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    a = np.uint16(round(alpha * 256))
    out = rgb.astype(np.uint16) * (256 - a) + lut[labels].astype(np.uint16) * a
    return (out >> 8).astype(np.uint8)
