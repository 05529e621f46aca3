"""The costmap node's work on one semantic cloud, without ROS: transform, classify, rasterize, inflate.

Shared by ``ros/costmap_node.py`` and the offline tools so both compute the same grids.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seg_perception.core.costmap import (
    CostmapConfig,
    GridGeometry,
    build_grids,
    camera_to_base,
    to_occupancy,
    transform_points,
)


@dataclass
class GridResult:
    """Grids of one cloud in ``base_frame``.

    Attributes:
        drivable: (H, W) int8 OccupancyGrid values: 0 seen drivable, 100 seen not drivable, -1 unknown.
        obstacle: (H, W) int8 OccupancyGrid values: 100 lethal, 1-99 inflation, 0 seen free, -1 unknown.
        points_base: (N, 3) float32 points in base_frame [m] (NaN rows for invalid points).
        geometry: placement of both grids (origin = outer corner of cell (0, 0)).
        timings_ms: stage -> wall time [ms].
    """

    drivable: np.ndarray
    obstacle: np.ndarray
    points_base: np.ndarray
    geometry: GridGeometry
    timings_ms: dict[str, float]


class GridMapper:
    """Robot-centred drivable and obstacle grids from semantic clouds of one camera.

    Args:
        cfg: grid and height-band parameters.
        camera_translation: camera origin in base_frame [m].
        camera_rpy: roll, pitch, yaw of the camera body frame in base_frame [rad] (see ``costmap.camera_to_base``).
        roles_lut: (C,) uint8 role per class id (``Ontology.roles_lut``).
    Raises:
        ValueError: bad extrinsic or configuration.
    """

    def __init__(
        self,
        cfg: CostmapConfig,
        camera_translation: Sequence[float],
        camera_rpy: Sequence[float],
        roles_lut: np.ndarray | None = None,
    ) -> None:
        self.cfg = cfg
        self.t_base_camera = camera_to_base(camera_translation, camera_rpy)
        self.geometry = GridGeometry.from_config(cfg)
        self.roles_lut = roles_lut

    def update(self, xyz: np.ndarray, labels: np.ndarray, confidence: np.ndarray | None) -> GridResult:
        """Grids for one cloud.

        Args:
            xyz: (N, 3) float32 points in the camera optical frame [m]; NaN = invalid.
            labels: (N,) integer class ids.
            confidence: (N,) float32 in [0, 1], or None.
        Raises:
            RuntimeError: if no ``roles_lut`` is set yet.
            ValueError: on mismatched lengths.
        """
        if self.roles_lut is None:
            raise RuntimeError("class roles unknown: set roles_lut (from label_info) first")
        t0 = time.perf_counter()
        points_base = transform_points(self.t_base_camera, xyz)
        t1 = time.perf_counter()
        drivable, obstacle = build_grids(points_base, labels, confidence, self.roles_lut, self.cfg, self.geometry)
        timings = {"transform": (t1 - t0) * 1e3, "grids": (time.perf_counter() - t1) * 1e3}
        return GridResult(to_occupancy(drivable), to_occupancy(obstacle), points_base, self.geometry, timings)


def cloud_arrays(cloud: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Split a structured semantic cloud (any shape) into (N, 3) xyz, (N,) labels and (N,) confidence or None."""
    flat = cloud.reshape(-1)
    xyz = np.stack([flat["x"], flat["y"], flat["z"]], axis=-1)
    confidence = flat["confidence"] if "confidence" in (flat.dtype.names or ()) else None
    return xyz, flat["label"], confidence
