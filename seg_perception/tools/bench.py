"""``seg-perception bench``: time each pipeline stage on real frames and print median / p90 / p99 [ms].

Stages: decode (Image message -> RGB), preprocess, inference, postprocess (argmax + softmax + resize), overlay,
cloud (depth -> semantic cloud), serialize (cloud -> PointCloud2), grids (transform + rasterize + inflate).
Cold start (model build + weights load + first call) is timed apart from the steady state. CUDA is synchronized
around every stage. Results go to stdout and, with ``--json``, to a file with the machine facts.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seg_perception.core.geometry.camera import depth_to_meters
from seg_perception.core.geometry.cloud import semantic_cloud
from seg_perception.core.mapping.mapper import ClassRules, build_mapper, cloud_arrays
from seg_perception.core.mapping.ontology import load_ontology
from seg_perception.core.models import find_weights, get_model_spec, load_model, sha256_of
from seg_perception.core.overlay import blend, palette_array
from seg_perception.core.segment import Segmenter, postprocess, preprocess
from seg_perception.datasets import open_sequence
from seg_perception.resources import config_path
from seg_perception.tools.process import load_node_params


def _timed(fn: Callable[[], Any], device: torch.device) -> tuple[Any, float]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, (time.perf_counter() - t0) * 1e3


def bench(
    data: Path, model: str, weights: str | None, input_size: tuple[int, int] | None, device: str, fp16: bool,
    repeats: int, warmup: int, cloud_stride: int,
) -> dict[str, Any]:  # fmt: skip
    """Run the benchmark; returns the results dict (see module docstring)."""
    from std_msgs.msg import Header

    from seg_perception.ros import convert

    spec = get_model_spec(model)
    seq = open_sequence(data)
    frames = [seq[i] for i in range(min(len(seq), 8))]
    t0 = time.perf_counter()
    net = load_model(spec, weights)
    seg = Segmenter(spec, net, device=device, fp16=fp16, input_size=input_size)
    seg(frames[0].rgb)
    cold_ms = (time.perf_counter() - t0) * 1e3
    dev = seg.device
    lut = palette_array(spec.palette)
    mapper, _ = build_mapper(load_node_params([config_path("seg_perception.yaml")], "costmap"), spec.num_classes)
    mapper.rules = ClassRules.from_ontology(load_ontology(spec.ontology, spec.categories), spec.categories, mapper.cfg)
    times: dict[str, list[float]] = {}
    hdr = Header(frame_id="camera_color_optical_frame")
    for i in range(warmup + repeats):
        f = frames[i % len(frames)]
        msg = convert.array_to_image(f.rgb, "rgb8", hdr)
        lap: dict[str, float] = {}
        rgb, lap["decode"] = _timed(lambda: convert.image_to_rgb(msg), dev)  # noqa: B023
        with torch.inference_mode():
            x, lap["preprocess"] = _timed(lambda: preprocess(rgb, spec, seg.input_size, dev), dev)  # noqa: B023
            if seg.fp16:
                x = x.half()
            logits, lap["inference"] = _timed(lambda: seg.model(x), dev)  # noqa: B023
            result, lap["postprocess"] = _timed(
                lambda: postprocess(logits, rgb.shape[:2], spec.ignore_classes), dev  # noqa: B023
            )
        _, lap["overlay"] = _timed(lambda: blend(rgb, result.labels, lut), dev)  # noqa: B023
        cloud, lap["cloud"] = _timed(
            lambda: semantic_cloud(depth_to_meters(f.depth_mm), seq.intrinsics, rgb, result.labels,  # noqa: B023
                                   result.confidence, cloud_stride), dev)  # fmt: skip  # noqa: B023
        _, lap["serialize"] = _timed(lambda: convert.cloud_to_msg(cloud, hdr), dev)  # noqa: B023
        _, lap["grids"] = _timed(lambda: mapper.update(*cloud_arrays(cloud)), dev)  # noqa: B023
        lap["total"] = sum(lap.values())
        if i >= warmup:
            for k, v in lap.items():
                times.setdefault(k, []).append(v)
    stats = {k: {"median": round(float(np.median(v)), 2), "p90": round(float(np.percentile(v, 90)), 2),
                 "p99": round(float(np.percentile(v, 99)), 2)} for k, v in times.items()}  # fmt: skip
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, check=False).stdout.strip()  # fmt: skip
    except OSError:
        commit = ""
    return {
        "model": model,
        "weights_sha256": sha256_of(find_weights(spec, weights, verify=False)),
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda if dev.type == "cuda" else None,
        "threads": torch.get_num_threads(),
        "dtype": "float16" if seg.fp16 else "float32",
        "image_size": [frames[0].rgb.shape[1], frames[0].rgb.shape[0]],
        "network_input": list(seg.input_size),
        "cloud_stride": cloud_stride,
        "repeats": repeats,
        "cold_start_ms": round(cold_ms, 1),
        "stage_ms": stats,
        "git_commit": commit,
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``seg-perception bench``."""
    p.add_argument("--data", type=Path, default=Path("../shared/data/kitti_2011_09_26_seq"), help="RGB-D frame folder")
    p.add_argument("--model", default="espnetv2_city")
    p.add_argument("--weights", help="weights file or folder")
    p.add_argument("--input-size", help="network input WxH (default: the model's)")
    p.add_argument("--device", default="auto")
    p.add_argument("--fp16", action="store_true")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--cloud-stride", type=int, default=1)
    p.add_argument("--json", type=Path, help="also write the results here")


def run(args: argparse.Namespace) -> int:
    """Run and print."""
    size = None
    if args.input_size:
        w, h = (int(v) for v in args.input_size.lower().split("x"))
        size = (w, h)
    res = bench(args.data, args.model, args.weights, size, args.device, args.fp16, args.repeats, args.warmup,
                args.cloud_stride)  # fmt: skip
    print(f"{res['model']} on {res['device']} ({res['threads']} threads, {res['dtype']}), image "
          f"{res['image_size'][0]}x{res['image_size'][1]}, network {res['network_input'][0]}x"
          f"{res['network_input'][1]}, cold start {res['cold_start_ms']} ms")  # fmt: skip
    print(f"{'stage':12s} {'median':>8s} {'p90':>8s} {'p99':>8s}  [ms]")
    for k, v in res["stage_ms"].items():
        print(f"{k:12s} {v['median']:8.2f} {v['p90']:8.2f} {v['p99']:8.2f}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point."""
    p = argparse.ArgumentParser(prog="seg-perception bench")
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
