"""Gravity-aligned odometry frame for posed RGB-D sequences whose world frame is not z-up (no ROS imports).

Datasets such as 7-Scenes give camera-to-world poses in a KinectFusion world frame: y points roughly down, and the
frame is tilted by however the first camera was held. A costmap needs REP-105 ``odom``: z up, the floor at a known
height. ``floor_alignment`` finds the floor as the lowest large plane whose normal is close to the cameras' mean
"down" direction (RANSAC over back-projected depth from a subset of frames) and returns the transform from the
dataset's world frame into an ``odom`` frame with z up (the floor normal), x along the first camera's heading
projected onto the floor, and the origin on the floor below the first camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seg_perception.core.geometry.camera import backproject, depth_to_meters
from seg_perception.core.geometry.ground import ransac_plane


@dataclass(frozen=True)
class FloorAlignment:
    """Result of ``floor_alignment``.

    Attributes:
        t_odom_world: (4, 4) float64 transform, p_odom = T @ p_world; the floor is z = 0 in odom.
        camera_height_m: height of the first camera above the floor [m].
        tilt_deg: angle between the floor normal and the cameras' mean down direction [deg].
        inliers: floor RANSAC inliers.
    """

    t_odom_world: np.ndarray
    camera_height_m: float
    tilt_deg: float
    inliers: int


def floor_alignment(
    depth_mm: list[np.ndarray],
    poses: list[np.ndarray],
    k: object,
    stride: int = 4,
    max_tilt_deg: float = 45.0,
    distance_m: float = 0.03,
    max_planes: int = 5,
    seed: int = 0,
) -> FloorAlignment:
    """Find the floor in a posed depth sequence and build a z-up odom frame on it.

    Args:
        depth_mm: (H, W) uint16 depth images [mm, 0 = invalid] of a few frames spread over the sequence.
        poses: matching (4, 4) camera-to-world transforms (optical frame -> world) [m].
        k: ``camera.Intrinsics`` of the depth images.
        stride: pixel subsampling for the back-projection.
        max_tilt_deg: a plane counts as horizontal when its normal is within this of the mean down direction.
        distance_m: RANSAC inlier distance [m].
        max_planes: planes extracted one after another (table tops are horizontal too: the lowest one wins).
        seed: RANSAC seed (reproducible results).
    Returns:
        ``FloorAlignment``.
    Raises:
        ValueError: no frames, mismatched lists, or no horizontal plane found.
    """
    if not depth_mm or len(depth_mm) != len(poses):
        raise ValueError(f"need the same non-zero number of depth images and poses, got {len(depth_mm)}/{len(poses)}")
    world = []
    for depth, pose in zip(depth_mm, poses, strict=True):
        p = backproject(depth_to_meters(depth), k)[::stride, ::stride].reshape(-1, 3)  # type: ignore[arg-type]
        p = p[np.isfinite(p[:, 2])].astype(np.float64)
        world.append(p @ pose[:3, :3].T + pose[:3, 3])
    pts = np.concatenate(world)
    down = np.mean([pose[:3, 1] for pose in poses], axis=0)  # optical +y is "down" in the image
    down /= np.linalg.norm(down)
    best = None
    remaining = pts
    for i in range(max_planes):
        if len(remaining) < 1000:
            break
        fit = ransac_plane(remaining, distance_m, 500, seed + i)
        if fit is None:
            break
        n, d, inliers = fit
        if n @ down > 0:  # orient the normal up (against "down")
            n, d = -n, -d
        tilt = float(np.degrees(np.arccos(np.clip(-n @ down, -1.0, 1.0))))
        if tilt <= max_tilt_deg and len(inliers) >= 500:
            depth_along_down = float(np.median(remaining[inliers] @ down))
            if best is None or depth_along_down > best[0]:
                best = (depth_along_down, n, d, tilt, len(inliers))
        remaining = np.delete(remaining, inliers, axis=0)
    if best is None:
        raise ValueError("no horizontal plane (floor) found in the sampled frames")
    _, up, d, tilt, n_in = best
    c0 = poses[0][:3, 3]
    height = float(up @ c0 + d)
    forward = poses[0][:3, 2] - (poses[0][:3, 2] @ up) * up
    x = forward / np.linalg.norm(forward)
    y = np.cross(up, x)
    rot = np.stack([x, y, up])  # rows: odom axes in world coordinates
    origin = c0 - height * up  # the floor point below the first camera
    t = np.eye(4)
    t[:3, :3] = rot
    t[:3, 3] = -rot @ origin
    return FloorAlignment(t_odom_world=t, camera_height_m=height, tilt_deg=tilt, inliers=n_in)
