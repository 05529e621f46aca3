r"""``seg-perception eval``: mIoU, pixel accuracy and Dice of a registered model on a labelled image set.

Protocol (shared/models/README.md, "Reference results"): each image is resized to the network input size by
``core.segmentation.segment.preprocess`` (PIL bilinear on 8-bit values, as the authors did), the network output goes
through the segmentation node's own postprocess (``segment.postprocess_probs``: argmax of the class probabilities,
resized nearest at pixel centres as PIL NEAREST) to the evaluation size, optionally mapped to the data set's class ids
through a class map, and accumulated into one ``core.segmentation.metrics.ConfusionMatrix`` over the whole set;
pixels whose ground truth is the ignore id are skipped. Labels are compared at their own size unless ``--eval-size``
is given (then they are nearest-resized too).

Supported layouts:
  camvid      ``images/<name>.png`` <-> ``labels/<name>.png`` (8-bit ids; CamVid: 0-10, 11 = ignore)
  cityscapes  ``<city>/<stem>_leftImg8bit.png`` <-> ``<city>/<stem>_gtFine_labelTrainIds.png`` (255 = ignore)

Examples::

    seg-perception eval --model cgnet_camvid --dataset ../shared/data/camvid --prefix 0001TP_ \
        --weights ../shared/models --output out/cgnet_0001TP
    seg-perception eval --model espnetv2_city --dataset ../shared/data/camvid --prefix 0016E5_ \
        --input-size 960x720 --class-map config/class_maps/cityscapes_to_camvid.yaml --weights ../shared/models
    seg-perception eval --model cgnet_camvid --dataset ../shared/data/camvid --prefix 0001TP_ \
        --weights ../shared/models --tta-flip --tta-scales 0.75 1.0 1.25

``--model`` also takes a custom-model YAML (``core.segmentation.custom_model``). With ``--tta-flip`` / ``--tta-scales``
the prediction is the argmax of the class probabilities averaged over the views
(``core.segmentation.segment.Segmenter``).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import yaml
from tqdm import tqdm

from seg_perception.core.segmentation.metrics import ConfusionMatrix, class_map_lut, map_labels
from seg_perception.core.segmentation.models import WeightsError, load_model
from seg_perception.core.segmentation.registry import get_model_spec
from seg_perception.core.segmentation.segment import Segmenter, postprocess_probs
from seg_perception.resources import find_config
from seg_perception.tools.common import parse_size
from seg_perception.tools.eval_data import (
    DEFAULT_IGNORE,
    DatasetError,
    Sample,
    check_sizes,
    detect_layout,
    find_samples,
    read_labels,
    read_rgb,
    resize_labels,
)
from seg_perception.tools.eval_report import format_table, reference_metrics, render_confusion
from seg_perception.tools.quantize import build_int8


def resolve_class_map(value: Path) -> Path:
    """Find a class-map YAML: an existing path, else a bare name such as ``cityscapes_to_camvid``.

    Names are looked up in ``config/class_maps`` of ``resources.share_dirs()`` (source tree, pip or colcon install).

    Raises:
        FileNotFoundError: naming the places searched.
    """
    if value.is_file():
        return value
    name = value.name if value.suffix == ".yaml" else f"{value.name}.yaml"
    try:
        return find_config("class_maps", name)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"class map {value} not found: {e}") from None


def load_class_map(path: Path, source_classes: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Read a class-map YAML (``config/class_maps``) into a lookup table for the model's ids.

    Returns:
        ``(lut, target_classes)``; see ``core.segmentation.metrics.class_map_lut``.
    Raises:
        ValueError: malformed file, or ``source_classes`` in the file differ from the model's categories.
    """
    with open(path) as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict) or "mapping" not in data or "target_classes" not in data:
        raise ValueError(f"class map {path}: expected keys 'mapping' and 'target_classes'")
    declared = data.get("source_classes")
    if declared is not None and list(declared) != list(source_classes):
        raise ValueError(f"class map {path} is for classes {declared}, the model has {list(source_classes)}")
    target = [str(n) for n in data["target_classes"]]
    try:
        lut = class_map_lut(data["mapping"], source_classes, target)
    except ValueError as e:
        raise ValueError(f"class map {path}: {e}") from e
    return lut, target


