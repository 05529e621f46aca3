"""Run a registered segmentation model on an RGB image: preprocess, inference, postprocess.

Knows nothing of ROS. The spec (``core.models.ModelSpec``) owns the normalisation and the input-size rule, so the
node only chooses a model, a device and a network input size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image as PILImage
from torch import nn

from seg_perception.core.models import ModelSpec


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


def preprocess(rgb: np.ndarray, spec: ModelSpec, size: tuple[int, int], device: torch.device) -> torch.Tensor:
    """Turn an RGB image into the network input tensor of ``spec``.

    Resizes with PIL's BILINEAR filter on 8-bit values (antialiased when shrinking), exactly as the models' authors
    did when training and evaluating, then scales by ``spec.input_scale``, subtracts ``spec.mean`` and divides by
    ``spec.std`` on ``device``. PIL resizes in two rounded 8-bit passes; a one-pass float resize differs by up to
    one grey level, which changes 4-5 % of ESPNetv2 Cityscapes labels on CamVid (the golden-output tests).

    Args:
        rgb: (H, W, 3) uint8 image in RGB order (read-only arrays are fine).
        spec: the model's spec.
        size: network input ``(width, height)`` in pixels.
        device: where the tensor is built.
    Returns:
        (1, 3, height, width) float32 tensor on ``device``.
    Raises:
        ValueError: if ``rgb`` is not (H, W, 3) uint8 with H, W > 0.
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    width, height = size
    if (height, width) != rgb.shape[:2]:
        rgb = np.asarray(PILImage.fromarray(rgb).resize((width, height), PILImage.Resampling.BILINEAR))
    x = torch.from_numpy(np.array(rgb, copy=True)).to(device, non_blocking=True)
    x = x.permute(2, 0, 1).unsqueeze(0).float().contiguous()
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
    logits = logits.float()
    if ignore_classes:
        logits = logits.clone()
        logits[:, list(ignore_classes)] = float("-inf")
    probs = torch.softmax(logits, dim=1)
    conf, labels = probs.max(dim=1, keepdim=True)
    stacked = torch.cat([labels.float(), conf], dim=1)
    if tuple(stacked.shape[-2:]) != tuple(out_hw):
        stacked = F.interpolate(stacked, size=out_hw, mode="nearest-exact")  # pixel centres, as PIL NEAREST
    arr = stacked[0].cpu().numpy()
    return Segmentation(labels=arr[0].astype(np.uint8), confidence=arr[1].astype(np.float32))


class Segmenter:
    """A model ready to segment RGB images on one device.

    Args:
        spec: the model's spec.
        model: the network (``core.models.load_model``), logits (N, C, H, W) at input size.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (see ``resolve_device``).
        fp16: run in half precision; only on CUDA (ignored on the CPU, where it is slower).
        input_size: network input ``(width, height)``; rounded to ``spec.size_multiple``. ``None`` keeps
            ``spec.default_size``.
    Raises:
        ValueError: bad device or size.
    """

    def __init__(
        self,
        spec: ModelSpec,
        model: nn.Module,
        device: str = "auto",
        fp16: bool = False,
        input_size: tuple[int, int] | None = None,
    ) -> None:
        self.spec = spec
        self.device = resolve_device(device)
        self.fp16 = bool(fp16) and self.device.type == "cuda"
        self.input_size = spec.input_size(*(input_size or spec.default_size))
        self.model = model.to(self.device).eval()
        if self.fp16:
            self.model = self.model.half()

    @torch.inference_mode()
    def logits(self, rgb: np.ndarray) -> torch.Tensor:
        """Network logits (1, C, h, w) float32 at the network input size for an (H, W, 3) uint8 RGB image."""
        x = preprocess(rgb, self.spec, self.input_size, self.device)
        if self.fp16:
            x = x.half()
        return self.model(x).float()

    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray) -> Segmentation:
        """Segment an (H, W, 3) uint8 RGB image; labels and confidence come back at (H, W).

        Raises:
            ValueError: bad image shape or dtype.
            torch.cuda.OutOfMemoryError: on CUDA when memory runs out (callers count it as a drop).
        """
        return postprocess(self.logits(rgb), rgb.shape[:2], self.spec.ignore_classes)
