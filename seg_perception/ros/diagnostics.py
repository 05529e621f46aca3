"""Node health on ``/diagnostics`` (diagnostic_msgs/DiagnosticArray) with ``diagnostic_updater``, from ``NodeStats``.

Every ``diagnostic_updater.period`` seconds (a parameter the Updater declares, default 1 s, changeable at run
time) and once at shutdown,
a node publishes these statuses (names prefixed with the node name, ``hardware_id`` = the node's full name):

``input <topic>`` (one per monitored input, as diagnostic_updater's FrequencyStatus + TimeStampStatus):
    ERROR when no message arrived for ``input_timeout_s`` (counted from activation before the first one); WARN when
    ``expected_rate_hz`` > 0 and the rate is below it; else OK. Values: ``rate_hz`` (messages in the last
    ``window_s`` / the time they cover), ``expected_rate_hz``, ``messages`` (total), ``last_age_s``,
    ``stamp_delay_median_ms`` and ``stamp_delay_max_ms`` (node clock minus header stamp over the window). OK
    "node inactive: input not subscribed" (no values) while the managed node is not active.
``frames``:
    ``frames_in``, ``frames_out``, ``pending`` and one value per reason: ``drops/<reason>``, ``rejected/<reason>``,
    ``warnings/<reason>``, ``transport_lost/<topic>``. WARN when an exception was counted, else OK.
``stage timings``:
    ``<stage>/median_ms``, ``<stage>/mean_ms``, ``<stage>/p90_ms``, ``<stage>/n`` over the last 200 frames.

``stats_from_statuses`` turns the statuses back into ``NodeStats.as_dict()``'s schema (demo summary, e2e tests).
``frames_status`` and ``timings_status`` build the ``frames`` and ``stage timings`` statuses from the counters alone:
the nodes' Updater tasks call them, and ``seg-perception process`` writes the same statuses into its output bag
(``diagnostic_array``).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from diagnostic_updater import DiagnosticStatusWrapper, FunctionDiagnosticTask, Updater
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.parameter import Parameter

from seg_perception.core.config import check_declared_ranges, param
from seg_perception.ros.node_utils import NodeStats

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
COUNTERS = ("drops", "rejected", "warnings", "transport_lost")
STAGE_FIELDS = {"median_ms": "median", "mean_ms": "mean", "p90_ms": "p90", "n": "n"}
PERIOD = "diagnostic_updater.period"
#: Shortest window the input rate is measured over [s] (at least 3 periods of ``expected_rate_hz``).
MIN_WINDOW_S = 5.0


@dataclass(frozen=True)
class HealthSettings:
    """Parameters of the input checks on ``/diagnostics`` (both nodes; names are the ROS parameter names)."""

    expected_rate_hz: float = param(0.0, "an input arriving slower than this is a WARN on /diagnostics; 0 = no rate "
                                    "check (the camera's rate is not known) [Hz]", lo=0.0, hi=10000.0)  # fmt: skip
    input_timeout_s: float = param(2.0, "an input silent for this long is an ERROR on /diagnostics (and a throttled "
                                   "warning for the colour image) [s]", lo=0.1, hi=3600.0)  # fmt: skip

    def __post_init__(self) -> None:
        check_declared_ranges(self)


@dataclass(frozen=True)
class InputHealth:
    """One input topic's health at a moment (see the module docstring for the levels)."""

    level: bytes
    message: str
    rate_hz: float
    messages: int
    last_age_s: float
    delay_median_ms: float
    delay_max_ms: float


def input_health(
    arrivals: list[tuple[float, float]], total: int, now_s: float, start_s: float, settings: HealthSettings
) -> InputHealth:
    """Rate, age and stamp delay of one input from its arrivals.

    Args:
        arrivals: (steady arrival time [s], stamp delay [ms] or NaN) of recent messages, oldest first.
        total: messages received since start-up.
        now_s: steady-clock now [s]; start_s: when monitoring started [s].
        settings: the expected rate and the timeout.
    """
    rate = settings.expected_rate_hz
    window_s = max(MIN_WINDOW_S, 3.0 / rate) if rate > 0 else MIN_WINDOW_S
    recent = [(t, d) for t, d in arrivals if now_s - t <= window_s]
    covered_s = min(window_s, now_s - start_s)
    rate_hz = len(recent) / covered_s if covered_s > 0 else 0.0
    last_age_s = now_s - (arrivals[-1][0] if arrivals else start_s)
    delays = [d for _, d in recent if not math.isnan(d)]
    median = statistics.median(delays) if delays else math.nan
    worst = max(delays) if delays else math.nan
    if last_age_s > settings.input_timeout_s:
        level, msg = ERROR, (f"no input for {last_age_s:.1f} s (input_timeout_s {settings.input_timeout_s})"
                             if total else f"no input yet after {last_age_s:.1f} s")  # fmt: skip
    elif rate > 0 and rate_hz < rate:
        level, msg = WARN, f"rate {rate_hz:.2f} Hz below expected_rate_hz {rate}"
    else:
        level, msg = OK, f"rate {rate_hz:.2f} Hz"
    return InputHealth(level, msg, rate_hz, total, last_age_s, median, worst)


