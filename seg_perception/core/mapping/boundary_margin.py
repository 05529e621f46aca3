"""Boundary margin of ground projection: drivable pixels just below or beside a pixel of another class (no ROS).

Used by ``ground_projection.project_pixels`` with ``GroundProjectionConfig.obstacle_clearance_m`` and
``side_margin_m``; measured on KITTI in README.md (Measured here: ground projection).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["near_other_classes"]

#: Reaches [px] the margins are rounded up to (one dilation per reach in use): every integer to 8, then ~15 % steps.
_REACH_PX = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 19, 22, 26, 30, 35, 41, 48, 56, 64, 75, 87, 100])


def near_other_classes(
    not_drivable: np.ndarray,
    known: np.ndarray,
    pixels: np.ndarray,
    depth_m: np.ndarray,
    margin_px_m: tuple[float, float],
) -> np.ndarray:
    """Which drivable pixels lie just below or beside a pixel of another class (the boundary margin).

    Road seen next to a car is not always road the robot can use: under a car's body, between its wheels, the camera
    sees road that lies inside the car's footprint, and a ground cell at a car's side holds both. So a drivable
    pixel is dropped when a pixel whose class role is neither ``drivable`` nor ``ignore`` lies in the window from
    ``rv`` rows above it to its own row and ``rh`` columns to either side, where rv and rh are the image extent of
    ``obstacle_clearance_m`` (height) and ``side_margin_m`` (width) at the pixel's ground depth: rv = ceil(
    clearance / (row_step z)), rh = ceil(side / (col_step z)), row_step and col_step = stride / fy and stride / fx
    (the angular pixel pitch). A margin in metres keeps the same ground reach at every range, which a margin in
    pixels cannot (a pixel is 0.03 m at 10 m but 0.06 m at 20 m with ``cloud_stride`` 2). Pixels above a car are not
    touched: they see road beyond it. rv is rounded up to ``_REACH_PX``; rh is the largest of its group.

    Args:
        not_drivable: (H, W) bool pixels whose class role is not drivable.
        known: (H, W) bool pixels whose class role is not ignore (sky, the ignore label).
        pixels: (M,) flat indices of the drivable pixels to test.
        depth_m: (M,) optical depth z of their ground hits [m].
        margin_px_m: (obstacle_clearance_m / row_step, side_margin_m / col_step) [px m]: reach x depth.
    Returns:
        (M,) bool: True = within the margin (do not project).
    """
    other = (not_drivable & known).astype(np.uint8)
    near = np.zeros(pixels.size, dtype=bool)
    if pixels.size == 0 or not other.any():
        return near
    z = np.maximum(np.asarray(depth_m, dtype=np.float64), 1e-3)
    rv = np.minimum(np.ceil(margin_px_m[0] / z), _REACH_PX[-1])
    rh = np.minimum(np.ceil(margin_px_m[1] / z), _REACH_PX[-1]).astype(np.int64)
    level = np.searchsorted(_REACH_PX, rv)  # the first reach >= rv
    for j in np.unique(level):
        sel = level == j
        up, side = int(_REACH_PX[j]), int(rh[sel].max())
        if up == 0 and side == 0:
            continue
        kernel = np.ones((up + 1, 2 * side + 1), np.uint8)  # rows v - up .. v, columns u - side .. u + side
        hit = cv2.dilate(other, kernel, anchor=(side, up), borderType=cv2.BORDER_CONSTANT, borderValue=0)
        near[sel] = hit.reshape(-1)[pixels[sel]] > 0
    return near
