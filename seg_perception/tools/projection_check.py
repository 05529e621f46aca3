"""Measure ground projection on a bag: drivable cells ahead with and without it, and its agreement with depth.

``python -m seg_perception.tools.projection_check BAG [--params-file F ...] [-p name:=value ...] [--limit N]``
segments every colour/depth pair of the bag once (``process.segmented_frames``, the segmentation node's core) and
maps each cloud twice with the costmap node's core (``process.OfflineMapper``): ``ground_projection.enabled``
false (depth only) and true. Per frame it counts the drivable cells (OccupancyGrid value 0) whose centres lie in the
box ``x_min_m <= x - robot_x <= x_max_m``, ``|y - robot_y| < half_width_m`` of the grid frame (ahead of the robot
when the grid frame is ``base_link``, i.e. ``global_frame: ""``, as in the KITTI demo), and sums the agreement
counts of ``ground_projection.ProjectionStats`` (cells with projected points that also hold depth-backed evidence,
and how many of them are drivable by depth too). It also counts the frames whose grids the projection left
unchanged (both grids identical), the figure for a model without a drivable class.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

from seg_perception.core.config import from_params
from seg_perception.core.mapping.grid import GridGeometry
from seg_perception.core.pipeline import SegmentationConfig, SegmentationPipeline
from seg_perception.resources import config_path
from seg_perception.tools.launch import DEFAULT_REMAPS
from seg_perception.tools.process import FrameStats, OfflineMapper, load_node_params, parse_overrides, segmented_frames


def box_drivable_cells(
    drivable: np.ndarray, geo: GridGeometry, robot_xy: tuple[float, float], x_min_m: float = 1.0,
    x_max_m: float = 25.0, half_width_m: float = 2.0,
) -> int:  # fmt: skip
    """Drivable cells (OccupancyGrid value 0) whose centres lie in the box ahead of ``robot_xy`` (grid frame, m)."""
    cols = geo.origin_x + (np.arange(geo.width_cells) + 0.5) * geo.resolution - robot_xy[0]
    rows = geo.origin_y + (np.arange(geo.height_cells) + 0.5) * geo.resolution - robot_xy[1]
    in_x = (cols >= x_min_m) & (cols <= x_max_m)
    in_y = np.abs(rows) < half_width_m
    return int(np.count_nonzero(drivable[np.ix_(in_y, in_x)] == 0))


def measure(
    bag: Path, params_files: list[Path], overrides: dict[str, Any] | None = None, limit: int = 0,
    box: tuple[float, float, float] = (1.0, 25.0, 2.0), progress: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Per-bag figures of ground projection (module docstring).

    Returns:
        ``frames``; ``box_cells_before`` / ``box_cells_after``: mean drivable cells in the box per frame;
        ``gain``: after / before; ``projected_cells`` (mean per frame), ``overlap_cells`` and ``agree_cells``
        (sums) and ``agreement`` = agree / overlap; ``unchanged_frames``: frames whose grids are identical;
        ``projection_ms_median``.
    """
    overrides = dict(overrides or {})
    seg_cfg = from_params(SegmentationConfig, load_node_params(params_files, "segmentation", overrides))
    pipe = SegmentationPipeline(seg_cfg)
    mappers = {on: OfflineMapper(bag, load_node_params(params_files, "costmap",
                                                       {**overrides, "ground_projection.enabled": on}), pipe.spec)
               for on in (False, True)}  # fmt: skip
    before, after, projected, timings = [], [], [], []
    overlap = agree = unchanged = 0
    stats = FrameStats()
    for frame, _result, cloud in segmented_frames(bag, pipe, dict(DEFAULT_REMAPS), stats, limit, progress):
        h = frame.image.header
        t_ns = h.stamp.sec * 1_000_000_000 + h.stamp.nanosec
        res = {on: m.update(cloud, t_ns, h.frame_id, frame.k) for on, m in mappers.items()}
        if isinstance(res[False], str) or isinstance(res[True], str):
            continue
        (g0, _), (g1, _) = res[False], res[True]
        before.append(box_drivable_cells(g0.drivable, g0.geometry, mappers[False].robot_xy, *box))
        after.append(box_drivable_cells(g1.drivable, g1.geometry, mappers[True].robot_xy, *box))
        unchanged += int(np.array_equal(g0.drivable, g1.drivable) and np.array_equal(g0.obstacle, g1.obstacle))
        if g1.projection is not None:
            projected.append(g1.projection.cells)
            overlap += g1.projection.overlap
            agree += g1.projection.agree
            timings.append(g1.timings_ms.get("projection", 0.0))
    n = len(before)
    mean_before = statistics.fmean(before) if n else float("nan")
    mean_after = statistics.fmean(after) if n else float("nan")
    return {
        "frames": n,
        "box_m": {"x_min": box[0], "x_max": box[1], "half_width": box[2]},
        "box_cells_before": round(mean_before, 1),
        "box_cells_after": round(mean_after, 1),
        "gain": round(mean_after / mean_before, 2) if n and mean_before > 0 else None,
        "projected_cells": round(statistics.fmean(projected), 1) if projected else 0.0,
        "overlap_cells": overlap,
        "agree_cells": agree,
        "agreement": round(agree / overlap, 4) if overlap else None,
        "unchanged_frames": unchanged,
        "rejected": dict(mappers[True].rejected),
        "projection_ms_median": round(statistics.median(timings), 2) if timings else None,
    }


def main(argv: list[str] | None = None) -> int:
    """Print the figures of one bag as JSON."""
    p = argparse.ArgumentParser(prog="python -m seg_perception.tools.projection_check", description=__doc__)
    p.add_argument("bag", type=Path)
    p.add_argument("--params-file", type=Path, action="append", help="YAML parameter file(s); default: package config")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE", help="override, both nodes")
    p.add_argument("--limit", type=int, default=0, help="stop after N colour images")
    p.add_argument("--box", type=float, nargs=3, default=(1.0, 25.0, 2.0), metavar=("X_MIN", "X_MAX", "HALF_WIDTH"))
    a = p.parse_args(argv)
    res = measure(a.bag, a.params_file or [config_path("seg_perception.yaml")], parse_overrides(a.param), a.limit,
                  tuple(a.box), progress=True)  # fmt: skip
    print(json.dumps(res, indent=2))
    return 0 if res["frames"] else 1


if __name__ == "__main__":
    sys.exit(main())
