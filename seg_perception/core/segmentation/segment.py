"""Run a registered segmentation model on an RGB image: preprocess, inference, postprocess.

Knows nothing of ROS. The spec (``core.models.ModelSpec``) owns the normalisation and the input-size rule, so the
node only chooses a model, a device, a network input size and, optionally, test-time augmentation (TTA):
class probabilities averaged over a horizontal flip and several input scales.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image as PILImage
from torch import nn

from seg_perception.core.segmentation.models import ModelSpec
from seg_perception.core.segmentation.runtime import accelerate, select_runtime

ASPECT_TOLERANCE = 0.10  # an explicit network size whose aspect differs from the image's by more is warned about
_log = logging.getLogger("seg_perception.segment")


def resolve_device(device: str) -> torch.device:
    """Map the ``device`` parameter to a torch device.

    Args:
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    Raises:
        ValueError: if a CUDA device is requested but CUDA is not available, or the string is not a device.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"invalid device {device!r}: {e}") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    elif dev.type != "cpu":
        raise ValueError(f"unsupported device {device!r}; use auto, cpu or cuda[:N]")
    return dev


def preprocess(rgb: np.ndarray, spec: ModelSpec, hw: tuple[int, int], device: torch.device) -> torch.Tensor:
    """Turn an RGB image into the network input tensor of ``spec``.

    Resizes with PIL's BILINEAR filter on 8-bit values (antialiased when shrinking), exactly as the models' authors
    did when training and evaluating, then reorders channels to ``spec.channel_order`` (``"bgr"`` flips them),
    scales by ``spec.input_scale``, subtracts ``spec.mean`` and divides by ``spec.std`` on ``device``. PIL resizes
    in two rounded 8-bit passes; a one-pass float resize differs by up to one grey level, which changes 4-5 % of
    ESPNetv2 Cityscapes labels on CamVid (the golden-output tests).

    Args:
        rgb: (H, W, 3) uint8 image in RGB order (read-only arrays are fine).
        spec: the model's spec.
        hw: network input ``(height, width)`` in pixels.
        device: where the tensor is built.
    Returns:
        (1, 3, height, width) float32 tensor on ``device``.
    Raises:
        ValueError: if ``rgb`` is not (H, W, 3) uint8 with H, W > 0.
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    height, width = hw
    if (height, width) != rgb.shape[:2]:
        rgb = np.asarray(PILImage.fromarray(rgb).resize((width, height), PILImage.Resampling.BILINEAR))
    x = torch.from_numpy(np.array(rgb, copy=True)).to(device, non_blocking=True)
    x = x.permute(2, 0, 1).unsqueeze(0).float()
    if spec.channel_order == "bgr":
        x = x.flip(1)
    x = x.contiguous()
    mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=device).view(1, 3, 1, 1)
    return (x * spec.input_scale - mean) / std


@dataclass(frozen=True)
class Segmentation:
    """Per-pixel result at the input image's resolution.

    Attributes:
        labels: (H, W) uint8 class ids.
        confidence: (H, W) float32 max softmax probability in [0, 1].
    """

    labels: np.ndarray
    confidence: np.ndarray


def class_probabilities(logits: torch.Tensor, ignore_classes: tuple[int, ...] = ()) -> torch.Tensor:
    """Softmax over classes, with ``ignore_classes`` given probability 0.

    Args:
        logits: (N, C, h, w) float tensor (any float dtype; computed in float32).
        ignore_classes: channels that are never a valid prediction (their logits are set to -inf first).
    Returns:
        (N, C, h, w) float32 probabilities summing to 1 over C.
    """
    logits = logits.float()
    if ignore_classes:
        logits = logits.clone()
        logits[:, list(ignore_classes)] = float("-inf")
    return torch.softmax(logits, dim=1)


def postprocess(
    logits: torch.Tensor, out_hw: tuple[int, int], ignore_classes: tuple[int, ...] = ()
) -> Segmentation:
    """Argmax and max-softmax of network logits, resized (nearest) to the input image size.

    Args:
        logits: (1, C, h, w) float tensor at network resolution.
        out_hw: (H, W) of the original image.
        ignore_classes: channels excluded from the argmax (e.g. a background channel trained with weight 0).
    Returns:
        ``Segmentation`` with labels (H, W) uint8 and confidence (H, W) float32.
    Raises:
        ValueError: if logits are not (1, C, h, w) with 1 <= C <= 256.
    """
    if logits.ndim != 4 or logits.shape[0] != 1 or not 1 <= logits.shape[1] <= 256:
        raise ValueError(f"expected logits (1, C<=256, h, w), got {tuple(logits.shape)}")
    return postprocess_probs(class_probabilities(logits, ignore_classes), out_hw)


def postprocess_probs(probs: torch.Tensor, out_hw: tuple[int, int]) -> Segmentation:
    """Argmax and max of class probabilities, resized (nearest, pixel centres) to the input image size.

    Args:
        probs: (1, C, h, w) float32 class probabilities at network resolution (e.g. ``Segmenter.probs``).
        out_hw: (H, W) of the original image.
    Returns:
        ``Segmentation`` with labels (H, W) uint8 and confidence (H, W) float32 = the winning probability.
    Raises:
        ValueError: if probs are not (1, C, h, w) with 1 <= C <= 256.
    """
    if probs.ndim != 4 or probs.shape[0] != 1 or not 1 <= probs.shape[1] <= 256:
        raise ValueError(f"expected probabilities (1, C<=256, h, w), got {tuple(probs.shape)}")
    conf, labels = probs.float().max(dim=1, keepdim=True)
    stacked = torch.cat([labels.float(), conf], dim=1)
    if tuple(stacked.shape[-2:]) != tuple(out_hw):
        stacked = F.interpolate(stacked, size=out_hw, mode="nearest-exact")  # pixel centres, as PIL NEAREST
    arr = stacked[0].cpu().numpy()
    return Segmentation(labels=arr[0].astype(np.uint8), confidence=arr[1].astype(np.float32))


def tta_hws(spec: ModelSpec, base_hw: tuple[int, int], scales: Sequence[float]) -> tuple[tuple[int, int], ...]:
    """Network input sizes for test-time augmentation: ``base_hw`` times each scale, rounded to the model's multiple.

    Args:
        spec: the model (``spec.input_hw`` does the rounding and rejects sizes a fixed-size model cannot run).
        base_hw: ``(height, width)`` of the un-augmented input.
        scales: positive factors; ``[1.0]`` is no multi-scale.
    Returns:
        One ``(height, width)`` per scale, in order.
    Raises:
        ValueError: if ``scales`` is empty or holds a non-positive or non-finite value, or from ``spec.input_hw``.
    """
    if len(scales) == 0:
        raise ValueError("tta scales must not be empty (use [1.0] for no multi-scale)")
    bad = [s for s in scales if not (np.isfinite(s) and s > 0)]
    if bad:
        raise ValueError(f"tta scales must be positive and finite, got {list(scales)}")
    sizes = []
    for s in scales:
        try:
            sizes.append(spec.input_hw(max(1, round(base_hw[0] * s)), max(1, round(base_hw[1] * s))))
        except ValueError as e:
            raise ValueError(f"tta scale {s}: {e}") from e
    return tuple(sizes)


def aspect_hw(spec: ModelSpec, image_hw: tuple[int, int]) -> tuple[int, int]:
    """Network input size that keeps the image's aspect ratio: the largest that fits inside ``spec.default_hw``.

    So the network never sees more pixels than its default size (the size it was trained and measured at), and a
    camera of another aspect is scaled, not squashed: KITTI's 1242x375 becomes 1024x304 for a 1024x512 model
    (multiple 16), a 640x480 camera 688x512. A fixed-size model keeps its size.

    Args:
        spec: the model (``default_hw``, ``size_multiple``, ``fixed_size``).
        image_hw: camera image ``(height, width)`` in pixels (> 0).
    Returns:
        ``(height, width)`` rounded to ``spec.size_multiple`` (``spec.input_hw``).
    Raises:
        ValueError: a non-positive image size.
    """
    height, width = image_hw
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if spec.fixed_size:
        return tuple(spec.default_hw)  # type: ignore[return-value]
    s = min(spec.default_hw[0] / height, spec.default_hw[1] / width)
    return spec.input_hw(max(1, round(height * s)), max(1, round(width * s)))


def aspect_distortion(network_hw: tuple[int, int], image_hw: tuple[int, int]) -> float:
    """Relative change of aspect ratio from the image to the network input: ``max(r, 1/r) - 1`` with
    ``r = (w/h) / (W/H)`` (0 = same aspect; 0.25 = one axis squashed by a quarter relative to the other); both
    sizes (height, width)."""
    r = (network_hw[1] / network_hw[0]) / (image_hw[1] / image_hw[0])
    return max(r, 1.0 / r) - 1.0


class Segmenter:
    """A model ready to segment RGB images on one device, optionally with test-time augmentation (TTA).

    TTA averages class PROBABILITIES (softmax, ignore classes at 0) over every combination of input scale and,
    with ``tta_flip``, the horizontally mirrored input (its output mirrored back). Each scale's input size is the
    base size times the scale, rounded to ``spec.size_multiple``; its probabilities are resized bilinearly
    (``align_corners=False``) to the base network size before averaging. The cost is one network run per view
    (``len(tta_scales) * (2 if tta_flip else 1)``).

    Args:
        spec: the model's spec.
        model: the network (``core.models.load_model``), logits (N, C, H, W) at input size.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (see ``resolve_device``).
        fp16: run in half precision; only on CUDA (ignored on the CPU, where it is slower).
        input_hw: network input ``(height, width)``; rounded to ``spec.size_multiple``. ``None`` keeps
            ``spec.default_hw``, or with ``keep_aspect`` follows each image's aspect (``aspect_hw``). An
            explicit size whose aspect differs from an image's by more than ``ASPECT_TOLERANCE`` logs a warning
            once per image size.
        tta_flip: also run the horizontally flipped image.
        tta_scales: input scales relative to ``input_hw``, e.g. ``(0.75, 1.0, 1.25)``; ``(1.0,)`` = one scale.
        runtime: ``torch`` (default), ``openvino``, ``onnxruntime`` or ``auto`` (``core.runtime.select_runtime``:
            OpenVINO on the CPU when installed, torch on CUDA; a missing runtime falls back to torch, logged).
            Only the network call changes; pre- and postprocessing are the same on every runtime.
        num_threads: inference threads (torch: ``torch.set_num_threads``, process-wide; OpenVINO / ONNX Runtime:
            their own thread count); 0 = the library's default.
        keep_aspect: without ``input_hw``, size the network input from each image's aspect ratio.
    Attributes:
        input_hw: the current network input ``(height, width)`` (with ``keep_aspect``: of the last image).
        tta_hws: one network input ``(height, width)`` per TTA scale.
        runtime: the runtime that runs the network (after fallback).
    Raises:
        ValueError: bad device, size, scales or runtime (a fixed-size model accepts only scales that round to its
            size).
    """

    def __init__(
        self,
        spec: ModelSpec,
        model: nn.Module,
        device: str = "auto",
        fp16: bool = False,
        input_hw: tuple[int, int] | None = None,
        tta_flip: bool = False,
        tta_scales: Sequence[float] = (1.0,),
        runtime: str = "torch",
        num_threads: int = 0,
        keep_aspect: bool = False,
    ) -> None:
        self.spec = spec
        self.device = resolve_device(device)
        self.runtime = select_runtime(runtime, self.device)
        self.fp16 = bool(fp16) and self.device.type == "cuda"
        self.explicit_size = input_hw is not None
        self.keep_aspect = bool(keep_aspect) and not self.explicit_size and not spec.fixed_size
        self.input_hw = spec.input_hw(*(input_hw or spec.default_hw))
        self.tta_flip = bool(tta_flip)
        self.tta_scales = tuple(float(s) for s in tta_scales)
        self.tta_hws = tta_hws(spec, self.input_hw, self.tta_scales)
        self._image_hw: tuple[int, int] | None = None
        self._warned_hw: set[tuple[int, int]] = set()
        if num_threads < 0:
            raise ValueError(f"num_threads must be >= 0, got {num_threads}")
        if num_threads and self.runtime == "torch" and self.device.type == "cpu":
            torch.set_num_threads(int(num_threads))
        self.torch_model = model.to(self.device).eval()
        if self.fp16:
            self.torch_model = self.torch_model.half()
        self.model = accelerate(self.torch_model, spec.name, self.runtime, self.device, num_threads)

    def adapt(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        """Set the network input for an image of ``image_hw`` (height, width); returns ``input_hw``.

        With ``keep_aspect`` the size follows the image (``aspect_hw``); an explicit size is kept and warned
        about once per image size when it distorts the aspect by more than ``ASPECT_TOLERANCE``.
        """
        hw = (int(image_hw[0]), int(image_hw[1]))
        if hw == self._image_hw:
            return self.input_hw
        self._image_hw = hw
        if self.keep_aspect:
            net = aspect_hw(self.spec, hw)
            if net != self.input_hw:
                self.input_hw = net
                self.tta_hws = tta_hws(self.spec, net, self.tta_scales)
                _log.info("%s: network input %dx%d for %dx%d images (aspect kept)", self.spec.name, net[1], net[0],
                          hw[1], hw[0])  # fmt: skip
        elif hw not in self._warned_hw and aspect_distortion(self.input_hw, hw) > ASPECT_TOLERANCE:
            self._warned_hw.add(hw)
            _log.warning(
                "%s: network input %dx%d distorts the aspect of %dx%d images by %.0f %% (> %.0f %%); set "
                "input_width/height to 0 to keep the camera's aspect", self.spec.name, self.input_hw[1],
                self.input_hw[0], hw[1], hw[0], 100 * aspect_distortion(self.input_hw, hw), 100 * ASPECT_TOLERANCE,
            )  # fmt: skip
        return self.input_hw

    @torch.inference_mode()
    def warm_up(self, image_hw: tuple[int, int] | None = None) -> None:
        """Run the network once per TTA size on a blank input, so that a runtime's export and compilation happen
        now rather than on the first image.

        Args:
            image_hw: (height, width) of the images to come (e.g. from camera_info), which sets the network size
                first (``adapt``); without it, nothing happens under ``keep_aspect`` (the size comes with the image).
        """
        if image_hw is not None:
            self.adapt(image_hw)
        elif self.keep_aspect:
            return
        for height, width in self.tta_hws:
            self._run(torch.zeros(1, 3, height, width, device=self.device))

    @property
    def tta(self) -> bool:
        """Whether any augmentation is on (more than one network run per image)."""
        return self.tta_flip or self.tta_hws != (self.input_hw,)

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        if self.fp16:
            x = x.half()
        return self.model(x).float()

    @torch.inference_mode()
    def logits(self, rgb: np.ndarray) -> torch.Tensor:
        """Network logits (1, C, h, w) float32 at the network input size for an (H, W, 3) uint8 RGB image."""
        self.adapt(rgb.shape[:2])
        return self._run(preprocess(rgb, self.spec, self.input_hw, self.device))

    @torch.inference_mode()
    def probs(self, rgb: np.ndarray) -> torch.Tensor:
        """Class probabilities (1, C, h, w) float32 at the network input size, averaged over the TTA views.

        Without TTA this is ``class_probabilities(self.logits(rgb), spec.ignore_classes)``; channels in
        ``spec.ignore_classes`` are 0.
        """
        self.adapt(rgb.shape[:2])
        height, width = self.input_hw
        views = []
        for hw in self.tta_hws:
            x = preprocess(rgb, self.spec, hw, self.device)
            for flip in (False, True) if self.tta_flip else (False,):
                p = class_probabilities(self._run(x.flip(-1) if flip else x), self.spec.ignore_classes)
                if flip:
                    p = p.flip(-1)
                if tuple(p.shape[-2:]) != (height, width):
                    p = F.interpolate(p, size=(height, width), mode="bilinear", align_corners=False)
                views.append(p)
        if len(views) == 1:
            return views[0]
        return torch.stack(views).mean(dim=0)

    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray) -> Segmentation:
        """Segment an (H, W, 3) uint8 RGB image; labels and confidence come back at (H, W).

        Raises:
            ValueError: bad image shape or dtype.
            torch.cuda.OutOfMemoryError: on CUDA when memory runs out (callers count it as a drop).
        """
        return postprocess_probs(self.probs(rgb), rgb.shape[:2])
