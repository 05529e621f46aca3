"""Compiled-network runners: export a torch module to OpenVINO IR or ONNX and run the file on the CPU.

``EXPORTERS`` maps a runtime name to (exporter, file name in the cache entry, runner class); ``core.segmentation.
runtime.CompiledNet`` uses it with the export cache. OpenVINO and ONNX Runtime are optional packages, imported when a
runner or exporter is first used (``runtime.select_runtime`` checks that they import before either is chosen).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


def _export_openvino(module: nn.Module, width: int, height: int, folder: Path) -> None:
    import openvino as ov

    example = torch.zeros(1, 3, height, width)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about data-dependent Python checks in the nets
        model = ov.convert_model(module, example_input=example, input=[(1, 3, height, width)])
    ov.save_model(model, str(folder / "model.xml"), compress_to_fp16=False)  # keep f32 weights: label parity


def _export_onnx(module: nn.Module, width: int, height: int, folder: Path) -> None:
    example = torch.zeros(1, 3, height, width)
    noisy = [logging.getLogger(n) for n in ("onnx_ir", "onnxscript", "torch.onnx")]
    levels = [lg.level for lg in noisy]
    try:
        for lg in noisy:
            lg.setLevel(logging.WARNING)  # the exporter's optimisation passes log every step at INFO
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (example,), str(folder / "model.onnx"), dynamo=True, input_names=["input"],
                              output_names=["logits"], external_data=False)  # fmt: skip
    finally:
        for lg, level in zip(noisy, levels, strict=True):
            lg.setLevel(level)


def _restore_subnormals() -> None:
    """Give the calling thread IEEE subnormal floats back (clear x86 FTZ/DAZ; what the runtimes set, see
    ``core.segmentation.runtime``)."""
    torch.set_flush_denormal(False)


class Runner:
    """One compiled network: ``runner(x)`` maps a (1, 3, H, W) float32 array to the first output as float32."""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Run the network on a C-contiguous float32 array."""
        raise NotImplementedError


class OpenVINORunner(Runner):
    """An OpenVINO model (IR ``.xml`` or ``.onnx`` file) compiled for the CPU with a latency hint, f32, denormals
    flushed to zero.

    Args:
        path: model file.
        num_threads: ``INFERENCE_NUM_THREADS``; 0 = OpenVINO's choice.
        output_name: output to return (default the first).
    """

    def __init__(self, path: Path, num_threads: int = 0, output_name: str | None = None) -> None:
        import openvino as ov

        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
                                  "CPU_DENORMALS_OPTIMIZATION": True}  # see core.segmentation.runtime  # fmt: skip
        if num_threads > 0:
            config["INFERENCE_NUM_THREADS"] = int(num_threads)
        core = ov.Core()
        self.compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        _restore_subnormals()
        self.request = self.compiled.create_infer_request()
        self.output = self.compiled.output(output_name) if output_name else self.compiled.output(0)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Run the network on a C-contiguous float32 array."""
        self.request.infer({0: x})
        _restore_subnormals()
        return np.array(self.request.get_tensor(self.output).data, dtype=np.float32, copy=True)


class OnnxRuntimeRunner(Runner):
    """An ONNX file on ONNX Runtime's CPU provider with all graph optimisations, denormals as zero.

    Args:
        path: ``.onnx`` file.
        num_threads: ``intra_op_num_threads``; 0 = ONNX Runtime's choice.
    """

    def __init__(self, path: Path, num_threads: int = 0) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.set_denormal_as_zero", "1")  # see core.segmentation.runtime
        # no busy-waiting between runs: the rest of the frame (postprocess, cloud, grids) needs the same cores
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if num_threads > 0:
            opts.intra_op_num_threads = int(num_threads)
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        _restore_subnormals()
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Run the network on a C-contiguous float32 array."""
        (y,) = self.session.run([self.session.get_outputs()[0].name], {self.input_name: x})
        _restore_subnormals()
        return np.asarray(y, dtype=np.float32)


EXPORTERS: dict[str, tuple[Callable[[nn.Module, int, int, Path], None], str, Callable[[Path, int], Runner]]] = {
    "openvino": (_export_openvino, "model.xml", OpenVINORunner),
    "onnxruntime": (_export_onnx, "model.onnx", OnnxRuntimeRunner),
}
