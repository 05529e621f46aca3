"""Robot poses looked up per cloud (from TF): where a cloud goes, jump and time-jump detection (no ROS imports).

Transforms are (4, 4) float64 homogeneous matrices ``T_parent_child`` (p_parent = T @ p_child), metres (REP-103);
frames as REP-105 (``odom`` -> ``base_link`` -> camera frames). The lookups themselves are tf2's
(``ros/pose_source.py``); this module holds the arithmetic and the checks, so they are tested without ROS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seg_perception.core.geometry.transforms import T_LINK_OPTICAL, camera_body_to_base, camera_to_base


def translation_jump_m(t_prev: np.ndarray, t_new: np.ndarray) -> float:
    """Distance [m] between the positions of two (4, 4) poses (odometry jump detection)."""
    return float(np.linalg.norm(t_new[:3, 3] - t_prev[:3, 3]))


def mount_transforms(
    translation_m: Sequence[float], rpy_rad: Sequence[float], base_frame: str, camera_link: str, optical_frame: str
) -> list[tuple[str, str, np.ndarray]]:
    """A camera mount as static transforms (parent, child, (4, 4) T_parent_child), as a URDF describes it.

    Args:
        translation_m: camera origin in ``base_frame`` [m].
        rpy_rad: roll, pitch, yaw of the camera BODY frame (x forward, y left, z up) in ``base_frame`` [rad]
            (URDF: R = Rz(yaw) Ry(pitch) Rx(roll); pitch > 0 looks down).
        base_frame, camera_link, optical_frame: frame names; ``camera_link`` "" = one transform straight to the
            optical frame.
    Returns:
        ``[(base, link, T_base_link), (link, optical, T_link_optical)]`` (the second is the REP-103 optical
        rotation), or ``[(base, optical, T_base_optical)]``; either way the chain is ``camera_to_base``.
    Raises:
        ValueError: as ``camera_to_base`` (not 3 finite values each).
    """
    if not camera_link:
        return [(base_frame, optical_frame, camera_to_base(translation_m, rpy_rad))]
    return [(base_frame, camera_link, camera_body_to_base(translation_m, rpy_rad)),
            (camera_link, optical_frame, T_LINK_OPTICAL.copy())]  # fmt: skip


@dataclass(frozen=True)
class CloudPose:
    """Where one cloud goes.

    Attributes:
        t_grid_camera: (4, 4) camera (cloud frame) pose in the grid frame.
        t_grid_base: (4, 4) robot base pose in the grid frame (identity without a global frame).
        robot_xy: robot position in the grid frame [m] (the grid window's centre).
        ground_z: expected ground height in the grid frame [m]: the base origin's z + ``ground_height_m``.
        frame: the grid frame: the global frame (``odom``), or ``robot_base_frame`` without one.
    """

    t_grid_camera: np.ndarray
    t_grid_base: np.ndarray
    robot_xy: tuple[float, float]
    ground_z: float
    frame: str


def place_cloud(t_grid_base: np.ndarray, t_base_camera: np.ndarray, ground_height_m: float, frame: str) -> CloudPose:
    """Compose the robot pose and the camera mount: T_grid_camera = T_grid_base @ T_base_camera (as tf2 chains them).

    Args:
        t_grid_base: (4, 4) ``robot_base_frame`` in the grid frame (identity when the grid is the base frame).
        t_base_camera: (4, 4) the cloud's frame (camera optical frame) in ``robot_base_frame``.
        ground_height_m: ground height above the base origin [m] (usually 0: REP-105 base_link on the ground).
        frame: the grid frame's name.
    Raises:
        ValueError: if a transform is not (4, 4) and finite.
    """
    for name, t in (("t_grid_base", t_grid_base), ("t_base_camera", t_base_camera)):
        if np.shape(t) != (4, 4) or not np.isfinite(t).all():
            raise ValueError(f"{name} must be a finite (4, 4) transform, got shape {np.shape(t)}")
    t_grid_camera = t_grid_base @ t_base_camera
    xy = (float(t_grid_base[0, 3]), float(t_grid_base[1, 3]))
    return CloudPose(t_grid_camera, t_grid_base, xy, float(t_grid_base[2, 3]) + ground_height_m, frame)


class JumpCheck:
    """Relocalisation detection on the robot poses of consecutive clouds (Nav2 resets on a pose jump too).

    Args:
        max_jump_m: a position step larger than this between the robot poses of two consecutive clouds is a jump.
    """

    def __init__(self, max_jump_m: float = 1.0) -> None:
        self.max_jump_m = max_jump_m
        self._last: np.ndarray | None = None

    def update(self, t_global_base: np.ndarray) -> float | None:
        """Record the robot pose of a new cloud; the step [m] when it is a jump, else None."""
        last, self._last = self._last, t_global_base
        if last is None:
            return None
        step = translation_jump_m(last, t_global_base)
        return step if step > self.max_jump_m else None

    def reset(self) -> None:
        """Forget the last pose (after a time jump: the next pose starts a new track)."""
        self._last = None
