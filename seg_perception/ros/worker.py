"""Work off the executor: the newest-frame worker thread, and a stage stopwatch (no ROS imports)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
_log = logging.getLogger(__name__)


def _log_error(e: BaseException) -> None:
    _log.error("worker: %s: %s (the worker goes on)", type(e).__name__, e, exc_info=e)


class NewestFrameWorker(Generic[T]):
    """Runs ``process(item)`` on its own thread for the newest submitted item, so the executor stays free for
    subscriptions, timers and parameter services while a frame is being segmented.

    One slot: an item submitted while another still waits replaces it, and the replaced one goes to
    ``on_skipped`` (the node counts it). ``process`` should handle its own exceptions (the node counts them as
    drops); an exception that still escapes ``process`` or ``on_done`` goes to ``on_error`` (and ``errors``), and
    the thread goes on with the next item.

    Args:
        process: work on one item (called on the worker thread).
        on_skipped: called (on the submitting thread) with an item replaced before it was processed, and at
            ``stop`` with the one still waiting.
        name: thread name.
        on_done: called on the worker thread after each item, once the worker counts as idle again.
        on_error: called on the worker thread, inside the ``except`` block, with an exception raised by ``process``
            or ``on_done`` (default: a ``logging`` error line with the traceback).
    """

    def __init__(
        self, process: Callable[[T], None], on_skipped: Callable[[T], None], name: str = "worker",
        on_done: Callable[[], None] = lambda: None, on_error: Callable[[BaseException], None] = _log_error,
    ) -> None:  # fmt: skip
        self._process, self._on_skipped, self._on_done, self._on_error = process, on_skipped, on_done, on_error
        self.errors = 0  #: exceptions that escaped ``process`` or ``on_done`` (read from any thread)
        self._cond = threading.Condition()
        self._slot: T | None = None
        self._busy = False
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Items waiting or being processed (0-2)."""
        with self._cond:
            return int(self._slot is not None) + int(self._busy)

    def submit(self, item: T) -> None:
        """Hand over the newest item (an older waiting one is skipped)."""
        with self._cond:
            old, self._slot = self._slot, item
            self._cond.notify()
        if old is not None:
            self._on_skipped(old)

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until nothing waits or runs (tests, shutdown); False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._slot is not None or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def stop(self, timeout_s: float = 10.0) -> None:
        """Let the item being processed finish, skip the one waiting, end the thread."""
        with self._cond:
            self._stop = True
            old, self._slot = self._slot, None
            self._cond.notify_all()
        if old is not None:
            self._on_skipped(old)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._slot is None and not self._stop:
                    self._cond.wait()
                item = self._slot
                if self._stop or item is None:
                    return
                self._slot, self._busy = None, True
            self._call(self._process, item)
            with self._cond:
                self._busy = False
                self._cond.notify_all()
            self._call(self._on_done)

    def _call(self, fn: Callable[..., None], *args: object) -> None:
        """``fn(*args)``; an exception goes to ``on_error`` (a failing ``on_error`` is logged) so the thread lives."""
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - one failed call must not end the worker thread
            self.errors += 1
            try:
                self._on_error(e)
            except Exception as e2:  # noqa: BLE001
                _log_error(e2)


class Stopwatch:
    """Wall-clock stage timer: ``sw.lap("stage")`` records the milliseconds since the previous lap."""

    def __init__(self) -> None:
        self.t = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        """Record the time since the last lap under ``stage`` [ms]."""
        now = time.perf_counter()
        self.laps[stage] = (now - self.t) * 1e3
        self.t = now

    def skip(self) -> None:
        """Restart the lap clock without recording (time measured elsewhere)."""
        self.t = time.perf_counter()
