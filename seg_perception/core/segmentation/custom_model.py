"""Bring your own model: a TorchScript or ONNX file plus a small YAML runs like a built-in model.

``load_spec("my_model.yaml")`` returns a ``ModelSpec`` (``self_contained``: its builder loads the model file), so
``get_model_spec``, ``load_model``, ``Segmenter``, the segmentation node's ``model`` parameter and
``seg-perception eval --model`` all take the YAML's path where they take a registered name.

YAML schema (paths relative to the YAML file; ``?`` = optional, with its default)::

    file: espnetv2_city_512x256.onnx   # the model: *.onnx -> ONNX Runtime; *.pt / *.pth / *.ts / *.jit -> TorchScript
    format: onnx                       # ? from the suffix; torchscript | onnx
    name: espnetv2_city_onnx           # ? the YAML's file stem
    sha256: 1f0c...                    # ? checked at load when given (full hex digest)
    classes: [road, sidewalk, ...]     # output channel i = class id i (1..256 classes)
    palette: [[128, 64, 128], ...]     # ? one RGB colour per class; default: the PASCAL VOC colour map
    ignore_classes: [19]               # ? channels never predicted (excluded from the argmax)
    ontology: cityscapes               # ? costmap ontology name in config/ontology
    paper: "..."                       # ? citation
    input:
      color_order: rgb                 # ? rgb | bgr: channel order the network expects
      scale: 1/255                     # ? multiply the 0-255 pixel values first: 1/255 for [0, 1] input, 1 for 0-255
      mean: [0.485, 0.456, 0.406]      # ? subtracted after scaling, in color_order; default [0, 0, 0]
      std: [0.229, 0.224, 0.225]       # ? divisor after the mean, in color_order; default [1, 1, 1]
      size: [512, 256]                 # default network input [width, height] in pixels
      size_multiple: 16                # ? other sizes are rounded to this; default 1
      fixed_size: false                # ? the file only runs at `size`; default: true for an ONNX graph whose
                                       #   input height and width are static, else false
    output:
      stride: 1                        # ? 1: logits (1, C, H, W) at the input size; s > 1: at about H/s x W/s,
                                       #   upsampled bilinearly (align_corners=False) to the input size
      name: logits                     # ? ONNX output name / key of a TorchScript dict output; default: the first

The output is always raw class scores (logits) in NCHW layout, one channel per class; labels are their argmax and
confidence their max softmax. At load the model is run once on a blank image at ``input.size``: an output whose
channel count differs from ``classes``, or whose size does not fit ``output.stride``, raises ``CustomModelError``
naming the model file and both values.

ONNX runs on ONNX Runtime: ``CPUExecutionProvider`` for ``device: cpu``; ``CUDAExecutionProvider`` (package
``onnxruntime-gpu``) for ``cuda[:N]``, chosen by the same ``device`` parameter as torch models (a missing provider is
a start-up error). Tensors cross to ONNX Runtime through numpy; ``fp16`` does not apply to ONNX files (export a
float16 graph instead; its input type is honoured). On the CPU the ``runtime`` parameter can run the same file on
OpenVINO instead (``OnnxModel.use_runtime``; ``auto`` picks OpenVINO when it is installed, see
``core.segmentation.runtime``). The file-backed modules are in ``core.segmentation.custom_nets``.
"""

from __future__ import annotations

import functools
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from seg_perception.core.segmentation.class_info import voc_palette
from seg_perception.core.segmentation.custom_nets import (
    TORCHSCRIPT_SUFFIXES,
    CustomModelError,
    OnnxModel,
    TorchScriptModel,
)
from seg_perception.core.segmentation.models import ModelSpec, sha256_of, validate_spec

_TOP_KEYS = {"file", "format", "name", "sha256", "classes", "palette", "ignore_classes", "ontology", "paper", "input",
             "output"}  # fmt: skip
_INPUT_KEYS = {"color_order", "scale", "mean", "std", "size", "size_multiple", "fixed_size"}
_OUTPUT_KEYS = {"stride", "name"}


def _number(value: Any, what: str, where: Path) -> float:  # noqa: ANN401
    """A float from a YAML number or a fraction string such as ``"1/255"``."""
    try:
        return float(Fraction(value)) if isinstance(value, str) else float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        raise CustomModelError(f"{where}: {what} must be a number or a fraction like 1/255, got {value!r}") from None


def _triple(value: Any, what: str, where: Path) -> tuple[float, float, float]:  # noqa: ANN401
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise CustomModelError(f"{where}: {what} must be a list of 3 numbers, got {value!r}")
    a, b, c = (_number(v, what, where) for v in value)
    return a, b, c


