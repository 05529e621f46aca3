"""``seg-perception stability BAG``: how much the maps flicker, with and without temporal fusion.

Segments every frame of a bag once, then feeds the same clouds to two costmap cores built from the same parameters:
single-frame (``use_fusion: false``) and fused (``use_fusion: true``). For a static scene seen by a moving camera:

- **semantic cell flicker**: each ground cell (odom lattice, costmap resolution) gets a class: the
  confidence-weighted majority of this frame's non-ignored points (single-frame) or of all points so far (fused:
  class histograms accumulated per cell). Flicker = fraction of cells known in two consecutive frames whose class
  changed (``stability.label_flicker`` on the shared cells);
- **grid flicker**: ``stability.grid_flicker`` of consecutive drivable / obstacle grids over their shared cells;
- **half agreement**: the fused grids after the first half of the bag vs after the second half alone (a fresh
  fused core), over the cells both know (``stability.grid_agreement``): a map that can be trusted sees the same
  obstacles and free space twice.

Prints a table and writes ``OUT/stability.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from seg_perception.bag import read_topics
from seg_perception.core.config import from_params
from seg_perception.core.mapping.ontology import PointRole
from seg_perception.core.mapping.pipeline import GridResult
from seg_perception.core.mapping.stability import aligned_overlap, grid_agreement, label_flicker
from seg_perception.core.mapping.voxel_map import SemanticVoxelMap
from seg_perception.core.segmentation.pipeline import SegmentationConfig, SegmentationPipeline
from seg_perception.resources import config_path
from seg_perception.ros import convert
from seg_perception.tools.common import load_node_params, parse_overrides
from seg_perception.tools.process import FrameStats, OfflineMapper, aligned_flicker, segmented_frames
from seg_perception.workspace import DEFAULT_REMAPS


def _cell_classes(hist: SemanticVoxelMap) -> tuple[np.ndarray, np.ndarray]:
    """(sorted cell keys, class per cell) of a 2-D class-histogram map."""
    labels, _ = hist.labels_and_confidence()
    keys = hist.keys
    order = np.argsort(keys)
    return keys[order], labels[order]


def _cell_flicker(prev: tuple[np.ndarray, np.ndarray], cur: tuple[np.ndarray, np.ndarray]) -> float:
    _, i, j = np.intersect1d(prev[0], cur[0], assume_unique=True, return_indices=True)
    return label_flicker(prev[1][i], cur[1][j]) if i.size else float("nan")


def _ground_points(grids: GridResult) -> tuple:
    keep = grids.roles != PointRole.IGNORE
    pts = grids.points[keep].copy()
    pts[:, 2] = 0.0  # one cell per ground position: a 2-D class histogram
    return pts, grids.labels[keep], None if grids.confidence is None else grids.confidence[keep]


def _agreement(a: GridResult, b: GridResult) -> dict[str, float]:
    """grid_agreement of the drivable and obstacle grids of two lattice-aligned results over their overlap."""
    out = {}
    for name in ("drivable", "obstacle"):
        pair = aligned_overlap(getattr(a, f"{name}_occupancy"), a.geometry, getattr(b, f"{name}_occupancy"), b.geometry)
        out[name] = round(grid_agreement(*pair), 4) if pair is not None else float("nan")
    return out


def _lattice_keys(g: GridResult, mask: np.ndarray) -> np.ndarray:
    """int64 keys of the odom-lattice cells selected by ``mask`` (same key for the same place in every frame)."""
    geo = g.geometry
    rows, cols = np.nonzero(mask)
    ix = cols + int(round(geo.origin_x / geo.resolution))
    iy = rows + int(round(geo.origin_y / geo.resolution))
    return (ix.astype(np.int64) << 32) + (iy.astype(np.int64) & 0xFFFFFFFF)


def _add_flicker(
    out: dict[str, GridResult], fused_hist: SemanticVoxelMap, prev: dict[str, Any], flick: dict[str, list[float]]
) -> None:
    """Append this frame's flicker against the previous frame to ``flick``, for both modes (``out``: mode -> this
    frame's grids); ``fused_hist`` takes the frame's ground points; ``prev`` becomes this frame's cells and grids."""
    single_hist = SemanticVoxelMap(fused_hist.resolution_m, fused_hist.num_classes)
    single_hist.insert(*_ground_points(out["single"]))
    fused_hist.insert(*_ground_points(out["fused"]))
    cells = {"single": _cell_classes(single_hist), "fused": _cell_classes(fused_hist)}
    for mode in ("single", "fused"):
        g = out[mode]
        if mode in prev:
            pc, pg = prev[mode]
            flick[f"cells_{mode}"].append(_cell_flicker(pc, cells[mode]))
            for grid in ("drivable", "obstacle"):
                before, after = getattr(pg, f"{grid}_occupancy"), getattr(g, f"{grid}_occupancy")
                flick[f"{grid}_{mode}"].append(aligned_flicker(before, pg.geometry, after, g.geometry))
        prev[mode] = (cells[mode], g)


