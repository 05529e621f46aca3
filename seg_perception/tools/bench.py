"""``seg-perception bench``: time each pipeline stage on real frames and print median / p90 / p99 [ms].

The selected ``--runtime`` (default auto: OpenVINO on the CPU) is compared in the same run with torch eager on the
same network inputs: speed-up of the network call and the percentage of identical labels. ``--all-models`` runs
the model ladder and prints a table (model, network input, runtime, ms/frame, Hz end to end and, with ``--miou``,
mIoU on CamVid 0001TP at the same input size, Cityscapes models mapped to CamVid's classes).

Stages: decode (Image message -> RGB), preprocess, inference, postprocess (argmax + softmax + resize), overlay,
cloud (depth -> semantic cloud), serialize (cloud -> PointCloud2), grids (transform + rasterize + inflate),
projection (ground projection of drivable pixels without depth, ``core/mapping/ground_projection.py``).
Cold start (model build + weights load + first call) is timed apart from the steady state. CUDA is synchronized
around every stage. Results go to stdout and, with ``--json``, to a file with the machine facts.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from std_msgs.msg import Header

from seg_perception.core.geometry.camera import depth_to_meters
from seg_perception.core.geometry.cloud import cloud_arrays, semantic_cloud
from seg_perception.core.geometry.transforms import camera_to_base
from seg_perception.core.mapping.ground_projection import RayCache
from seg_perception.core.mapping.ontology import load_ontology
from seg_perception.core.mapping.pipeline import ClassRules, CostmapPipeline, build_costmap_pipeline
from seg_perception.core.segmentation.models import find_weights, load_model, sha256_of
from seg_perception.core.segmentation.overlay import blend, palette_array
from seg_perception.core.segmentation.pipeline import SegmentationConfig
from seg_perception.core.segmentation.registry import get_model_spec
from seg_perception.core.segmentation.runtime import RUNTIMES, runtime_version
from seg_perception.core.segmentation.segment import Segmenter, postprocess, preprocess
from seg_perception.core.segmentation.zoo import CAMVID_CLASSES
from seg_perception.core.timing import timing_summary
from seg_perception.datasets import RGBDSequence, open_sequence
from seg_perception.resources import config_path
from seg_perception.ros import convert
from seg_perception.tools import eval as ev
from seg_perception.tools.bag_from_frames import MOUNTS
from seg_perception.tools.common import load_node_params, parse_size


def _timed(fn: Callable[[], Any], device: torch.device) -> tuple[Any, float]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, (time.perf_counter() - t0) * 1e3


def _stats(values: list[float]) -> dict[str, float]:
    s = timing_summary(values, digits=2, percentiles=(90, 99))
    return {k: s[k] for k in ("median", "p90", "p99")}


def _labels(logits: torch.Tensor, ignore: tuple[int, ...]) -> np.ndarray:
    """Class ids of (1, C, h, w) logits at their own size, by the node's ``segment.postprocess``."""
    return postprocess(logits, (logits.shape[-2], logits.shape[-1]), ignore).labels


def compare_with_torch(seg: Segmenter, inputs: list[torch.Tensor], repeats: int, warmup: int = 2) -> dict[str, Any]:
    """Time torch eager on the network inputs the runtime ran on, and compare the argmax labels.

    Args:
        seg: a segmenter whose ``runtime`` is not torch (``seg.torch_model`` is the eager network).
        inputs: preprocessed network inputs (1, 3, h, w).
        repeats: timed eager calls (cycling through ``inputs``), after ``warmup`` untimed ones.
    Returns:
        ``{"torch_ms": stats, "agreement_pct": float}``: eager network time [ms] and the percentage of pixels
        whose label is the same on both runtimes over all ``inputs``.
    """
    dev = seg.device
    same = total = 0
    times = []
    with torch.inference_mode():
        for x in inputs:
            a = _labels(seg.model(x), seg.spec.ignore_classes)
            b = _labels(seg.torch_model(x), seg.spec.ignore_classes)
            same += int((a == b).sum())
            total += a.size
        for i in range(warmup + repeats):
            _, ms = _timed(lambda: seg.torch_model(inputs[i % len(inputs)]), dev)  # noqa: B023
            if i >= warmup:
                times.append(ms)
    return {"torch_ms": _stats(times), "agreement_pct": round(100.0 * same / max(1, total), 3)}


