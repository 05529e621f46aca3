"""Message checks in Nav2 ``validateMsg`` style: each returns a list of problems (empty when the message is fine).

Each problem string is short and starts with a stable reason key (``"encoding: ..."``) so callers can count drops
per reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from seg_perception.ros.convert import IMAGE_ENCODINGS, POINTFIELD_DTYPES


def reason(problem: str) -> str:
    """The stable reason key of a problem string (the text before the first colon)."""
    return problem.split(":", 1)[0]


def validate_image(msg: Image, encodings: Iterable[str], max_pixels: int = 0) -> list[str]:
    """Logic checks of an Image: known + allowed encoding, non-empty, at most ``max_pixels`` pixels (0 = no bound),
    ``step`` and ``len(data)`` consistent, a frame id. Nothing is decoded."""
    allowed = tuple(encodings)
    problems = []
    if msg.encoding not in allowed:
        problems.append(f"encoding: {msg.encoding!r} not in {allowed}")
        return problems
    if msg.height == 0 or msg.width == 0:
        problems.append(f"empty: image is {msg.width}x{msg.height}")
        return problems
    if max_pixels and msg.width * msg.height > max_pixels:
        problems.append(f"too_large: {msg.width}x{msg.height} = {msg.width * msg.height} pixels > max_image_pixels "
                        f"{max_pixels}")  # fmt: skip
        return problems
    dtype, channels = IMAGE_ENCODINGS[msg.encoding]
    row_bytes = msg.width * channels * dtype.itemsize
    if msg.step < row_bytes:
        problems.append(f"step: {msg.step} < width*channels*itemsize {row_bytes}")
    if len(msg.data) != msg.step * msg.height:
        problems.append(f"data_length: {len(msg.data)} bytes != step*height {msg.step * msg.height}")
    if not msg.header.frame_id:
        problems.append("frame_id: empty header.frame_id")
    return problems


def validate_camera_info(msg: CameraInfo) -> list[str]:
    """Value checks of a CameraInfo: finite K, positive focal lengths, non-zero size."""
    problems = []
    k = [float(v) for v in msg.k]
    if len(k) != 9 or not all(math.isfinite(v) for v in k):
        problems.append(f"camera_info_k: K must be 9 finite values, got [{', '.join(f'{v:g}' for v in k)}]")
    elif k[0] <= 0 or k[4] <= 0:
        problems.append(f"camera_info_focal: fx={k[0]:g} fy={k[4]:g} must be > 0")
    if msg.width == 0 or msg.height == 0:
        problems.append(f"camera_info_size: {msg.width}x{msg.height}")
    return problems


def validate_cloud(
    msg: PointCloud2,
    required: Iterable[str] = ("x", "y", "z"),
    integer_fields: Iterable[str] = ("label",),
    float_fields: Iterable[str] = ("x", "y", "z", "confidence"),
) -> list[str]:
    """Logic checks of a PointCloud2: fields present, readable and of the right kind, sizes consistent, frame set.

    Reasons: ``fields`` (a required field missing), ``field_datatype`` (unknown PointField datatype),
    ``field_offset`` (a field starting at or past ``point_step``), ``point_step`` (a field ending past it, or 0),
    ``label_datatype`` (an ``integer_fields`` field that is not an integer type), ``xyz_datatype`` (a
    ``float_fields`` field that is not float32/float64), ``row_step``, ``data_length``, ``frame_id``.
    """
    problems = []
    by_name = {f.name: f for f in msg.fields}
    missing = [n for n in required if n not in by_name]
    if missing:
        problems.append(f"fields: missing {missing}; the cloud has {sorted(by_name)}")
        return problems
    if msg.point_step == 0:
        problems.append("point_step: point_step is 0")
        return problems
    ints, floats = set(integer_fields), set(float_fields)
    for f in msg.fields:
        dtype = POINTFIELD_DTYPES.get(f.datatype)
        if dtype is None:
            problems.append(f"field_datatype: field {f.name!r} has unknown datatype {f.datatype}")
            continue
        if f.offset >= msg.point_step:
            problems.append(f"field_offset: field {f.name!r} at offset {f.offset} >= point_step {msg.point_step}")
        elif f.offset + dtype.itemsize * max(1, f.count) > msg.point_step:
            problems.append(f"point_step: field {f.name!r} ({dtype.name} x{max(1, f.count)} at offset {f.offset}) "
                            f"ends past point_step {msg.point_step}")  # fmt: skip
        if f.name in ints and dtype.kind not in "iu":
            problems.append(f"label_datatype: field {f.name!r} must be an integer type, got {dtype.name}")
        if f.name in floats and dtype.kind != "f":
            problems.append(f"xyz_datatype: field {f.name!r} must be float32 or float64, got {dtype.name}")
    if problems:
        return problems
    if msg.row_step < msg.point_step * msg.width:
        problems.append(f"row_step: {msg.row_step} < point_step*width {msg.point_step * msg.width}")
    if len(msg.data) != msg.row_step * msg.height:
        problems.append(f"data_length: {len(msg.data)} bytes != row_step*height {msg.row_step * msg.height}")
    if not msg.header.frame_id:
        problems.append("frame_id: empty header.frame_id")
    return problems
