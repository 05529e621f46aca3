"""Unit tests for seg_perception.core.mapping.stability on hand-written label images and grids."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seg_perception.core.mapping.costs import FREE_SPACE, INSCRIBED_INFLATED_OBSTACLE, LETHAL_OBSTACLE, NO_INFORMATION
from seg_perception.core.mapping.costs import to_occupancy as occ
from seg_perception.core.mapping.stability import grid_agreement, grid_flicker, grid_occupied, label_flicker

U = NO_INFORMATION


def test_label_flicker() -> None:
    prev = np.array([[0, 1, 2], [3, 255, 5]], np.uint8)
    cur = np.array([[0, 2, 2], [3, 4, 255]], np.uint8)
    assert label_flicker(prev, cur) == pytest.approx(1 / 4)  # 4 pixels compared (255 in either is skipped), 1 changed
    valid = np.array([[False, True, True], [True, True, True]])
    assert label_flicker(prev, cur, valid) == pytest.approx(1 / 3)
    assert label_flicker(prev, prev) == 0.0
    assert math.isnan(label_flicker(np.full((2, 2), 255, np.uint8), np.zeros((2, 2), np.uint8)))
    with pytest.raises(ValueError, match=r"shapes differ, \(2, 3\) vs \(3, 2\)"):
        label_flicker(prev, cur.T)


# Costs: free, lethal, inflation 186, unknown.
PREV = np.array([[FREE_SPACE, LETHAL_OBSTACLE, 186, U, FREE_SPACE]], np.uint8)
CUR = np.array([[FREE_SPACE, FREE_SPACE, 120, FREE_SPACE, U]], np.uint8)


def test_grid_flicker_uint8_and_int8() -> None:
    # Known in both: cells 0, 1, 2. Changed: 1 (lethal -> free) and 2 (186 -> 120).
    assert grid_flicker(PREV, CUR) == pytest.approx(2 / 3)
    assert grid_flicker(occ(PREV), occ(CUR)) == pytest.approx(2 / 3)  # same cells after translation
    assert grid_flicker(PREV, PREV) == 0.0
    assert math.isnan(grid_flicker(np.full((2, 2), U, np.uint8), np.zeros((2, 2), np.uint8)))
    with pytest.raises(TypeError, match="dtypes differ"):
        grid_flicker(PREV, occ(CUR))
    with pytest.raises(TypeError, match="uint8 Nav2 costs or int8"):
        grid_flicker(PREV.astype(np.int32), CUR.astype(np.int32))


def test_grid_agreement_thresholds_states() -> None:
    # Known in both: cells 0 (free/free), 1 (lethal/free), 2 (186/120: both free by state).
    assert grid_agreement(PREV, CUR) == pytest.approx(2 / 3)
    assert grid_agreement(occ(PREV), CUR) == pytest.approx(2 / 3)  # mixed dtypes, each with its own threshold
    assert grid_agreement(PREV, CUR, occupied_min=150) == pytest.approx(1 / 3)  # 186 now counts as occupied
    inscribed = np.array([[INSCRIBED_INFLATED_OBSTACLE]], np.uint8)
    assert grid_agreement(inscribed, np.array([[LETHAL_OBSTACLE]], np.uint8)) == 1.0
    assert grid_agreement(occ(inscribed), np.array([[LETHAL_OBSTACLE]], np.uint8)) == 1.0
    assert math.isnan(grid_agreement(PREV[:, 3:4], CUR[:, 4:5]))


def test_grid_occupied_defaults() -> None:
    costs = np.array([0, 1, 252, 253, 254, 255], np.uint8)
    assert grid_occupied(costs).tolist() == [False, False, False, True, True, False]
    assert grid_occupied(occ(costs)).tolist() == [False, False, False, True, True, False]
