"""core.segmentation.overlay: palette lookup and the blended overlay against an independent float formula."""

from __future__ import annotations

import numpy as np
import pytest

from seg_perception.core.segmentation.overlay import blend, palette_array


@pytest.fixture()
def inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    labels = rng.integers(0, 12, (48, 64), dtype=np.uint8)
    labels[0, :5] = 255  # ids past the palette are black
    palette = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(12)]
    return rgb, labels, palette_array(palette)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
def test_blend_matches_the_float_formula(inputs: tuple[np.ndarray, np.ndarray, np.ndarray], alpha: float) -> None:
    rgb, labels, lut = inputs
    expected = np.zeros_like(rgb)
    for v in range(rgb.shape[0]):
        for u in range(rgb.shape[1]):
            colour = lut[labels[v, u]].astype(np.float64)
            expected[v, u] = np.floor((1 - alpha) * rgb[v, u] + alpha * colour + 0.5)
    out = blend(rgb, labels, lut, alpha)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1  # float32 rounding at exact halves
    if alpha == 0.0:
        np.testing.assert_array_equal(out, rgb)
    if alpha == 1.0:
        np.testing.assert_array_equal(out, lut[labels])
        np.testing.assert_array_equal(out[0, :5], 0)


def test_blend_accepts_views_and_refuses_bad_input(inputs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    rgb, labels, lut = inputs
    flipped = blend(rgb[:, ::-1], labels[:, ::-1], lut)  # non-contiguous views
    np.testing.assert_array_equal(flipped, blend(rgb, labels, lut)[:, ::-1])
    with pytest.raises(ValueError, match="do not match"):
        blend(rgb, labels[:-1], lut)
    with pytest.raises(ValueError, match="alpha"):
        blend(rgb, labels, lut, 1.5)
    with pytest.raises(ValueError, match="uint8"):
        blend(rgb, labels.astype(np.int32), lut)