class NodeDiagnostics:
    """Publishes a node's ``NodeStats`` on ``/diagnostics`` through a ``diagnostic_updater.Updater``.

    Args:
        node: the node (the Updater declares ``diagnostic_updater.period`` on it and creates its timer).
        stats: the node's counters (the only source of the numbers).
        topics: the monitored inputs, as subscribed (relative names).
        settings: returns the current ``HealthSettings`` (they may change at run time).
    """

    def __init__(
        self, node: Any, stats: NodeStats, topics: Iterable[str], settings: Callable[[], HealthSettings]  # noqa: ANN401
    ) -> None:  # fmt: skip
        self.stats, self.settings, self.node = stats, settings, node
        self.start_s = time.monotonic()
        node.declare_parameter("diagnostic_updater.use_fqn", False, ParameterDescriptor(
            description="prefix status names with the node's namespace; needs a restart", read_only=True))
        self.updater = Updater(node)  # declares diagnostic_updater.period [s] (default 1.0)
        node.add_on_set_parameters_callback(self._check_period)
        node.add_post_set_parameters_callback(self._apply_period)
        self.updater.setHardwareID(node.get_fully_qualified_name())
        for topic in topics:
            name = f"input {node.resolve_topic_name(topic)}"
            self.updater.add(FunctionDiagnosticTask(name, lambda s, t=topic: self._input(s, t)))
        self.updater.add(FunctionDiagnosticTask("frames", self._frames))
        self.updater.add(FunctionDiagnosticTask("stage timings", self._timings))

    @staticmethod
    def _check_period(params: list[Parameter]) -> SetParametersResult:
        for p in params:
            if p.name == PERIOD and not (isinstance(p.value, float | int) and 0 < p.value <= 3600):
                return SetParametersResult(successful=False, reason=f"{PERIOD} must be in (0, 3600] s")
        return SetParametersResult(successful=True)

    def _apply_period(self, params: list[Parameter]) -> None:
        """A new ``diagnostic_updater.period`` replaces the Updater's timer (its own setter leaves the old one)."""
        for p in params:
            if p.name == PERIOD:
                self.node.destroy_timer(self.updater.timer)
                self.updater.timer = self.node.create_timer(float(p.value), self.updater.update)

    def force_update(self) -> None:
        """Publish all statuses now (at shutdown: the final numbers)."""
        self.updater.force_update()

    def _input(self, stat: DiagnosticStatusWrapper, topic: str) -> DiagnosticStatusWrapper:
        state = getattr(self.node, "lifecycle_state", "active")
        if state != "active":  # a managed node subscribes its inputs only while active
            stat.summary(OK, f"node {state}: input not subscribed")
            return stat
        with self.stats.lock:
            arrivals = list(self.stats.arrivals[topic])
            total = self.stats.received_total[topic]
        settings = self.settings()
        start_s = max(self.start_s, getattr(self.node, "activated_s", self.start_s))
        h = input_health(arrivals, total, time.monotonic(), start_s, settings)
        stat.summary(h.level, h.message)
        values = {"rate_hz": h.rate_hz, "expected_rate_hz": settings.expected_rate_hz, "messages": h.messages,
                  "last_age_s": h.last_age_s, "stamp_delay_median_ms": h.delay_median_ms,
                  "stamp_delay_max_ms": h.delay_max_ms}  # fmt: skip
        for key, value in values.items():
            stat.add(key, f"{value:.3f}" if isinstance(value, float) else str(value))
        return stat

    def _frames(self, stat: DiagnosticStatusWrapper) -> DiagnosticStatusWrapper:
        return _fill(stat, frames_status(self.stats.as_dict()))

    def _timings(self, stat: DiagnosticStatusWrapper) -> DiagnosticStatusWrapper:
        return _fill(stat, timings_status(self.stats.as_dict()["stage_ms"]))


