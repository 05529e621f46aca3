"""Measure ground projection on a bag: drivable cells ahead with and without it, and its agreement with depth.

``seg-perception projection-check BAG [--params-file F ...] [-p name:=value ...] [--limit N]``
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
from pathlib import Path
from typing import Any

import numpy as np

from seg_perception.core.config import from_params
from seg_perception.core.geometry.camera import Intrinsics
from seg_perception.core.geometry.ground import GroundPlane
from seg_perception.core.mapping.grid import GridGeometry
from seg_perception.core.mapping.ontology import Role
from seg_perception.core.segmentation.pipeline import SegmentationConfig, SegmentationPipeline
from seg_perception.resources import config_path
from seg_perception.ros.convert import stamp_to_ns
from seg_perception.tools.common import load_node_params, parse_overrides
from seg_perception.tools.process import FrameStats, OfflineMapper, segmented_frames
from seg_perception.workspace import DEFAULT_REMAPS


def box_centres(
    geo: GridGeometry, robot_xy: tuple[float, float], box: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, (M, 2) x-y centres [m]) of the cells of ``geo`` whose centres lie in the box ahead."""
    cx = geo.origin_x + (np.arange(geo.width_cells) + 0.5) * geo.resolution
    cy = geo.origin_y + (np.arange(geo.height_cells) + 0.5) * geo.resolution
    dx, dy = cx - robot_xy[0], cy - robot_xy[1]
    cols = np.flatnonzero((dx >= box[0]) & (dx <= box[1]))
    rows = np.flatnonzero(np.abs(dy) < box[2])
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    return rr.ravel(), cc.ravel(), np.stack([cx[cc.ravel()], cy[rr.ravel()]], axis=1)


