"""int8 post-training quantisation of a built-in model with NNCF, for OpenVINO on the CPU.

``quantize`` converts our torch module with ``openvino.convert_model`` at one network input size, runs NNCF's
post-training quantisation (``nncf.quantize``: min/max statistics of activations on calibration frames, fast bias
correction) and saves the int8 OpenVINO IR in the export cache (``core.segmentation.runtime``; key: model, weights
sha256, input size, OpenVINO + NNCF versions, torch version and the sha256 of the preprocessed calibration inputs).
``Int8Net`` runs it like the float network (same preprocessing, logits out). Calibrate on real frames of the target
scene, distinct from the evaluation images.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from seg_perception.core.segmentation.models import ModelSpec
from seg_perception.core.segmentation.runners import OpenVINORunner
from seg_perception.core.segmentation.runtime import ExportKey, cached_export, state_dict_sha256
from seg_perception.core.segmentation.segment import preprocess

INT8_RUNTIME = "openvino-int8"
_log = logging.getLogger("seg_perception.quantize")


def calibration_inputs(spec: ModelSpec, images: Sequence[np.ndarray], hw: tuple[int, int]) -> list[np.ndarray]:
    """Network inputs for calibration: each (H, W, 3) uint8 RGB image preprocessed as at inference at ``hw``
    (height, width).

    Returns:
        (1, 3, height, width) float32 arrays, one per image.
    Raises:
        ValueError: no images, or an image that is not (H, W, 3) uint8.
    """
    if not images:
        raise ValueError("calibration needs at least one image")
    return [preprocess(rgb, spec, hw, torch.device("cpu")).numpy() for rgb in images]


def calibration_digest(inputs: Sequence[np.ndarray]) -> str:
    """sha256 of the calibration inputs (shapes and float32 bytes, in order)."""
    h = hashlib.sha256()
    for x in inputs:
        h.update(str(x.shape).encode())
        h.update(np.ascontiguousarray(x, dtype=np.float32).tobytes())
    return h.hexdigest()


def int8_key(name: str, module: nn.Module, hw: tuple[int, int], inputs: Sequence[np.ndarray]) -> ExportKey:
    """Cache key of the int8 export of ``module`` at ``hw`` (height, width) calibrated on ``inputs``."""
    import nncf
    import openvino as ov

    return ExportKey(name, state_dict_sha256(module), hw[1], hw[0], INT8_RUNTIME,
                     f"openvino {ov.__version__}, nncf {nncf.__version__}", str(torch.__version__),
                     extra=f"calibration {calibration_digest(inputs)} ({len(inputs)} inputs)")  # fmt: skip


def quantize(name: str, module: nn.Module, hw: tuple[int, int], inputs: Sequence[np.ndarray],
             root: Path | None = None) -> Path:  # fmt: skip
    """int8-quantise ``module`` at ``hw`` with NNCF, or return the cached result.

    Args:
        name: model name (cache key).
        module: the float torch network, eval mode, CPU.
        hw: network input ``(height, width)``.
        inputs: calibration inputs (``calibration_inputs``), all of shape (1, 3, height, width).
        root: export cache folder (default ``core.segmentation.runtime.export_dir()``).
    Returns:
        Path of the int8 OpenVINO IR (``model.xml``; weights in ``model.bin`` beside it).
    Raises:
        ValueError: an input of another shape, or no inputs.
    """
    height, width = hw
    if not inputs or any(tuple(x.shape) != (1, 3, height, width) for x in inputs):
        raise ValueError(f"calibration inputs must all be (1, 3, {height}, {width})")

    def export(folder: Path) -> None:
        import nncf
        import openvino as ov

        _log.info("quantising %s at %dx%d to int8 on %d calibration inputs (once; cached)", name, width, height,
                  len(inputs))  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ov.convert_model(module, example_input=torch.from_numpy(inputs[0]), input=[(1, 3, height, width)])
            q = nncf.quantize(model, nncf.Dataset(list(inputs)), subset_size=len(inputs))
        ov.save_model(q, str(folder / "model.xml"), compress_to_fp16=False)

    entry = cached_export(int8_key(name, module, hw, inputs), export, root)
    return entry / "model.xml"


class Int8Net(nn.Module):
    """An int8 OpenVINO IR as a module: (1, 3, H, W) float32 normalised input -> (1, C, H, W) float32 logits.

    Args:
        path: the IR's ``model.xml`` (``quantize``).
        hw: the only network input ``(height, width)`` it runs at.
        num_threads: OpenVINO inference threads (0 = its default).
    """

    def __init__(self, path: Path, hw: tuple[int, int], num_threads: int = 0) -> None:
        super().__init__()
        self.path, self.hw = path, hw
        self.runner = OpenVINORunner(path, num_threads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for one input of ``hw``.

        Raises:
            ValueError: an input of another size.
        """
        if tuple(x.shape) != (1, 3, *self.hw):
            raise ValueError(f"int8 network {self.path} runs at 1x3x{self.hw[0]}x{self.hw[1]}, got "
                             f"{tuple(x.shape)}")  # fmt: skip
        return torch.from_numpy(self.runner(np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)))
