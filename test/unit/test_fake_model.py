"""``fake_pattern``: a registered model with known logits (no weights), checked against its definition."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seg_perception.core.mapping.ontology import Role, load_ontology
from seg_perception.core.segmentation.fake import FAKE_CLASSES, FAKE_CONFIDENCE, FAKE_LOGIT
from seg_perception.core.segmentation.models import load_model
from seg_perception.core.segmentation.registry import get_model_spec, list_models
from seg_perception.core.segmentation.segment import Segmenter


def test_registered_and_loads_without_weights() -> None:
    assert "fake_pattern" in list_models()
    spec = get_model_spec("fake_pattern")
    assert spec.categories == FAKE_CLASSES and spec.self_contained and spec.weights_file == ""
    model = load_model(spec)
    assert not model.training
    assert FAKE_CONFIDENCE == pytest.approx(math.exp(2.0) / (math.exp(2.0) + 2.0))  # L = 2, three classes


def test_logits_are_the_three_regions_whatever_the_image() -> None:
    model = load_model(get_model_spec("fake_pattern"))
    with torch.no_grad():
        a = model(torch.zeros(2, 3, 6, 8))
        b = model(torch.rand(2, 3, 6, 8))
    torch.testing.assert_close(a, b)
    assert a.shape == (2, 3, 6, 8) and set(torch.unique(a).tolist()) == {0.0, FAKE_LOGIT}
    top, bottom_left, bottom_right = (a[0, c] == FAKE_LOGIT for c in range(3))
    assert top[:3].all() and not top[3:].any()
    assert bottom_left[3:, :4].all() and not bottom_left[:3].any() and not bottom_left[:, 4:].any()
    assert bottom_right[3:, 4:].all() and int(bottom_right.sum()) == 12
    assert (a[0].sum(dim=0) == FAKE_LOGIT).all()  # exactly one winning class per pixel


@pytest.mark.parametrize(("image_hw", "net_hw"), [((375, 1242), (32, 64)), ((48, 64), (48, 64)), ((101, 67), (50, 30))])
def test_segmenter_gives_the_pattern_at_image_size(image_hw: tuple[int, int], net_hw: tuple[int, int],
                                                   fake_pattern_expected) -> None:  # noqa: ANN001  # fmt: skip
    spec = get_model_spec("fake_pattern")
    seg = Segmenter(spec, load_model(spec), device="cpu", input_hw=net_hw, runtime="torch")
    rgb = np.random.default_rng(3).integers(0, 256, (*image_hw, 3), dtype=np.uint8)
    out = seg(rgb)
    expected = fake_pattern_expected(*image_hw, *net_hw)
    sure = expected != 255
    np.testing.assert_array_equal(out.labels[sure], expected[sure])
    np.testing.assert_allclose(out.confidence, FAKE_CONFIDENCE, rtol=1e-6)


def test_its_ontology_gives_each_region_a_role() -> None:
    spec = get_model_spec("fake_pattern")
    roles = load_ontology(spec.ontology, spec.categories).roles_lut(spec.categories)
    assert [Role(int(r)) for r in roles[:3]] == [Role.IGNORE, Role.DRIVABLE, Role.OBSTACLE]
