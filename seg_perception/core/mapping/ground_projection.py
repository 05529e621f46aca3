"""Dense drivable area by ground projection (inverse perspective mapping) of drivable pixels without depth (no ROS).

Depth is sparse where the drivable area matters most: KITTI's LiDAR covers 3.7 % of the pixels, RGB-D cameras stop
at 4-10 m and return nothing on glossy floors or in sunlight. Every pixel that the network calls a *drivable* class
(ontology role ``drivable``: road, floor) and that lies below the horizon sees the ground, so its camera ray is cut
with the ground plane the costmap fitted for the same cloud (``ground.fit_ground_plane``, else the flat fallback):

    p = c + t r,   t = -(n . c + d) / (n . r),   r = R_grid_camera (K^-1 [u, v, 1]^T / |.|)

(the plane-ray intersection of inverse perspective mapping: Mallot et al., "Inverse perspective mapping simplifies
optical flow computation and obstacle detection", Biol. Cybern. 64, 1991). A ray is used only when it meets the
plane in front of the camera (t > 0, camera above the plane), at a grazing angle asin(-n . r) of at least
``min_angle_deg`` (near the horizon a 0.1 deg pitch error moves the hit by metres) and within ``max_range_m`` of
the camera, measured in the grid's x-y plane.

The organized ``semantic_points`` cloud is the colour image decimated by ``cloud_stride``: cloud pixel (v, u) is
image pixel (stride v, stride u). ``cloud_stride`` infers the stride from the camera_info width and the cloud width,
and ``RayCache`` keeps the unit rays of one (camera_info, cloud shape) pair, so a frame costs one 3x3 rotation of the
candidate rays and a dot product.

Only pixels of classes whose role is ``Role.DRIVABLE`` are projected: never ``ground_if_flat`` (VOC "background"
covers walls as well as floors: without depth nothing says it is flat ground) and never obstacle classes. Projected
points are drivable evidence below depth-backed points (``CostmapPipeline``): they fill only cells without any
depth-backed evidence in the frame, never mark obstacles and never touch the obstacle grid.

Frames: rays in the camera optical frame (z forward, x right, y down); projected points in the grid frame (REP-103,
z up), metres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from seg_perception.core.config import check_declared_ranges, param
from seg_perception.core.errors import InputRejected
from seg_perception.core.geometry.camera import Intrinsics
from seg_perception.core.geometry.ground import GroundPlane
from seg_perception.core.mapping.boundary_margin import near_other_classes
from seg_perception.core.mapping.grid import GridGeometry
from seg_perception.core.mapping.ontology import Role, class_roles

__all__ = [
    "GroundProjectionConfig",
    "ProjectionStats",
    "RayCache",
    "cloud_rays",
    "cloud_stride",
    "depth_coverage",
    "project_pixels",
]


@dataclass(frozen=True)
class GroundProjectionConfig:
    """Ground projection parameters (ROS parameters ``ground_projection.*`` of the costmap node).

    Attributes:
        enabled: project drivable pixels without depth onto the ground plane (needs camera_info).
        max_range_m: projected points farther than this from the camera in the grid's x-y plane are dropped [m], > 0.
        min_angle_deg: rays meeting the plane at a grazing angle below this are dropped [deg], in [0, 90).
        weight: weight of a projected point relative to a depth-backed one in the fused drivable layer, in (0, 1).
        obstacle_clearance_m: the reach of a non-drivable-class pixel (a car, a sidewalk) downwards in the image, as
            the height it spans at the ground depth of the pixel below [m], in [0, 2] (``boundary_margin``).
        side_margin_m: its reach sideways (and downwards within it), as the width at that depth [m], in [0, 2].
    Raises:
        ValueError: on a value out of range.
    """

    enabled: bool = param(True, "project drivable pixels without depth onto the ground plane (needs camera_info)")
    max_range_m: float = param(20.0, "projected points up to this distance from the camera (x-y plane) [m]",
                               lo=0.1, hi=1000.0)  # fmt: skip
    min_angle_deg: float = param(2.0, "smallest grazing angle between the ray and the ground plane [deg]",
                                 lo=0.0, hi=89.0)  # fmt: skip
    weight: float = param(0.5, "weight of projected drivable evidence relative to depth-backed evidence (fused)",
                          lo=0.01, hi=0.99)  # fmt: skip
    obstacle_clearance_m: float = param(
        0.5, "drivable pixels below a non-drivable-class pixel by less than this height at their ground depth are "
        "not projected (road seen under a car's body) [m]; 0 = off", lo=0.0, hi=2.0,
    )  # fmt: skip
    side_margin_m: float = param(0.05, "drivable pixels beside a non-drivable-class pixel by less than this width at "
                                 "their ground depth are not projected [m]; 0 = off", lo=0.0, hi=2.0)  # fmt: skip

    def __post_init__(self) -> None:
        check_declared_ranges(self)


def cloud_stride(k: Intrinsics, cloud_hw: tuple[int, int]) -> int:
    """The decimation of an organized cloud made from the image ``k`` describes (``cloud.semantic_cloud``).

    Args:
        k: intrinsics of the full colour image (camera_info).
        cloud_hw: (height, width) of the organized cloud.
    Returns:
        The smallest stride s >= 1 with ceil(k.height / s), ceil(k.width / s) == cloud_hw.
    Raises:
        InputRejected: reason ``camera_info_stride`` when no stride fits (another camera, an unorganized cloud).
    """
    h, w = int(cloud_hw[0]), int(cloud_hw[1])
    if h >= 1 and w >= 1:
        s = max(1, k.width // w)
        for cand in (s, s + 1, s + 2):  # the smallest s with ceil(W / s) == w is W // w or W // w + 1
            if cand >= 1 and -(-k.width // cand) == w and -(-k.height // cand) == h:
                return cand
    raise InputRejected("camera_info_stride", f"cloud {w}x{h} is no decimation of the {k.width}x{k.height} "
                                              "camera_info image")  # fmt: skip


def cloud_rays(k: Intrinsics, stride: int) -> np.ndarray:
    """Unit viewing rays of the pixels of a cloud decimated by ``stride`` (pinhole, distortion ignored).

    Args:
        k: intrinsics of the full image.
        stride: cloud pixel (v, u) is image pixel (stride v, stride u).
    Returns:
        (ceil(H/stride), ceil(W/stride), 3) float32 unit vectors in the camera optical frame (the cloud's pixel grid;
        ``reshape(-1, 3)`` gives the cloud's C order), z > 0.
    """
    ks = k.scaled(stride)
    x = (np.arange(ks.width, dtype=np.float64) - ks.cx) / ks.fx
    y = (np.arange(ks.height, dtype=np.float64) - ks.cy) / ks.fy
    rays = np.empty((ks.height, ks.width, 3), dtype=np.float64)
    rays[..., 0] = x[None, :]
    rays[..., 1] = y[:, None]
    rays[..., 2] = 1.0
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    return rays.astype(np.float32)


class RayCache:
    """``cloud_rays`` of the last (camera_info, cloud shape) pair: computed once, reused while neither changes."""

    def __init__(self) -> None:
        self._key: tuple[Intrinsics, tuple[int, int]] | None = None
        self._rays: np.ndarray | None = None

    def rays(self, k: Intrinsics, cloud_hw: tuple[int, int]) -> np.ndarray:
        """(height, width, 3) float32 unit rays of the cloud's pixels (``cloud_rays``).

        Raises:
            InputRejected: ``camera_info_stride`` (``cloud_stride``).
        """
        key = (k, (int(cloud_hw[0]), int(cloud_hw[1])))
        if key != self._key or self._rays is None:
            self._rays = cloud_rays(k, cloud_stride(k, key[1]))
            self._key = key
        return self._rays


def project_pixels(
    xyz: np.ndarray,
    labels: np.ndarray,
    confidence: np.ndarray | None,
    rays: np.ndarray,
    t_grid_camera: np.ndarray,
    plane: GroundPlane,
    roles_lut: np.ndarray,
    cfg: GroundProjectionConfig,
    min_confidence: float = 0.0,
    spacing_m: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Ground points of the drivable-class pixels that have no depth (module docstring), and their pixels.

    A pixel sees a strip of ground, from the hit of the ray through its lower edge to that of its upper edge; far
    away the strip is longer than a grid cell (KITTI, 1.65 m up, fy 721 px: 0.19 m per image row at 15 m, 0.34 m at
    20 m, times ``cloud_stride``). With ``spacing_m`` > 0 and organized ``rays`` each pixel gives points every
    ``spacing_m`` (at most 64) along its strip, so consecutive rows leave no gap of unseen cells between them.

    Args:
        xyz: (N, 3) float cloud points in the camera optical frame [m]; NaN = no depth (only those are projected).
        labels: (N,) integer class ids; ids outside ``roles_lut`` are not projected.
        confidence: (N,) float in [0, 1], or None; pixels below ``min_confidence`` are not projected.
        rays: (H, W, 3) (organized, H * W = N; ``RayCache.rays``) or (N, 3) unit rays of the same pixels in the
            camera optical frame (pinhole: the rows of an organized set are equally spaced in y / z).
        t_grid_camera: (4, 4) camera pose in the grid frame.
        plane: the ground plane in the grid frame (fitted or flat fallback).
        roles_lut: (C,) uint8 ``Role`` per class id; only ``Role.DRIVABLE`` classes are projected.
        cfg: range and angle limits.
        min_confidence: the costmap's ``min_confidence``.
        spacing_m: sample spacing along each pixel's ground strip [m] (half a grid cell); 0 = the centre ray only.
    Returns:
        ((M, 3) float32 ground points in the grid frame [m], (M,) int64 index of each point's pixel in the flattened
        cloud: its label is ``labels.reshape(-1)[src]``).
    Raises:
        ValueError: if the lengths differ.
    """
    lab = np.asarray(labels).reshape(-1)
    pts = np.asarray(xyz).reshape(-1, 3)
    row_step = col_step = 0.0  # y / z (x / z) step between consecutive rows (columns) of an organized ray set
    hw = (rays.shape[0], rays.shape[1]) if rays.ndim == 3 and rays.shape[0] > 1 and rays.shape[1] > 1 else None
    if hw is not None:
        row_step = float(rays[1, 0, 1] / rays[1, 0, 2] - rays[0, 0, 1] / rays[0, 0, 2])
        col_step = float(rays[0, 1, 0] / rays[0, 1, 2] - rays[0, 0, 0] / rays[0, 0, 2])
    rays = rays.reshape(-1, 3)
    if not (pts.shape[0] == lab.size == rays.shape[0]):
        raise ValueError(f"{pts.shape[0]} points, {lab.size} labels and {rays.shape[0]} rays must match")
    role = class_roles(lab, roles_lut)  # ids outside the table are IGNORE
    cand = role == Role.DRIVABLE
    cand &= np.isnan(pts[:, 2])
    conf = None if confidence is None else np.asarray(confidence, dtype=np.float32).reshape(-1)
    if conf is not None:
        cand &= conf >= np.float32(min_confidence)
    idx = np.flatnonzero(cand)
    tf = np.asarray(t_grid_camera, dtype=np.float64)
    n = np.asarray(plane.normal, dtype=np.float64)
    c = tf[:3, 3]
    height = float(n @ c) + plane.offset  # camera above the plane: > 0
    if idx.size == 0 or height <= 0:
        return np.zeros((0, 3), np.float32), np.zeros(0, np.int64)
    rot = tf[:3, :3].T.astype(np.float32)
    r = rays[idx] @ rot  # (M, 3) float32 directions in the grid frame
    down = r @ -n.astype(np.float32)  # sin of the grazing angle (rays and n are unit vectors)
    sin_min = np.float32(max(math.sin(math.radians(cfg.min_angle_deg)), 1e-6))
    ok = down >= sin_min  # towards the plane, steep enough
    src = idx[ok]
    t_hit = np.float32(height) / down[ok]  # camera -> hit distance along the unit ray [m]
    d = r[ok] * t_hit[:, None]  # camera -> hit [m]
    if hw is not None and row_step > 0 and col_step > 0 and (cfg.obstacle_clearance_m > 0 or cfg.side_margin_m > 0):
        margin = (cfg.obstacle_clearance_m / row_step, cfg.side_margin_m / col_step)  # [px m]
        keep = ~near_other_classes(role.reshape(hw) != Role.DRIVABLE, role.reshape(hw) != Role.IGNORE, src,
                                   rays[src, 2] * t_hit, margin)  # fmt: skip
        src, d = src[keep], d[keep]
    if spacing_m > 0 and row_step > 0:
        d, keep = _strip_samples(rays[src], rot, n, height, row_step, spacing_m, d)
        src = src[keep]
    near = d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1] <= np.float32(cfg.max_range_m**2)
    p = d[near] + c.astype(np.float32)
    return p, src[near]


