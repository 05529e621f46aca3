"""Record ROS 2 topics into a rosbag2 (MCAP or sqlite3) with rclpy raw subscriptions and ``rosbags``: the
``Recorder`` behind ``seg-perception record`` (``tools.record``), usable on any rclpy node that is being spun.

``TOPIC`` is a name (its type is discovered from the ROS graph) or ``name:=pkg/msg/Type``. Topics are polled
every 0.1 s and subscribed as soon as a publisher is visible, so the recorder may start before the nodes it
records. When the discovery timeout (default 10 s) passes, the still-missing topics are reported once;
those with an explicit type are then subscribed with the default QoS, the others keep being polled.

Each message is stored as the serialized CDR bytes received (``raw=True``; no deserialization) with its
receive time (rmw ``received_timestamp``, system clock, ns) as the bag time.

QoS (rosbag2's "adapt to offers" rule, ``choose_qos``): reliable unless some publisher is best-effort;
transient-local when every visible publisher is transient-local (latched grids are recorded, including the
message published before the recorder joined), otherwise volatile; keep-last, depth 10. A transient-local
subscription would not match a volatile publisher, hence volatile by default. The offered QoS is written to
the bag (``offered_qos_profiles``) so ``replay`` re-publishes latched topics as latched.

Python API: ``Recorder(node, bag, topics)``; ``Recorder.close()`` writes metadata.yaml and returns a summary.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

from seg_perception.bag import open_writer, resolve_message_class, typestore

__all__ = ["RecordSummary", "Recorder", "TopicRequest", "choose_qos", "parse_topic_args"]

DEFAULT_DEPTH = 10


@dataclass(frozen=True)
class TopicRequest:
    """A topic to record: its name and, optionally, its type (``pkg/msg/Type``; None = from the graph)."""

    name: str
    msgtype: str | None = None


def parse_topic_args(items: Sequence[str]) -> list[TopicRequest]:
    """Parse ``name`` / ``name:=pkg/msg/Type`` arguments; names get a leading ``/`` if missing.

    Raises:
        ValueError: empty name, a type not shaped ``pkg/msg/Type``, or a topic given twice.
    """
    requests: dict[str, TopicRequest] = {}
    for item in items:
        name, sep, msgtype = item.partition(":=")
        name = name.strip()
        if not name:
            raise ValueError(f"empty topic name in {item!r}")
        if not name.startswith("/"):
            name = "/" + name
        if sep:
            parts = msgtype.split("/")
            if len(parts) != 3 or not all(parts):
                raise ValueError(f"type must look like pkg/msg/Type, got {msgtype!r} in {item!r}")
        if name in requests:
            raise ValueError(f"topic {name} given twice")
        requests[name] = TopicRequest(name, msgtype if sep else None)
    return list(requests.values())


def choose_qos(offered: Sequence[Any], depth: int = DEFAULT_DEPTH) -> Any:
    """Subscription QoS compatible with every offered publisher QoS (rclpy ``QoSProfile`` list).

    Reliable unless a publisher is best-effort; transient-local only when all publishers are transient-local
    (a transient-local subscription does not match a volatile publisher); keep-last ``depth``. With no offers:
    reliable + volatile.
    """
    reliable = all(q.reliability == ReliabilityPolicy.RELIABLE for q in offered)
    latched = bool(offered) and all(q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in offered)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def _to_bag_qos(profile: Any) -> Any:
    """rclpy ``QoSProfile`` -> ``rosbags.interfaces.Qos`` (the enums share the rmw numbering)."""
    def duration(d: Any) -> Any:
        ns = int(d.nanoseconds)
        if ns >= 2**63 - 1 or ns < 0:  # "infinite", written as rosbag2 does
            return QosTime(sec=2147483647, nsec=4294967295)
        sec, nsec = divmod(ns, 1_000_000_000)
        return QosTime(sec=sec, nsec=nsec)

    def enum(cls: Any, value: Any, fallback: Any) -> Any:
        try:
            return cls(int(value))
        except (ValueError, TypeError):
            return fallback

    return Qos(
        history=enum(QosHistory, profile.history, QosHistory.UNKNOWN),
        depth=int(profile.depth),
        reliability=enum(QosReliability, profile.reliability, QosReliability.UNKNOWN),
        durability=enum(QosDurability, profile.durability, QosDurability.UNKNOWN),
        deadline=duration(profile.deadline),
        lifespan=duration(profile.lifespan),
        liveliness=enum(QosLiveliness, profile.liveliness, QosLiveliness.UNKNOWN),
        liveliness_lease_duration=duration(profile.liveliness_lease_duration),
        avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions),
    )


@dataclass
class RecordSummary:
    """What a ``Recorder`` wrote.

    Attributes:
        path: bag folder.
        storage: ``"mcap"`` or ``"sqlite3"``.
        counts: messages written per topic (0 for requested topics that never arrived).
        types: type of each subscribed topic.
        first_ns, last_ns: receive times of the first and last message [ns, system clock] (0 if none).
        missing: requested topics never subscribed (no publisher found).
        errors: writer errors (empty when the bag is complete).
    """

    path: Path
    storage: str
    counts: dict[str, int] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    first_ns: int = 0
    last_ns: int = 0
    missing: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Messages written on all topics."""
        return sum(self.counts.values())

    def line(self) -> str:
        """One-line human summary."""
        span = (self.last_ns - self.first_ns) / 1e9 if self.total else 0.0
        topics = ", ".join(f"{t} {n}" for t, n in self.counts.items())
        extra = f"; never found: {', '.join(self.missing)}" if self.missing else ""
        extra += f"; ERRORS: {'; '.join(self.errors)}" if self.errors else ""
        return f"recorded {self.total} messages ({span:.2f} s) to {self.path} [{self.storage}]: {topics}{extra}"


