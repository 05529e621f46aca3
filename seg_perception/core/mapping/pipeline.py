"""The costmap node's work on one semantic cloud, without ROS: transform, ground fit, classify, grids, fusion, map.

Shared by ``ros/costmap_node.py`` and the offline tools (``process``, ``demo`` renders) so all compute the same grids.

Two modes:

* single frame (``fusion_cfg`` None): each cloud gives robot-centred grids on its own (``costmap.build_grids``);
* fused (``fusion_cfg`` set): clouds are fused over time in a rolling log-odds window (``fusion.RollingLogOddsGrid``)
  in the global frame (``odom``), with ray-cast clearing and optional decay.

Points go from the camera optical frame into the grid frame with ``t_grid_camera``: the camera pose in the global
frame (``odom``), or in ``robot_base_frame`` without one, both from TF (``ros/pose_source.py::CloudPoser``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from seg_perception.core.config import check_declared_ranges, from_params, param
from seg_perception.core.geometry.cloud import finite_points
from seg_perception.core.geometry.ground import GroundConfig, GroundPlane, fit_ground_plane
from seg_perception.core.geometry.transforms import transform_points
from seg_perception.core.mapping.costs import FREE_SPACE, to_occupancy
from seg_perception.core.mapping.fusion import RollingLogOddsGrid
from seg_perception.core.mapping.grid import CostmapConfig, FusionConfig, GridGeometry
from seg_perception.core.mapping.ground_projection import (
    GroundProjectionConfig,
    ProjectionStats,
    depth_coverage,
    project_pixels,
    projected_cells,
)
from seg_perception.core.mapping.ontology import Ontology, PointRole, find_package_ontology, read_ontology_file
from seg_perception.core.mapping.semantic import RollingSemanticVotes, cell_votes, semantic_occupancy
from seg_perception.core.mapping.single_frame import build_grids, classify_points
from seg_perception.core.mapping.voxel_map import SemanticVoxelMap
from seg_perception.core.segmentation.class_info import ClassInfo, ClassInfoError


@dataclass(frozen=True)
class CostmapSettings:
    """Costmap node parameters beside ``CostmapConfig``, ``GroundConfig`` (``ground.*``) and ``FusionConfig``
    (``fusion.*``); the field names are the ROS parameter names."""

    global_frame: str = param("odom", "grid frame (Nav2 global_frame): TF global_frame -> robot_base_frame is the "
                              "robot pose; empty = no global frame (grids in robot_base_frame, robot-centred)")
    robot_base_frame: str = param("base_link", "robot frame (Nav2 robot_base_frame, REP-105)")
    ontology: str = param("", "ontology name (config/ontology) or YAML path; empty = the one label_info names")
    transform_tolerance_s: float = param(
        0.5, "a cloud newer than the newest transform by more than this is dropped (tf_stale) [s]", lo=0.0, hi=10.0
    )
    max_jump_m: float = param(1.0, "robot pose jump between clouds that resets the fused window [m]", lo=0.01,
                              hi=1000.0)  # fmt: skip
    time_jump_s: float = param(
        1.0, "a stamp this far behind the newest (bag loop, simulator reset) clears pose buffer and fused state [s]",
        lo=0.001, hi=3600.0,
    )
    fit_ground: bool = param(True, "fit the ground plane per cloud (RANSAC); false = flat at ground_height_m")
    use_fusion: bool = param(False, "fuse clouds over time (log-odds, ray-cast clearing); false = single frames")
    voxel_resolution: float = param(0.1, "semantic voxel map resolution [m]; 0 = no map", lo=0.0, hi=10.0)
    fused_points_period_s: float = param(1.0, "fused_points publishing period [s]", lo=0.0, hi=60.0)

    def __post_init__(self) -> None:
        check_declared_ranges(self)


def build_costmap_pipeline(
    params: Mapping[str, Any], num_classes: int = 256
) -> tuple[CostmapPipeline, CostmapSettings]:
    """A ``CostmapPipeline`` and the node settings from a costmap parameter dictionary (YAML ``ros__parameters``)."""
    settings = from_params(CostmapSettings, params)
    mapper = CostmapPipeline.from_settings(
        from_params(CostmapConfig, params), settings, from_params(GroundConfig, params, "ground."),
        from_params(FusionConfig, params, "fusion."), num_classes,
        from_params(GroundProjectionConfig, params, "ground_projection."),
    )  # fmt: skip
    return mapper, settings


@dataclass(frozen=True)
class ClassRules:
    """Per-class lookups from an ontology for one model's class list.

    Attributes:
        roles: (C,) uint8 ``Role`` per class id.
        costs: (C,) uint8 obstacle cost per class id (LETHAL by default).
        inflation: (C,) float64 inflation radius [m] per class id.
    """

    roles: np.ndarray
    costs: np.ndarray
    inflation: np.ndarray

    @classmethod
    def from_class_info(
        cls, info: ClassInfo, cfg: CostmapConfig, ontology: Ontology | None = None
    ) -> tuple[Ontology, ClassRules]:
        """Rules for validated class metadata (``class_info.parse_label_info``).

        Args:
            info: the class list; class id i is ``info.categories[i]``.
            cfg: thresholds (the default inflation radius).
            ontology: the ontology from trusted configuration (node parameter); None = the package ontology that
                ``info.ontology`` names (a name only, resolved by ``find_package_ontology``; never a path).
        Returns:
            (the ontology used, the rules).
        Raises:
            ClassInfoError: reason ``label_info_ontology`` when the name is invalid or unknown, or the ontology does
                not fit the class names.
        """
        try:
            if ontology is None:
                if not info.ontology:
                    raise ClassInfoError("ontology", "label_info names no ontology and the ontology parameter is empty")
                ontology = read_ontology_file(find_package_ontology(info.ontology))
            return ontology, cls.from_ontology(ontology, info.categories, cfg)
        except ClassInfoError:
            raise
        except (FileNotFoundError, ValueError, KeyError) as e:
            raise ClassInfoError("ontology", str(e)) from None

    @classmethod
    def from_ontology(cls, ontology: Ontology, categories: Sequence[str], cfg: CostmapConfig) -> ClassRules:
        """Lookups for ``categories``; classes without a radius use ``cfg.inflation_radius``."""
        return cls(
            roles=ontology.roles_lut(categories),
            costs=ontology.cost_lut(categories),
            inflation=ontology.inflation_lut(categories, cfg.inflation_radius),
        )


@dataclass
class GridResult:
    """Grids of one cloud.

    Attributes:
        drivable_occupancy: (H, W) int8 OccupancyGrid values: 0 seen drivable, 100 seen not drivable, -1 unknown
            (``*_occupancy`` = int8 OccupancyGrid data; ``*_cost`` = uint8 Nav2 costs, as inside the mapper).
        obstacle_occupancy: (H, W) int8 OccupancyGrid values: 100 lethal, 1-99 inflation / class costs, 0 free, -1
            unknown.
        points: (M, 3) float32 points in the grid frame [m]: the cloud's points with finite x, y, z, in cloud order.
        roles: (M,) uint8 ``PointRole`` of each of those points.
        labels: (M,) class ids of the same points.
        confidence: (M,) float32 confidence of the same points, or None.
        geometry: placement of both grids in the grid frame (origin = outer corner of cell (0, 0)).
        ground: the ground plane used (fitted, or the flat fallback).
        ground_fitted: True when the plane came from RANSAC on this cloud.
        timings_ms: stage -> wall time [ms].
        projected: (H, W) bool cells marked drivable by ground projection alone (no depth-backed evidence), or None
            when nothing was projected (no rays, projection off).
        projection: counts of the ground projection (``ground_projection.ProjectionStats``), or None.
        semantic: (H, W) int8 ``semantic_grid`` values: class id (0..127) of each cell's verdict, -1 unknown
            (``semantic.semantic_occupancy``).
    """

    drivable_occupancy: np.ndarray
    obstacle_occupancy: np.ndarray
    points: np.ndarray
    roles: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray | None
    geometry: GridGeometry
    ground: GroundPlane | None
    ground_fitted: bool
    timings_ms: dict[str, float]
    projected: np.ndarray | None = None
    projection: ProjectionStats | None = None
    semantic: np.ndarray | None = None


class CostmapPipeline:
    """Drivable and obstacle grids (single-frame or fused) and a semantic voxel map from semantic clouds.

    Args:
        cfg: grid, height band and inflation parameters.
        rules: per-class lookups (set later with ``rules = ...`` once the class list is known).
        ground_cfg: fit the ground plane per cloud (RANSAC); None = flat ground at ``cfg.ground_height_m``.
        fusion_cfg: fuse clouds over time; None = single-frame grids. Its resolution/width/height are replaced by
            ``cfg``'s so both modes share one grid definition.
        voxel_resolution_m: > 0 keeps a ``SemanticVoxelMap`` of the classified points at this resolution.
        num_classes: class count for the voxel map.
        projection_cfg: ground projection of drivable pixels without depth (``update`` with ``rays``); None or
            ``enabled`` false = off.
    Raises:
        ValueError: bad configuration.

    Creating one limits BLAS to one thread in this process (``threadpoolctl``): its products are (N, 3) x (3, 3),
    where BLAS threads only spin against the network's on a small CPU (2 cores, loaded, KITTI stride 1: transform
    11.8 -> 3.8 ms, projection 85 -> 33 ms per cloud). torch and OpenVINO keep their own thread pools.
    """

    def __init__(
        self,
        cfg: CostmapConfig,
        rules: ClassRules | None = None,
        ground_cfg: GroundConfig | None = None,
        fusion_cfg: FusionConfig | None = None,
        voxel_resolution_m: float = 0.0,
        num_classes: int = 256,
        projection_cfg: GroundProjectionConfig | None = None,
    ) -> None:
        threadpool_limits(limits=1, user_api="blas")
        self.cfg = cfg
        self.projection = projection_cfg if projection_cfg is not None and projection_cfg.enabled else None
        self.ground_cfg = ground_cfg
        self.fusion: RollingLogOddsGrid | None = None
        if fusion_cfg is not None:
            fusion_cfg = dataclasses.replace(fusion_cfg, resolution=cfg.resolution, width=cfg.width, height=cfg.height)
            self.fusion = RollingLogOddsGrid(fusion_cfg)
            self.votes = RollingSemanticVotes(self.fusion.geometry.shape)  # the semantic grid's fused classes
        self.voxels = SemanticVoxelMap(voxel_resolution_m, num_classes) if voxel_resolution_m > 0 else None
        self._rules: ClassRules | None = None
        self.rules = rules

    @property
    def rules(self) -> ClassRules | None:
        """Per-class lookups (from the class metadata); None until known."""
        return self._rules

    @rules.setter
    def rules(self, rules: ClassRules | None) -> None:
        """Set the class lookups; the voxel map's class histogram is sized to their class count (C float32 per
        voxel, not a fixed 256), so a new class count starts an empty map."""
        self._rules = rules
        v = self.voxels
        if rules is not None and v is not None and v.num_classes != len(rules.roles):
            self.voxels = SemanticVoxelMap(v.resolution_m, len(rules.roles), v.max_voxels)

    @classmethod
    def from_settings(
        cls, cfg: CostmapConfig, settings: CostmapSettings, ground_cfg: GroundConfig, fusion_cfg: FusionConfig,
        num_classes: int = 256, projection_cfg: GroundProjectionConfig | None = None,
    ) -> CostmapPipeline:  # fmt: skip
        """The mapper the costmap node's parameters describe (ground fit and fusion switched by ``settings``)."""
        return cls(cfg, None, ground_cfg if settings.fit_ground else None, fusion_cfg if settings.use_fusion else None,
                   settings.voxel_resolution, num_classes, projection_cfg)  # fmt: skip

    @property
    def geometry(self) -> GridGeometry:
        """Current grid placement (robot-centred at the origin before the first update)."""
        return self.fusion.geometry if self.fusion is not None else GridGeometry.from_config(self.cfg)

    def reset(self) -> None:
        """Forget fused state (after an odometry jump); the voxel map too."""
        if self.fusion is not None:
            self.fusion.reset()
            self.votes.reset()
        if self.voxels is not None:
            self.voxels.clear()

    def update(
        self,
        xyz: np.ndarray,
        labels: np.ndarray,
        confidence: np.ndarray | None,
        t_grid_camera: np.ndarray,
        robot_xy: Sequence[float] = (0.0, 0.0),
        ground_z: float | None = None,
        stamp_s: float = 0.0,
        rays: np.ndarray | None = None,
    ) -> GridResult:
        """Grids for one cloud.

        Args:
            xyz: (N, 3) float32 points in the camera optical frame [m]; NaN = invalid (no depth).
            labels: (N,) integer class ids.
            confidence: (N,) float32 in [0, 1], or None.
            t_grid_camera: (4, 4) camera pose in the grid frame (``CloudPose.t_grid_camera``: from TF).
            robot_xy: robot position in the grid frame [m] (the window's centre).
            ground_z: expected ground height in the grid frame [m] (default ``cfg.ground_height_m``).
            stamp_s: the cloud's time [s] (fusion decay; no clock is read).
            rays: (H, W, 3) (H * W = N; ``ground_projection.RayCache.rays``) or (N, 3) unit rays of the same pixels
                in the camera optical frame: drivable-class pixels without depth are projected onto the ground plane
                (``ground_projection``, each pixel's ground strip sampled every half cell when organized; needs
                ``projection_cfg``); None = no projection.
        Raises:
            RuntimeError: if no ``rules`` are set yet.
            ValueError: on mismatched lengths.
        """
        if self.rules is None:
            raise RuntimeError("class roles unknown: set rules (from label_info) first")
        t: dict[str, float] = {}
        t0 = time.perf_counter()
        raw = (xyz, labels, confidence) if rays is not None and self.projection is not None else None
        xyz, labels, confidence = finite_points(xyz, labels, confidence)
        tf = np.asarray(t_grid_camera, dtype=np.float64)
        points = transform_points(tf, xyz)
        t1 = time.perf_counter()
        t["transform"] = (t1 - t0) * 1e3
        ground, fitted, z0 = self._ground(points, ground_z)
        t2 = time.perf_counter()
        t["ground"] = (t2 - t1) * 1e3
        r = self.rules
        roles = classify_points(points, labels, confidence, r.roles, self.cfg, ground)
        if self.fusion is None:
            res = self.cfg.resolution  # centre snapped to whole cells: consecutive grids share one lattice
            geometry = GridGeometry.from_config(self.cfg, center_xy=[round(v / res) * res for v in robot_xy])
            drivable_cost, obstacle_cost = build_grids(points, labels, confidence, r.roles, self.cfg, geometry,
                                                       ground, r.costs, r.inflation, roles)  # fmt: skip
        else:
            self.votes.shift(*self.fusion.recenter(robot_xy))
            self.fusion.update_roles((float(tf[0, 3]), float(tf[1, 3])), points, roles, confidence, stamp_s)
            geometry = self.fusion.geometry
        votes = cell_votes(geometry, points, labels, roles, confidence, r.roles)  # the semantic grid's classes
        t3 = time.perf_counter()
        t["grids"] = (t3 - t2) * 1e3
        projected, stats, pvotes = None, None, None
        if raw is not None:
            plane = ground if ground is not None else GroundPlane.from_height(z0)
            projected, stats, pvotes = self._project(raw, rays, tf, plane, geometry, votes[2], stamp_s)
            if self.fusion is None:
                drivable_cost[projected] = FREE_SPACE
            t["projection"] = (time.perf_counter() - t3) * 1e3
        t4 = time.perf_counter()
        if self.fusion is not None:
            obstacle_cost = self.fusion.obstacle_cost(self.cfg)
            drivable_cost = self.fusion.drivable_cost()
        semantic = self._semantic(votes, pvotes, drivable_cost)
        t["grids"] += (time.perf_counter() - t4) * 1e3
        if self.voxels is not None:
            t3 = time.perf_counter()
            self._insert_voxels(points, roles, labels, confidence, np.array([*robot_xy, z0]))
            t["voxels"] = (time.perf_counter() - t3) * 1e3
        return GridResult(to_occupancy(drivable_cost), to_occupancy(obstacle_cost), points, roles, labels, confidence,
                          geometry, ground, fitted, t, projected, stats, semantic)  # fmt: skip

    def _ground(self, points: np.ndarray, ground_z: float | None) -> tuple[GroundPlane | None, bool, float]:
        """(plane, fitted, z0): the RANSAC fit near the expected height z0 (``ground_z``, default
        ``cfg.ground_height_m``), or without fitting the flat plane at ``ground_z`` (None when that is not given)."""
        z0 = self.cfg.ground_height_m if ground_z is None else float(ground_z)
        if self.ground_cfg is not None:
            ground, fitted = fit_ground_plane(points, dataclasses.replace(self.ground_cfg, expected_height_m=z0))
            return ground, fitted, z0
        return (GroundPlane.from_height(z0) if ground_z is not None else None), False, z0

    def _semantic(
        self, votes: tuple[np.ndarray, np.ndarray, np.ndarray], pvotes: tuple[np.ndarray, np.ndarray] | None,
        drivable_cost: np.ndarray,
    ) -> np.ndarray:  # fmt: skip
        """The semantic grid (``semantic.py``) from this frame's ``cell_votes`` (and, in the cells projection filled,
        the projected pixels' drivable classes), fused into ``votes`` in fused mode; ``drivable_cost``: uint8 Nav2
        costs."""
        cls, score, count = votes
        if pvotes is not None:
            cls[1] = np.where(pvotes[0] >= 0, pvotes[0], cls[1])
            score[1] = np.where(pvotes[0] >= 0, pvotes[1], score[1])
        if self.fusion is None:
            return semantic_occupancy(cls, drivable_cost, count[0] >= self.cfg.min_obstacle_points)
        self.votes.update(cls, score)
        return semantic_occupancy(self.votes.cls, drivable_cost, self.fusion.occupied_mask())

    def _insert_voxels(
        self, points: np.ndarray, roles: np.ndarray, labels: np.ndarray, confidence: np.ndarray | None,
        centre: np.ndarray,
    ) -> None:  # fmt: skip
        """Classified points inside the voxel map's crop sphere around ``centre`` (the rest would be cropped at once)
        into the map, then the crop."""
        assert self.voxels is not None
        radius = 0.75 * max(self.cfg.width, self.cfg.height)
        with np.errstate(invalid="ignore", over="ignore"):
            near = ((points - centre) ** 2).sum(axis=1) <= radius**2
        keep = (roles != PointRole.IGNORE) & near
        self.voxels.insert(points[keep], np.asarray(labels)[keep],
                           None if confidence is None else np.asarray(confidence)[keep])  # fmt: skip
        self.voxels.crop(tuple(centre.tolist()), radius)

    def _project(
        self, raw: tuple[np.ndarray, np.ndarray, np.ndarray | None], rays: np.ndarray | None, tf: np.ndarray,
        plane: GroundPlane, geometry: GridGeometry, counts: np.ndarray, stamp_s: float,
    ) -> tuple[np.ndarray, ProjectionStats, tuple[np.ndarray, np.ndarray]]:  # fmt: skip
        """Ground projection of the drivable pixels without depth (``ground_projection``): the cells it fills (no
        depth-backed evidence in them this frame), its counts and the filled cells' classes (``cell_votes``
        drivable slot; weighted by ``projection.weight`` when fused); in fused mode the evidence goes into the
        drivable layer with weight ``projection.weight`` x confidence (occupied cells excluded)."""
        assert self.rules is not None and self.projection is not None and rays is not None
        lab = np.asarray(raw[1]).reshape(-1)
        conf = None if raw[2] is None else np.asarray(raw[2], dtype=np.float32).reshape(-1)
        pts, src = project_pixels(np.asarray(raw[0]).reshape(-1, 3), lab, conf, rays, tf, plane, self.rules.roles,
                                  self.projection, self.cfg.min_confidence, 0.5 * self.cfg.resolution)  # fmt: skip
        pconf = None if conf is None else conf[src]
        fill, weight, stats = projected_cells(geometry, pts, pconf, *depth_coverage(counts))
        pcls, pscore, _ = cell_votes(geometry, pts, lab[src], np.full(src.size, PointRole.DRIVABLE, np.uint8), pconf)
        pcls[1][~fill] = -1
        if self.fusion is not None:
            if not self.fusion.cfg.confidence_weighting:
                weight = fill.astype(np.float32)
            self.fusion.add_drivable_evidence(weight * np.float32(self.projection.weight), stamp_s)
            pscore *= np.float32(self.projection.weight)
        return fill, stats, (pcls[1], pscore[1])
