"""Turn a stream of colour, depth and camera_info messages into decoded, consistent RGB-D frames.

Shared by the segmentation node (live topics) and ``seg-perception process`` (bag messages), so both validate,
pair and drop in exactly the same way. Every rejected message is reported through ``drop(reason, detail)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from seg_perception.core.errors import InputRejected
from seg_perception.core.geometry.camera import Intrinsics
from seg_perception.core.sync import StampOrder
from seg_perception.ros import compressed, convert
from seg_perception.ros.pairing import FramePairer
from seg_perception.ros.validate import reason, validate_camera_info, validate_image


@dataclass
class RGBDInput:
    """One decoded frame, ready for ``SegmentationPipeline.process``.

    Attributes:
        image: the colour message (its header is the outputs' header).
        rgb: (H, W, 3) uint8 RGB.
        depth: (H, W) uint16 mm or float32 m registered to ``rgb``, or None without depth.
        k: intrinsics of the (H, W) image, or None without depth.
    """

    image: Image
    rgb: np.ndarray
    depth: np.ndarray | None
    k: Intrinsics | None


def _stamp(msg: Image | CameraInfo) -> int:
    return convert.stamp_to_ns(msg.header.stamp)


class RGBDAssembler:
    """Validate, pair by stamp and decode colour + depth + camera_info.

    Colour and depth are paired by message_filters' TimeSynchronizer (``slop_ns`` 0) or ApproximateTimeSynchronizer
    (``ros/pairing.FramePairer``: newest pair wins, everything older is reported). camera_info is not a third
    synchronized input: the latest valid one is used (drivers publish it at a lower rate, or latched once; it
    changes only with the calibration). A pair that arrives before any camera_info waits for one with its stamp
    (drivers and bags often deliver camera_info just after the image) and is dropped as ``no_camera_info`` when a
    different stamp comes instead.

    Accounting: every colour image handed to ``add_image`` ends in exactly one of: a returned frame, a
    ``drop(reason, detail)`` call, or ``pending`` (waiting for its depth or camera_info; ``flush()`` drops those).
    Refused depth and camera_info messages, and depth images that never pair, go to ``reject(reason, detail)``.
    Colour stamps never go backwards: a slightly older stamp is dropped as ``out_of_order``; one older by at least
    ``time_jump_ns`` (a bag loop, a simulator reset) flushes the waiting messages and starts over (``warn``).

    Args:
        drop: called with (reason, detail) for every colour frame that will not be processed.
        warn: called with (reason, detail) for suspicious but usable input (frame id mismatch, time jump).
        slop_ns: colour/depth stamp tolerance [ns] (inclusive; 0 = identical stamps).
        use_depth: False = colour only (no pairing, no camera_info needed).
        queue_depth: messages kept per stream while waiting for a partner.
        reject: called with (reason, detail) for refused or unpaired depth / camera_info messages (default: drop).
        time_jump_ns: backwards step of the colour stamps treated as a time jump [ns].
        max_pixels: colour and depth images with more pixels are refused before decoding (``too_large``); 0 = no
            bound.
    """

    def __init__(
        self,
        drop: Callable[[str, str], None],
        warn: Callable[[str, str], None] = lambda _r, _d: None,
        slop_ns: int = 0,
        use_depth: bool = True,
        queue_depth: int = 5,
        reject: Callable[[str, str], None] | None = None,
        time_jump_ns: int = 1_000_000_000,
        max_pixels: int = 0,
    ) -> None:
        self.drop, self.warn, self.use_depth = drop, warn, use_depth
        self.max_pixels = max_pixels
        self.reject = reject or drop
        self.pairer = FramePairer(slop_ns, queue_depth, self._discarded)
        self.order = StampOrder(time_jump_ns)
        self.camera_info: CameraInfo | None = None
        self._waiting: tuple[Image, Image] | None = None

    @property
    def pending(self) -> int:
        """Colour images waiting for their depth image or camera_info (safe to read from the worker thread)."""
        return self.pairer.waiting_a + (self._waiting is not None)

    def flush(self) -> None:
        """Drop everything waiting (at shutdown): colour as ``no_depth`` / ``no_camera_info``, depth rejected."""
        self.pairer.flush()
        if self._waiting is not None:
            self._waiting = None
            self.drop("no_camera_info", "no camera_info with the frame's stamp arrived")

    def _discarded(self, stream: str, item: object, why: str) -> None:
        stamp = _stamp(item) / 1e9  # type: ignore[arg-type]
        if stream == "b":
            self.reject("unpaired_depth", f"depth at {stamp:.3f} s: no colour image with its stamp ({why})")
        elif why == "superseded":
            self.drop("superseded", f"colour at {stamp:.3f} s: a newer colour/depth pair was complete first")
        else:
            self.drop("no_depth", f"colour at {stamp:.3f} s: no depth image within sync_slop_s ({why})")

    def add_camera_info(self, msg: CameraInfo) -> RGBDInput | None:
        """Store a valid camera_info; returns a waiting frame that it completes."""
        problems = validate_camera_info(msg)
        if problems:
            self.reject(reason(problems[0]), "camera_info: " + "; ".join(problems))
            return None
        self.camera_info = msg
        if self._waiting is None:
            return None
        pair, self._waiting = self._waiting, None
        if abs(_stamp(msg) - _stamp(pair[0])) > self.pairer.slop_ns:
            self.drop("no_camera_info", "no camera_info with the frame's stamp arrived")
            return None
        return self._decode(*pair)

    def add_image(self, msg: Image) -> RGBDInput | None:
        """Add a colour image; returns a frame when one is complete."""
        problems = validate_image(msg, convert.COLOR_ENCODINGS, self.max_pixels)
        if problems:
            self.drop(reason(problems[0]), "image: " + "; ".join(problems))
            return None
        stamp = _stamp(msg)
        newest = self.order.newest_ns
        order = self.order.check(stamp)
        if order == StampOrder.LATE:
            self.drop("out_of_order", f"colour stamp {stamp / 1e9:.3f} s is older than the newest "
                                      f"{(newest or 0) / 1e9:.3f} s")  # fmt: skip
            return None
        if order == StampOrder.JUMP:
            self.flush()
            self.warn("time_jump", f"colour stamps jumped back {((newest or 0) - stamp) / 1e9:.3f} s: "
                                   "waiting messages flushed")  # fmt: skip
        if not self.use_depth:
            return RGBDInput(msg, convert.image_to_rgb(msg), None, None)
        return self._on_pair(self.pairer.add_a(msg))

    def add_compressed_image(self, msg: CompressedImage) -> RGBDInput | None:
        """Decode an ``image/compressed`` message (JPEG/PNG) and add it as a colour image; a bad payload is a
        dropped frame (``compressed_format`` / ``compressed_data`` / ``compressed_size``)."""
        try:
            rgb = compressed.compressed_to_rgb(msg, self.max_pixels)
        except InputRejected as e:
            self.drop(e.reason, f"image/compressed: {e.detail}")
            return None
        return self.add_image(convert.array_to_image(rgb, "rgb8", msg.header))

    def add_compressed_depth(self, msg: CompressedImage) -> RGBDInput | None:
        """Decode a ``depth/compressedDepth`` message and add it as a depth image; a bad payload is rejected
        (``depth_compressed_*``)."""
        try:
            depth = compressed.compressed_depth_to_array(msg, self.max_pixels)
        except InputRejected as e:
            self.reject(f"depth_{e.reason}", f"depth/compressedDepth: {e.detail}")
            return None
        return self.add_depth(convert.array_to_image(depth, "32FC1" if depth.dtype == np.float32 else "16UC1",
                                                     msg.header))  # fmt: skip

    def add_depth(self, msg: Image) -> RGBDInput | None:
        """Add a depth image; returns a frame when one is complete."""
        problems = validate_image(msg, convert.DEPTH_ENCODINGS, self.max_pixels)
        if problems:
            self.reject("depth_" + reason(problems[0]), "depth: " + "; ".join(problems))
            return None
        return self._on_pair(self.pairer.add_b(msg))

    def _on_pair(self, pair: tuple[Image, Image] | None) -> RGBDInput | None:
        if pair is None:
            return None
        if self.camera_info is None:
            if self._waiting is not None:
                self.drop("no_camera_info", "no valid camera_info received yet")
            self._waiting = pair
            return None
        return self._decode(*pair)

    def _decode(self, img: Image, depth: Image) -> RGBDInput | None:
        info = self.camera_info
        if info is None:
            raise RuntimeError("_decode called without camera_info")
        rgb = convert.image_to_rgb(img)
        depth_arr = convert.image_to_array(depth)
        if depth_arr.shape != rgb.shape[:2]:
            self.drop("size_mismatch", f"depth {depth_arr.shape} does not match colour image {rgb.shape[:2]}")
            return None
        if (info.height, info.width) != rgb.shape[:2]:
            self.drop(
                "camera_info_size",
                f"camera_info {info.width}x{info.height} does not match image {rgb.shape[1]}x{rgb.shape[0]}",
            )
            return None
        if depth.header.frame_id != img.header.frame_id:
            self.warn(
                "frame_id_mismatch",
                f"depth frame {depth.header.frame_id!r} differs from image frame {img.header.frame_id!r}; "
                "depth must be registered to the colour image",
            )
        return RGBDInput(img, rgb, depth_arr, convert.camera_info_to_intrinsics(info))