_CLOSE = object()


class Recorder:
    """Records topics of a live ROS graph into a rosbag2 (see the module docstring for discovery and QoS).

    The node must be spun by an executor (discovery runs on a 0.1 s timer, messages arrive in callbacks).
    Messages go through a queue to a writer thread that owns the ``rosbags.Writer`` (sqlite3 connections are
    bound to one thread, and disk writes never block the executor).

    Args:
        node: an rclpy node.
        bag: bag folder to create (must not exist).
        topics: ``TopicRequest`` list or ``name[:=pkg/msg/Type]`` strings.
        storage: ``"mcap"`` or ``"sqlite3"``.
        max_messages: stop writing after this many messages in total (``done`` becomes True).
        discovery_timeout_s: after this, missing topics are reported once and explicitly typed ones are
            subscribed with the default QoS.
        depth: subscription queue depth.
    Raises:
        ValueError: bad storage, a bag path that exists, bad topic arguments.
    """

    def __init__(
        self,
        node: Any,
        bag: str | Path,
        topics: Sequence[TopicRequest | str],
        *,
        storage: str = "mcap",
        max_messages: int | None = None,
        discovery_timeout_s: float = 10.0,
        depth: int = DEFAULT_DEPTH,
    ) -> None:
        if storage not in ("mcap", "sqlite3"):
            raise ValueError(f"storage must be mcap or sqlite3, got {storage!r}")
        if max_messages is not None and max_messages < 1:
            raise ValueError(f"max_messages must be >= 1, got {max_messages}")
        requests = [t for t in topics if isinstance(t, TopicRequest)]
        requests += parse_topic_args([t for t in topics if isinstance(t, str)])
        if not requests:
            raise ValueError("no topic to record")
        for req in requests:  # fail fast on an explicit type that cannot be subscribed or stored
            if req.msgtype is not None:
                self._check_type(req.msgtype, typestore())
        self.path = Path(bag)
        if self.path.exists():
            raise ValueError(f"{self.path} exists already; rosbag2 writers never overwrite, choose a new path")
        self.node = node
        self.storage = storage
        self.max_messages = max_messages
        self.depth = depth
        self.discovery_timeout_s = discovery_timeout_s
        self._typestore = typestore()
        self._pending: dict[str, TopicRequest] = {r.name: r for r in requests}
        self._requested = list(self._pending)
        self._subs: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {name: 0 for name in self._requested}
        self._types: dict[str, str] = {}
        self._total = 0
        self._first_ns = 0
        self._last_ns = 0
        self._closed = False
        self._done = threading.Event()
        self._errors: list[str] = []
        self._warned_timeout = False
        self._t_start = time.monotonic()
        self._queue: queue.Queue[Any] = queue.Queue()
        opened = threading.Event()
        self._thread = threading.Thread(target=self._writer_loop, args=(opened,), name="bag-writer", daemon=True)
        self._thread.start()
        opened.wait()
        if self._errors:
            raise ValueError(f"cannot open {self.path}: {self._errors[0]}")
        self._timer = node.create_timer(0.1, self.discover)
        self.discover()

    # -- state -------------------------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """True once ``max_messages`` messages were written."""
        return self._done.is_set()

    @property
    def total(self) -> int:
        """Messages accepted so far (all topics)."""
        with self._lock:
            return self._total

    def counts(self) -> dict[str, int]:
        """Messages accepted so far per topic."""
        with self._lock:
            return dict(self._counts)

    def subscribed(self) -> dict[str, Any]:
        """Topic name -> rclpy subscription, for the topics subscribed so far."""
        return dict(self._subs)

    def missing(self) -> list[str]:
        """Requested topics not subscribed yet."""
        return list(self._pending)

    # -- discovery ---------------------------------------------------------------------------------------------
    def discover(self) -> None:
        """Subscribe to pending topics that now have a publisher (called by the timer; safe to call by hand)."""
        if self._closed or not self._pending:
            return
        graph = dict(self.node.get_topic_names_and_types())
        timed_out = time.monotonic() - self._t_start >= self.discovery_timeout_s
        for name, req in list(self._pending.items()):
            infos = self.node.get_publishers_info_by_topic(name) if name in graph else []
            if infos:
                types = sorted({i.topic_type for i in infos})
                msgtype = req.msgtype or types[0]
                if req.msgtype is None and len(types) > 1:
                    self._error_once(name, f"{name} has several types {types}; give one as {name}:=pkg/msg/Type")
                    continue
                if req.msgtype is not None and req.msgtype not in types:
                    self.node.get_logger().warning(f"{name}: requested type {req.msgtype}, graph has {types}")
                self._subscribe(name, msgtype, [i.qos_profile for i in infos])
            elif timed_out and req.msgtype is not None:
                self._subscribe(name, req.msgtype, [])
        if timed_out and self._pending and not self._warned_timeout:
            self._warned_timeout = True
            self.node.get_logger().warning(
                f"no publisher after {self.discovery_timeout_s:g} s for {sorted(self._pending)}; still waiting"
            )

    def _error_once(self, name: str, text: str) -> None:
        if text not in self._errors:
            self._errors.append(text)
            self.node.get_logger().error(text)

    @staticmethod
    def _check_type(msgtype: str, typestore: Any) -> type:
        """The rclpy class of ``msgtype``; ValueError if it is not installed or unknown to the rosbags typestore."""

        cls = resolve_message_class(msgtype)
        try:
            typestore.generate_msgdef(msgtype, ros_version=2)
        except (KeyError, LookupError) as exc:
            raise ValueError(f"{msgtype} is not in the rosbags Kilted type store: {exc}") from exc
        return cls

    def _subscribe(self, name: str, msgtype: str, offered: list[Any]) -> None:
        try:
            cls = self._check_type(msgtype, self._typestore)
        except ValueError as exc:
            self._pending.pop(name, None)
            self._error_once(name, f"cannot record {name} ({msgtype}): {exc}")
            return
        qos = choose_qos(offered, self.depth)
        bag_qos = [_to_bag_qos(q) for q in offered] if offered else [_to_bag_qos(qos)]
        self._queue.put(("conn", name, msgtype, bag_qos))

        def callback(data: bytes, info: Any) -> None:
            self._on_message(name, data, info)

        self._types[name] = msgtype
        self._subs[name] = self.node.create_subscription(cls, name, callback, qos, raw=True)
        del self._pending[name]
        self.node.get_logger().info(
            f"recording {name} [{msgtype}] {qos.reliability.name.lower()}/{qos.durability.name.lower()}"
        )

    def _on_message(self, name: str, data: bytes, info: Any) -> None:
        t_ns = 0
        if isinstance(info, dict):
            t_ns = int(info.get("received_timestamp") or 0)
        if t_ns <= 0:
            t_ns = time.time_ns()
        with self._lock:
            if self._closed or self._done.is_set():
                return
            self._total += 1
            self._counts[name] = self._counts.get(name, 0) + 1
            if self._first_ns == 0:
                self._first_ns = t_ns
            self._last_ns = t_ns
            self._queue.put(("msg", name, t_ns, bytes(data)))
            if self.max_messages is not None and self._total >= self.max_messages:
                self._done.set()

    # -- writer thread -----------------------------------------------------------------------------------------
    def _writer_loop(self, opened: threading.Event) -> None:
        try:
            writer = open_writer(self.path, self.storage)
        except Exception as exc:  # noqa: BLE001 - any open failure is reported by __init__
            self._errors.append(str(exc))
            opened.set()
            return
        opened.set()
        conns: dict[str, Any] = {}
        while True:
            item = self._queue.get()
            if item is _CLOSE:
                break
            try:
                if item[0] == "conn":
                    _, name, msgtype, bag_qos = item
                    conns[name] = writer.add_connection(
                        name, msgtype, typestore=self._typestore, offered_qos_profiles=bag_qos
                    )
                else:
                    _, name, t_ns, data = item
                    writer.write(conns[name], t_ns, data)
            except Exception as exc:  # noqa: BLE001 - keep draining so close() still runs; summary lists it
                self._errors.append(f"{type(exc).__name__}: {exc}")
        try:
            writer.close()
        except Exception as exc:  # noqa: BLE001 - reported in the summary (exit code 1)
            self._errors.append(f"close: {type(exc).__name__}: {exc}")

    def close(self, timeout_s: float = 30.0) -> RecordSummary:
        """Stop recording, flush the queue and close the bag (writes metadata.yaml). Idempotent."""
        with self._lock:
            already = self._closed
            self._closed = True
        if not already:
            try:
                self._timer.cancel()
                self.node.destroy_timer(self._timer)
                for sub in self._subs.values():
                    self.node.destroy_subscription(sub)
            except Exception as exc:  # noqa: BLE001 - node/context may be gone; the bag still gets closed
                print(f"record: warning: unsubscribing failed ({type(exc).__name__}: {exc})", file=sys.stderr)
            self._queue.put(_CLOSE)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self._errors.append(f"writer did not finish within {timeout_s:g} s")
        with self._lock:
            return RecordSummary(
                path=self.path,
                storage=self.storage,
                counts=dict(self._counts),
                types=dict(self._types),
                first_ns=self._first_ns,
                last_ns=self._last_ns,
                missing=list(self._pending),
                errors=list(self._errors),
            )