def _unknown(data: dict, allowed: set[str], section: str, where: Path) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise CustomModelError(f"{where}: unknown key(s) {extra} in {section}; allowed: {sorted(allowed)}")


def _probe(model: TorchScriptModel | OnnxModel, num_classes: int, hw: tuple[int, int], stride: int,
           yaml_path: Path) -> None:  # fmt: skip
    """Run the model once on a blank input of ``hw`` (height, width) and check its output against the YAML."""
    height, width = hw
    with torch.inference_mode():
        y = model.raw(torch.zeros(1, 3, height, width))
    if y.ndim != 4 or y.shape[0] != 1:
        raise CustomModelError(f"{model.path}: output shape {tuple(y.shape)}, expected (1, C, H, W) logits")
    if y.shape[1] != num_classes:
        raise CustomModelError(
            f"{model.path} outputs {y.shape[1]} channels but {yaml_path} lists {num_classes} classes"
        )
    h, w = y.shape[-2:]
    if stride == 1:
        ok = (h, w) == (height, width)
    else:
        ok = abs(h - height / stride) <= 1 and abs(w - width / stride) <= 1
    if not ok:
        raise CustomModelError(
            f"{model.path}: output {w}x{h} for a {width}x{height} input does not fit output.stride {stride} in "
            f"{yaml_path} (expected about {width / stride:g}x{height / stride:g})"
        )


def _build(model_file: Path, fmt: str, stride: int, output_name: str | None, sha256: str, yaml_path: Path,
           hw: tuple[int, int], num_classes: int) -> nn.Module:  # fmt: skip
    """The builder of a custom spec: hash check, load, one probe run (``functools.partial`` binds all but the last)."""
    if sha256:
        digest = sha256_of(model_file)
        if digest != sha256:
            raise CustomModelError(f"{model_file} is corrupt: sha256 {digest}, expected {sha256} ({yaml_path})")
    model: TorchScriptModel | OnnxModel
    model = OnnxModel(model_file, stride, output_name) if fmt == "onnx" else TorchScriptModel(
        model_file, stride, output_name)  # fmt: skip
    _probe(model.eval(), num_classes, hw, stride, yaml_path)
    return model


def _read_yaml(path: Path) -> tuple[dict, dict, dict]:
    """The top level, ``input`` and ``output`` mappings of a custom-model YAML, unknown keys refused."""
    if not path.is_file():
        raise FileNotFoundError(f"custom model YAML {path} does not exist")
    with open(path) as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise CustomModelError(f"{path}: expected a mapping, got {type(data).__name__}")
    _unknown(data, _TOP_KEYS, "the top level", path)
    inp = data.get("input") or {}
    out = data.get("output") or {}
    if not isinstance(inp, dict) or not isinstance(out, dict):
        raise CustomModelError(f"{path}: 'input' and 'output' must be mappings")
    _unknown(inp, _INPUT_KEYS, "input", path)
    _unknown(out, _OUTPUT_KEYS, "output", path)
    return data, inp, out


def _model_file(data: dict, path: Path) -> tuple[Path, str]:
    """The model file (relative to the YAML) and its format (``onnx`` / ``torchscript``)."""
    if "file" not in data:
        raise CustomModelError(f"{path}: missing key 'file' (the TorchScript or ONNX model)")
    model_file = Path(str(data["file"])).expanduser()
    if not model_file.is_absolute():
        model_file = path.parent / model_file
    if not model_file.is_file():
        raise FileNotFoundError(f"model file {model_file} named in {path} does not exist")
    suffix = model_file.suffix.lower()
    guess = "onnx" if suffix == ".onnx" else "torchscript" if suffix in TORCHSCRIPT_SUFFIXES else ""
    fmt = str(data.get("format") or guess)
    if fmt not in ("onnx", "torchscript"):
        raise CustomModelError(f"{path}: format must be onnx or torchscript (not inferable from {model_file.name})")
    return model_file, fmt


