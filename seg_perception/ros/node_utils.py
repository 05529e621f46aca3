"""Pieces shared by the package's nodes: counted, throttled drops and per-stage timing statistics."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
import traceback
from collections import Counter, defaultdict, deque
from collections.abc import Callable

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String

from seg_perception.ros.qos import LATCHED_QOS


class NodeStats:
    """Counts frames and drops and keeps recent per-stage timings of a node; publishes them as JSON on ``~/stats``.

    The JSON schema: ``{"node": str, "frames_in": int, "frames_out": int, "drops": {reason: count},
    "stage_ms": {stage: {"mean": float, "median": float, "p90": float, "n": int}}}``.
    """

    def __init__(self, node: Node, period_s: float = 2.0, window: int = 200) -> None:
        self.node = node
        self.frames_in = 0
        self.frames_out = 0
        self.drops: Counter[str] = Counter()
        self._stages: defaultdict[str, deque[float]] = defaultdict(lambda: deque(maxlen=window))
        self._pub = node.create_publisher(String, "~/stats", LATCHED_QOS)
        self._timer = node.create_timer(period_s, self.publish) if period_s > 0 else None

    def drop(self, reason: str, detail: str) -> None:
        """Count a dropped input under ``reason`` and log it, throttled to one line per 5 s."""
        self.drops[reason] += 1
        self.node.get_logger().warning(
            f"dropped input ({reason}, {self.drops[reason]} so far): {detail}", throttle_duration_sec=5.0
        )

    def drop_exception(self, e: BaseException) -> None:
        """Count an unexpected exception as a drop (``cuda_oom`` for CUDA out-of-memory, else ``exception``) and
        log its traceback, throttled."""
        name = type(e).__name__
        key = "cuda_oom" if name == "OutOfMemoryError" else "exception"
        self.drops[key] += 1
        self.node.get_logger().error(
            f"dropped input ({key}, {self.drops[key]} so far): {name}: {e}\n{traceback.format_exc()}",
            throttle_duration_sec=5.0,
        )

    def add_timings(self, timings_ms: dict[str, float]) -> None:
        """Record one frame's stage timings [ms]."""
        for stage, ms in timings_ms.items():
            self._stages[stage].append(float(ms))

    def as_dict(self) -> dict:
        """Current statistics as a JSON-ready dict."""
        stages = {}
        for stage, values in self._stages.items():
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
            "drops": dict(self.drops),
            "stage_ms": stages,
        }

    def publish(self) -> None:
        """Publish the statistics on ``~/stats`` (latched)."""
        self._pub.publish(String(data=json.dumps(self.as_dict())))


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
    """Run a node until SIGINT/SIGTERM, then publish its final ``~/stats`` and shut down cleanly.

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
        stats = getattr(node, "stats", None)
        if isinstance(stats, NodeStats):
            stats.publish()
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