def measure(bag: Path, params_files: list[Path], overrides: dict[str, Any], limit: int = 0) -> dict[str, Any]:
    """Run both cores over the bag; returns the figures (see the module docstring)."""
    seg_cfg = from_params(SegmentationConfig, load_node_params(params_files, "segmentation", overrides))
    pipe = SegmentationPipeline(seg_cfg)
    spec = pipe.spec
    cm = load_node_params(params_files, "costmap", overrides)
    single = OfflineMapper(bag, {**cm, "use_fusion": False, "voxel_resolution": 0.0}, spec)
    fused = OfflineMapper(bag, {**cm, "use_fusion": True, "voxel_resolution": 0.0}, spec)
    half2 = OfflineMapper(bag, {**cm, "use_fusion": True, "voxel_resolution": 0.0}, spec)
    res = single.mapper.cfg.resolution
    n_frames = read_topics(bag)[DEFAULT_REMAPS["image"]].count
    n_frames = min(n_frames, limit) if limit else n_frames
    fused_hist = SemanticVoxelMap(res, spec.num_classes)
    flick: dict[str, list[float]] = {k: [] for k in (
        "cells_single", "cells_fused", "drivable_single", "drivable_fused", "obstacle_single", "obstacle_fused")}
    prev: dict[str, Any] = {}
    first_half_end: GridResult | None = None
    ever_lethal: set[int] = set()  # lattice keys of fused obstacle cells ever lethal / lethal then free
    cleared: set[int] = set()
    last_half2: GridResult | None = None
    stats = FrameStats()
    frames = segmented_frames(bag, pipe, DEFAULT_REMAPS, stats, limit, progress=True)
    for i, (frame, _result, cloud) in enumerate(frames):
        h = frame.image.header
        t_ns = convert.stamp_to_ns(h.stamp)
        out = {}
        for name, m in (("single", single), ("fused", fused)):
            r = m.update(cloud, t_ns, h.frame_id)
            if isinstance(r, str):
                stats.drops[r] += 1
                break
            out[name] = r[0]
        if len(out) < 2:
            continue
        if i >= n_frames // 2:
            r2 = half2.update(cloud, t_ns, h.frame_id)
            if not isinstance(r2, str):
                last_half2 = r2[0]
        else:  # the last frame mapped in the first half (the one at the half may have been dropped)
            first_half_end = out["fused"]
        _add_flicker(out, fused_hist, prev, flick)
        g = out["fused"]  # clearing: cells once lethal (100) that later read free (0)
        cleared |= ever_lethal.intersection(_lattice_keys(g, g.obstacle_occupancy == 0).tolist())
        ever_lethal.update(_lattice_keys(g, g.obstacle_occupancy == 100).tolist())
        stats.frames_out += 1
    figures = {k: round(float(np.nanmean(v)), 4) if v else None for k, v in flick.items()}
    agreement = _agreement(first_half_end, last_half2) if first_half_end and last_half2 else None
    known = int((prev["fused"][1].obstacle_occupancy != -1).sum()) if "fused" in prev else 0
    return {
        "bag": str(bag), "model": spec.name, "frames": stats.frames_out, "drops": dict(stats.drops),
        "flicker_mean": figures, "half_agreement_fused": agreement, "known_cells_fused_end": known,
        "fused_cells_ever_lethal": len(ever_lethal), "fused_cells_cleared_later": len(cleared),
    }  # fmt: skip


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``seg-perception stability``."""
    p.add_argument("bag", type=Path, help="input rosbag2 (with /tf odom -> base_link for a moving camera)")
    p.add_argument("-o", "--output", type=Path, help="write stability.json here")
    p.add_argument("--params-file", type=Path, action="append", help="YAML parameter file(s); default: package config")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE", help="parameter override")
    p.add_argument("--limit", type=int, default=0, help="use the first N colour images")


def run(args: argparse.Namespace) -> int:
    """Measure and print."""
    res = measure(args.bag, args.params_file or [config_path("seg_perception.yaml")], parse_overrides(args.param),
                  args.limit)  # fmt: skip
    f = res["flicker_mean"]
    print(f"{res['frames']} frames of {res['bag']} ({res['model']})")
    print(f"{'flicker (mean per frame pair)':32s} {'single-frame':>12s} {'fused':>8s}")
    for key, label in (("cells", "semantic cells"), ("drivable", "drivable_grid"), ("obstacle", "obstacle_grid")):
        print(f"{label:32s} {f[key + '_single']!s:>12s} {f[key + '_fused']!s:>8s}")
    print(f"fused half agreement (first half vs second half): {res['half_agreement_fused']}")
    print(f"fused obstacle cells cleared later (ray casting / decay): {res['fused_cells_cleared_later']} of "
          f"{res['fused_cells_ever_lethal']} ever lethal")
    if args.output:
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / "stability.json").write_text(json.dumps(res, indent=2))
    return 0
