"""image_transport's compressed / compressedDepth formats (``ros/compressed.py``) on a real KITTI frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Header

from seg_perception.core.errors import InputRejected
from seg_perception.ros import compressed
from seg_perception.ros.compressed import (
    CONFIG_HEADER,
    compressed_depth_to_array,
    compressed_to_rgb,
    depth_to_compressed_depth,
    rgb_to_compressed,
)


@pytest.fixture(scope="module")
def frame(kitti_dir):  # noqa: ANN001, ANN201
    name = "0000000000.png"
    rgb = cv2.imread(str(kitti_dir / "image_02" / name))[:, :, ::-1].copy()
    return rgb, cv2.imread(str(kitti_dir / "depth_02" / name), cv2.IMREAD_UNCHANGED)


def test_png_round_trips_exactly_and_jpeg95_is_close(frame) -> None:  # noqa: ANN001
    rgb, depth = frame
    png = rgb_to_compressed(rgb, Header(), "png")
    assert png.format == "rgb8; png compressed bgr8"
    np.testing.assert_array_equal(compressed_to_rgb(png), rgb)
    jpeg = compressed_to_rgb(rgb_to_compressed(rgb, Header(), "jpeg", 95))
    psnr = 10 * np.log10(255.0**2 / np.mean((jpeg.astype(float) - rgb) ** 2))
    assert 30.0 < psnr < 60.0, psnr  # lossy but close (KITTI frame 0: about 36 dB, mean error 3.2 grey levels)
    legacy = CompressedImage(format="png", data=png.data)  # older drivers: the codec name only
    np.testing.assert_array_equal(compressed_to_rgb(legacy), rgb)
    d = depth_to_compressed_depth(depth, Header())
    assert d.format == "16UC1; compressedDepth png" and bytes(d.data[12:16]) == b"\x89PNG"
    np.testing.assert_array_equal(compressed_depth_to_array(d), depth)


def test_32fc1_inverse_depth_decodes_with_the_config_header(frame) -> None:  # noqa: ANN001
    """compressed_depth_image_transport's 32FC1 coding: q = A / depth + B (A = 100, B = A / 10 m), 0 = invalid."""
    _, depth_mm = frame
    depth_m = depth_mm.astype(np.float32) / 1000.0
    a, b = 100.0, 10.0
    valid = depth_mm > 0
    q = np.zeros(depth_mm.shape, np.uint16)
    q[valid] = np.round(a / depth_m[valid] + b).astype(np.uint16)
    ok, png = cv2.imencode(".png", q)
    msg = CompressedImage(format="32FC1; compressedDepth png", data=CONFIG_HEADER.pack(0, a, b) + png.tobytes())
    got = compressed_depth_to_array(msg)
    assert got.dtype == np.float32 and np.isnan(got[~valid]).all()
    np.testing.assert_allclose(got[valid], a / (q[valid].astype(np.float32) - b), rtol=1e-6)
    # within depth_max (10 m) the error is below one quantization step, about depth^2 / A (9 cm at 3 m)
    near = valid & (depth_m <= 10.0)
    assert near.sum() > 1000
    assert (np.abs(got[near] - depth_m[near]) <= depth_m[near] ** 2 / a).all()


def test_bad_messages_are_refused_with_reasons(frame, monkeypatch) -> None:  # noqa: ANN001
    rgb, depth = frame
    png = rgb_to_compressed(rgb, Header(), "png")
    cases = [
        (compressed_to_rgb, CompressedImage(format="rgb8; tiff compressed bgr8", data=png.data), "compressed_format"),
        (compressed_to_rgb, CompressedImage(format="jpeg", data=png.data), "compressed_format"),  # PNG called JPEG
        (compressed_to_rgb, CompressedImage(format="png", data=b"\x00" * 100), "compressed_data"),
        (compressed_depth_to_array, CompressedImage(format="16UC1; compressedDepth rvl", data=b"x" * 20),
         "compressed_format"),
        (compressed_depth_to_array, CompressedImage(format="16UC1; compressedDepth png", data=b"\x00" * 12),
         "compressed_data"),
        (compressed_depth_to_array, CompressedImage(format="16UC1; compressedDepth png",
                                                    data=CONFIG_HEADER.pack(0, 0, 0) + png.data.tobytes()),
         "compressed_data"),  # an 8-bit colour PNG is no depth
    ]  # fmt: skip
    for fn, msg, reason in cases:
        with pytest.raises(InputRejected) as e:
            fn(msg)
        assert e.value.reason == reason, (msg.format, e.value)
    monkeypatch.setattr(compressed, "MAX_PIXELS", 1000)  # the size is read from the header before decoding
    with pytest.raises(InputRejected) as e:
        compressed_to_rgb(png)
    assert e.value.reason == "compressed_size"
    monkeypatch.undo()
    h, w = compressed_to_rgb(png).shape[:2]  # the node's max_image_pixels applies before decoding too
    with pytest.raises(InputRejected, match=f"{w}x{h} pixels > limit {h * w - 1}") as e:
        compressed_to_rgb(png, max_pixels=h * w - 1)
    assert e.value.reason == "compressed_size" and compressed_to_rgb(png, max_pixels=h * w).shape == (h, w, 3)


def test_image_transport_parameter_accepts_raw_and_compressed_only() -> None:
    from seg_perception.ros.segmentation_node import NodeSettings

    assert NodeSettings(image_transport="compressed").image_transport == "compressed"
    with pytest.raises(ValueError, match="image_transport"):
        NodeSettings(image_transport="theora")
