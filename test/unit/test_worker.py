"""NewestFrameWorker: the newest item is processed off the caller's thread, replaced ones are reported."""

from __future__ import annotations

import threading
import time

from seg_perception.ros.worker import NewestFrameWorker


def test_newest_item_wins_and_skipped_ones_are_reported() -> None:
    gate = threading.Event()
    done: list[int] = []
    skipped: list[int] = []
    callers: set[str] = set()
    started: list[int] = []

    def process(i: int) -> None:
        callers.add(threading.current_thread().name)
        started.append(i)
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

    # stop() (documented: "let the item being processed finish, skip the one waiting, end the thread")
    gate.clear()
    w.submit(5)  # runs and blocks on the gate
    _wait_for(lambda: started[-1] == 5)
    w.submit(6)  # waits behind 5
    assert w.pending == 2
    stopper = threading.Thread(target=w.stop)
    stopper.start()
    _wait_for(lambda: skipped[-1] == 6)  # the waiting item is reported skipped at once
    assert done == [1, 4] and stopper.is_alive()  # stop waits for the running item
    gate.set()
    stopper.join(5.0)
    assert not stopper.is_alive()
    assert done == [1, 4, 5] and skipped == [2, 3, 6] and started == [1, 4, 5]  # 6 never ran
    assert "test_worker" not in {t.name for t in threading.enumerate()}  # the worker thread ended


def _wait_for(condition, timeout_s: float = 5.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_package_log_records_reach_the_node_logger() -> None:
    import logging

    from seg_perception.ros.node_utils import RclpyLogHandler

    lines: list[tuple[str, str]] = []

    class Logger:
        def info(self, text: str) -> None:
            lines.append(("info", text))

        def warning(self, text: str) -> None:
            lines.append(("warning", text))

        def error(self, text: str) -> None:
            lines.append(("error", text))

    class FakeNode:
        def get_logger(self) -> Logger:
            return Logger()

    log = logging.getLogger("seg_perception.test_forwarding")
    handler = RclpyLogHandler(FakeNode())  # type: ignore[arg-type]
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        log.debug("not forwarded")
        log.info("exporting %s at %dx%d", "cgnet_camvid", 640, 480)
        log.warning("cache entry corrupt")
        log.error("boom")
    finally:
        log.removeHandler(handler)
    assert lines == [("info", "seg_perception.test_forwarding: exporting cgnet_camvid at 640x480"),
                     ("warning", "seg_perception.test_forwarding: cache entry corrupt"),
                     ("error", "seg_perception.test_forwarding: boom")]  # fmt: skip


def test_drop_logs_are_throttled_per_reason_and_counts_stay_exact() -> None:
    from seg_perception.ros.node_utils import NodeStats

    lines: list[str] = []

    class Logger:
        def warning(self, text: str) -> None:
            lines.append(text)

    class FakeNode:
        def get_logger(self) -> Logger:
            return Logger()

    stats = NodeStats(FakeNode(), throttle_s=60.0)  # type: ignore[arg-type]
    for _ in range(3):
        stats.drop("empty", "image: 0x0")
    stats.drop("depth_empty", "depth: 0x0")  # a second reason within the throttle window is still logged
    stats.reject("camera_info_k", "K has NaN")
    assert stats.drops == {"empty": 3, "depth_empty": 1} and stats.rejected == {"camera_info_k": 1}
    assert [line.split(" (")[1].split(",")[0] for line in lines] == ["empty", "depth_empty", "camera_info_k"]
