"""sensor_msgs/CompressedImage <-> arrays in image_transport's formats: ``compressed`` (JPEG/PNG colour) and
``compressedDepth`` (depth as PNG after a 12-byte ConfigHeader).

Formats (compressed_image_transport and compressed_depth_image_transport, ROS 2):
    colour: ``format`` = ``"<encoding>; jpeg compressed bgr8"`` / ``"...; png compressed bgr8"`` (older drivers:
        ``"jpeg"`` / ``"jpg"`` / ``"png"``); ``data`` = a JPEG or PNG file. Decoded to RGB whatever the original
        encoding.
    depth: ``format`` = ``"16UC1; compressedDepth png"`` (or ``"...; compressedDepth"``); ``data`` = ConfigHeader
        (int32 compression format, float32 depthParam[2], little endian) + a 16-bit PNG. 16UC1/mono16: the PNG holds
        the millimetres (0 = invalid). 32FC1: it holds quantized inverse depth q, depth = depthParam[0] /
        (q - depthParam[1]) [m], q = 0 -> NaN. The ``rvl`` codec is not supported.

Every malformed message raises ``InputRejected``: reason ``compressed_format`` (format string or codec not
supported, or the payload is not the JPEG/PNG it claims), ``compressed_data`` (payload that does not decode, too
short, wrong bit depth) or ``compressed_size`` (declared size above ``MAX_PIXELS``, checked from the file header
before decoding, so a decompression bomb costs nothing).
"""

from __future__ import annotations

import io
import struct
import warnings

import cv2
import numpy as np
from PIL import Image as PILImage
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Header

from seg_perception.core.errors import InputRejected

#: Largest accepted decoded image [pixels] (a 8K camera has 33 M).
MAX_PIXELS = 50_000_000
#: compressed_depth_image_transport's ConfigHeader: int32 format, float32 depthParam[2].
CONFIG_HEADER = struct.Struct("<iff")
_COLOUR_CODECS = {"jpeg": "JPEG", "jpg": "JPEG", "png": "PNG"}  # "jpg": raspicam_node and other ROS 1 drivers


def _check_file(data: bytes, expected: str, max_pixels: int = 0) -> tuple[int, int]:
    """(height, width) of a JPEG/PNG payload from its header only; more than ``max_pixels`` (0 = ``MAX_PIXELS``) is
    ``compressed_size``; raises InputRejected."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with PILImage.open(io.BytesIO(data)) as im:
                fmt, (w, h) = im.format, im.size
    except Exception as e:  # noqa: BLE001 - Pillow raises several types for garbage
        raise InputRejected("compressed_data", f"payload of {len(data)} bytes is no image: {e}") from None
    if fmt != expected:
        raise InputRejected("compressed_format", f"payload is {fmt}, the format string says {expected}")
    limit = max_pixels or MAX_PIXELS
    if w * h > limit:
        raise InputRejected("compressed_size", f"{w}x{h} pixels > limit {limit}")
    return h, w


def compressed_to_rgb(msg: CompressedImage, max_pixels: int = 0) -> np.ndarray:
    """Decode a ``compressed`` colour image (JPEG or PNG) into (H, W, 3) uint8 RGB; an image of more than
    ``max_pixels`` (the node's ``max_image_pixels``; 0 = ``MAX_PIXELS``) is refused from its header, before decoding.

    Raises:
        InputRejected: ``compressed_format``, ``compressed_data`` or ``compressed_size`` (module docstring).
    """
    fmt = msg.format.lower()
    codec = next((c for c in _COLOUR_CODECS if c in fmt.split(";")[-1]), None)
    if codec is None or "compresseddepth" in fmt:
        raise InputRejected("compressed_format", f"format {msg.format!r}: expected jpeg or png (image_transport "
                                                 "'compressed')")  # fmt: skip
    data = bytes(msg.data)
    _check_file(data, _COLOUR_CODECS[codec], max_pixels)
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputRejected("compressed_data", f"{codec} payload of {len(data)} bytes does not decode")
    return np.ascontiguousarray(bgr[..., ::-1])


def compressed_depth_to_array(msg: CompressedImage, max_pixels: int = 0) -> np.ndarray:
    """Decode a ``compressedDepth`` image: (H, W) uint16 mm for 16UC1/mono16, float32 m for 32FC1 (NaN invalid);
    ``max_pixels`` as ``compressed_to_rgb``.

    Raises:
        InputRejected: ``compressed_format``, ``compressed_data`` or ``compressed_size`` (module docstring).
    """
    encoding, _, rest = msg.format.partition(";")
    encoding = encoding.strip()
    if "compresseddepth" not in rest.lower() or "rvl" in rest.lower() or encoding not in ("16UC1", "mono16", "32FC1"):
        raise InputRejected("compressed_format", f"format {msg.format!r}: expected '16UC1; compressedDepth png' or "
                                                 "'32FC1; compressedDepth png'")  # fmt: skip
    data = bytes(msg.data)
    if len(data) <= CONFIG_HEADER.size:
        raise InputRejected("compressed_data", f"{len(data)} bytes: no ConfigHeader + PNG")
    _, quant_a, quant_b = CONFIG_HEADER.unpack_from(data)
    png = data[CONFIG_HEADER.size:]
    _check_file(png, "PNG", max_pixels)
    arr = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16 or arr.ndim != 2:
        got = "nothing" if arr is None else f"{arr.dtype} {arr.shape}"
        raise InputRejected("compressed_data", f"compressedDepth PNG must be 16-bit single channel, got {got}")
    if encoding != "32FC1":
        return arr
    if not (np.isfinite(quant_a) and np.isfinite(quant_b)):
        raise InputRejected("compressed_data", f"32FC1 depthParam must be finite, got {quant_a}, {quant_b}")
    q = arr.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.where(arr > 0, np.float32(quant_a) / (q - np.float32(quant_b)), np.float32(np.nan))
    return depth.astype(np.float32)


def rgb_to_compressed(rgb: np.ndarray, header: Header, codec: str = "jpeg", quality: int = 95) -> CompressedImage:
    """Encode (H, W, 3) uint8 RGB as compressed_image_transport does (``"rgb8; <codec> compressed bgr8"``).

    Args:
        codec: ``jpeg`` (lossy, ``quality`` 1-100) or ``png`` (lossless).
    Raises:
        ValueError: unknown codec or an encoder failure.
    """
    if codec not in ("jpeg", "png"):
        raise ValueError(f"codec must be jpeg or png, got {codec!r}")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if codec == "jpeg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode(f".{'jpg' if codec == 'jpeg' else 'png'}", np.ascontiguousarray(rgb[..., ::-1]), params)
    if not ok:
        raise ValueError(f"{codec} encoding failed")
    return CompressedImage(header=header, format=f"rgb8; {codec} compressed bgr8", data=buf.tobytes())


def depth_to_compressed_depth(depth_mm: np.ndarray, header: Header) -> CompressedImage:
    """Encode (H, W) uint16 depth [mm] as compressed_depth_image_transport's ``"16UC1; compressedDepth png"``."""
    if depth_mm.dtype != np.uint16 or depth_mm.ndim != 2:
        raise ValueError(f"depth must be (H, W) uint16 mm, got {depth_mm.dtype} {depth_mm.shape}")
    ok, buf = cv2.imencode(".png", depth_mm, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError("png encoding failed")
    data = CONFIG_HEADER.pack(0, 0.0, 0.0) + buf.tobytes()
    return CompressedImage(header=header, format="16UC1; compressedDepth png", data=data)
