"""The model-file halves of bring-your-own models (``core.segmentation.custom_model``): a TorchScript or ONNX file
as a torch module returning logits (N, C, H, W) at input size.

ONNX runs on ONNX Runtime: ``CPUExecutionProvider`` for ``device: cpu``; ``CUDAExecutionProvider`` (package
``onnxruntime-gpu``) for ``cuda[:N]``. On the CPU the same file can run on OpenVINO instead
(``OnnxModel.use_runtime``). ``onnxruntime`` is an optional package, imported when an ONNX file is first opened.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seg_perception.core.segmentation.runners import OpenVINORunner

TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".jit", ".torchscript")


class CustomModelError(ValueError):
    """A custom-model YAML or its model file is malformed or does not agree with the YAML."""


def onnx_providers(device: torch.device, available: list[str]) -> list[Any]:
    """ONNX Runtime execution providers for a torch device.

    Args:
        device: ``cpu`` or ``cuda[:N]``.
        available: ``onnxruntime.get_available_providers()``.
    Returns:
        ``["CPUExecutionProvider"]``, or CUDA (with ``device_id``) first and the CPU as fallback for unsupported ops.
    Raises:
        ValueError: CUDA requested but this onnxruntime build has no ``CUDAExecutionProvider``.
    """
    if device.type == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise ValueError(
                f"device {device} requested but onnxruntime has no CUDAExecutionProvider (available: "
                f"{', '.join(available)}); install onnxruntime-gpu or set device to cpu"
            )
        return [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _onnx_session(path: Path, device: torch.device):  # noqa: ANN202
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), opts, providers=onnx_providers(device, ort.get_available_providers()))


def _fit_output(y: torch.Tensor, x: torch.Tensor, stride: int, path: Path) -> torch.Tensor:
    """Upsample (bilinear) logits of a strided model to the input size; a stride-1 output must already fit."""
    if tuple(y.shape[-2:]) == tuple(x.shape[-2:]):
        return y
    if stride == 1:
        raise CustomModelError(
            f"{path}: output {tuple(y.shape[-2:])} is not the input size {tuple(x.shape[-2:])} (output.stride is 1)"
        )
    return F.interpolate(y.float(), size=x.shape[-2:], mode="bilinear", align_corners=False)


class TorchScriptModel(nn.Module):
    """A TorchScript segmentation file as a module returning logits (N, C, H, W) at input size.

    Args:
        path: the ``torch.jit.save`` file (loaded on the CPU; ``.to(device)`` moves it).
        stride: output stride (1 = at input size).
        output_name: key of a dict output (default ``"out"`` when the output is a dict); tuples give element 0.
    """

    def __init__(self, path: Path, stride: int = 1, output_name: str | None = None) -> None:
        super().__init__()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated, still the format's reader
            self.net = torch.jit.load(str(path), map_location="cpu")
        self.path, self.stride, self.output_name = path, stride, output_name

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """The file's own output tensor, before any upsampling."""
        y = self.net(x)
        if isinstance(y, dict):
            key = self.output_name or "out"
            if key not in y:
                raise CustomModelError(f"{self.path}: output dict has keys {sorted(y)}, no {key!r} (output.name)")
            y = y[key]
        elif isinstance(y, (tuple, list)):
            y = y[0]
        if not isinstance(y, torch.Tensor):
            raise CustomModelError(f"{self.path}: output is {type(y).__name__}, expected a tensor")
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised input -> (N, C, H, W) logits."""
        return _fit_output(self.raw(x), x, self.stride, self.path)


class OnnxModel(nn.Module):
    """An ONNX segmentation file on ONNX Runtime, as a module returning logits (N, C, H, W) at input size.

    ``.to(device)`` re-creates the session with the device's execution provider (see ``onnx_providers``); it holds
    no torch parameters, so ``half()`` changes nothing. Input is fed in the graph's input type (float32 or float16)
    and the output comes back as a float32 tensor on the input's device.

    Args:
        path: the ``.onnx`` file (a single image input, NCHW).
        stride: output stride (1 = at input size).
        output_name: graph output to read (default the first).
    Raises:
        CustomModelError: the graph has no such output, or not exactly one input.
    """

    def __init__(self, path: Path, stride: int = 1, output_name: str | None = None) -> None:
        super().__init__()
        self.path, self.stride = path, stride
        self.device = torch.device("cpu")
        self.session = _onnx_session(path, self.device)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1:
            raise CustomModelError(f"{path}: expected one input, the graph has {[i.name for i in inputs]}")
        self.input_name = inputs[0].name
        self.input_shape = list(inputs[0].shape)
        self.input_dtype = np.float16 if inputs[0].type == "tensor(float16)" else np.float32
        names = [o.name for o in outputs]
        if output_name is not None and output_name not in names:
            raise CustomModelError(f"{path}: no output {output_name!r} (output.name); the graph has {names}")
        self.output_name = output_name or names[0]
        self.runner: Any = None  # core.segmentation.runners.OpenVINORunner when use_runtime("openvino") was called
        self.runtime = "onnxruntime"

    def use_runtime(self, runtime: str, num_threads: int = 0) -> None:
        """Run the file on ``runtime`` (CPU): ``openvino`` (OpenVINO reads ONNX itself) or ``onnxruntime``.

        Args:
            runtime: ``openvino`` or ``onnxruntime``.
            num_threads: inference threads; 0 = the runtime's choice.
        Raises:
            ValueError: another runtime name.
        """
        if runtime == "openvino":
            self.runner = OpenVINORunner(self.path, num_threads, self.output_name)
        elif runtime == "onnxruntime":
            self.runner = None
            if num_threads > 0:
                import onnxruntime as ort

                opts = ort.SessionOptions()
                opts.log_severity_level = 3
                opts.intra_op_num_threads = int(num_threads)
                self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        else:
            raise ValueError(f"an ONNX model runs on openvino or onnxruntime, got {runtime!r}")
        self.runtime = runtime

    def static_hw(self) -> tuple[int, int] | None:
        """``(height, width)`` when the graph's input size is static, else ``None``."""
        if len(self.input_shape) == 4 and all(isinstance(d, int) for d in self.input_shape[2:]):
            return int(self.input_shape[2]), int(self.input_shape[3])
        return None

    def to(self, *args: Any, **kwargs: Any) -> OnnxModel:  # noqa: ANN401
        """Move to a device: a new ONNX Runtime session with that device's provider (dtype arguments are ignored)."""
        device = kwargs.get("device")
        for a in args:
            if isinstance(a, (str, torch.device)):
                device = a
        if device is not None and torch.device(device) != self.device:
            self.device = torch.device(device)
            self.session = _onnx_session(self.path, self.device)
        return self

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """The graph's output tensor, before any upsampling."""
        feed = x.detach().to("cpu", torch.float32).numpy().astype(self.input_dtype, copy=False)
        if self.runner is not None:
            return torch.from_numpy(self.runner(np.ascontiguousarray(feed))).to(x.device)
        (y,) = self.session.run([self.output_name], {self.input_name: feed})
        return torch.from_numpy(np.asarray(y, dtype=np.float32)).to(x.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised input -> (N, C, H, W) float32 logits."""
        return _fit_output(self.raw(x), x, self.stride, self.path)
