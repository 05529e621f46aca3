"""Pieces shared by the package's nodes: the managed node with its callback guard, counted drops throttled per
reason, input arrivals, stage timings (reported on ``/diagnostics`` by ``ros/diagnostics.py``), ``run_node``."""

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
from typing import Any

import rclpy
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.subscription import Subscription

from seg_perception.core.errors import InputRejected
from seg_perception.core.timing import timing_summary
from seg_perception.ros.convert import stamp_to_ns
from seg_perception.ros.params import LIFECYCLE, LifecycleSettings, declare_groups


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
            delay_ms = (self.node.get_clock().now().nanoseconds - stamp_to_ns(stamp)) / 1e6
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
                s = timing_summary(values)
                stages[stage] = {k: s[k] for k in ("mean", "median", "p90", "n")}
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


class GuardedNode(LifecycleNode):
    """A managed (lifecycle) node whose every subscription, timer and service callback runs inside one guard.

    An exception escaping an rclpy callback stops ``spin`` and with it the node. Here no exception leaves a callback:
    ``InputRejected`` becomes a counted drop under its reason, anything else a counted ``exception`` with a throttled
    error line naming the topic; the node keeps its last good state and goes on. Subscriptions on ``primary_topics``
    count as frames (``stats.drops``), every other callback as ``stats.rejected``. Service callbacks return the
    (default) response on an exception.

    Lifecycle (REP-2002, driven by ``ros2 lifecycle`` or Nav2's lifecycle_manager): parameters are declared in
    ``__init__`` (``ros2 param`` works in every state); a subclass allocates in ``configure()``, subscribes in
    ``activate()`` (unsubscribed at deactivation), frees in ``cleanup()``; outputs are lifecycle publishers. A
    ``configure`` that raises (missing weights) is logged and returns FAILURE: the node stays unconfigured and alive.
    ``autostart`` (default true, read-only): configure + activate at the end of construction (``start()``).
    """

    primary_topics: tuple[str, ...] = ()
    lifecycle: LifecycleSettings  # set by declare_groups((LIFECYCLE,))

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401
        super().__init__(*args, **kwargs)
        self._log_handler = RclpyLogHandler(self)
        package_logger = logging.getLogger("seg_perception")
        package_logger.addHandler(self._log_handler)
        if package_logger.getEffectiveLevel() > logging.INFO:
            package_logger.setLevel(logging.INFO)
        declare_groups(self, (LIFECYCLE,))
        self.autostart = self.lifecycle.autostart
        self._active_entities: list[Any] = []  # subscriptions and timers that exist only while active
        self.configure_error: Exception | None = None  # the last failed configure's

    # -- lifecycle ---------------------------------------------------------------------------------------------
    @property
    def lifecycle_state(self) -> str:
        """The current lifecycle state's label: unconfigured, inactive, active or finalized."""
        return str(self._state_machine.current_state[1])

    def start(self) -> None:
        """Configure and activate when ``autostart`` is true (a subclass calls this at the end of ``__init__``)."""
        if self.autostart and self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def configure(self) -> None:
        """Allocate what the node needs to run (override); raise on a configuration error."""

    def activate(self) -> None:
        """Subscribe the inputs and start the timers through ``create_subscription`` / ``create_timer`` (override);
        they are destroyed at deactivation."""

    def deactivate(self) -> None:
        """Called after the inputs were unsubscribed, before the outputs are disabled: finish or count pending
        frames (override)."""

    def cleanup(self) -> None:
        """Free what ``configure`` allocated (override)."""

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:  # noqa: D102
        try:
            self.configure_error = None
            self.configure()
        except Exception as e:  # noqa: BLE001 - a configuration error is reported, the node stays unconfigured
            self.configure_error = e
            self.get_logger().error(f"configure failed, the node stays unconfigured: {type(e).__name__}: {e}")
            try:
                self.cleanup()
            except Exception as e2:  # noqa: BLE001 - partial state; the first error is the one that matters
                self.get_logger().error(f"cleanup after the failed configure: {type(e2).__name__}: {e2}")
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info("configured")
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:  # noqa: D102
        ret = super().on_activate(state)  # enables the lifecycle publishers
        self.activated_s = time.monotonic()  # /diagnostics: input timeouts count from here
        self._activating = True
        try:
            self.activate()
        except Exception as e:  # rclpy turns it into ERROR -> on_error (not logged by rclpy)
            self.get_logger().error(f"activate failed: {type(e).__name__}: {e}")
            raise
        finally:
            self._activating = False
        self.get_logger().info("activated")
        return ret

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:  # noqa: D102
        self._drop_active_entities()  # a transition raised: free everything; rclpy then leaves it unconfigured
        self.cleanup()
        return super().on_error(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:  # noqa: D102
        self._drop_active_entities()
        self.deactivate()
        self.get_logger().info("deactivated")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:  # noqa: D102
        self.cleanup()
        self.get_logger().info("cleaned up")
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:  # noqa: D102
        if state.label == "active":
            self._drop_active_entities()
            self.deactivate()
        if state.label in ("active", "inactive"):
            self.cleanup()
        return super().on_shutdown(state)

    def _drop_active_entities(self) -> None:
        for entity in self._active_entities:
            if isinstance(entity, Subscription):
                self.destroy_subscription(entity)
            else:
                self.destroy_timer(entity)
        self._active_entities.clear()

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

        sub = super().create_subscription(
            msg_type, topic, self._guard(topic, counted, topic in self.primary_topics), qos_profile, **kwargs
        )
        if getattr(self, "_activating", False):
            self._active_entities.append(sub)
        return sub

    def _lost(self, topic: str, count: int) -> None:
        stats = getattr(self, "stats", None)
        if isinstance(stats, NodeStats):
            stats.lost_in_transport(topic, count)

    def create_timer(self, timer_period_sec, callback, *args, **kwargs):  # type: ignore[no-untyped-def] # noqa: ANN001, ANN002, ANN003, ANN201, D102
        name = getattr(callback, "__name__", "timer")
        timer = super().create_timer(timer_period_sec, self._guard(f"timer {name}", callback, False), *args, **kwargs)
        if getattr(self, "_activating", False):
            self._active_entities.append(timer)
        return timer

    def create_service(self, srv_type, srv_name, callback, **kwargs):  # type: ignore[no-untyped-def] # noqa: ANN001, ANN003, ANN201, D102
        return super().create_service(srv_type, srv_name, self._guard(f"service {srv_name}", callback, False, True),
                                      **kwargs)  # fmt: skip


def run_node(factory: Callable[[], Node], name: str, args: list[str] | None = None) -> int:
    """Run a node until SIGINT/SIGTERM, then publish its final ``/diagnostics`` and shut down cleanly.

    rclpy's own signal handler would shut the context down before the node could say goodbye, so signals only
    set a flag here. A start-up failure (bad parameters; with ``autostart``, a failed configure: missing weights, an
    impossible grid) prints one clear line and returns 1: nothing else would ever configure the node. Without
    ``autostart`` a failed configure leaves the node running unconfigured for its lifecycle manager.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    node = None
    try:
        node = factory()
        if isinstance(node, GuardedNode) and node.autostart and node.configure_error is not None:
            raise node.configure_error
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
