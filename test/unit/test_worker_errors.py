"""NewestFrameWorker outlives an exception in ``on_done`` or ``process``: the next item is still processed."""

from __future__ import annotations

import threading

from seg_perception.ros.worker import NewestFrameWorker


def test_worker_survives_a_failing_on_done_and_process() -> None:
    done: list[int] = []
    errors: list[tuple[str, str]] = []
    done_calls = 0
    all_done = threading.Event()

    def process(i: int) -> None:
        if i == 3:
            raise ValueError("bad item 3")
        done.append(i * 10)

    def on_done() -> None:
        nonlocal done_calls
        done_calls += 1
        if done_calls == 5:
            all_done.set()
        if done_calls == 1:  # as a queue read racing the executor would
            raise KeyError(1700000000)

    def on_error(e: BaseException) -> None:
        errors.append((threading.current_thread().name, repr(e)))

    w = NewestFrameWorker(process, lambda _i: None, "test_worker_errors", on_done=on_done, on_error=on_error)
    try:
        for i in (1, 2, 3, 4):  # one at a time: each is processed, none skipped
            w.submit(i)
            assert w.wait_idle(5.0)
            assert w.pending == 0
        w.submit(5)
        assert w.wait_idle(5.0)
        assert all_done.wait(5.0)  # wait_idle may return before on_done of the last item ran
    finally:
        w.stop()
    assert done == [10, 20, 40, 50]
    assert done_calls == 5 and w.errors == 2
    assert errors == [("test_worker_errors", "KeyError(1700000000)"),
                      ("test_worker_errors", "ValueError('bad item 3')")]  # fmt: skip


def test_a_failing_on_error_is_logged_and_the_worker_goes_on(caplog) -> None:  # noqa: ANN001
    done: list[int] = []

    def on_error(e: BaseException) -> None:
        raise RuntimeError(f"handler broke on {e!r}")

    def on_done() -> None:
        raise KeyError("gone")

    w = NewestFrameWorker(done.append, lambda _i: None, "test_worker_errors2", on_done=on_done, on_error=on_error)
    try:
        with caplog.at_level("ERROR", logger="seg_perception.ros.worker"):
            for i in (7, 8):
                w.submit(i)
                assert w.wait_idle(5.0)
            w.stop()
    finally:
        w.stop()
    assert done == [7, 8]
    assert w.errors == 2  # stop joined the thread: both on_done calls ran and failed
    assert any("handler broke on KeyError('gone')" in r.getMessage() for r in caplog.records)
