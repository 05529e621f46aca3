"""Message checks in Nav2 ``validateMsg`` style: each returns a list of problems (empty when the message is fine).

Each problem string is short and starts with a stable reason key (``"encoding: ..."``) so callers can count drops
per reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from seg_perception.ros.convert import IMAGE_ENCODINGS


def reason(problem: str) -> str:
    """The stable reason key of a problem string (the text before the first colon)."""
    return problem.split(":", 1)[0]


def validate_image(msg: Image, encodings: Iterable[str]) -> list[str]:
    """Logic checks of an Image: known + allowed encoding, non-empty, ``step`` and ``len(data)`` consistent."""
    allowed = tuple(encodings)
    problems = []
    if msg.encoding not in allowed:
        problems.append(f"encoding: {msg.encoding!r} not in {allowed}")
        return problems
    if msg.height == 0 or msg.width == 0:
        problems.append(f"empty: image is {msg.width}x{msg.height}")
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
    k = list(msg.k)
    if len(k) != 9 or not all(math.isfinite(v) for v in k):
        problems.append(f"camera_info_k: K must be 9 finite values, got {k}")
    elif k[0] <= 0 or k[4] <= 0:
        problems.append(f"camera_info_focal: fx={k[0]} fy={k[4]} must be > 0")
    if msg.width == 0 or msg.height == 0:
        problems.append(f"camera_info_size: {msg.width}x{msg.height}")
    return problems


def validate_cloud(msg: PointCloud2, required: Iterable[str] = ("x", "y", "z")) -> list[str]:
    """Logic checks of a PointCloud2: required fields present, sizes consistent, frame set."""
    problems = []
    names = {f.name for f in msg.fields}
    missing = [n for n in required if n not in names]
    if missing:
        problems.append(f"fields: missing {missing}")
    if msg.point_step == 0 or msg.row_step < msg.point_step * msg.width:
        problems.append(f"step: point_step {msg.point_step}, row_step {msg.row_step}, width {msg.width}")
    if len(msg.data) != msg.row_step * msg.height:
        problems.append(f"data_length: {len(msg.data)} bytes != row_step*height {msg.row_step * msg.height}")
    if not msg.header.frame_id:
        problems.append("frame_id: empty header.frame_id")
    return problems