def _strip_samples(
    rays_cam: np.ndarray, rot: np.ndarray, n: np.ndarray, height: float, row_step: float, spacing_m: float,
    centre: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Points every ``spacing_m`` along each pixel's ground strip, between the hits of the rays through its lower and
    upper edges (y / z +- row_step / 2); an upper edge that does not meet the plane keeps the centre hit.

    Returns:
        ((K, 3) float32 camera -> point offsets in the grid frame [m], (K,) int64 index of each point's pixel).
    """
    a = rays_cam / rays_cam[:, 2:3]  # (x / z, y / z, 1)
    edges = []
    for sign in (1.0, -1.0):  # lower edge (nearer ground), upper edge
        e = a.copy()
        e[:, 1] += np.float32(sign * 0.5 * row_step)
        e = e @ rot
        down = e @ -n.astype(np.float32)
        hit = e * (np.float32(height) / np.where(down > 0, down, 1))[:, None]
        edges.append(np.where((down > 0)[:, None], hit, centre))
    lo, hi = edges
    length = np.linalg.norm(hi - lo, axis=1)
    k = np.clip(np.ceil(length / spacing_m), 1, 64).astype(np.int64)
    owner = np.repeat(np.arange(k.size), k)
    start = np.cumsum(k) - k
    frac = ((np.arange(owner.size) - start[owner]) + 0.5) / k[owner]
    pts = lo[owner] + frac[:, None].astype(np.float32) * (hi - lo)[owner]
    return pts.astype(np.float32), owner


def depth_coverage(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which cells hold depth-backed evidence, and what it says, for one cloud.

    Args:
        counts: (3, H, W) depth-backed points per cell of role OBSTACLE, DRIVABLE, NOT_DRIVABLE (the ``count`` of
            ``semantic.cell_votes``, already computed for the semantic grid: the cloud is not counted again).
    Returns:
        (covered, drivable, obstacle): three (H, W) bool grids: cells with at least one non-IGNORE point; among
        them the cells whose DRIVABLE points are a strict majority over NOT_DRIVABLE ones with no OBSTACLE point
        (the depth-backed role of the cell); the cells with an OBSTACLE point.
    """
    n_obs, n_drv, n_not = counts
    return (n_drv + n_not + n_obs) > 0, (n_drv > n_not) & (n_obs == 0), n_obs > 0


@dataclass(frozen=True)
class ProjectionStats:
    """What ground projection added to one cloud's grids.

    Attributes:
        points: projected ground points (drivable pixels without depth that met the plane within the limits).
        cells: grid cells holding at least one projected point.
        overlap: of those, cells that also hold depth-backed evidence (``depth_coverage``).
        agree: of the overlap, cells whose depth-backed role is drivable too.
        ground_overlap: of the overlap, cells without a depth-backed OBSTACLE point (only ground evidence: a car
            standing on the road makes its cells obstacles, which says nothing against the road under it).
        filled: cells marked drivable by projection alone (no depth-backed evidence in them).
    """

    points: int = 0
    cells: int = 0
    overlap: int = 0
    agree: int = 0
    ground_overlap: int = 0
    filled: int = 0

    @property
    def agreement(self) -> float:
        """agree / overlap (NaN without overlap)."""
        return self.agree / self.overlap if self.overlap else float("nan")

    @property
    def ground_agreement(self) -> float:
        """agree / ground_overlap (NaN without such cells)."""
        return self.agree / self.ground_overlap if self.ground_overlap else float("nan")


def projected_cells(
    geometry: GridGeometry, points: np.ndarray, confidence: np.ndarray | None, covered: np.ndarray,
    depth_drivable: np.ndarray, depth_obstacle: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, ProjectionStats]:  # fmt: skip
    """The cells projection may mark drivable: those with projected points and no depth-backed evidence.

    Args:
        geometry: the grid.
        points: (M, 3) projected ground points in the grid frame [m] (``project_pixels``).
        confidence: (M,) float in [0, 1], or None (= 1).
        covered, depth_drivable, depth_obstacle: (H, W) bool grids of ``depth_coverage``.
    Returns:
        (fill, weight, stats): (H, W) bool cells to mark drivable, (H, W) float32 max confidence of their projected
        points (0 elsewhere), and the counts.
    """
    rows, cols, keep = geometry.cell_indices(points[:, 0], points[:, 1])
    flat = rows * geometry.width_cells + cols
    n = geometry.width_cells * geometry.height_cells
    w = np.zeros(n, dtype=np.float32)
    conf = np.ones(flat.size, np.float32) if confidence is None else np.asarray(confidence, np.float32)[keep]
    np.maximum.at(w, flat, conf)
    hit = np.zeros(n, dtype=bool)
    hit[flat] = True
    cov, drv, obs = covered.reshape(-1), depth_drivable.reshape(-1), depth_obstacle.reshape(-1)
    fill = hit & ~cov
    both = hit & cov
    stats = ProjectionStats(points=int(points.shape[0]), cells=int(hit.sum()), overlap=int(both.sum()),
                            agree=int((both & drv).sum()), ground_overlap=int((both & ~obs).sum()),
                            filled=int(fill.sum()))  # fmt: skip
    w[~fill] = 0
    return fill.reshape(geometry.shape), w.reshape(geometry.shape), stats