def _classes(data: dict, path: Path) -> tuple[tuple[str, ...], tuple[tuple[int, int, int], ...], tuple[int, ...]]:
    """``(categories, palette, ignore_classes)``; the palette defaults to the PASCAL VOC colour map."""
    classes = data.get("classes")
    if not isinstance(classes, list) or not 1 <= len(classes) <= 256:
        raise CustomModelError(f"{path}: 'classes' must be a list of 1 to 256 class names")
    categories = tuple(str(c) for c in classes)
    raw_palette = data.get("palette")
    if raw_palette is None:
        palette = voc_palette(len(categories))
    else:
        if not isinstance(raw_palette, list) or not all(
            isinstance(c, (list, tuple)) and len(c) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in c)
            for c in raw_palette
        ):
            raise CustomModelError(f"{path}: 'palette' must be a list of [r, g, b] integers in 0-255")
        palette = tuple((int(c[0]), int(c[1]), int(c[2])) for c in raw_palette)
    ignore = data.get("ignore_classes") or []
    if not isinstance(ignore, list) or not all(isinstance(i, int) for i in ignore):
        raise CustomModelError(f"{path}: 'ignore_classes' must be a list of class ids")
    return categories, palette, tuple(ignore)


def _sizes(inp: dict, out: dict, fmt: str, model_file: Path, path: Path) -> tuple[tuple[int, int], int, int, bool]:
    """``((height, width), size_multiple, output stride, fixed_size)``; an ONNX graph with a static input size is
    fixed-size and must agree with ``input.size`` (written ``[width, height]`` in the YAML, as image sizes are)."""
    size = inp.get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise CustomModelError(f"{path}: input.size must be [width, height] in pixels, got {size!r}")
    multiple = inp.get("size_multiple", 1)
    if not isinstance(multiple, int) or multiple < 1:
        raise CustomModelError(f"{path}: input.size_multiple must be a positive integer, got {multiple!r}")
    stride = out.get("stride", 1)
    if not isinstance(stride, int) or stride < 1:
        raise CustomModelError(f"{path}: output.stride must be a positive integer, got {stride!r}")
    fixed = inp.get("fixed_size")
    if fmt == "onnx":
        static = OnnxModel(model_file).static_hw()
        if static is not None:
            if static != (size[1], size[0]):
                raise CustomModelError(
                    f"{model_file} takes {static[1]}x{static[0]} (static input shape) but {path} has input.size "
                    f"{size[0]}x{size[1]}"
                )
            if fixed is False:
                raise CustomModelError(f"{path}: input.fixed_size is false but {model_file} has a static input size")
            fixed = True
    return (size[1], size[0]), multiple, stride, bool(fixed)


def load_spec(yaml_path: str | Path) -> ModelSpec:
    """Read a custom-model YAML (schema in the module docstring) into a ``ModelSpec``.

    The model file is only checked for existence here (and, for ONNX, opened to read its input shape); it is
    loaded, hash-checked and probed when the spec's builder runs (``load_model``).

    Args:
        yaml_path: the YAML file.
    Returns:
        A ``ModelSpec`` with ``self_contained=True`` and ``weights_file`` = the model file's path.
    Raises:
        FileNotFoundError: the YAML or the model file does not exist.
        CustomModelError: a missing, unknown or malformed key (the message names the file and the key).
    """
    path = Path(yaml_path).expanduser()
    data, inp, out = _read_yaml(path)
    model_file, fmt = _model_file(data, path)
    categories, palette, ignore = _classes(data, path)
    hw, multiple, stride, fixed = _sizes(inp, out, fmt, model_file, path)
    output_name = out.get("name")
    sha = str(data.get("sha256") or "").lower()
    spec = ModelSpec(
        name=str(data.get("name") or path.stem),
        builder=functools.partial(_build, model_file, fmt, stride, None if output_name is None else str(output_name),
                                  sha, path, hw),  # fmt: skip
        categories=categories,
        palette=palette,
        mean=_triple(inp.get("mean", [0.0, 0.0, 0.0]), "input.mean", path),
        std=_triple(inp.get("std", [1.0, 1.0, 1.0]), "input.std", path),
        input_scale=_number(inp.get("scale", 1.0), "input.scale", path),
        size_multiple=multiple,
        default_hw=hw,
        weights_file=str(model_file),
        sha256=sha,
        url="",
        ignore_classes=ignore,
        ontology=str(data.get("ontology") or ""),
        paper=str(data.get("paper") or ""),
        channel_order=str(inp.get("color_order", "rgb")).lower(),
        fixed_size=fixed,
        self_contained=True,
        size_note=f"from {path}",
    )
    if any(s == 0 for s in spec.std):
        raise CustomModelError(f"{path}: input.std must not contain 0")
    try:
        validate_spec(spec)
    except ValueError as e:
        raise CustomModelError(f"{path}: {e}") from e
    if spec.default_hw != spec.input_hw(*spec.default_hw):
        raise CustomModelError(f"{path}: input.size {hw[1]}x{hw[0]} is not a multiple of size_multiple {multiple}")
    return spec
