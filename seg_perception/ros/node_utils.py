"""Pieces shared by the package's nodes: the callback guard, counted drops throttled per reason, input arrivals,
stage timings (reported on ``/diagnostics`` by ``ros/diagnostics.py``)."""

from __future__ import annotations

import json
import logging
import math
import signal
import sys
import threading
import time
import traceback
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import rclpy
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from seg_perception.core.errors import InputRejected

T = TypeVar("T")


class NodeStats:
    """Counts frames, drops and rejected messages, input arrivals per topic and per-stage timings (one place).

    ``ros/diagnostics.py`` reports these numbers on ``/diagnostics``; tests read them here directly.

    Every primary input (a colour image for the segmentation node, a cloud for the costmap node) is counted in
    ``frames_in`` and ends in exactly one of ``frames_out`` or ``drops[reason]`` (frames still waiting for a partner
    are ``pending``), so ``frames_in == frames_out + sum(drops) + pending``. Messages of the other inputs (depth,
    camera_info, label_info) that are refused are counted in ``rejected[reason]``; usable input with a
    problem worth knowing (cloud labels the class list does not name) in ``warnings[reason]``.

    Log lines are throttled per reason (one line per reason every ``throttle_s``), so one frequent problem never
    hides another.

    ``as_dict()`` schema: ``{"node": str, "frames_in": int, "frames_out": int, "pending": int, "drops": {reason: count},
    "rejected": {reason: count}, "warnings": {reason: count}, "transport_lost": {topic: count},
    "stage_ms": {stage: {"mean": float, "median": float, "p90": float, "n": int}}}``.
    """

    def __init__(self, node: Node, window: int = 200, throttle_s: float = 5.0) -> None:
        self.node = node
        self.frames_in = 0
        self.frames_out = 0
        self.pending = 0
        self.drops: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.warnings: Counter[str] = Counter()
        self.transport_lost: Counter[str] = Counter()
        self.throttle_s = throttle_s
        self.lock = threading.RLock()  # counts change from the executor and from a worker thread
        self._last_log: dict[str, float] = {}
        self._stages: defaultdict[str, deque[float]] = defaultdict(lambda: deque(maxlen=window))
        #: topic -> (arrival time [s, steady clock], stamp delay [ms] or NaN without a header) of recent messages
        self.arrivals: defaultdict[str, deque[tuple[float, float]]] = defaultdict(lambda: deque(maxlen=1000))
        self.received_total: Counter[str] = Counter()

    def received(self, topic: str, msg: object) -> None:
        """Record that a message of ``topic`` arrived: its steady-clock time and its header stamp's delay behind
        the node's clock (ROS time, so simulated time with ``use_sim_time``) [ms]; called by the guard."""
        stamp = getattr(getattr(msg, "header", None), "stamp", None)
        delay_ms = math.nan
        if stamp is not None:
            now_ns = self.node.get_clock().now().nanoseconds
            delay_ms = (now_ns - (int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec))) / 1e6
        with self.lock:
            self.arrivals[topic].append((time.monotonic(), delay_ms))
            self.received_total[topic] += 1

    def _count(self, counter: Counter[str], kind: str, key: str, n: int = 1) -> tuple[int, bool]:
        """Add ``n`` to ``counter[key]``; returns (the new total, whether a log line for ``kind:key`` is due now)."""
        now = time.monotonic()
        with self.lock:
            counter[key] += n
            due = now - self._last_log.get(f"{kind}:{key}", -math.inf) >= self.throttle_s
            if due:
                self._last_log[f"{kind}:{key}"] = now
            return counter[key], due

    def drop(self, reason: str, detail: str) -> None:
        """Count a dropped frame under ``reason``; log it (throttled per reason)."""
        total, due = self._count(self.drops, "drop", reason)
        if due:
            self.node.get_logger().warning(f"dropped frame ({reason}, {total} so far): {detail}")

    def reject(self, reason: str, detail: str) -> None:
        """Count a refused message of a secondary input (depth, camera_info, label_info); log throttled."""
        total, due = self._count(self.rejected, "reject", reason)
        if due:
            self.node.get_logger().warning(f"rejected message ({reason}, {total} so far): {detail}")

    def warn(self, reason: str, detail: str) -> None:
        """Count usable input with a problem under ``reason``; log throttled per reason."""
        total, due = self._count(self.warnings, "warn", reason)
        if due:
            self.node.get_logger().warning(f"{detail} ({reason}, {total} so far)")

    def lost_in_transport(self, topic: str, count: int) -> None:
        """Count messages of ``topic`` that were sent but never reached this node (the DDS ``message_lost`` event:
        not frames skipped by the keep-last-1 newest-frame policy); they never entered ``frames_in``."""
        if count <= 0:
            return
        total, due = self._count(self.transport_lost, "lost", topic, count)
        if due:
            self.node.get_logger().warning(
                f"{count} {topic} message(s) sent but lost in transport ({total} so far); see README 'Transport limits'"
            )

    def count_exception(self, e: BaseException, where: str, primary: bool) -> None:
        """Count an exception raised while handling input from ``where`` (a topic, timer or service name).

        ``InputRejected`` is a known rule (its own reason, a warning); anything else is ``exception`` (``cuda_oom``
        for CUDA out-of-memory) with the traceback in a throttled error line. ``primary`` says whether the input was a
        frame (counted in ``drops``) or another message (``rejected``).
        """
        if isinstance(e, InputRejected):
            (self.drop if primary else self.reject)(e.reason, f"{where}: {e.detail}")
            return
        name = type(e).__name__
        key = "cuda_oom" if name == "OutOfMemoryError" else "exception"
        total, due = self._count(self.drops if primary else self.rejected, f"exception:{where}:{name}", key)
        if due:
            self.node.get_logger().error(
                f"{where}: {name}: {e} ({key}, {total} so far; the node goes on)\n{traceback.format_exc()}"
            )

    def add_timings(self, timings_ms: dict[str, float]) -> None:
        """Record one frame's stage timings [ms]."""
        with self.lock:
            for stage, ms in timings_ms.items():
                self._stages[stage].append(float(ms))

    def as_dict(self) -> dict:
        """Current statistics as a JSON-ready dict."""
        stages = {}
        with self.lock:
            snapshot = {k: list(v) for k, v in self._stages.items()}
        for stage, values in snapshot.items():
            if values:
                v = sorted(values)
                stages[stage] = {
                    "mean": round(sum(v) / len(v), 3),
                    "median": round(v[len(v) // 2], 3),
                    "p90": round(v[min(len(v) - 1, int(0.9 * len(v)))], 3),
                    "n": len(v),
                }
        return {
            "node": self.node.get_fully_qualified_name(),
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "pending": self.pending,
            "drops": dict(self.drops),
            "rejected": dict(self.rejected),
            "warnings": dict(self.warnings),
            "transport_lost": dict(self.transport_lost),
            "stage_ms": stages,
        }


class RclpyLogHandler(logging.Handler):
    """Forwards the package's Python log records (``seg_perception.*``: model exports, chosen network size, cache
    repairs) to a node's rclpy logger, so they appear in the node's log like its own lines."""

    def __init__(self, node: Node, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.node = node

    def emit(self, record: logging.LogRecord) -> None:  # noqa: D102
        try:
            text = f"{record.name}: {record.getMessage()}"
            log = self.node.get_logger()
            if record.levelno >= logging.ERROR:
                log.error(text)
            elif record.levelno >= logging.WARNING:
                log.warning(text)
            else:
                log.info(text)
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


class GuardedNode(Node):
    """A Node whose every subscription, timer and service callback runs inside one guard.

    An exception escaping an rclpy callback stops ``spin`` and with it the node. Here no exception leaves a callback:
    ``InputRejected`` becomes a counted drop under its reason, anything else a counted ``exception`` with a throttled
    error line naming the topic; the node keeps its last good state and goes on. Subscriptions on ``primary_topics``
    count as frames (``stats.drops``), every other callback as ``stats.rejected``. Service callbacks return the
    (default) response on an exception. Exiting stays reserved for start-up errors raised from ``__init__``.
    """

    primary_topics: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401
        super().__init__(*args, **kwargs)
        self._log_handler = RclpyLogHandler(self)
        package_logger = logging.getLogger("seg_perception")
        package_logger.addHandler(self._log_handler)
        if package_logger.getEffectiveLevel() > logging.INFO:
            package_logger.setLevel(logging.INFO)

    def destroy_node(self) -> None:
        """Detach the log forwarding, then destroy the node."""
        logging.getLogger("seg_perception").removeHandler(self._log_handler)
        super().destroy_node()

    def finish(self) -> None:
        """Called once before the final statistics at shutdown: count frames still waiting (override)."""

    def _guard(self, where: str, callback: Callable[..., Any], primary: bool, service: bool = False) -> Callable:
        def guarded(*args: Any) -> Any:  # noqa: ANN401
            try:
                return callback(*args)
            except Exception as e:  # noqa: BLE001 - the one place where any callback error is caught and counted
                stats = getattr(self, "stats", None)
                if isinstance(stats, NodeStats):
                    stats.count_exception(e, where, primary)
                else:
                    self.get_logger().error(f"{where}: {type(e).__name__}: {e}", throttle_duration_sec=5.0)
                return args[-1] if service and args else None

        return guarded

    def create_subscription(self, msg_type, topic, callback, qos_profile, **kwargs):  # type: ignore[no-untyped-def] # noqa: ANN001, ANN003, ANN201, D102
        if "event_callbacks" not in kwargs:  # count what DDS knows was sent but never arrived
            kwargs["event_callbacks"] = SubscriptionEventCallbacks(message_lost=self._guard(
                f"{topic} message_lost", lambda info: self._lost(topic, info.total_count_change), False))
        def counted(msg: Any) -> Any:  # noqa: ANN401 - arrival recorded for /diagnostics before any check
            stats = getattr(self, "stats", None)
            if isinstance(stats, NodeStats):
                stats.received(topic, msg)
            return callback(msg)

        return super().create_subscription(
            msg_type, topic, self._guard(topic, counted, topic in self.primary_topics), qos_profile, **kwargs
        )

    def _lost(self, topic: str, count: int) -> None:
        stats = getattr(self, "stats", None)
        if isinstance(stats, NodeStats):
            stats.lost_in_transport(topic, count)

    def create_timer(self, timer_period_sec, callback, *args, **kwargs):  # type: ignore[no-untyped-def] # noqa: ANN001, ANN002, ANN003, ANN201, D102
        name = getattr(callback, "__name__", "timer")
        return super().create_timer(timer_period_sec, self._guard(f"timer {name}", callback, False), *args, **kwargs)

    def create_service(self, srv_type, srv_name, callback, **kwargs):  # type: ignore[no-untyped-def] # noqa: ANN001, ANN003, ANN201, D102
        return super().create_service(srv_type, srv_name, self._guard(f"service {srv_name}", callback, False, True),
                                      **kwargs)  # fmt: skip


class NewestFrameWorker(Generic[T]):
    """Runs ``process(item)`` on its own thread for the newest submitted item, so the executor stays free for
    subscriptions, timers and parameter services while a frame is being segmented.

    One slot: an item submitted while another still waits replaces it, and the replaced one goes to
    ``on_skipped`` (the node counts it). ``process`` must handle its own exceptions (the node counts them as drops).

    Args:
        process: work on one item (called on the worker thread).
        on_skipped: called (on the submitting thread) with an item replaced before it was processed, and at
            ``stop`` with the one still waiting.
        name: thread name.
        on_done: called on the worker thread after each item, once the worker counts as idle again.
    """

    def __init__(
        self, process: Callable[[T], None], on_skipped: Callable[[T], None], name: str = "worker",
        on_done: Callable[[], None] = lambda: None,
    ) -> None:  # fmt: skip
        self._process, self._on_skipped, self._on_done = process, on_skipped, on_done
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
            try:
                self._process(item)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
                self._on_done()


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


def run_node(factory: Callable[[], Node], name: str, args: list[str] | None = None) -> int:
    """Run a node until SIGINT/SIGTERM, then publish its final ``/diagnostics`` and shut down cleanly.

    rclpy's own signal handler would shut the context down before the node could say goodbye, so signals only
    set a flag here. A start-up failure (bad parameters, missing weights) prints one clear line and returns 1.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    node = None
    try:
        node = factory()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
        if isinstance(node, GuardedNode):
            node.finish()
        stats = getattr(node, "stats", None)
        diagnostics = getattr(node, "diagnostics", None)
        if diagnostics is not None:
            diagnostics.force_update()
        if isinstance(stats, NodeStats):
            node.get_logger().info(f"final stats: {json.dumps(stats.as_dict())}")
        executor.shutdown()
        return 0
    except Exception as e:  # noqa: BLE001 - start-up failure or a bug: one clear line, non-zero exit
        print(f"{name}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
