"""FramePairer (message_filters' synchronizers with accounting): exact and approximate pairing, newest pair wins,
every unpaired message reported; StampOrder."""

from __future__ import annotations

import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from seg_perception.core.sync import StampOrder
from seg_perception.ros import convert
from seg_perception.ros.pairing import FramePairer, stamp_ns

BASE = 1_700_000_000 * 10**9  # a realistic epoch stamp [ns]


def _msg(t: int) -> Image:
    return Image(header=Header(stamp=convert.ns_to_stamp(BASE + t), frame_id="cam"))


def _t(m: Image | None) -> int | None:
    return None if m is None else stamp_ns(m) - BASE


def _pair(p: FramePairer, pair: tuple[Image, Image] | None) -> tuple[int | None, int | None] | None:
    return None if pair is None else (_t(pair[0]), _t(pair[1]))


def _pairer(slop: int = 0, depth: int = 5, seen: list | None = None) -> FramePairer:
    report = (lambda s, m, w: seen.append((s, _t(m), w))) if seen is not None else None
    return FramePairer(slop_ns=slop, depth=depth, on_discard=report)


def test_exact_pair_in_either_arrival_order() -> None:
    p = _pairer()
    assert p.add_a(_msg(100)) is None
    assert _pair(p, p.add_b(_msg(100))) == (100, 100)
    assert p.add_b(_msg(200)) is None
    assert _pair(p, p.add_a(_msg(200))) == (200, 200)
    assert not p.a and not p.b


def test_newest_pair_wins_and_older_items_are_discarded() -> None:
    p = _pairer()
    for t in (100, 200, 300):
        p.add_a(_msg(t))
    assert _pair(p, p.add_b(_msg(200))) == (200, 200)
    assert [_t(m) for m in p.a] == [300] and p.discarded == 1
    assert p.add_b(_msg(100)) is None  # too old for anything left


@pytest.mark.parametrize(("slop", "expected"), [(0, None), (9, None), (10, (100, 110)), (10_000_000, (100, 110))],
                         ids=["exact", "below", "at", "approximate"])  # fmt: skip
def test_slop_is_inclusive(slop: int, expected: tuple[int, int] | None) -> None:
    p = _pairer(slop)
    p.add_a(_msg(100))
    assert _pair(p, p.add_b(_msg(110))) == expected


def test_closest_depth_is_chosen() -> None:
    p = _pairer(50)
    for t in (60, 95, 140):
        p.add_b(_msg(t))
    assert _pair(p, p.add_a(_msg(100))) == (100, 95)
    assert [_t(m) for m in p.b] == [140]


def test_every_unpaired_item_is_reported() -> None:
    seen: list[tuple[str, int | None, str]] = []
    p = _pairer(depth=2, seen=seen)
    for t in (100, 200, 300):
        p.add_a(_msg(t))  # 100 falls out of the 2-deep queue
    assert seen == [("a", 100, "evicted")]
    assert _pair(p, p.add_b(_msg(300))) == (300, 300)
    assert seen[1:] == [("a", 200, "superseded")]
    p.add_b(_msg(400))
    p.add_a(_msg(500))
    p.add_a(_msg(500))  # the same stamp again replaces the waiting one: reported
    assert seen[2:] == [("a", 500, "evicted")]
    p.flush()
    assert seen[3:] == [("a", 500, "flushed"), ("b", 400, "flushed")]
    assert not p.a and not p.b


def test_slop_changes_at_run_time_keep_the_waiting_messages() -> None:
    p = _pairer(0)
    p.add_a(_msg(100))
    p.slop_ns = 20  # TimeSynchronizer -> ApproximateTimeSynchronizer; the colour image still waits
    assert [_t(m) for m in p.a] == [100]
    assert _pair(p, p.add_b(_msg(115))) == (100, 115)
    p.slop_ns = 0
    p.add_a(_msg(200))
    assert p.add_b(_msg(201)) is None and _pair(p, p.add_b(_msg(200))) == (200, 200)
    with pytest.raises(ValueError, match="slop_ns >= 0"):
        p.slop_ns = -1


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
