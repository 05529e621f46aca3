"""Pair colour and depth images by header stamp with ``message_filters`` (the ROS synchronizers), with accounting.

``message_filters.TimeSynchronizer`` (slop 0: identical stamps) or ``ApproximateTimeSynchronizer`` (stamps at most
``slop_ns`` apart) does the matching. Its inputs are plain ``message_filters.SimpleFilter`` objects fed by the
caller, not ``message_filters.Subscriber``: the same code pairs live topics in the node and bag messages in
``seg-perception process`` (no node needed), so offline equals online.

What the Python synchronizers leave out is added around them: they drop messages silently (a full queue, a message
replacing a queued one of the same stamp) and keep messages older than an emitted pair, which could later pair and
send outputs back in time. Here every message that leaves a queue unpaired is reported, and once a pair is emitted
everything older in both queues leaves as ``superseded`` (the newest-frame policy of the C++ ApproximateTime
policy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import message_filters
from rclpy.duration import Duration

from seg_perception.ros.convert import stamp_to_ns

Msg = Any  # a message with a std_msgs/Header ``header``


def stamp_ns(msg: Msg) -> int:
    """A message's ``header.stamp`` in nanoseconds."""
    return stamp_to_ns(msg.header.stamp)


class FramePairer:
    """Colour (stream ``"a"``) and depth (stream ``"b"``) through a message_filters synchronizer.

    ``add_a`` / ``add_b`` return the (colour, depth) pair that the message completes, else None. Every message that
    leaves unpaired goes to ``on_discard(stream, msg, why)``, why = ``"superseded"`` (a newer pair was emitted),
    ``"evicted"`` (pushed out of a full queue, or replaced by a message with the same stamp) or ``"flushed"``.

    Args:
        slop_ns: largest stamp difference of a pair [ns] (inclusive); 0 = identical stamps (TimeSynchronizer).
        depth: messages kept per stream (message_filters' ``queue_size``).
        on_discard: called for each message that leaves unpaired.
    Raises:
        ValueError: slop_ns < 0 or depth < 1.
    """

    def __init__(
        self, slop_ns: int = 0, depth: int = 5, on_discard: Callable[[str, Msg, str], None] | None = None
    ) -> None:
        if slop_ns < 0 or depth < 1:
            raise ValueError(f"need slop_ns >= 0 and depth >= 1, got {slop_ns} and {depth}")
        self.depth = depth
        self.on_discard = on_discard or (lambda _s, _m, _w: None)
        self.discarded = 0
        self._inputs = (message_filters.SimpleFilter(), message_filters.SimpleFilter())
        self._emitted: list[tuple[Msg, Msg]] = []
        self._slop_ns = -1
        self._sync: message_filters.TimeSynchronizer | None = None
        self.slop_ns = slop_ns

    @property
    def slop_ns(self) -> int:
        """Pairing tolerance [ns]; settable at run time (0 <-> > 0 swaps the synchronizer, keeping the queues)."""
        return self._slop_ns

    @slop_ns.setter
    def slop_ns(self, slop_ns: int) -> None:
        if slop_ns < 0:
            raise ValueError(f"need slop_ns >= 0, got {slop_ns}")
        if self._sync is None or (slop_ns == 0) != (self._slop_ns == 0):
            queues = self._sync.queues if self._sync is not None else None
            for f in self._inputs:
                f.callbacks.clear()  # disconnect the previous synchronizer
            if slop_ns == 0:
                self._sync = message_filters.TimeSynchronizer(list(self._inputs), self.depth)
            else:
                self._sync = message_filters.ApproximateTimeSynchronizer(list(self._inputs), self.depth, 1e-9)
            if queues is not None:  # connectInput made new dicts: the messages waiting stay waiting
                for new, old in zip(self._sync.queues, queues, strict=True):
                    new.update(old)
            self._sync.registerCallback(lambda a, b: self._emitted.append((a, b)))
        if isinstance(self._sync, message_filters.ApproximateTimeSynchronizer):
            # message_filters pairs when max - min < slop; + 1 ns makes it "at most slop_ns" (inclusive)
            self._sync.slop = Duration(nanoseconds=slop_ns + 1)
        self._slop_ns = slop_ns

    @property
    def a(self) -> list[Msg]:
        """Colour messages waiting, oldest first."""
        return self._queued(0)

    @property
    def b(self) -> list[Msg]:
        """Depth messages waiting, oldest first."""
        return self._queued(1)

    @property
    def waiting_a(self) -> int:
        """How many colour messages wait: one ``len`` of the synchronizer's queue, so safe to read from another
        thread while the executor adds messages (``a`` copies the queue and must stay on the executor thread)."""
        sync = self._sync
        return len(sync.queues[0]) if sync is not None else 0

    def _queued(self, i: int) -> list[Msg]:
        assert self._sync is not None
        queue = self._sync.queues[i]
        return [queue[t] for t in sorted(queue)]

    def add_a(self, msg: Msg) -> tuple[Msg, Msg] | None:
        """Add a colour message; returns (colour, depth) when it completes a pair."""
        return self._add(0, msg)

    def add_b(self, msg: Msg) -> tuple[Msg, Msg] | None:
        """Add a depth message; returns (colour, depth) when it completes a pair."""
        return self._add(1, msg)

    def _add(self, i: int, msg: Msg) -> tuple[Msg, Msg] | None:
        assert self._sync is not None
        before = {id(m): (q, m) for q in (0, 1) for m in self._sync.queues[q].values()}
        before[id(msg)] = (i, msg)
        self._emitted.clear()
        self._inputs[i].signalMessage(msg)
        emitted, self._emitted = self._emitted, []
        paired = {id(m) for pair in emitted for m in pair}
        queued = {id(m) for q in self._sync.queues for m in q.values()}
        for key, (q, m) in before.items():
            if key not in queued and key not in paired:
                self._discard(q, m, "evicted")
        if not emitted:
            return None
        pair = emitted[-1]  # (one at most: each message completes at most one set)
        for q, newest in ((0, stamp_ns(pair[0])), (1, stamp_ns(pair[1]))):
            queue = self._sync.queues[q]
            for t in sorted(t for t in queue if t < newest):
                self._discard(q, queue.pop(t), "superseded")
        return pair

    def _discard(self, q: int, msg: Msg, why: str) -> None:
        self.discarded += 1
        self.on_discard("ab"[q], msg, why)

    def flush(self) -> None:
        """Discard every waiting message (``"flushed"``): at shutdown, or after time went backwards."""
        assert self._sync is not None
        for q, queue in enumerate(self._sync.queues):
            for t in sorted(queue):
                self._discard(q, queue.pop(t), "flushed")
