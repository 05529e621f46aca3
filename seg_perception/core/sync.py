"""Pair colour and depth images by header stamp (an approximate-time policy for two streams, no ROS imports).

message_filters is not installable here; this is the part of its ApproximateTime policy the segmentation node needs:
the newest colour image that has a depth image within ``slop_ns`` is paired with the closest such depth image, and
everything older is discarded (the node always works on the newest pair).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
U = TypeVar("U")


class StampPairer(Generic[T, U]):
    """Buffers the last ``depth`` items of two streams and pops the newest pair whose stamps differ by <= slop.

    Nothing vanishes silently: every item that leaves without being paired is handed to ``on_discard(stream,
    item, why)`` with stream ``"a"`` or ``"b"`` and why ``"superseded"`` (a newer pair was taken: the newest-frame
    policy), ``"evicted"`` (pushed out of a full buffer without a partner) or ``"flushed"`` (``flush()``).

    Args:
        stamp_a: stamp [ns] of an item of stream A (colour).
        stamp_b: stamp [ns] of an item of stream B (depth).
        slop_ns: largest accepted stamp difference [ns]; 0 = identical stamps only.
        depth: items kept per stream (older ones fall out unpaired).
        on_discard: called for each item that leaves unpaired.
    """

    def __init__(
        self,
        stamp_a: Callable[[T], int],
        stamp_b: Callable[[U], int],
        slop_ns: int = 0,
        depth: int = 5,
        on_discard: Callable[[str, object, str], None] | None = None,
    ) -> None:
        if slop_ns < 0 or depth < 1:
            raise ValueError(f"need slop_ns >= 0 and depth >= 1, got {slop_ns} and {depth}")
        self.stamp_a, self.stamp_b, self.slop_ns = stamp_a, stamp_b, slop_ns
        self.depth = depth
        self.a: deque[T] = deque()
        self.b: deque[U] = deque()
        self.on_discard = on_discard or (lambda _s, _i, _w: None)
        self.discarded = 0

    def add_a(self, item: T) -> tuple[T, U] | None:
        """Add a stream-A item; returns a pair when one is complete."""
        self.a.append(item)
        if len(self.a) > self.depth:
            self._discard("a", self.a.popleft(), "evicted")
        return self.pop_pair()

    def add_b(self, item: U) -> tuple[T, U] | None:
        """Add a stream-B item; returns a pair when one is complete."""
        self.b.append(item)
        if len(self.b) > self.depth:
            self._discard("b", self.b.popleft(), "evicted")
        return self.pop_pair()

    def _discard(self, stream: str, item: object, why: str) -> None:
        self.discarded += 1
        self.on_discard(stream, item, why)

    def pop_pair(self) -> tuple[T, U] | None:
        """The newest A item with a B item within slop (closest B wins); everything older leaves as superseded."""
        for i in range(len(self.a) - 1, -1, -1):
            t_a = self.stamp_a(self.a[i])
            best: tuple[int, int] | None = None
            for j, item_b in enumerate(self.b):
                dt = abs(self.stamp_b(item_b) - t_a)
                if dt <= self.slop_ns and (best is None or dt < best[0]):
                    best = (dt, j)
            if best is not None:
                a_item, b_item = self.a[i], self.b[best[1]]
                for _ in range(i):
                    self._discard("a", self.a.popleft(), "superseded")
                self.a.popleft()
                for _ in range(best[1]):
                    self._discard("b", self.b.popleft(), "superseded")
                self.b.popleft()
                return a_item, b_item
        return None

    def flush(self) -> None:
        """Discard every waiting item (``"flushed"``): at shutdown, or after time went backwards."""
        while self.a:
            self._discard("a", self.a.popleft(), "flushed")
        while self.b:
            self._discard("b", self.b.popleft(), "flushed")


class StampOrder:
    """Classify each new stamp of a stream against the newest one seen: in order, late, or a jump back in time.

    Time went backwards (a bag replayed in a loop, a simulator reset) when a stamp is older than the newest by at
    least ``jump_back_ns``, or when ``max_late`` stamps in a row are older than it (a loop shorter than
    ``jump_back_ns``): the stamp becomes the new reference and the caller clears its time-indexed state, as tf2 clears
    its buffer on a jump back. A single slightly older stamp is late (out of order) and the caller drops it, so
    outputs never go backwards in time. Equal stamps are in order.

    Args:
        jump_back_ns: smallest backwards step [ns] treated as a time jump at once (> 0).
        max_late: this many late stamps in a row are a time jump too (>= 1).
    """

    IN_ORDER, LATE, JUMP = "in_order", "late", "jump"

    def __init__(self, jump_back_ns: int, max_late: int = 3) -> None:
        if jump_back_ns <= 0 or max_late < 1:
            raise ValueError(f"need jump_back_ns > 0 and max_late >= 1, got {jump_back_ns} and {max_late}")
        self.jump_back_ns, self.max_late = jump_back_ns, max_late
        self.newest_ns: int | None = None
        self._late_run = 0

    def check(self, stamp_ns: int) -> str:
        """``IN_ORDER`` (and remember it), ``LATE`` (keep the reference) or ``JUMP`` (the reference restarts here)."""
        if self.newest_ns is None or stamp_ns >= self.newest_ns:
            self.newest_ns, self._late_run = stamp_ns, 0
            return self.IN_ORDER
        self._late_run += 1
        if self.newest_ns - stamp_ns >= self.jump_back_ns or self._late_run >= self.max_late:
            self.newest_ns, self._late_run = stamp_ns, 0
            return self.JUMP
        return self.LATE

    def reset(self) -> None:
        """Forget the reference (the next stamp is in order)."""
        self.newest_ns, self._late_run = None, 0
