"""StampPairer: exact and approximate pairing, newest-first, discarding older items."""

from __future__ import annotations

import pytest

from seg_perception.core.sync import StampPairer


def _pairer(slop: int = 0) -> StampPairer[int, int]:
    return StampPairer(lambda a: a, lambda b: b, slop_ns=slop, depth=5)


def test_exact_pair_in_either_arrival_order() -> None:
    p = _pairer()
    assert p.add_a(100) is None
    assert p.add_b(100) == (100, 100)
    assert p.add_b(200) is None
    assert p.add_a(200) == (200, 200)


def test_newest_pair_wins_and_older_items_are_discarded() -> None:
    p = _pairer()
    for t in (100, 200, 300):
        p.add_a(t)
    assert p.add_b(200) == (200, 200)
    assert list(p.a) == [300] and p.discarded == 1
    assert p.add_b(100) is None  # too old for anything left


@pytest.mark.parametrize(("slop", "expected"), [(0, None), (9, None), (10, (100, 110))], ids=["exact", "below", "at"])
def test_slop(slop: int, expected: tuple[int, int] | None) -> None:
    p = _pairer(slop)
    p.add_a(100)
    assert p.add_b(110) == expected


def test_closest_depth_is_chosen() -> None:
    p = _pairer(50)
    p.add_b(60)
    p.add_b(95)
    p.add_b(140)
    assert p.add_a(100) == (100, 95)
    assert list(p.b) == [140]