#: (level, message, [(key, value), ...]) of one status.
Status = tuple[bytes, str, list[tuple[str, str]]]


def _fill(stat: DiagnosticStatusWrapper, status: Status) -> DiagnosticStatusWrapper:
    level, message, values = status
    stat.summary(level, message)
    for key, value in values:
        stat.add(key, value)
    return stat


def frames_status(d: Mapping[str, Any]) -> Status:
    """The ``frames`` status from a node's counters (``NodeStats.as_dict()``'s schema; ``stage_ms`` not needed):
    ``frames_in``, ``frames_out``, ``pending``, then ``<counter>/<reason>`` for every counted reason (sorted); WARN
    when an exception (or a CUDA out-of-memory) was counted."""
    values = [(key, str(d[key])) for key in ("frames_in", "frames_out", "pending")]
    for counter in COUNTERS:
        values += [(f"{counter}/{reason}", str(n)) for reason, n in sorted(d.get(counter, {}).items())]
    errors = sum(d.get(c, {}).get(k, 0) for c in ("drops", "rejected") for k in ("exception", "cuda_oom"))
    text = f"{d['frames_in']} in, {d['frames_out']} out, {sum(d['drops'].values())} dropped, {d['pending']} pending"
    return WARN if errors else OK, text + (f"; {errors} exception(s), see the log" if errors else ""), values


def timings_status(stages: Mapping[str, Mapping[str, float]]) -> Status:
    """The ``stage timings`` status from ``NodeStats.as_dict()["stage_ms"]``: ``<stage>/median_ms``, ``mean_ms``,
    ``p90_ms``, ``n`` per stage [ms]."""
    values = [(f"{stage}/{key}", str(v[name])) for stage, v in stages.items() for key, name in STAGE_FIELDS.items()]
    medians = ", ".join(f"{s} {v['median']:.1f}" for s, v in stages.items())
    return OK, f"median ms: {medians}" if medians else "no frame processed yet", values


def diagnostic_array(stamp: Time, node: str, hardware_id: str, statuses: Mapping[str, Status]) -> DiagnosticArray:
    """A ``DiagnosticArray`` as a node's ``diagnostic_updater.Updater`` publishes it: each status named
    ``"<node>: <task>"`` with the node's ``hardware_id``.

    Args:
        stamp: the header stamp (the Updater's is the node's clock; ``process`` uses bag time).
        node: the node name (``segmentation``); hardware_id: its fully qualified name (``/seg_perception/...``).
        statuses: task name (``frames``) -> (level, message, key/values).
    """
    array = DiagnosticArray()
    array.header.stamp = stamp
    for task, (level, message, values) in statuses.items():
        array.status.append(DiagnosticStatus(level=level, name=f"{node}: {task}", message=message,
                                             hardware_id=hardware_id,
                                             values=[KeyValue(key=k, value=v) for k, v in values]))  # fmt: skip
    return array


def _number(text: str) -> float | int:
    return int(text) if text.lstrip("-").isdigit() else float(text)


def stats_from_statuses(statuses: Iterable[DiagnosticStatus]) -> dict[str, Any]:
    """``NodeStats.as_dict()``'s schema (without ``node``) from one node's ``frames`` and ``stage timings`` statuses
    (names may carry the Updater's ``<node>: `` prefix); plus ``inputs``: {topic: {level, message, values}}."""
    out: dict[str, Any] = {"frames_in": 0, "frames_out": 0, "pending": 0, "stage_ms": {}, "inputs": {},
                           **{c: {} for c in COUNTERS}}  # fmt: skip
    for st in statuses:
        name = st.name.split(": ", 1)[-1]
        values: list[KeyValue] = list(st.values)
        if name == "frames":
            for kv in values:
                counter, _, reason = kv.key.partition("/")
                if reason and counter in COUNTERS:
                    out[counter][reason] = _number(kv.value)
                elif kv.key in ("frames_in", "frames_out", "pending"):
                    out[kv.key] = _number(kv.value)
        elif name == "stage timings":
            for kv in values:
                stage, _, key = kv.key.rpartition("/")
                if key in STAGE_FIELDS:
                    out["stage_ms"].setdefault(stage, {})[STAGE_FIELDS[key]] = _number(kv.value)
        elif name.startswith("input "):
            level = st.level[0] if isinstance(st.level, bytes) else int(st.level)
            out["inputs"][name[len("input "):]] = {
                "level": int(level), "message": st.message, "values": {kv.key: kv.value for kv in values}}
    return out
