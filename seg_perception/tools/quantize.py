"""``seg-perception quantize MODEL --calibration FOLDER``: int8 post-training quantisation with NNCF (cached).

Reads up to ``--limit`` images of the calibration folder (evenly spaced over the sorted file names, optionally
filtered by ``--glob``), preprocesses them at the network input size, quantises the model for OpenVINO
(``core.segmentation.quantize``) and prints the cached IR's path. ``seg-perception eval --int8 FOLDER`` scores the
int8 network beside the float one on the same images.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from seg_perception.core.segmentation.models import load_model
from seg_perception.core.segmentation.quantize import Int8Net, calibration_inputs, quantize
from seg_perception.core.segmentation.registry import get_model_spec
from seg_perception.tools.common import parse_size
from seg_perception.tools.eval_data import IMAGE_SUFFIXES, read_rgb


def calibration_images(folder: Path, glob: str | None = None, limit: int = 100) -> list[Path]:
    """Image files of ``folder`` (recursively, matching ``glob`` when given), at most ``limit`` evenly spaced.

    Raises:
        FileNotFoundError: no such folder, or no image in it.
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"calibration folder {folder} does not exist")
    files = sorted(p for p in folder.rglob(glob or "*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    files = [p for p in files if "depth" not in p.name]  # frame folders keep depth PNGs beside the colour images
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}" + (f" matching {glob}" if glob
                                                                                          else ""))  # fmt: skip
    if len(files) > limit > 0:
        idx = np.linspace(0, len(files) - 1, limit).round().astype(int)
        files = [files[i] for i in sorted(set(idx.tolist()))]
    return files


def build_int8(model: str, weights: str | None, hw: tuple[int, int] | None, folder: Path, glob: str | None,
               limit: int, num_threads: int = 0):  # noqa: ANN201  # fmt: skip
    """Quantise ``model`` at ``hw`` (height, width; None = the model's default) or load it from the cache; returns
    ``(Int8Net, hw, n_images, seconds)``."""
    spec = get_model_spec(model)
    if spec.self_contained:
        raise ValueError(f"model {model!r} is a custom file; quantize takes built-in models")
    net = load_model(spec, weights)
    hw = spec.input_hw(*(hw or spec.default_hw))
    files = calibration_images(folder, glob, limit)
    t0 = time.perf_counter()
    path = quantize(spec.name, net, hw, calibration_inputs(spec, [read_rgb(p) for p in files], hw))
    return Int8Net(path, hw, num_threads), hw, len(files), time.perf_counter() - t0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``seg-perception quantize``."""
    p.add_argument("model", help="registered model name")
    p.add_argument("--calibration", type=Path, required=True,
                   help="folder of real frames (png/jpg), searched recursively")
    p.add_argument("--glob", help="file-name pattern inside the folder, e.g. '0016E5_*'")
    p.add_argument("--limit", type=int, default=100, help="calibration images, evenly spaced (default 100)")
    p.add_argument("--input-size", type=parse_size, default=None, help="network input WxH (default: the model's)")
    p.add_argument("--weights", help="weights file or folder")


def run(args: argparse.Namespace) -> int:
    """Quantise and print where the int8 model is."""
    input_hw = args.input_size.hw if args.input_size else None
    net, hw, n, seconds = build_int8(args.model, args.weights, input_hw, args.calibration, args.glob, args.limit)
    print(f"{args.model} int8 @{hw[1]}x{hw[0]} from {n} calibration images: {net.path} ({seconds:.1f} s)")
    return 0
