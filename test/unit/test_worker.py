"""NewestFrameWorker: the newest item is processed off the caller's thread, replaced ones are reported."""

from __future__ import annotations

import threading
import time

from seg_perception.ros.node_utils import NewestFrameWorker


def test_newest_item_wins_and_skipped_ones_are_reported() -> None:
    gate = threading.Event()
    done: list[int] = []
    skipped: list[int] = []
    callers: set[str] = set()

    def process(i: int) -> None:
        callers.add(threading.current_thread().name)
        gate.wait(5.0)
        done.append(i)

    w = NewestFrameWorker(process, skipped.append, "test_worker")
    w.submit(1)  # starts at once and blocks on the gate
    deadline = time.monotonic() + 5.0
    while not callers:  # item 1 is being processed
        assert time.monotonic() < deadline
        time.sleep(0.01)
    for i in (2, 3, 4):  # arrive while 1 is busy: each replaces the waiting one
        w.submit(i)
    assert w.pending == 2 and skipped == [2, 3]
    gate.set()
    assert w.wait_idle(5.0)
    assert done == [1, 4] and callers == {"test_worker"}
    w.submit(5)
    w.stop()
    assert done[-1] == 5 or skipped[-1] == 5  # stop lets the running item finish and reports a waiting one
    assert len(done) + len(skipped) == 5
