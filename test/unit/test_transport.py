"""Transport limits: exact message sizes (against rclpy's own serialization), the Fast DDS profile parser, the
start-up warning and the stamp-gap counter."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from rclpy.serialization import serialize_message
from std_msgs.msg import Header

from seg_perception.core.geometry.cloud import CLOUD_DTYPE
from seg_perception.core.segmentation.pipeline import SegmentationConfig
from seg_perception.ros import cdr_sizes, convert, transport

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "config" / "fastdds_shm_profile.xml"

# The profile this package shipped before (128 MiB segment, 32 MiB messages, heartbeat piggyback on).
OLD_PROFILE = """<?xml version="1.0" encoding="UTF-8" ?>
<dds xmlns="http://www.eprosima.com"><profiles>
  <transport_descriptors><transport_descriptor>
    <transport_id>seg_perception_shm</transport_id><type>SHM</type>
    <segment_size>134217728</segment_size><maxMessageSize>33554432</maxMessageSize>
  </transport_descriptor></transport_descriptors>
  <participant profile_name="p" is_default_profile="true"><rtps>
    <userTransports><transport_id>seg_perception_shm</transport_id></userTransports>
    <useBuiltinTransports>false</useBuiltinTransports>
  </rtps></participant>
</profiles></dds>"""


def _header(frame_id: str) -> Header:
    return Header(frame_id=frame_id)


# -- sizes ---------------------------------------------------------------------------------------------------------
def test_cloud_layout_matches_the_core_dtype() -> None:
    assert cdr_sizes.CLOUD_POINT_STEP == CLOUD_DTYPE.itemsize == 24
    assert cdr_sizes.CLOUD_FIELDS == CLOUD_DTYPE.names


@pytest.mark.parametrize(
    ("height", "width", "encoding", "frame_id"),
    [(1, 1, "mono8", ""), (3, 5, "rgb8", "a"), (480, 640, "16UC1", "camera_depth_optical_frame"),
     (375, 1242, "32FC1", "cam"), (7, 3, "bgra8", "xy"), (1080, 1920, "rgb8", "camera_color_optical_frame")],
    ids=["1x1-mono8", "odd-rgb8", "vga-16UC1", "kitti-32FC1", "bgra8", "1080p-rgb8"],
)  # fmt: skip
def test_image_size_equals_serialized_length(height: int, width: int, encoding: str, frame_id: str) -> None:
    dtype, channels = convert.IMAGE_ENCODINGS[encoding]
    shape = (height, width) if channels == 1 else (height, width, channels)
    msg = convert.array_to_image(np.zeros(shape, dtype), encoding, _header(frame_id))
    assert cdr_sizes.image_message_size(height, width, encoding, frame_id) == len(serialize_message(msg))


@pytest.mark.parametrize(
    ("height", "width", "frame_id"),
    [(1, 1, ""), (2, 3, "abc"), (188, 621, "camera_color_optical_frame"), (1080, 1920, "camera_color_optical_frame")],
    ids=["1x1", "2x3", "kitti-stride2", "1080p-stride1"],
)  # fmt: skip
def test_cloud_size_equals_serialized_length(height: int, width: int, frame_id: str) -> None:
    msg = convert.cloud_to_msg(np.zeros((height, width), CLOUD_DTYPE), _header(frame_id))
    assert cdr_sizes.cloud_message_size(height, width, frame_id) == len(serialize_message(msg))


def test_message_sizes_of_a_1080p_camera_at_stride_1() -> None:
    sizes = cdr_sizes.message_sizes(1080, 1920, 1, frame_id="camera_color_optical_frame")
    assert set(sizes) == {"image", "depth", "labels", "confidence", "overlay", "semantic_points"}
    assert sizes["semantic_points"] - 1080 * 1920 * 24 < 300  # 49,766,400 bytes of points + header and fields
    assert sizes["depth"] - 1080 * 1920 * 2 < 100 and sizes["image"] - 1080 * 1920 * 3 < 100
    assert cdr_sizes.largest_message(sizes) == ("semantic_points", sizes["semantic_points"])


@pytest.mark.parametrize(("stride", "cloud_hw"), [(1, (375, 1242)), (2, (188, 621)), (3, (125, 414)), (32, (12, 39))],
                         ids=["s1", "s2", "s3", "s32"])  # fmt: skip
def test_cloud_size_follows_the_stride(stride: int, cloud_hw: tuple[int, int]) -> None:
    sizes = cdr_sizes.message_sizes(375, 1242, stride)
    assert sizes["semantic_points"] == cdr_sizes.cloud_message_size(*cloud_hw)
    assert cloud_hw == (math.ceil(375 / stride), math.ceil(1242 / stride))


def test_disabled_outputs_are_left_out() -> None:
    sizes = cdr_sizes.message_sizes(480, 640, 1, publish_overlay=False, publish_cloud=False)
    assert set(sizes) == {"image", "depth", "labels", "confidence"}
    with pytest.raises(ValueError, match="cloud_stride"):
        cdr_sizes.message_sizes(480, 640, 0)


# -- profile -------------------------------------------------------------------------------------------------------
def test_shipped_profile_limits() -> None:
    limits = transport.parse_transport_limits(SHIPPED.read_text(), str(SHIPPED))
    assert limits.shm_segment_size == 192 * 1024 * 1024
    assert limits.shm_max_message_size == 64 * 1024 * 1024
    assert not limits.builtin_transports and not limits.heartbeat_piggyback and limits.problem is None
    assert limits.safe_message_size == 64 * 1024 * 1024 - transport.RTPS_OVERHEAD


def test_old_profile_limits() -> None:
    limits = transport.parse_transport_limits(OLD_PROFILE)
    assert (limits.shm_segment_size, limits.shm_max_message_size) == (134217728, 33554432)
    assert limits.heartbeat_piggyback and limits.safe_message_size == 33554432 - transport.RTPS_OVERHEAD


def test_shared_notes_profile(shared_dir: Path) -> None:
    path = shared_dir / "notes" / "fastdds_shm_profile.xml"
    limits = transport.parse_transport_limits(path.read_text(), str(path))
    assert (limits.shm_segment_size, limits.shm_max_message_size) == (64 * 2**20, 16 * 2**20)
    assert limits.safe_message_size == 16 * 2**20 - transport.RTPS_OVERHEAD  # maxMessageSize < segment / 3


def test_profile_without_shm_or_default_participant() -> None:
    udp_only = OLD_PROFILE.replace("<type>SHM</type>", "<type>UDPv4</type>")
    limits = transport.parse_transport_limits(udp_only)
    assert limits.shm_segment_size is None and limits.problem == "no SHM transport in the default participant profile"
    no_default = transport.parse_transport_limits(OLD_PROFILE.replace('is_default_profile="true"', ""))
    assert no_default.builtin_transports and no_default.safe_message_size is None
    no_max = transport.parse_transport_limits(OLD_PROFILE.replace("<maxMessageSize>33554432</maxMessageSize>", ""))
    assert no_max.shm_max_message_size == transport.FASTDDS_DEFAULT_MAX_MESSAGE
    with pytest.raises(ValueError, match="not valid XML"):
        transport.parse_transport_limits("<dds><profiles>")
    with pytest.raises(ValueError, match="integers"):
        transport.parse_transport_limits(OLD_PROFILE.replace("134217728", "128MiB"))


def test_read_limits_from_the_environment(tmp_path: Path) -> None:
    shipped = transport.read_transport_limits({"FASTDDS_DEFAULT_PROFILES_FILE": str(SHIPPED)})
    assert shipped.shm_segment_size == 201326592
    builtin = transport.read_transport_limits({})
    assert builtin.builtin_transports and builtin.safe_message_size is None and "not set" in builtin.source
    missing = transport.read_transport_limits({"FASTDDS_DEFAULT_PROFILES_FILE": str(tmp_path / "none.xml")})
    assert missing.problem is not None and missing.problem.startswith("cannot read profile")
    edited = tmp_path / "p.xml"
    edited.write_text(OLD_PROFILE)
    assert transport.read_transport_limits({"FASTDDS_DEFAULT_PROFILES_FILE": str(edited)}).shm_segment_size == 2**27
    other = transport.read_transport_limits({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"})
    assert other.problem == "not fast dds"


# -- the start-up warning ------------------------------------------------------------------------------------------
def test_1080p_stride_1_fits_the_shipped_profile() -> None:
    env = {"FASTDDS_DEFAULT_PROFILES_FILE": str(SHIPPED)}
    assert transport.fit_warning(1080, 1920, SegmentationConfig(cloud_stride=1), "camera", env) is None


def test_1080p_stride_1_with_the_old_profile_names_size_limit_and_fix(tmp_path: Path) -> None:
    old = tmp_path / "old.xml"
    old.write_text(OLD_PROFILE)
    text = transport.fit_warning(1080, 1920, SegmentationConfig(cloud_stride=1), "",
                                 {"FASTDDS_DEFAULT_PROFILES_FILE": str(old)})  # fmt: skip
    assert text is not None
    assert "semantic_points is 49.8 MB" in text and "at most 33.6 MB" in text
    assert "disable_heartbeat_piggyback" in text
    assert "set cloud_stride >= 2" in text and "maxMessageSize >= 4976" in text
    # stride 2 (12.4 MB) fits the old limits: no warning
    assert transport.fit_warning(1080, 1920, SegmentationConfig(cloud_stride=2), "",
                                 {"FASTDDS_DEFAULT_PROFILES_FILE": str(old)}) is None  # fmt: skip


def test_4k_needs_stride_2_and_8000x6000_needs_a_bigger_profile() -> None:
    env = {"FASTDDS_DEFAULT_PROFILES_FILE": str(SHIPPED)}
    text = transport.fit_warning(2160, 3840, SegmentationConfig(cloud_stride=1), "", env)
    assert text is not None and "199.1 MB" in text and "set cloud_stride >= 2" in text
    huge = transport.fit_warning(6000, 8000, SegmentationConfig(cloud_stride=4), "", env)
    assert huge is not None and huge.startswith("transport: largest message image is 144.0 MB")
    assert "cloud_stride" not in huge and "segment_size >= 4320" in huge


def test_transport_check_warns_once_per_change() -> None:
    check = transport.TransportCheck({"FASTDDS_DEFAULT_PROFILES_FILE": str(SHIPPED)})
    warned: list[str] = []
    cfg = SegmentationConfig(cloud_stride=1)
    assert check(1080, 1920, cfg, "cam", warned.append) is None  # fits
    text = check(2160, 3840, cfg, "cam", warned.append)
    assert text is not None and warned == [text]
    assert check(2160, 3840, cfg, "cam", warned.append) is None and len(warned) == 1  # same again: quiet
    assert check(2160, 3840, SegmentationConfig(cloud_stride=2), "cam", warned.append) is None  # stride 2 fits
    assert check(2160, 3840, cfg, "cam", warned.append) == text and len(warned) == 2  # back: warned again
    assert check(0, 0, cfg, "cam", warned.append) is None and len(warned) == 2  # invalid size: validation's job


def test_default_transports_warn_above_a_small_image() -> None:
    limits = transport.read_transport_limits({})
    assert transport.transport_warning(cdr_sizes.message_sizes(120, 160, 4), limits) is None
    text = transport.transport_warning(cdr_sizes.message_sizes(480, 640, 2), limits)
    assert text is not None and "FASTDDS_DEFAULT_PROFILES_FILE=config/fastdds_shm_profile.xml" in text


# -- stamp gaps ----------------------------------------------------------------------------------------------------
def _stamps(indices: list[int], rate_hz: float = 10.0, jitter_ns: list[int] | None = None) -> list[int]:
    jitter = jitter_ns or [0] * len(indices)
    return [int(1e12 + i * 1e9 / rate_hz) + j for i, j in zip(indices, jitter, strict=True)]


@pytest.mark.parametrize(
    ("indices", "missing"),
    [([0, 1, 2, 3], 0), ([0, 1, 3, 4], 1), ([0, 3], 2), ([0, 1, 2, 10, 11, 13], 8), ([0], 0), ([], 0)],
    ids=["none", "one", "two", "seven-and-one", "single", "empty"],
)
def test_count_stamp_gaps(indices: list[int], missing: int) -> None:
    assert transport.count_stamp_gaps(_stamps(indices), 10.0) == missing


def test_gap_counter_ignores_jitter_repeats_and_time_going_back() -> None:
    jittered = _stamps([0, 1, 2, 3], jitter_ns=[0, 40_000_000, -30_000_000, 0])  # steps of 1.4, 0.3, 1.3 periods
    assert transport.count_stamp_gaps(jittered, 10.0) == 0
    assert transport.count_stamp_gaps(_stamps([0, 1, 1, 2]), 10.0) == 0
    assert transport.count_stamp_gaps(_stamps([5, 6, 0, 1]), 10.0) == 0
    with pytest.raises(ValueError):
        transport.count_stamp_gaps([0, 1], 0.0)
    with pytest.raises(ValueError):
        transport.count_stamp_gaps([0, 1], 10.0, tolerance=1.0)


def test_streaming_counter_with_a_known_rate() -> None:
    counter = transport.StampGapCounter(rate_hz=10.0)
    got = [counter.add(s) for s in _stamps([0, 1, 2, 5, 6, 8])]
    assert got == [0, 0, 0, 2, 0, 1] and counter.missing == 3


def test_streaming_counter_estimates_the_rate() -> None:
    counter = transport.StampGapCounter()  # rate from the median step once 5 steps are known
    stamps = _stamps([0, 2, 4, 6, 8, 10, 14, 16], rate_hz=30.0)  # every second frame of 30 Hz = 15 Hz, one gap
    got = [counter.add(s) for s in stamps]
    assert got == [0, 0, 0, 0, 0, 0, 1, 0]
    assert counter.period_ns() == pytest.approx(2e9 / 30.0, abs=1)
    assert counter.add(stamps[0]) == 0 and counter.period_ns() is None  # time went back: estimate restarts
