"""The DDS-free core of ``seg-perception replay`` (``tools.replay``): the timing schedule and the playback loop,
unit-tested with a fake clock; ``tools.replay.Replayer`` adds the rclpy publishers.

Timing: message ``i`` with bag time ``t_i`` (the bag's receive time, ns) is published at wall time
``t0 + (t_i - t_bag0) / rate``, where ``t_bag0`` is the first selected message's time and ``t0`` the
monotonic time playback started (each loop pass restarts ``t0``). Messages are never dropped to catch
up: a late message is published at once and counted in the lateness statistics.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from seg_perception.bag import BagMessage
from seg_perception.core.timing import timing_summary

__all__ = ["CLOCK_PERIOD_S", "MAX_IDLE_SLEEP_S", "PlayStats", "Schedule", "play"]

CLOCK_PERIOD_S = 0.01
"""Period of the steady ``/clock`` ticks [s] (~100 Hz)."""

MAX_IDLE_SLEEP_S = 0.05
"""Longest single sleep while waiting for a message without ``--clock`` [s] (bounds Ctrl-C latency)."""


@dataclass(frozen=True)
class Schedule:
    """Maps bag time to wall (monotonic) time: ``due = t0_s + (t_ns - t_bag0_ns) / 1e9 / rate``.

    Attributes:
        t_bag0_ns: bag time of the first message [ns].
        t0_s: monotonic time at which that message is due [s].
        rate: playback speed factor (> 0; 2.0 = twice as fast).
    """

    t_bag0_ns: int
    t0_s: float
    rate: float = 1.0

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"rate must be > 0, got {self.rate}")

    def due_s(self, t_ns: int) -> float:
        """Monotonic time [s] at which a message with bag time ``t_ns`` is due."""
        return self.t0_s + (t_ns - self.t_bag0_ns) / 1e9 / self.rate

    def bag_ns_at(self, now_s: float) -> int:
        """Bag time [ns] corresponding to monotonic time ``now_s``."""
        return self.t_bag0_ns + round((now_s - self.t0_s) * self.rate * 1e9)


@dataclass
class PlayStats:
    """Result of ``play``.

    Attributes:
        counts: messages published per topic (bag names).
        lateness_s: per message, wall time the publish started minus its due time [s].
        loops: completed passes over the bag.
        clock_ticks: ``/clock`` messages published.
        elapsed_s: wall time from the first due time to the end [s].
        bag_span_s: bag time covered by the published messages [s].
        stopped: True when ``should_stop`` ended playback early.
    """

    counts: dict[str, int] = field(default_factory=dict)
    lateness_s: list[float] = field(default_factory=list)
    loops: int = 0
    clock_ticks: int = 0
    elapsed_s: float = 0.0
    bag_span_s: float = 0.0
    stopped: bool = False

    @property
    def total(self) -> int:
        """Messages published on all topics."""
        return sum(self.counts.values())

    def line(self) -> str:
        """One-line human summary."""
        late = ""
        if self.lateness_s:
            s = timing_summary([x * 1e3 for x in self.lateness_s], percentiles=(99,))
            late = f"; lateness median {s['median']:.1f} ms, p99 {s['p99']:.1f} ms, max {s['max']:.1f} ms"
        topics = ", ".join(f"{t} {n}" for t, n in self.counts.items())
        end = " (stopped)" if self.stopped else ""
        return (
            f"replayed {self.total} messages in {self.elapsed_s:.2f} s (bag {self.bag_span_s:.2f} s, "
            f"{self.loops} loop{'s' if self.loops != 1 else ''}){end}: {topics}{late}"
        )


@dataclass
class _Waiter:
    """Sleeps until a message is due, publishing the clock on its ``clock_period_s`` grid meanwhile."""

    clock: Callable[[int], None] | None
    clock_period_s: float
    now: Callable[[], float]
    sleep: Callable[[float], None]
    should_stop: Callable[[], bool]
    stats: PlayStats
    next_tick: float = 0.0

    def wait(self, due: float, schedule: Schedule) -> bool:
        """Sleep until monotonic time ``due`` [s]; ``False`` when ``should_stop`` ended the wait."""
        while True:
            if self.should_stop():
                return False
            t = self.now()
            if self.clock is not None and t >= self.next_tick and t < due:
                self.clock(schedule.bag_ns_at(t))
                self.stats.clock_ticks += 1
                self.next_tick += self.clock_period_s
                if self.next_tick <= t:  # fell behind (slow publish): restart the tick grid from now
                    self.next_tick = t + self.clock_period_s
            remaining = due - t
            if remaining <= 0:
                return True
            if self.clock is not None:
                self.sleep(max(0.0, min(remaining, self.next_tick - t)))
            else:
                self.sleep(min(remaining, MAX_IDLE_SLEEP_S))

    def emit(self, msg: BagMessage, due: float, publish: Callable[[BagMessage], None]) -> None:
        """Publish ``msg`` (the clock first, at exactly its time) and count it and its lateness."""
        self.stats.lateness_s.append(self.now() - due)
        if self.clock is not None:
            self.clock(msg.t_ns)
            self.stats.clock_ticks += 1
        publish(msg)
        self.stats.counts[msg.topic] = self.stats.counts.get(msg.topic, 0) + 1

    def finish(self, start_s: float | None, span_ns: int) -> PlayStats:
        """The statistics with the elapsed wall time since ``start_s`` and the bag span played."""
        self.stats.elapsed_s = (self.now() - start_s) if start_s is not None else 0.0
        self.stats.bag_span_s = span_ns / 1e9
        return self.stats


def play(
    messages: Callable[[], Iterable[BagMessage]],
    publish: Callable[[BagMessage], None],
    *,
    rate: float = 1.0,
    loop: bool = False,
    clock: Callable[[int], None] | None = None,
    clock_period_s: float = CLOCK_PERIOD_S,
    now: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    should_stop: Callable[[], bool] = lambda: False,
    max_passes: int = 0,
) -> PlayStats:
    """Publish messages at their scheduled times (the timing core of ``replay``; no DDS).

    Args:
        messages: returns a fresh time-ordered iterable of the bag's messages (called once per pass).
        publish: sends one message.
        rate: speed factor (> 0).
        loop: repeat until ``should_stop``; each pass restarts the schedule at the current time.
        clock: if given, called with the bag time [ns] every ``clock_period_s`` while waiting and with the
            message's time just before each publish.
        clock_period_s: steady clock period [s].
        now, sleep: monotonic clock [s] and sleep function (injectable for tests).
        should_stop: polled while waiting; True ends playback.
        max_passes: with ``loop``, stop after this many passes (0 = until ``should_stop``).
    Returns:
        ``PlayStats``.
    """
    stats = PlayStats()
    if not rate > 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    start_s: float | None = None
    span_ns = 0
    waiter = _Waiter(clock, clock_period_s, now, sleep, should_stop, stats)
    while True:
        schedule: Schedule | None = None
        published_this_pass = 0
        last_t_ns = 0
        for msg in messages():
            if schedule is None:
                schedule = Schedule(t_bag0_ns=msg.t_ns, t0_s=now(), rate=rate)
                waiter.next_tick = schedule.t0_s
                if start_s is None:
                    start_s = schedule.t0_s
            due = schedule.due_s(msg.t_ns)
            if not waiter.wait(due, schedule):
                stats.stopped = True
                return waiter.finish(start_s, span_ns)
            waiter.emit(msg, due, publish)
            if published_this_pass:
                span_ns += msg.t_ns - last_t_ns
            last_t_ns = msg.t_ns
            published_this_pass += 1
        stats.loops += 1
        if not loop or published_this_pass == 0 or should_stop() or (max_passes and stats.loops >= max_passes):
            break
    return waiter.finish(start_s, span_ns)
