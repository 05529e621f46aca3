"""Transport limits: how big the segmentation node's messages are, what the active Fast DDS profile carries, and
which frames were sent but never arrived.

Pure functions (no rclpy, no node state), so a node calls them in one line and tests call them directly:

* The messages' sizes come from ``ros.cdr_sizes`` (exact CDR sizes).
* ``read_transport_limits``: the shared-memory limits of the Fast DDS profile named by
  ``FASTDDS_DEFAULT_PROFILES_FILE`` (the default participant profile's transports), or Fast DDS's built-in
  transports when no profile is set.
* ``transport_warning`` / ``fit_warning``: ``None`` when the largest message fits the profile, else one warning
  line naming the message, its size, the limit and what to set (``cloud_stride`` or the profile values).
* ``TransportCheck``: ``fit_warning`` once per camera size / setting change, for a camera_info callback.
* ``count_stamp_gaps`` / ``StampGapCounter``: frames missing from a stream of header stamps at a known (or
  estimated) rate: stamp steps longer than ``tolerance`` periods.

Why the limits matter (measured with Fast DDS 3.2 from rmw_fastrtps_cpp, Kilted wheels; README "Transport limits"):
a sample larger than the shared-memory ``maxMessageSize`` is split into 64 KiB RTPS fragments, and a sample whose
buffer the writer reuses (its segment, per participant, ``segment_size``, is full) before the reader has read it is
lost without any log. A reliable writer's piggybacked heartbeats make best-effort readers lose samples above
16 MiB intermittently unless ``disable_heartbeat_piggyback`` is set in the default data_writer profile. Best-effort
readers also lose the first sample above ~32 MB after they start (cause not found; reliable readers get it again).
"""

from __future__ import annotations

import math
import os
import statistics
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from seg_perception.ros.cdr_sizes import cloud_message_size, largest_message, message_sizes

#: Fast DDS's shared-memory transport defaults (SharedMemTransportDescriptor): 512 KiB segment; a message larger
#: than the segment cannot be sent whole.
FASTDDS_DEFAULT_SHM_SEGMENT = 512 * 1024
#: A transport's ``maxMessageSize`` when the profile does not set it (Fast DDS TransportDescriptorInterface).
FASTDDS_DEFAULT_MAX_MESSAGE = 65_500
#: Above this sample size a best-effort reader of a reliable writer loses samples unless the writer's heartbeat
#: piggyback is disabled (measured at 2 Hz: 16.7 MB 12/12, 16.8 MB 11/12, 22 MB 4 to 12 of 12-15 with it on).
PIGGYBACK_LOSS_ABOVE = 16 * 1024 * 1024
#: The writer's segment must hold this many of the largest message at once (one being read, one being written,
#: one being repaired): a design margin, after Fast DDS's warning against a segment close to the data size.
SEGMENT_MESSAGES = 3
#: Bytes an RTPS message adds around the serialized sample (RTPS header, INFO_TS, DATA submessage; ~60 B) with room.
RTPS_OVERHEAD = 1024