def camvid_miou(seg: Segmenter, camvid: Path, prefix: str = "0001TP_") -> float | None:
    """mIoU [%] of ``seg``'s network at its current input size on CamVid images ``prefix*`` (11 classes).

    Cityscapes models are scored through ``config/class_maps/cityscapes_to_camvid.yaml`` (the reference protocol);
    models with CamVid classes directly; others (e.g. PASCAL VOC, no road class) give ``None``.
    """
    spec = seg.spec
    lut = None
    if tuple(spec.categories) != CAMVID_CLASSES:
        if spec.ontology != "cityscapes":
            return None
        lut, _ = ev.load_class_map(ev.resolve_class_map(Path("cityscapes_to_camvid")), spec.categories)
    samples = ev.find_samples(camvid / "images", camvid / "labels", "camvid", None, prefix, None)
    # the same network object at a fixed size: the runtime's compiled model is reused as it is
    fixed = Segmenter(spec, seg.model, device=str(seg.device), input_hw=seg.input_hw, runtime="torch")

    predict = functools.partial(ev.predict_labels, fixed)  # the node's postprocess
    with torch.inference_mode():
        cm, _ = ev.evaluate(predict, samples, len(CAMVID_CLASSES), ev.DEFAULT_IGNORE["camvid"], None, lut,
                            progress=False)  # fmt: skip
    return round(float(cm.summary(list(CAMVID_CLASSES))["mIoU"]), 2)


