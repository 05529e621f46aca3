"""Exact CDR sizes [bytes] of every image and cloud an RGB-D camera and the segmentation node put on the wire, for
a camera size, ``cloud_stride`` and the publish flags: the layout ``rclpy.serialization.serialize_message`` writes
(XCDR1, 4-byte encapsulation header; the unit tests compare the two byte for byte). Pure functions, no rclpy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

#: Bytes per point of ``semantic_points`` (``core.cloud.CLOUD_DTYPE``: x, y, z, rgb, label, confidence; 6 x 4 B).
CLOUD_POINT_STEP = 24
#: The cloud's fields in publication order, as ``ros/convert.cloud_to_msg`` writes them.
CLOUD_FIELDS = ("x", "y", "z", "rgb", "label", "confidence")
#: Bytes per pixel of the image encodings the node reads or writes.
BYTES_PER_PIXEL = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8UC1": 1, "8UC3": 3, "mono16": 2,
                   "16UC1": 2, "32FC1": 4}  # fmt: skip


# -- exact CDR sizes -----------------------------------------------------------------------------------------------
def _align(offset: int, n: int) -> int:
    return (offset + n - 1) // n * n


def _string(offset: int, text: str) -> int:
    """CDR string: 4-byte aligned uint32 length (incl. the NUL), the UTF-8 bytes, the NUL."""
    return _align(offset, 4) + 4 + len(text.encode()) + 1


def _header(offset: int, frame_id: str) -> int:
    return _string(offset + 8, frame_id)  # stamp: int32 sec + uint32 nanosec


def _byte_sequence(offset: int, n: int) -> int:
    return _align(offset, 4) + 4 + n


def image_message_size(height: int, width: int, encoding: str, frame_id: str = "") -> int:
    """Serialized size [bytes] of a ``sensor_msgs/Image`` without row padding (``step = width * bytes/pixel``).

    The CDR layout: 4-byte encapsulation, header, height, width, encoding, is_bigendian, step, data.

    Raises:
        KeyError: for an encoding not in ``BYTES_PER_PIXEL``.
    """
    o = _header(0, frame_id)
    o = _align(o, 4) + 8  # height, width
    o = _string(o, encoding)
    o += 1  # is_bigendian
    o = _align(o, 4) + 4  # step
    o = _byte_sequence(o, height * width * BYTES_PER_PIXEL[encoding])
    return 4 + o


def cloud_message_size(height: int, width: int, frame_id: str = "", fields: Sequence[str] = CLOUD_FIELDS,
                       point_step: int = CLOUD_POINT_STEP) -> int:  # fmt: skip
    """Serialized size [bytes] of the organized ``sensor_msgs/PointCloud2`` the node publishes (H x W points).

    The CDR layout: 4-byte encapsulation, header, height, width, fields (name, offset, datatype, count each),
    is_bigendian, point_step, row_step, data, is_dense.
    """
    o = _header(0, frame_id)
    o = _align(o, 4) + 8  # height, width
    o = _align(o, 4) + 4  # number of fields
    for name in fields:
        o = _string(o, name)
        o = _align(o, 4) + 4 + 1  # offset, datatype
        o = _align(o, 4) + 4  # count
    o += 1  # is_bigendian
    o = _align(o, 4) + 8  # point_step, row_step
    o = _byte_sequence(o, height * width * point_step)
    o += 1  # is_dense
    return 4 + o


def message_sizes(
    height: int,
    width: int,
    cloud_stride: int,
    publish_overlay: bool = True,
    publish_cloud: bool = True,
    frame_id: str = "",
    color_encoding: str = "rgb8",
    depth_encoding: str = "16UC1",
) -> dict[str, int]:
    """Serialized size [bytes] of every per-frame message of the camera and the segmentation node.

    Args:
        height, width: camera image size [px] (CameraInfo ``height``, ``width``).
        cloud_stride: the node's ``cloud_stride`` (the cloud is ceil(H/s) x ceil(W/s) points).
        publish_overlay, publish_cloud: the node's publish flags (a disabled output is left out).
        frame_id: the header frame id (a few bytes of each message).
        color_encoding, depth_encoding: the camera's encodings (inputs of the node).
    Returns:
        topic name -> bytes, for ``image``, ``depth`` (inputs) and ``labels``, ``confidence``, ``overlay``,
        ``semantic_points`` (outputs; ``overlay`` / ``semantic_points`` only when published).
    Raises:
        ValueError: for a non-positive size or stride.
    """
    if height < 1 or width < 1 or cloud_stride < 1:
        raise ValueError(f"need height, width, cloud_stride >= 1, got {height}, {width}, {cloud_stride}")
    sizes = {
        "image": image_message_size(height, width, color_encoding, frame_id),
        "depth": image_message_size(height, width, depth_encoding, frame_id),
        "labels": image_message_size(height, width, "mono8", frame_id),
        "confidence": image_message_size(height, width, "mono8", frame_id),
    }
    if publish_overlay:
        sizes["overlay"] = image_message_size(height, width, "rgb8", frame_id)
    if publish_cloud:
        h, w = math.ceil(height / cloud_stride), math.ceil(width / cloud_stride)
        sizes["semantic_points"] = cloud_message_size(h, w, frame_id)
    return sizes


def largest_message(sizes: Mapping[str, int]) -> tuple[str, int]:
    """The (topic, bytes) of the largest entry of ``message_sizes``."""
    topic = max(sizes, key=lambda t: sizes[t])
    return topic, sizes[topic]
