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

    Args:
        stamp_a: stamp [ns] of an item of stream A (colour).
        stamp_b: stamp [ns] of an item of stream B (depth).
        slop_ns: largest accepted stamp difference [ns]; 0 = identical stamps only.
        depth: items kept per stream (older ones fall out unpaired).
    """

    def __init__(
        self, stamp_a: Callable[[T], int], stamp_b: Callable[[U], int], slop_ns: int = 0, depth: int = 5
    ) -> None:
        if slop_ns < 0 or depth < 1:
            raise ValueError(f"need slop_ns >= 0 and depth >= 1, got {slop_ns} and {depth}")
        self.stamp_a, self.stamp_b, self.slop_ns = stamp_a, stamp_b, slop_ns
        self.a: deque[T] = deque(maxlen=depth)
        self.b: deque[U] = deque(maxlen=depth)
        self.discarded = 0

    def add_a(self, item: T) -> tuple[T, U] | None:
        """Add a stream-A item; returns a pair when one is complete."""
        self.a.append(item)
        return self.pop_pair()

    def add_b(self, item: U) -> tuple[T, U] | None:
        """Add a stream-B item; returns a pair when one is complete."""
        self.b.append(item)
        return self.pop_pair()

    def pop_pair(self) -> tuple[T, U] | None:
        """The newest A item with a B item within slop (closest B wins); drops it and everything older."""
        for i in range(len(self.a) - 1, -1, -1):
            t_a = self.stamp_a(self.a[i])
            best: tuple[int, int] | None = None
            for j, item_b in enumerate(self.b):
                dt = abs(self.stamp_b(item_b) - t_a)
                if dt <= self.slop_ns and (best is None or dt < best[0]):
                    best = (dt, j)
            if best is not None:
                a_item, b_item = self.a[i], self.b[best[1]]
                self.discarded += i
                for _ in range(i + 1):
                    self.a.popleft()
                for _ in range(best[1] + 1):
                    self.b.popleft()
                return a_item, b_item
        return None