def evaluate(
    predict: Callable[[np.ndarray, tuple[int, int]], np.ndarray],
    samples: Sequence[Sample],
    num_classes: int,
    ignore_index: int | None,
    eval_hw: tuple[int, int] | None = None,
    lut: np.ndarray | None = None,
    progress: bool = True,
) -> tuple[Any, float]:
    """Run ``predict`` on every sample and accumulate a confusion matrix.

    Args:
        predict: ``predict(rgb, (H, W)) -> (H, W)`` integer predicted ids at the evaluation size.
        samples: image/label pairs.
        num_classes: classes of the ground truth (after the class map, if any).
        ignore_index: ground-truth id that is skipped.
        eval_hw: (height, width) for the comparison; ``None`` = each label's own size.
        lut: optional lookup table applied to the predicted ids (``core.segmentation.metrics.map_labels``).
        progress: show a tqdm bar on stderr.
    Returns:
        ``(ConfusionMatrix, mean seconds per image for predict)``.
    Raises:
        ValueError: from the metrics on out-of-range ids (the message names the file).
    """
    cm = ConfusionMatrix(num_classes, ignore_index=ignore_index)
    seconds = 0.0
    for s in tqdm(samples, desc="eval", unit="img", disable=not progress, file=sys.stderr):
        rgb = read_rgb(s.image)
        truth = read_labels(s.label)
        if eval_hw is not None:
            truth = resize_labels(truth, eval_hw)
        t0 = time.perf_counter()
        pred = predict(rgb, truth.shape[:2])
        seconds += time.perf_counter() - t0
        if lut is not None:
            pred = map_labels(pred, lut)
        try:
            cm.update(truth, pred)
        except ValueError as e:
            raise ValueError(f"{s.label}: {e}") from e
    return cm, seconds / max(1, len(samples))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``eval`` options on ``parser``."""
    parser.add_argument("--model", required=True,
                        help="registered model name (seg-perception models), or a custom-model YAML path")
    parser.add_argument("--weights", default=None,
                        help="weights file or folder; default $SEG_PERCEPTION_MODEL_DIR, then the user cache")
    parser.add_argument("--dataset", type=Path, default=None,
                        help="folder with images/ and labels/ (or Cityscapes' leftImg8bit/ and gtFine/)")
    parser.add_argument("--images", type=Path, default=None, help="image folder (instead of --dataset)")
    parser.add_argument("--labels", type=Path, default=None, help="label folder (instead of --dataset)")
    parser.add_argument("--layout", choices=("auto", "camvid", "cityscapes"), default="auto",
                        help="file pairing: camvid = same names, cityscapes = *_leftImg8bit <-> "
                        "*_gtFine_labelTrainIds (default: auto-detect)")
    subset = parser.add_mutually_exclusive_group()
    subset.add_argument("--glob", default=None, help="shell pattern on image file names, e.g. '0016E5_*'")
    subset.add_argument("--prefix", default=None, help="image file-name prefix, e.g. 0001TP_")
    parser.add_argument("--input-size", type=parse_size, default=None,
                        help="network input WxH (default: the model's; the ESPNetv2 city CamVid protocol uses 960x720)")
    parser.add_argument("--eval-size", type=parse_size, default=None,
                        help="compare at WxH (labels and predictions nearest-resized; default: label size)")
    parser.add_argument("--class-map", type=Path, default=None,
                        help="YAML mapping model classes to label classes: a path, or a name in config/class_maps/ "
                        "such as cityscapes_to_camvid")
    parser.add_argument("--ignore-index", type=int, default=None,
                        help="ground-truth id not evaluated (default: 11 for the camvid layout, 255 for cityscapes)")
    parser.add_argument("--tta-flip", action="store_true",
                        help="test-time augmentation: average class probabilities with the mirrored image")
    parser.add_argument("--tta-scales", type=float, nargs="+", default=[1.0], metavar="S",
                        help="test-time augmentation: input scales relative to --input-size, e.g. 0.75 1.0 1.25 "
                        "(default: 1.0)")
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--runtime", choices=("auto", "torch", "openvino", "onnxruntime"), default="torch",
                        help="network runtime (default torch; auto = OpenVINO on the CPU when installed)")
    parser.add_argument("--threads", type=int, default=0, help="inference threads (0 = the runtime's default)")
    parser.add_argument("--int8", type=Path, default=None, metavar="CALIBRATION",
                        help="also score the NNCF int8 network (OpenVINO) calibrated on this image folder, beside fp32")
    parser.add_argument("--int8-glob", default=None, help="file-name pattern inside the calibration folder")
    parser.add_argument("--int8-limit", type=int, default=100, help="calibration images (default 100)")
    parser.add_argument("--output", type=Path, default=None, help="write metrics.json and confusion.png here")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N images only")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    """Execute ``eval`` with parsed ``args``; prints the table, returns the exit code (0 ok, 2 bad input)."""
    try:
        return _run(args)
    except (DatasetError, ValueError, KeyError, FileNotFoundError, WeightsError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"seg-perception eval: error: {msg}", file=sys.stderr)
        return 2


def _folders(args: argparse.Namespace) -> tuple[Path, Path]:
    """``(images_dir, labels_dir)`` from ``--dataset`` (CamVid or Cityscapes tree) or ``--images`` + ``--labels``."""
    if args.dataset is not None:
        if args.images is not None or args.labels is not None:
            raise ValueError("give either --dataset or --images/--labels, not both")
        if not (args.dataset / "images").is_dir() and (args.dataset / "leftImg8bit").is_dir():
            return args.dataset / "leftImg8bit", args.dataset / "gtFine"  # Cityscapes tree
        return args.dataset / "images", args.dataset / "labels"
    if args.images is not None and args.labels is not None:
        return args.images, args.labels
    raise ValueError("give --dataset DIR, or both --images DIR and --labels DIR")


def predict_labels(segmenter: Segmenter, rgb: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """(H, W) uint8 class ids at ``out_hw`` = (H, W) for an (h, w, 3) uint8 RGB image, by the segmentation node's
    own postprocess: ``segment.postprocess_probs`` of ``Segmenter.probs`` (class probabilities averaged over the TTA
    views, ``spec.ignore_classes`` at 0), i.e. the argmax resized nearest at pixel centres. The node's
    ``Segmenter.__call__`` is the same with ``out_hw`` = the image's size."""
    return postprocess_probs(segmenter.probs(rgb), out_hw).labels


