"""core.timing.timing_summary: the one definition of mean / median / percentiles used by every report."""

from __future__ import annotations

import pytest

from seg_perception.core.timing import timing_summary


def test_known_values() -> None:
    # 1..10: mean 5.5, median (5 + 6) / 2, p90 by linear interpolation at rank 0.9 * 9 = 8.1 -> 9 + 0.1 = 9.1
    s = timing_summary([float(v) for v in (7, 1, 10, 3, 2, 9, 4, 8, 6, 5)], percentiles=(90, 99))
    assert s == {"mean": 5.5, "median": 5.5, "p90": 9.1, "p99": 9.91, "max": 10.0, "n": 10}
    assert timing_summary([4.0]) == {"mean": 4.0, "median": 4.0, "p90": 4.0, "max": 4.0, "n": 1}
    assert timing_summary([1.23456, 2.0], digits=1)["mean"] == 1.6
    with pytest.raises(ValueError, match="no values"):
        timing_summary([])