# -- the active Fast DDS profile -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TransportLimits:
    """What the active Fast DDS profile lets one message be.

    Attributes:
        source: the profile file, or a note that Fast DDS's built-in transports are used.
        shm_segment_size: the profile's shared-memory segment per participant [bytes]; None without a profile SHM
            transport (Fast DDS's built-in one has 512 KiB).
        shm_max_message_size: largest message the profile's SHM transport sends unfragmented [bytes].
        builtin_transports: Fast DDS's default UDPv4 + 512 KiB SHM transports are (also) active.
        heartbeat_piggyback: reliable writers piggyback heartbeats (not disabled in the default data_writer profile).
        problem: why the profile could not be read (None when it was).
    """

    source: str
    shm_segment_size: int | None
    shm_max_message_size: int | None
    builtin_transports: bool
    heartbeat_piggyback: bool
    problem: str | None = None

    @property
    def unfragmented_limit(self) -> int | None:
        """Largest message that crosses shared memory in one piece [bytes] (None without an SHM transport)."""
        if self.shm_segment_size is None or self.shm_max_message_size is None:
            return None
        return min(self.shm_segment_size, self.shm_max_message_size)

    @property
    def safe_message_size(self) -> int | None:
        """Largest serialized message this profile carries reliably [bytes]: unfragmented with its RTPS headers
        (``RTPS_OVERHEAD``), and ``SEGMENT_MESSAGES`` times in the segment (None without a profile SHM transport)."""
        limit = self.unfragmented_limit
        if limit is None or self.shm_segment_size is None:
            return None
        return min(limit, self.shm_segment_size // SEGMENT_MESSAGES) - RTPS_OVERHEAD


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(elem: ET.Element, name: str) -> ET.Element | None:
    for c in elem:
        if _local(c.tag) == name:
            return c
    return None


def _find_all(elem: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in elem.iter() if _local(e.tag) == name]


def _text(elem: ET.Element | None) -> str | None:
    return None if elem is None or elem.text is None else elem.text.strip()


def _default_profile(root: ET.Element, kind: str) -> ET.Element | None:
    profiles = [e for e in _find_all(root, kind)]
    for p in profiles:
        if p.get("is_default_profile", "").lower() == "true":
            return p
    return None


def parse_transport_limits(xml_text: str, source: str = "<xml>") -> TransportLimits:
    """Read the shared-memory limits of a Fast DDS XML profile (the participant profile marked default).

    Only the default participant profile counts (that is the one rmw_fastrtps applies to every node). Its
    ``userTransports`` are looked up among ``transport_descriptors``; the first of ``type`` SHM gives
    ``segment_size`` and ``maxMessageSize``. ``useBuiltinTransports`` defaults to true (Fast DDS's rule).

    Raises:
        ValueError: if the text is not XML or a size is not an integer.
    """
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as e:
        raise ValueError(f"{source}: not valid XML ({e})") from e
    participant = _default_profile(root, "participant")
    writer = _default_profile(root, "data_writer")
    piggyback = True
    if writer is not None:
        disabled = [_text(e) for e in _find_all(writer, "disable_heartbeat_piggyback")]
        piggyback = not any(d is not None and d.lower() == "true" for d in disabled)
    if participant is None:
        return TransportLimits(source, None, None, True, piggyback, "no default participant profile")
    used = {_text(e) for e in _find_all(participant, "transport_id")}
    builtin_text = _text(next(iter(_find_all(participant, "useBuiltinTransports")), None))
    builtin = builtin_text is None or builtin_text.lower() == "true"
    for desc in _find_all(root, "transport_descriptor"):
        if _text(_child(desc, "transport_id")) not in used or (_text(_child(desc, "type")) or "").upper() != "SHM":
            continue
        try:
            seg_text, max_text = _text(_child(desc, "segment_size")), _text(_child(desc, "maxMessageSize"))
            segment = int(seg_text) if seg_text else FASTDDS_DEFAULT_SHM_SEGMENT
            max_msg = int(max_text) if max_text else FASTDDS_DEFAULT_MAX_MESSAGE
        except ValueError as e:
            raise ValueError(f"{source}: SHM segment_size / maxMessageSize must be integers ({e})") from e
        return TransportLimits(source, segment, max_msg, builtin, piggyback)
    return TransportLimits(source, None, None, builtin, piggyback,
                           None if builtin else "no SHM transport in the default participant profile")  # fmt: skip


@lru_cache(maxsize=8)
def _limits_from_file(path: str, mtime_ns: int) -> TransportLimits:
    del mtime_ns  # part of the cache key only: an edited file is read again
    try:
        return parse_transport_limits(Path(path).read_text(), path)
    except (OSError, ValueError) as e:
        return TransportLimits(path, None, None, True, True, f"cannot read profile: {e}")


def read_transport_limits(env: Mapping[str, str] | None = None) -> TransportLimits:
    """The limits of the profile in ``FASTDDS_DEFAULT_PROFILES_FILE`` (cached per file and modification time).

    Without that variable (or with an unreadable file) Fast DDS uses its built-in transports: UDPv4 plus a
    512 KiB shared-memory segment, through which large messages go in 64 KiB fragments.
    """
    env = os.environ if env is None else env
    path = env.get("FASTDDS_DEFAULT_PROFILES_FILE", "")
    rmw = env.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    if rmw and not rmw.startswith("rmw_fastrtps"):
        return TransportLimits(f"{rmw} (not Fast DDS: limits not checked)", None, None, False, False, "not fast dds")
    if not path:
        return TransportLimits("Fast DDS built-in transports (FASTDDS_DEFAULT_PROFILES_FILE not set)",
                               None, None, True, True)  # fmt: skip
    try:
        mtime = Path(path).stat().st_mtime_ns
    except OSError as e:
        return TransportLimits(path, None, None, True, True, f"cannot read profile: {e}")
    return _limits_from_file(path, mtime)


# -- the start-up check --------------------------------------------------------------------------------------------
def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def smallest_fitting_stride(height: int, width: int, limit: int, frame_id: str = "") -> int | None:
    """The smallest ``cloud_stride`` (<= 32, the parameter's range) whose cloud message is <= ``limit`` bytes."""
    for s in range(1, 33):
        if cloud_message_size(math.ceil(height / s), math.ceil(width / s), frame_id) <= limit:
            return s
    return None


def transport_warning(sizes: Mapping[str, int], limits: TransportLimits, height: int = 0, width: int = 0,
                      frame_id: str = "") -> str | None:  # fmt: skip
    """``None`` when every message in ``sizes`` crosses processes intact with ``limits``; else one warning line.

    A message fits when it is at most ``limits.safe_message_size`` (unfragmented, and ``SEGMENT_MESSAGES`` of it
    fit the segment), and, above 16 MiB, when heartbeat piggyback is disabled. The text names the largest message,
    its size, the limit, and what to set: a ``cloud_stride`` that fits (when the cloud is the problem and
    ``height``/``width`` are given) or the profile's ``maxMessageSize`` / ``segment_size``.
    """
    if limits.problem == "not fast dds":
        return None
    topic, size = largest_message(sizes)
    need = size + RTPS_OVERHEAD
    profile_hint = (
        f"set maxMessageSize >= {need} and segment_size >= {SEGMENT_MESSAGES * need} in the SHM transport of "
        f"{limits.source} (config/fastdds_shm_profile.xml shows how)"
    )
    safe = limits.safe_message_size
    if safe is None:
        if size <= FASTDDS_DEFAULT_SHM_SEGMENT // SEGMENT_MESSAGES:
            return None
        why = f" ({limits.problem})" if limits.problem else ""
        return (f"transport: largest message {topic} is {_mb(size)}, but {limits.source}{why} has no large "
                f"shared-memory transport: it goes in 64 KiB fragments and may be lost without a log; use the "
                f"package's profile (FASTDDS_DEFAULT_PROFILES_FILE=config/fastdds_shm_profile.xml), or a profile "
                f"whose SHM transport has maxMessageSize >= {need} and segment_size >= "
                f"{SEGMENT_MESSAGES * need}")  # fmt: skip
    problems = []
    if size > safe:
        problems.append(f"the profile {limits.source} carries at most {_mb(safe)} per message reliably "
                        f"(maxMessageSize {limits.shm_max_message_size}, segment_size {limits.shm_segment_size} "
                        f"/ {SEGMENT_MESSAGES})")  # fmt: skip
    if size > PIGGYBACK_LOSS_ABOVE and limits.heartbeat_piggyback:
        problems.append("best-effort readers of reliable writers lose messages above 16 MiB unless the default "
                        "data_writer profile sets disable_heartbeat_piggyback")  # fmt: skip
    if not problems:
        return None
    fix = profile_hint
    if topic == "semantic_points" and height and width and size > safe:
        others = max((v for k, v in sizes.items() if k != "semantic_points"), default=0)
        stride = smallest_fitting_stride(height, width, safe, frame_id) if others <= safe else None
        if stride is not None:
            fix = f"set cloud_stride >= {stride}, or {profile_hint}"
    return f"transport: largest message {topic} is {_mb(size)}, but {'; and '.join(problems)}: it may be lost " \
           f"without a log; {fix}"  # fmt: skip


class _PublishConfig(Protocol):
    @property
    def cloud_stride(self) -> int: ...
    @property
    def publish_overlay(self) -> bool: ...
    @property
    def publish_cloud(self) -> bool: ...


def fit_warning(height: int, width: int, cfg: _PublishConfig, frame_id: str = "",
                env: Mapping[str, str] | None = None) -> str | None:  # fmt: skip
    """The segmentation node's start-up / camera_info check in one call.

    Args:
        height, width: from CameraInfo [px].
        cfg: the node's ``SegmentationConfig`` (``cloud_stride``, ``publish_overlay``, ``publish_cloud``).
        frame_id: CameraInfo ``header.frame_id``.
        env: environment (``os.environ`` when None) naming the Fast DDS profile.
    Returns:
        None when the camera's and the node's largest message fits the active profile, else the warning text.
    """
    sizes = message_sizes(height, width, cfg.cloud_stride, cfg.publish_overlay, cfg.publish_cloud, frame_id)
    return transport_warning(sizes, read_transport_limits(env), height, width, frame_id)


class TransportCheck:
    """``fit_warning`` for a node's camera_info handler: checks again only when the camera size, the publish
    settings or the profile change, and hands a warning to ``warn`` once per change.

    Usage (segmentation node): ``self.transport_check = TransportCheck()`` in ``__init__``, then in the camera_info
    callback ``self.transport_check(msg.height, msg.width, self.cfg, msg.header.frame_id, self.get_logger().warning)``.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = env
        self._key: tuple | None = None

    def __call__(self, height: int, width: int, cfg: _PublishConfig, frame_id: str = "",
                 warn: Callable[[str], object] | None = None) -> str | None:  # fmt: skip
        """Returns the warning when this call's settings are new and do not fit, else None (also for a camera
        size below 1 x 1, which the message validation reports)."""
        if height < 1 or width < 1 or cfg.cloud_stride < 1:
            return None
        limits = read_transport_limits(self.env)
        key = (height, width, cfg.cloud_stride, cfg.publish_overlay, cfg.publish_cloud, frame_id, limits)
        if key == self._key:
            return None
        self._key = key
        sizes = message_sizes(height, width, cfg.cloud_stride, cfg.publish_overlay, cfg.publish_cloud, frame_id)
        text = transport_warning(sizes, limits, height, width, frame_id)
        if text is not None and warn is not None:
            warn(text)
        return text


# -- frames sent but never received --------------------------------------------------------------------------------
def count_stamp_gaps(stamps_ns: Sequence[int], rate_hz: float, tolerance: float = 1.5) -> int:
    """Frames missing from a stream of header stamps at ``rate_hz``.

    A step ``d`` between consecutive stamps longer than ``tolerance`` periods counts ``round(d / period) - 1``
    missing frames (at least 1). Steps of zero or less (repeats, time going backwards) count nothing.

    Args:
        stamps_ns: received header stamps [ns], in arrival order.
        rate_hz: the publisher's expected rate [Hz] (> 0).
        tolerance: how many periods a step may last before frames count as missing (> 1).
    Raises:
        ValueError: if ``rate_hz <= 0`` or ``tolerance <= 1``.
    """
    if rate_hz <= 0 or tolerance <= 1.0:
        raise ValueError(f"need rate_hz > 0 and tolerance > 1, got {rate_hz}, {tolerance}")
    period = 1e9 / rate_hz
    missing = 0
    for a, b in zip(stamps_ns, stamps_ns[1:], strict=False):
        d = b - a
        if d > tolerance * period:
            missing += max(1, round(d / period) - 1)
    return missing


class StampGapCounter:
    """Streaming ``count_stamp_gaps`` for a node: feed each received stamp, get the frames missed before it.

    What it counts is every frame the node did not see: lost in transport, but also dropped by the publisher and
    replaced in a keep-last-1 subscription while the node was busy (a 0.5 s callback on a 10 Hz stream: 23 of 30
    frames). For transport loss alone use the subscription's ``message_lost`` event (DDS sample-lost status:
    sequence numbers the writer sent that never reached the reader; it does not count keep-last replacement).

    With ``rate_hz = 0`` the period is estimated as the median of the last ``window`` steps (at least
    ``min_steps`` of them before anything is counted), so a stream whose rate is not configured still counts
    gaps. Time going backwards (a bag loop) restarts the estimate and counts nothing.
    """

    def __init__(self, rate_hz: float = 0.0, tolerance: float = 1.5, window: int = 30, min_steps: int = 5) -> None:
        if rate_hz < 0 or tolerance <= 1.0:
            raise ValueError(f"need rate_hz >= 0 and tolerance > 1, got {rate_hz}, {tolerance}")
        self.rate_hz = rate_hz
        self.tolerance = tolerance
        self.min_steps = min_steps
        self.missing = 0
        self._last: int | None = None
        self._steps: deque[int] = deque(maxlen=window)

    def period_ns(self) -> float | None:
        """The expected period [ns]: from ``rate_hz``, else the median recent step (None until known)."""
        if self.rate_hz > 0:
            return 1e9 / self.rate_hz
        if len(self._steps) < self.min_steps:
            return None
        return float(statistics.median(self._steps))

    def add(self, stamp_ns: int) -> int:
        """Record a received stamp [ns]; returns how many frames are missing just before it (also added to
        ``missing``)."""
        last, self._last = self._last, stamp_ns
        if last is None:
            return 0
        d = stamp_ns - last
        if d <= 0:
            if d < 0:
                self._steps.clear()
            return 0
        period = self.period_ns()
        gap = 0
        if period is not None and d > self.tolerance * period:
            gap = max(1, round(d / period) - 1)
        else:
            self._steps.append(d)
        self.missing += gap
        return gap