def _int8_scores(args: argparse.Namespace, segmenter: Segmenter, samples: Sequence[Sample], class_names: list[str],
                 ignore_index: int, eval_hw: tuple[int, int] | None, lut: np.ndarray | None,
                 fp32: dict[str, Any], fp32_seconds: float) -> dict[str, Any]:  # fmt: skip
    """Quantise (``--int8`` calibration folder), score the int8 network on the same samples and print the
    comparison with the float one."""
    if segmenter.tta:
        raise ValueError("--int8 runs without test-time augmentation")
    net8, _, n_cal, q_seconds = build_int8(args.model, args.weights, segmenter.input_hw, args.int8,
                                           args.int8_glob, args.int8_limit, args.threads)  # fmt: skip
    seg8 = Segmenter(segmenter.spec, net8, device="cpu", input_hw=segmenter.input_hw, runtime="torch")
    with torch.inference_mode():
        seg8.logits(read_rgb(samples[0].image))
        cm8, sec8 = evaluate(functools.partial(predict_labels, seg8), samples, len(class_names),
                             ignore_index, eval_hw, lut, progress=not args.no_progress)  # fmt: skip
    s8 = cm8.summary(class_names)
    print(f"int8 (NNCF, OpenVINO, {n_cal} calibration images from {args.int8}): mIoU {s8['mIoU']:.2f} "
          f"(fp32 {fp32['mIoU']:.2f}, {s8['mIoU'] - fp32['mIoU']:+.2f}), pixel acc {s8['pixel_acc']:.2f} "
          f"(fp32 {fp32['pixel_acc']:.2f}); {1000 * sec8:.1f} ms/image vs {1000 * fp32_seconds:.1f} "
          f"(quantisation or cache load {q_seconds:.1f} s)")  # fmt: skip
    return {"mIoU": s8["mIoU"], "pixel_acc": s8["pixel_acc"], "seconds_per_image": sec8,
            "calibration": {"folder": str(args.int8), "glob": args.int8_glob, "images": n_cal},
            "model_file": str(net8.path)}  # fmt: skip


