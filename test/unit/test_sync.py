"""StampPairer: exact and approximate pairing, newest-first, discarding older items."""

from __future__ import annotations

import pytest

from seg_perception.core.sync import StampOrder, StampPairer


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


def test_every_unpaired_item_is_reported() -> None:
    seen: list[tuple[str, int, str]] = []
    p = StampPairer(lambda a: a, lambda b: b, slop_ns=0, depth=2, on_discard=lambda s, i, w: seen.append((s, i, w)))
    for t in (100, 200, 300):
        p.add_a(t)  # 100 falls out of the 2-deep buffer
    assert seen == [("a", 100, "evicted")]
    assert p.add_b(300) == (300, 300)
    assert seen[1:] == [("a", 200, "superseded")]
    p.add_b(400)
    p.add_a(500)
    p.flush()
    assert seen[2:] == [("a", 500, "flushed"), ("b", 400, "flushed")]
    assert not p.a and not p.b


def test_stamp_order_in_order_late_and_jump() -> None:
    o = StampOrder(jump_back_ns=1000, max_late=3)
    assert [o.check(t) for t in (100, 100, 200)] == [StampOrder.IN_ORDER] * 3
    assert o.check(150) == StampOrder.LATE and o.newest_ns == 200
    assert o.check(5000) == StampOrder.IN_ORDER
    assert o.check(4000) == StampOrder.JUMP and o.newest_ns == 4000  # a bag loop: the reference restarts
    assert o.check(4100) == StampOrder.IN_ORDER
    # a loop shorter than jump_back_ns: three late stamps in a row are a jump too
    assert [o.check(t) for t in (3500, 3600, 3700, 3800)] == [StampOrder.LATE, StampOrder.LATE, StampOrder.JUMP,
                                                              StampOrder.IN_ORDER]
    assert o.check(3750) == StampOrder.LATE and o.check(3900) == StampOrder.IN_ORDER  # the run restarts
    with pytest.raises(ValueError, match="jump_back_ns"):
        StampOrder(0)
