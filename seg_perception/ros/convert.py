"""Conversions between ROS 2 messages and numpy arrays (the package's cv_bridge / sensor_msgs_py equivalent).

Every function here is a pure translation: no math beyond byte layout, so the core stays message-free. Messages
are validated first (``ros/validate.py``); the functions here still raise ``ValueError`` on a layout they cannot
read, so they are safe to call on unvalidated input.
"""

from __future__ import annotations

import array
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from builtin_interfaces.msg import Time
from nav_msgs.msg import OccupancyGrid
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header
from vision_msgs.msg import LabelInfo, VisionClass

from seg_perception.core.geometry.camera import Intrinsics

# encoding -> (numpy dtype, channels), per sensor_msgs/image_encodings.hpp.
IMAGE_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "8UC1": (np.dtype(np.uint8), 1),
    "8UC3": (np.dtype(np.uint8), 3),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}
COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8")
DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")

_POINTFIELD_TYPES: dict[np.dtype, int] = {
    np.dtype("int8"): PointField.INT8,
    np.dtype("uint8"): PointField.UINT8,
    np.dtype("int16"): PointField.INT16,
    np.dtype("uint16"): PointField.UINT16,
    np.dtype("int32"): PointField.INT32,
    np.dtype("uint32"): PointField.UINT32,
    np.dtype("float32"): PointField.FLOAT32,
    np.dtype("float64"): PointField.FLOAT64,
}
POINTFIELD_DTYPES: dict[int, np.dtype] = {v: k for k, v in _POINTFIELD_TYPES.items()}


def image_to_array(msg: Image) -> np.ndarray:
    """View an Image's pixels as an array, honouring ``step`` padding and ``is_bigendian``.

    Returns:
        (height, width) for one channel, else (height, width, channels), in the message's dtype and channel
        order (a view of the message buffer when no byte swap is needed; do not write to it).
    Raises:
        ValueError: unknown encoding, or ``data`` shorter than ``step * height``, or ``step`` too small.
    """
    if msg.encoding not in IMAGE_ENCODINGS:
        raise ValueError(f"unsupported encoding {msg.encoding!r}; supported: {', '.join(IMAGE_ENCODINGS)}")
    dtype, channels = IMAGE_ENCODINGS[msg.encoding]
    h, w, step = msg.height, msg.width, msg.step
    row_bytes = w * channels * dtype.itemsize
    if step < row_bytes:
        raise ValueError(f"step {step} < width*channels*itemsize {row_bytes}")
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if buf.size < step * h:
        raise ValueError(f"data has {buf.size} bytes, expected step*height = {step * h}")
    rows = buf[: step * h].reshape(h, step)[:, :row_bytes]
    dt = dtype.newbyteorder(">" if msg.is_bigendian else "<")
    arr = np.ascontiguousarray(rows).view(dt).reshape((h, w) if channels == 1 else (h, w, channels))
    return arr if arr.dtype == dtype else arr.astype(dtype)


def image_to_rgb(msg: Image) -> np.ndarray:
    """Decode a colour Image (rgb8, bgr8, rgba8, bgra8) into (H, W, 3) uint8 RGB.

    Raises:
        ValueError: for any other encoding or a bad layout.
    """
    if msg.encoding not in COLOR_ENCODINGS:
        raise ValueError(f"colour image encoding {msg.encoding!r} not supported; use one of {COLOR_ENCODINGS}")
    arr = image_to_array(msg)
    if msg.encoding.startswith("bgr"):
        return np.ascontiguousarray(arr[..., 2::-1])
    return np.ascontiguousarray(arr[..., :3])


def stamp_to_ns(stamp: Time) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    """Integer nanoseconds -> builtin_interfaces/Time."""
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def array_to_image(arr: np.ndarray, encoding: str, header: Header) -> Image:
    """Wrap a C-contiguous array as an Image with the given encoding and header (little-endian, no padding).

    Raises:
        ValueError: if dtype or channel count do not fit ``encoding``.
    """
    if encoding not in IMAGE_ENCODINGS:
        raise ValueError(f"unsupported encoding {encoding!r}")
    dtype, channels = IMAGE_ENCODINGS[encoding]
    got_channels = 1 if arr.ndim == 2 else arr.shape[2]
    if arr.dtype != dtype or got_channels != channels:
        raise ValueError(f"{encoding} needs {dtype} x{channels}, got {arr.dtype} x{got_channels}")
    arr = np.ascontiguousarray(arr)
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(arr.shape[1] * channels * dtype.itemsize)
    msg.data = arr.tobytes()
    return msg


def camera_info_to_intrinsics(msg: CameraInfo) -> Intrinsics:
    """Pinhole intrinsics from CameraInfo K (the rectified/registered image is assumed; distortion ignored).

    Raises:
        ValueError: if fx or fy is not positive or the size is zero.
    """
    return Intrinsics.from_k(msg.k, msg.width, msg.height)


