"""Order of stamps in a stream: in order, late, or time going backwards (a bag loop, a simulator reset); no ROS
imports. (Colour/depth pairing is message_filters', in ``ros/pairing.py``.)"""

from __future__ import annotations


class StampOrder:
    """Classify each new stamp of a stream against the newest one seen: in order, late, or a jump back in time.

    Time went backwards (a bag replayed in a loop, a simulator reset) when a stamp is older than the newest by at
    least ``jump_back_ns``, or when ``max_late`` stamps in a row are older than it (a loop shorter than
    ``jump_back_ns``): the stamp becomes the new reference and the caller clears its time-indexed state, as tf2 clears
    its buffer on a jump back. A single slightly older stamp is late (out of order) and the caller drops it, so
    outputs never go backwards in time. Equal stamps are in order.

    Args:
        jump_back_ns: smallest backwards step [ns] treated as a time jump at once (> 0).
        max_late: this many late stamps in a row are a time jump too (>= 1); None = only ``jump_back_ns`` counts
            (a stream whose stamps interleave, as /tf from several broadcasters).
    """

    IN_ORDER, LATE, JUMP = "in_order", "late", "jump"

    def __init__(self, jump_back_ns: int, max_late: int | None = 3) -> None:
        if jump_back_ns <= 0 or (max_late is not None and max_late < 1):
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
        if self.newest_ns - stamp_ns >= self.jump_back_ns or (self.max_late and self._late_run >= self.max_late):
            self.newest_ns, self._late_run = stamp_ns, 0
            return self.JUMP
        return self.LATE

    def reset(self) -> None:
        """Forget the reference (the next stamp is in order)."""
        self.newest_ns, self._late_run = None, 0
