"""ndarray <-> message round trips: step padding, big-endian, colour orders, depth encodings, organized clouds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from seg_perception.core.geometry.cloud import CLOUD_DTYPE
from seg_perception.ros import convert
from seg_perception.ros.validate import validate_camera_info, validate_cloud, validate_image

RNG = np.random.default_rng(0)
HDR = Header(frame_id="camera_color_optical_frame")


def _image(arr: np.ndarray, encoding: str, pad: int = 0, big: bool = False) -> Image:
    """Build an Image by hand (independently of array_to_image) with ``pad`` bytes per row."""
    dt = arr.dtype.newbyteorder(">" if big else "<")
    rows = np.ascontiguousarray(arr.astype(dt)).reshape(arr.shape[0], -1).view(np.uint8)
    rows = np.concatenate([rows, np.zeros((arr.shape[0], pad), np.uint8)], axis=1)
    return Image(header=HDR, height=arr.shape[0], width=arr.shape[1], encoding=encoding, is_bigendian=int(big),
                 step=rows.shape[1], data=rows.tobytes())  # fmt: skip


@pytest.mark.parametrize(
    ("encoding", "dtype", "channels"),
    [("rgb8", np.uint8, 3), ("mono8", np.uint8, 1), ("16UC1", np.uint16, 1), ("32FC1", np.float32, 1),
     ("bgra8", np.uint8, 4)],
    ids=["rgb8", "mono8", "16UC1", "32FC1", "bgra8"],
)  # fmt: skip
@pytest.mark.parametrize(("pad", "big"), [(0, False), (6, False), (4, True)], ids=["packed", "padded", "bigendian"])
def test_image_round_trip(encoding: str, dtype: type, channels: int, pad: int, big: bool) -> None:
    shape = (5, 7) if channels == 1 else (5, 7, channels)
    arr = (RNG.random(shape) * 1000).astype(dtype)
    out = convert.image_to_array(_image(arr, encoding, pad, big))
    assert out.shape == arr.shape and out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, arr)
    back = convert.image_to_array(convert.array_to_image(out, encoding, HDR))
    np.testing.assert_array_equal(back, arr)


def test_bgr_is_returned_as_rgb() -> None:
    bgr = RNG.integers(0, 255, (4, 6, 3), dtype=np.uint8)
    np.testing.assert_array_equal(convert.image_to_rgb(_image(bgr, "bgr8")), bgr[..., ::-1])
    np.testing.assert_array_equal(convert.image_to_rgb(_image(bgr, "rgb8")), bgr)


def test_truncated_image_raises_and_is_flagged() -> None:
    msg = _image(np.zeros((4, 6, 3), np.uint8), "rgb8")
    msg.data = msg.data[:-5]
    with pytest.raises(ValueError, match="step\\*height"):
        convert.image_to_array(msg)
    assert [p.split(":")[0] for p in validate_image(msg, ["rgb8"])] == ["data_length"]


def test_validate_image_reasons() -> None:
    ok = _image(np.zeros((4, 6, 3), np.uint8), "rgb8")
    assert validate_image(ok, ["rgb8"]) == []
    assert validate_image(ok, ["16UC1"])[0].startswith("encoding:")
    empty = Image(header=HDR, encoding="rgb8")
    assert validate_image(empty, ["rgb8"])[0].startswith("empty:")
    ok.header = Header()
    assert validate_image(ok, ["rgb8"])[0].startswith("frame_id:")


def test_camera_info_checks_and_intrinsics() -> None:
    info = CameraInfo(width=640, height=480, k=[585.0, 0.0, 320.0, 0.0, 585.0, 240.0, 0.0, 0.0, 1.0])
    assert validate_camera_info(info) == []
    k = convert.camera_info_to_intrinsics(info)
    assert (k.fx, k.fy, k.cx, k.cy, k.width, k.height) == (585.0, 585.0, 320.0, 240.0, 640, 480)
    info.k[0] = 0.0
    assert validate_camera_info(info)[0].startswith("camera_info_focal")


def test_organized_cloud_round_trip_keeps_row_major_order() -> None:
    cloud = np.zeros((3, 4), dtype=CLOUD_DTYPE)
    cloud["x"] = np.arange(12, dtype=np.float32).reshape(3, 4)
    cloud["label"] = np.arange(12, dtype=np.uint32).reshape(3, 4) + 100
    cloud["z"][1, 2] = np.nan
    msg = convert.cloud_to_msg(cloud, HDR)
    assert (msg.height, msg.width, msg.point_step, msg.row_step, msg.is_dense) == (3, 4, 24, 96, False)
    assert [(f.name, f.offset, f.datatype) for f in msg.fields] == [
        ("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("rgb", 12, 7), ("label", 16, 6), ("confidence", 20, 7)
    ]  # PointField FLOAT32 = 7, UINT32 = 6
    assert validate_cloud(msg, ("x", "y", "z", "label")) == []
    back = convert.msg_to_cloud(msg)
    assert back.shape == (3, 4)
    assert back[2, 1]["x"] == 9.0 and back[2, 1]["label"] == 109
    assert np.isnan(back[1, 2]["z"])
    sub = convert.msg_to_cloud(msg, ["label", "x"])
    np.testing.assert_array_equal(sub["label"], cloud["label"])
    with pytest.raises(ValueError, match="lacks field"):
        convert.msg_to_cloud(msg, ["intensity"])


def test_grid_message_layout() -> None:
    occ = np.array([[0, 100, -1], [50, 0, 0]], dtype=np.int8)
    msg = convert.grid_to_msg(occ, 0.5, (-1.0, -0.5), Header(frame_id="base_link"))
    assert (msg.info.width, msg.info.height, msg.info.resolution) == (3, 2, 0.5)
    assert (msg.info.origin.position.x, msg.info.origin.position.y, msg.info.origin.orientation.w) == (-1.0, -0.5, 1.0)
    assert list(msg.data) == [0, 100, -1, 50, 0, 0]
    np.testing.assert_array_equal(convert.grid_from_msg(msg), occ)


def test_camera_info_problems_read_as_plain_numbers() -> None:
    info = CameraInfo(width=640, height=480, k=[math.nan, 0.0, 320.0, 0.0, 525.0, 240.0, 0.0, 0.0, 1.0])
    (problem,) = validate_camera_info(info)
    assert problem == "camera_info_k: K must be 9 finite values, got [nan, 0, 320, 0, 525, 240, 0, 0, 1]"
    info.k = [-525.0, 0.0, 320.0, 0.0, 525.5, 240.0, 0.0, 0.0, 1.0]
    assert validate_camera_info(info) == ["camera_info_focal: fx=-525 fy=525.5 must be > 0"]