def _class_map(args: argparse.Namespace, categories: Sequence[str]) -> tuple[np.ndarray | None, list[str]]:
    """``(lut, class names)`` of ``--class-map`` (resolved in place), or ``(None, the model's classes)``: scored in
    the model's own ids (channels in ``spec.ignore_classes`` are excluded from the argmax)."""
    if args.class_map is None:
        return None, list(categories)
    args.class_map = resolve_class_map(args.class_map)
    return load_class_map(args.class_map, categories)


def _write_outputs(folder: Path, report: dict[str, Any], cm: ConfusionMatrix, class_names: list[str]) -> None:
    """``metrics.json`` and ``confusion.png`` in ``folder`` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(report, indent=1))
    cv2.imwrite(str(folder / "confusion.png"), render_confusion(cm.normalized(), class_names))
    print(f"wrote {folder / 'metrics.json'} and {folder / 'confusion.png'}")


def _run(args: argparse.Namespace) -> int:
    eval_hw = args.eval_size.hw if args.eval_size else None
    images_dir, labels_dir = _folders(args)
    layout = detect_layout(images_dir) if args.layout == "auto" and images_dir.is_dir() else args.layout
    ignore_index = args.ignore_index if args.ignore_index is not None else DEFAULT_IGNORE.get(layout, 255)

    spec = get_model_spec(args.model)
    samples = find_samples(images_dir, labels_dir, layout, args.glob, args.prefix, args.limit)
    check_sizes(samples)
    lut, class_names = _class_map(args, spec.categories)

    model = load_model(spec, args.weights)
    input_hw = args.input_size.hw if args.input_size else None
    segmenter = Segmenter(spec, model, device=args.device, input_hw=input_hw, tta_flip=args.tta_flip,
                          tta_scales=args.tta_scales, runtime=args.runtime, num_threads=args.threads)  # fmt: skip

    h, w = segmenter.input_hw
    tta = {"flip": segmenter.tta_flip, "scales": list(segmenter.tta_scales),
           "sizes": [f"{sw}x{sh}" for sh, sw in segmenter.tta_hws]}  # fmt: skip
    tta_text = f", TTA flip={tta['flip']} scales={tta['scales']}" if segmenter.tta else ""
    print(f"model {spec.name} @{w}x{h} on {len(samples)} {layout} images from {images_dir} "
          f"(ignore id {ignore_index}{', class map ' + str(args.class_map) if args.class_map else ''}{tta_text})")
    with torch.inference_mode():
        segmenter.logits(read_rgb(samples[0].image))  # warm-up: a runtime's export / compilation is not timed
        predict = functools.partial(predict_labels, segmenter)
        cm, sec_per_image = evaluate(predict, samples, len(class_names), ignore_index, eval_hw, lut,
                                     progress=not args.no_progress)  # fmt: skip

    summary = cm.summary(class_names)
    subset = (args.prefix or args.glob or "").strip("_*") or None
    # The spec's reference numbers are single-scale, no flip: shown beside TTA results for comparison.
    reference = reference_metrics(spec.metrics, subset, segmenter.input_hw, args.class_map is not None)
    print(format_table(summary, reference))
    print(f"inference {1000 * sec_per_image:.1f} ms/image (preprocess + network + argmax, {segmenter.device}, "
          f"runtime {segmenter.runtime})")
    int8 = None if args.int8 is None else _int8_scores(args, segmenter, samples, class_names, ignore_index, eval_hw,
                                                       lut, summary, sec_per_image)  # fmt: skip

    if args.output is not None:
        report = {
            "model": spec.name,
            "input_size": f"{w}x{h}",
            "eval_size": f"{eval_hw[1]}x{eval_hw[0]}" if eval_hw else None,
            "images": len(samples),
            "images_dir": str(images_dir),
            "labels_dir": str(labels_dir),
            "layout": layout,
            "subset": {"glob": args.glob, "prefix": args.prefix, "limit": args.limit},
            "class_map": str(args.class_map) if args.class_map else None,
            "device": str(segmenter.device),
            "runtime": segmenter.runtime,
            "int8": int8,
            "tta": tta,
            "seconds_per_image": sec_per_image,
            "reference": reference,
            **summary,
        }
        _write_outputs(args.output, report, cm, class_names)
    return 0