def visible_drivable(
    xy: np.ndarray, plane: GroundPlane, t_grid_camera: np.ndarray, k: Intrinsics, labels: np.ndarray,
    roles_lut: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """(M,) bool: the ground point under each x-y position (on ``plane``) is in the image, in front of the camera,
    on a pixel of a drivable class (``labels``: (H, W) image class ids). The upper bound of what projection can fill
    (occlusion by a nearer object shows as that object's class)."""
    n = np.asarray(plane.normal)
    z = -(plane.offset + xy[:, 0] * n[0] + xy[:, 1] * n[1]) / n[2]
    p = np.linalg.inv(np.asarray(t_grid_camera, dtype=np.float64)) @ np.c_[xy, z, np.ones(len(z))].T
    front = p[2] > 1e-6
    u = np.floor(k.fx * p[0] / np.where(front, p[2], 1) + k.cx + 0.5).astype(np.int64)
    v = np.floor(k.fy * p[1] / np.where(front, p[2], 1) + k.cy + 0.5).astype(np.int64)
    ok = front & (u >= 0) & (u < k.width) & (v >= 0) & (v < k.height)
    lut = np.asarray(roles_lut, dtype=np.uint8)
    lab = labels[np.clip(v, 0, k.height - 1), np.clip(u, 0, k.width - 1)].astype(np.int64)
    return ok & (lab < lut.size) & (lut[np.minimum(lab, lut.size - 1)] == Role.DRIVABLE)


def measure(
    bag: Path, params_files: list[Path], overrides: dict[str, Any] | None = None, limit: int = 0,
    box: tuple[float, float, float] = (1.0, 25.0, 2.0), progress: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Per-bag figures of ground projection (module docstring).

    Returns:
        ``frames``; ``box_cells``: cells in the box; ``box_cells_before`` / ``box_cells_after``: mean drivable cells
        in the box per frame without / with projection, ``gain`` = after / before; ``box_visible_drivable``: mean
        box cells whose ground point the camera sees on a drivable-class pixel (``visible_drivable``: what any
        projection could fill), ``visible_filled_before`` / ``_after``: the share of those that are drivable;
        ``grid_cells_before`` / ``_after``: mean drivable cells in the whole grid; ``overlap_cells``, ``agree_cells``
        (sums of ``ProjectionStats``) and ``agreement`` = agree / overlap; ``ground_overlap_cells`` /
        ``ground_agreement``: the same over the overlap cells whose depth-backed points are all ground (no OBSTACLE
        point: a car standing on the road is not a claim about the road); ``unchanged_frames``: frames whose grids
        are identical; ``projection_ms_median``.
    """
    overrides = dict(overrides or {})
    seg_cfg = from_params(SegmentationConfig, load_node_params(params_files, "segmentation", overrides))
    pipe = SegmentationPipeline(seg_cfg)
    mappers = {on: OfflineMapper(bag, load_node_params(params_files, "costmap",
                                                       {**overrides, "ground_projection.enabled": on}), pipe.spec)
               for on in (False, True)}  # fmt: skip
    acc: dict[str, list[float]] = {k: [] for k in ("before", "after", "box", "visible", "vis_before", "vis_after",
                                                   "grid_before", "grid_after", "ms")}  # fmt: skip
    sums = {"overlap": 0, "agree": 0, "ground_overlap": 0, "ground_agree": 0, "unchanged": 0}
    stats = FrameStats()
    for frame, result, cloud in segmented_frames(bag, pipe, dict(DEFAULT_REMAPS), stats, limit, progress):
        h = frame.image.header
        t_ns = stamp_to_ns(h.stamp)
        r0 = mappers[False].update(cloud, t_ns, h.frame_id, frame.k)
        r1 = mappers[True].update(cloud, t_ns, h.frame_id, frame.k)
        if isinstance(r0, str) or isinstance(r1, str):
            continue
        (g0, _), (g1, _) = r0, r1
        m1 = mappers[True]
        rows, cols, xy = box_centres(g1.geometry, m1.robot_xy, box)
        plane = g1.ground if g1.ground is not None else GroundPlane.from_height(m1.mapper.cfg.ground_height_m)
        assert m1.t_grid_camera is not None and frame.k is not None and m1.mapper.rules is not None
        vis = visible_drivable(xy, plane, m1.t_grid_camera, frame.k, result.labels, m1.mapper.rules.roles)
        d0, d1 = g0.drivable_occupancy[rows, cols] == 0, g1.drivable_occupancy[rows, cols] == 0
        for key, value in (("before", d0.sum()), ("after", d1.sum()), ("box", rows.size), ("visible", vis.sum()),
                           ("vis_before", (d0 & vis).sum()), ("vis_after", (d1 & vis).sum()),
                           ("grid_before", (g0.drivable_occupancy == 0).sum()),
                           ("grid_after", (g1.drivable_occupancy == 0).sum()),
                           ("ms", g1.timings_ms.get("projection", 0.0))):  # fmt: skip
            acc[key].append(float(value))
        sums["unchanged"] += int(np.array_equal(g0.drivable_occupancy, g1.drivable_occupancy)
                                 and np.array_equal(g0.obstacle_occupancy, g1.obstacle_occupancy))
        if g1.projection is not None:
            p = g1.projection
            sums["overlap"] += p.overlap
            sums["agree"] += p.agree
            sums["ground_overlap"] += p.ground_overlap
            sums["ground_agree"] += p.agree  # agreeing cells have no obstacle point: all are ground cells
    return _figures(acc, sums, box, dict(mappers[True].rejected))


def _figures(
    acc: dict[str, list[float]], sums: dict[str, int], box: tuple[float, float, float], rejected: dict[str, int]
) -> dict[str, Any]:
    """The figures ``measure`` returns from its per-frame values ``acc`` and its agreement counts ``sums``."""
    mean = {k: statistics.fmean(v) if v else float("nan") for k, v in acc.items()}
    return {
        "frames": len(acc["before"]),
        "box_m": {"x_min": box[0], "x_max": box[1], "half_width": box[2]},
        "box_cells": round(mean["box"], 1),
        "box_cells_before": round(mean["before"], 1),
        "box_cells_after": round(mean["after"], 1),
        "gain": round(mean["after"] / mean["before"], 2) if mean["before"] > 0 else None,
        "box_visible_drivable": round(mean["visible"], 1),
        "visible_filled_before": round(mean["vis_before"] / mean["visible"], 4) if mean["visible"] > 0 else None,
        "visible_filled_after": round(mean["vis_after"] / mean["visible"], 4) if mean["visible"] > 0 else None,
        "grid_cells_before": round(mean["grid_before"], 1),
        "grid_cells_after": round(mean["grid_after"], 1),
        "overlap_cells": sums["overlap"],
        "agree_cells": sums["agree"],
        "agreement": round(sums["agree"] / sums["overlap"], 4) if sums["overlap"] else None,
        "ground_overlap_cells": sums["ground_overlap"],
        "ground_agreement": round(sums["ground_agree"] / sums["ground_overlap"], 4) if sums["ground_overlap"] else None,
        "unchanged_frames": sums["unchanged"],
        "rejected": rejected,
        "projection_ms_median": round(statistics.median(acc["ms"]), 2) if acc["ms"] else None,
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``seg-perception projection-check``."""
    p.add_argument("bag", type=Path)
    p.add_argument("--params-file", type=Path, action="append", help="YAML parameter file(s); default: package config")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE", help="override, both nodes")
    p.add_argument("--limit", type=int, default=0, help="stop after N colour images")
    p.add_argument("--box", type=float, nargs=3, default=(1.0, 25.0, 2.0), metavar=("X_MIN", "X_MAX", "HALF_WIDTH"))


def run(a: argparse.Namespace) -> int:
    """Print the figures of one bag as JSON."""
    res = measure(a.bag, a.params_file or [config_path("seg_perception.yaml")], parse_overrides(a.param), a.limit,
                  tuple(a.box), progress=True)  # fmt: skip
    print(json.dumps(res, indent=2))
    return 0 if res["frames"] else 1