def cloud_to_msg(cloud: np.ndarray, header: Header) -> PointCloud2:
    """Serialize a structured array into a PointCloud2 (fields from the dtype, little-endian).

    Args:
        cloud: (H, W) organized or (N,) structured array with numeric fields.
        header: message header (frame = the points' frame).
    Returns:
        PointCloud2 with ``height = H`` (1 when unorganized), ``is_dense = False`` (NaN points may be present).
    """
    if cloud.dtype.names is None:
        raise ValueError("cloud must be a structured array")
    msg = PointCloud2()
    msg.header = header
    if cloud.ndim == 2:
        msg.height, msg.width = int(cloud.shape[0]), int(cloud.shape[1])
    else:
        msg.height, msg.width = 1, int(cloud.size)
    fields = []
    layout: Mapping[str, Any] = cloud.dtype.fields or {}
    for name in cloud.dtype.names:
        dt, offset = layout[name][:2]
        datatype = _POINTFIELD_TYPES[dt.base.newbyteorder("=")]
        fields.append(PointField(name=name, offset=int(offset), datatype=datatype, count=1))
    msg.fields = fields
    msg.is_bigendian = False
    msg.point_step = int(cloud.dtype.itemsize)
    msg.row_step = int(msg.point_step * msg.width)
    msg.is_dense = False
    msg.data = np.ascontiguousarray(cloud).tobytes()
    return msg


def msg_to_cloud(msg: PointCloud2, names: Sequence[str] | None = None) -> np.ndarray:
    """Read a PointCloud2 into a structured array of shape (height, width) (row-major, organized order kept).

    Args:
        msg: the cloud.
        names: fields to keep (all when None).
    Raises:
        ValueError: missing field, unknown datatype, or ``data`` shorter than ``row_step * height``.
    """
    by_name = {f.name: f for f in msg.fields}
    wanted = list(names) if names is not None else list(by_name)
    missing = [n for n in wanted if n not in by_name]
    if missing:
        raise ValueError(f"cloud lacks field(s) {missing}; has {sorted(by_name)}")
    field_names: list[str] = []
    formats: list[np.dtype] = []
    offsets: list[int] = []
    endian: Literal["<", ">"] = ">" if msg.is_bigendian else "<"
    for n in wanted:
        f = by_name[n]
        if f.datatype not in POINTFIELD_DTYPES:
            raise ValueError(f"field {n!r} has unknown datatype {f.datatype}")
        field_names.append(n)
        formats.append(POINTFIELD_DTYPES[f.datatype].newbyteorder(endian))
        offsets.append(f.offset)
    dtype = np.dtype(
        {"names": field_names, "formats": formats, "offsets": offsets, "itemsize": msg.point_step}  # type: ignore[call-overload]
    )
    need = msg.row_step * msg.height
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if buf.size < need or msg.row_step < msg.point_step * msg.width:
        raise ValueError(f"cloud data has {buf.size} bytes; expected row_step*height = {need}")
    rows = buf[:need].reshape(msg.height, msg.row_step)[:, : msg.point_step * msg.width]
    return np.ascontiguousarray(rows).view(dtype).reshape(msg.height, msg.width)


def grid_to_msg(
    occupancy: np.ndarray, resolution: float, origin_xy: tuple[float, float], header: Header
) -> OccupancyGrid:
    """Wrap an (H, W) int8 grid (0-100, -1 unknown; row = y, column = x) as an OccupancyGrid.

    ``origin_xy`` is the outer corner of cell (0, 0) in ``header.frame_id`` (metres), orientation identity.
    """
    if occupancy.dtype != np.int8 or occupancy.ndim != 2:
        raise ValueError(f"occupancy must be (H, W) int8, got {occupancy.shape} {occupancy.dtype}")
    msg = OccupancyGrid()
    msg.header = header
    msg.info.map_load_time = header.stamp
    msg.info.resolution = float(resolution)
    msg.info.height, msg.info.width = int(occupancy.shape[0]), int(occupancy.shape[1])
    msg.info.origin.position.x = float(origin_xy[0])
    msg.info.origin.position.y = float(origin_xy[1])
    msg.info.origin.orientation.w = 1.0
    msg.data = array.array("b", np.ascontiguousarray(occupancy).tobytes())
    return msg


def grid_from_msg(msg: OccupancyGrid) -> np.ndarray:
    """(height, width) int8 view of an OccupancyGrid's data."""
    return np.frombuffer(msg.data, dtype=np.int8).reshape(msg.info.height, msg.info.width)


def label_info_msg(categories: Sequence[str], header: Header) -> LabelInfo:
    """vision_msgs/LabelInfo for a model: one VisionClass(class_id=i, class_name=categories[i]) per class id;
    ``threshold`` 0 (every pixel gets its arg-max class)."""
    classes = [VisionClass(class_id=i, class_name=name) for i, name in enumerate(categories)]
    return LabelInfo(header=header, class_map=classes, threshold=0.0)


def label_info_pairs(msg: LabelInfo) -> list[tuple[int, str]]:
    """(class_id, class_name) per entry of a LabelInfo ``class_map`` (refuse oversized maps before calling)."""
    return [(int(c.class_id), str(c.class_name)) for c in msg.class_map]