def bench(
    data: Path, model: str, weights: str | None, input_hw: tuple[int, int] | None, device: str, fp16: bool,
    repeats: int, warmup: int, cloud_stride: int, runtime: str = "auto", threads: int = 0, compare: bool = True,
    camvid: Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Run the benchmark; returns the results dict (see module docstring).

    ``input_hw`` (height, width) ``None`` keeps the camera's aspect (``core.segmentation.segment.aspect_hw``), as the
    node does by default.
    With ``compare`` and a runtime other than torch, torch eager runs the same network inputs afterwards (timed
    apart, so the two thread pools do not compete) and the labels are compared. With ``camvid`` (a CamVid folder)
    the network is also scored on its 0001TP test images at the same input size.
    """
    spec = get_model_spec(model)
    seq = open_sequence(data)
    frames = [seq[i] for i in range(min(len(seq), 8))]
    t0 = time.perf_counter()
    net = load_model(spec, weights)
    seg = Segmenter(spec, net, device=device, fp16=fp16, input_hw=input_hw, runtime=runtime,
                    num_threads=threads, keep_aspect=input_hw is None)  # fmt: skip
    seg(frames[0].rgb)
    cold_ms = (time.perf_counter() - t0) * 1e3
    costmap_params = load_node_params([config_path("seg_perception.yaml")], "costmap")
    mapper, _ = build_costmap_pipeline(costmap_params, spec.num_classes)
    mapper.rules = ClassRules.from_ontology(load_ontology(spec.ontology, spec.categories), spec.categories, mapper.cfg)
    mount = camera_to_base(*MOUNTS[seq.layout])  # base_link -> optical frame, as bag-from-frames' /tf_static
    stats, inputs = stage_times(seg, seq, frames, mapper, mount, repeats, warmup, cloud_stride)
    comparison = None
    if compare and seg.runtime != "torch":
        comparison = compare_with_torch(seg, inputs, repeats)
        comparison["speedup"] = round(comparison["torch_ms"]["median"] / max(1e-9, stats["inference"]["median"]), 2)
    return {
        "model": model,
        "weights_sha256": sha256_of(find_weights(spec, weights, verify=False)),
        **_machine(seg, threads),
        "image_size": f"{frames[0].rgb.shape[1]}x{frames[0].rgb.shape[0]}",
        "network_input": f"{seg.input_hw[1]}x{seg.input_hw[0]}",
        "cloud_stride": cloud_stride,
        "repeats": repeats,
        "cold_start_ms": round(cold_ms, 1),
        "stage_ms": stats,
        "vs_torch": comparison,
        "camvid_0001TP_miou": camvid_miou(seg, camvid) if camvid is not None else None,
    }


def stage_times(
    seg: Segmenter, seq: RGBDSequence, frames: list[Any], mapper: CostmapPipeline, mount: np.ndarray, repeats: int,
    warmup: int, cloud_stride: int,
) -> tuple[dict[str, dict[str, float]], list[torch.Tensor]]:  # fmt: skip
    """Time every stage of the node's frame (segmentation node, then costmap node) on ``frames`` in turn.

    Returns:
        (stats, inputs): stage -> median / p90 / p99 [ms] over ``repeats`` frames after ``warmup``; the network
        inputs of the first frames (for the torch comparison).
    """
    spec, dev = seg.spec, seg.device
    lut = palette_array(spec.palette)
    rays = RayCache()
    times: dict[str, list[float]] = {}
    hdr = Header(frame_id="camera_color_optical_frame")
    inputs: list[torch.Tensor] = []
    for i in range(warmup + repeats):
        f = frames[i % len(frames)]
        msg = convert.array_to_image(f.rgb, "rgb8", hdr)
        lap: dict[str, float] = {}
        rgb, lap["decode"] = _timed(lambda: convert.image_to_rgb(msg), dev)  # noqa: B023
        with torch.inference_mode():
            x, lap["preprocess"] = _timed(lambda: preprocess(rgb, spec, seg.input_hw, dev), dev)  # noqa: B023
            if seg.fp16:
                x = x.half()
            if i < len(frames):
                inputs.append(x)
            logits, lap["inference"] = _timed(lambda: seg.model(x), dev)  # noqa: B023
            result, lap["postprocess"] = _timed(
                lambda: postprocess(logits, rgb.shape[:2], spec.ignore_classes), dev  # noqa: B023
            )
        _, lap["overlay"] = _timed(lambda: blend(rgb, result.labels, lut), dev)  # noqa: B023
        cloud, lap["cloud"] = _timed(
            lambda: semantic_cloud(depth_to_meters(f.depth_mm), seq.intrinsics, rgb, result.labels,  # noqa: B023
                                   result.confidence, cloud_stride), dev)  # fmt: skip  # noqa: B023
        _, lap["serialize"] = _timed(lambda: convert.cloud_to_msg(cloud, hdr), dev)  # noqa: B023
        grids, lap["grids"] = _timed(
            lambda: mapper.update(*cloud_arrays(cloud), mount, rays=rays.rays(seq.intrinsics, cloud.shape)), dev  # noqa: B023
        )
        lap["projection"] = grids.timings_ms.get("projection", 0.0)  # ground projection, its own stage
        lap["grids"] -= lap["projection"]
        lap["total"] = sum(lap.values())
        if i >= warmup:
            for k, v in lap.items():
                times.setdefault(k, []).append(v)
    return {k: _stats(v) for k, v in times.items()}, inputs


def _machine(seg: Segmenter, threads: int) -> dict[str, Any]:
    """Facts of this run: device, library versions, threads, load average, precision, git commit."""
    dev = seg.device
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, check=False).stdout.strip()  # fmt: skip
    except OSError:
        commit = ""
    return {
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda if dev.type == "cuda" else None,
        "runtime": seg.runtime,
        "runtime_version": runtime_version(seg.runtime),
        "threads": threads or torch.get_num_threads(),
        "load_average": list(os.getloadavg()),
        "dtype": "float16" if seg.fp16 else "float32",
        "git_commit": commit,
    }


LADDER_MODELS = (
    "cgnet_camvid", "espnetv2_city_s0.5", "espnetv2_city_s1.0", "espnetv2_city_s1.5", "espnetv2_city",
    "espnetv2_pascal_s0.5", "espnetv2_pascal_s1.0", "espnetv2_pascal_s1.5", "espnetv2_pascal",
)  # fmt: skip


def print_result(res: dict[str, Any]) -> None:
    """One run: header, the runtime against torch eager, and every stage's median / p90 / p99."""
    print(f"{res['model']} on {res['device']} ({res['threads']} threads, {res['dtype']}, runtime {res['runtime']} "
          f"{res['runtime_version']}), image {res['image_size']}, network "
          f"{res['network_input']}, cloud stride {res['cloud_stride']}, cold start "
          f"{res['cold_start_ms']} ms, load average "
          f"{res['load_average'][0]:.2f}")  # fmt: skip
    cmp = res["vs_torch"]
    if cmp:
        print(f"network: {res['runtime']} {res['stage_ms']['inference']['median']:.1f} ms vs torch eager "
              f"{cmp['torch_ms']['median']:.1f} ms (median): {cmp['speedup']:.2f}x faster; identical labels "
              f"{cmp['agreement_pct']:.3f} %")  # fmt: skip
    print(f"{'stage':12s} {'median':>8s} {'p90':>8s} {'p99':>8s}  [ms]")
    for k, v in res["stage_ms"].items():
        print(f"{k:12s} {v['median']:8.2f} {v['p90']:8.2f} {v['p99']:8.2f}")
    total = res["stage_ms"]["total"]["median"]
    outside = sum(v["median"] for k, v in res["stage_ms"].items() if k not in ("inference", "total"))
    print(f"end to end {1000.0 / total:.1f} Hz (median frame {total:.1f} ms); outside the network {outside:.1f} ms "
          f"({100.0 * outside / total:.0f} % of the frame)")  # fmt: skip


def ladder_table(rows: list[dict[str, Any]]) -> str:
    """The ``--all-models`` table (markdown): model, network input, runtime, ms/frame, Hz, speed-up, mIoU."""
    lines = ["| model | input | runtime | network ms | x torch | labels = torch | ms/frame | Hz end to end | "
             "mIoU CamVid 0001TP |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        cmp = r["vs_torch"]
        total = r["stage_ms"]["total"]["median"]
        miou = "-" if r["camvid_0001TP_miou"] is None else f"{r['camvid_0001TP_miou']:.2f}"
        lines.append(
            f"| {r['model']} | {r['network_input']} | {r['runtime']} | "
            f"{r['stage_ms']['inference']['median']:.1f} | {cmp['speedup'] if cmp else '-'} | "
            f"{cmp['agreement_pct'] if cmp else '-'} | {total:.1f} | {1000.0 / total:.1f} | {miou} |"
        )
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``seg-perception bench``."""
    p.add_argument("--data", type=Path, default=Path("../shared/data/kitti_2011_09_26_seq"), help="RGB-D frame folder")
    p.add_argument("--model", default="espnetv2_city")
    p.add_argument("--weights", help="weights file or folder")
    p.add_argument("--input-size", type=parse_size, help="network input WxH (default: the model's)")
    p.add_argument("--device", default="auto")
    p.add_argument("--fp16", action="store_true")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--cloud-stride", type=int, default=SegmentationConfig().cloud_stride,
                   help="semantic_points decimation (default: the segmentation node's, as it runs)")  # fmt: skip
    p.add_argument("--runtime", choices=RUNTIMES, default="auto",
                   help="network runtime (auto: OpenVINO on the CPU when installed); compared with torch eager")
    p.add_argument("--threads", type=int, default=0, help="inference threads (0 = the runtime's default)")
    p.add_argument("--no-compare", action="store_true", help="skip the torch eager comparison")
    p.add_argument("--all-models", action="store_true", help="run the model ladder and print its table")
    p.add_argument("--models", nargs="+", metavar="NAME", help="with --all-models: these models instead")
    p.add_argument("--miou", type=Path, nargs="?", const=Path("../shared/data/camvid"), default=None, metavar="CAMVID",
                   help="also score mIoU on CamVid 0001TP at the same input size (folder with images/ labels/; "
                        "default ../shared/data/camvid)")
    p.add_argument("--json", type=Path, help="also write the results here")


def run(args: argparse.Namespace) -> int:
    """Run and print."""
    size = args.input_size.hw if args.input_size else None  # (height, width), as Segmenter takes it
    names = (args.models or list(LADDER_MODELS)) if args.all_models else [args.model]
    results = []
    for name in names:
        res = bench(args.data, name, args.weights, size, args.device, args.fp16, args.repeats, args.warmup,
                    args.cloud_stride, args.runtime, args.threads, not args.no_compare, args.miou)  # fmt: skip
        print_result(res)
        print()
        results.append(res)
    if args.all_models:
        print(ladder_table(results))
    if args.json:
        args.json.write_text(json.dumps(results if args.all_models else results[0], indent=2))
    return 0
