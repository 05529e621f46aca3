"""Pictures of the pipeline's outputs for people: grids and bird's-eye views (numpy + OpenCV, no ROS).

Bird's-eye images share one orientation: base_frame +x (forward) points up and +y (left) points left, so the
robot looks "up" the image, as in RViz's top-down view with the default camera.
"""

from __future__ import annotations

import cv2
import numpy as np

from seg_perception.core.mapping.grid import GridGeometry

UNKNOWN_RGB = (128, 128, 128)


PROJECTED_RGB = (70, 170, 190)
"""Drivable cells from ground projection alone (no depth-backed evidence): teal, beside the green of depth-backed
drivable cells."""


def grid_to_topdown(occ: np.ndarray) -> np.ndarray:
    """Reorient a (rows = y, cols = x) grid so +x points up and +y points left: ``occ.T[::-1, ::-1]``."""
    return np.ascontiguousarray(occ.T[::-1, ::-1])


def render_occupancy(occ: np.ndarray, drivable: bool = False, projected: np.ndarray | None = None) -> np.ndarray:
    """Colour an OccupancyGrid array (int8: -1 unknown, 0-100 cost) top-down.

    Args:
        occ: (H, W) int8 grid, row = y, column = x.
        drivable: drivable-grid colours (0 green = drivable, 100 dark red = not drivable) instead of the costmap
            scheme (0 white = free, 100 black = lethal, 1-99 inflation from yellow to magenta).
        projected: (H, W) bool cells made drivable by ground projection alone (``GridResult.projected``), drawn
            teal in a drivable grid; None = none.
    Returns:
        (W, H, 3) uint8 RGB, +x up, +y left; unknown cells grey.
    """
    top = grid_to_topdown(occ)
    out = np.empty(top.shape + (3,), dtype=np.uint8)
    out[:] = UNKNOWN_RGB
    if drivable:
        out[top == 0] = (40, 180, 60)
        out[top == 100] = (150, 20, 20)
        if projected is not None:
            out[grid_to_topdown(projected) & (top == 0)] = PROJECTED_RGB
        return out
    cost = top.astype(np.float32)
    infl = (top > 0) & (top < 100)
    t = (cost[infl] - 1.0) / 98.0
    out[infl] = np.stack([255 - 55 * t, 220 * (1 - t), 60 + 160 * t], axis=-1).astype(np.uint8)
    out[top == 0] = (255, 255, 255)
    out[top == 100] = (0, 0, 0)
    return out


def render_points_topdown(
    points_base: np.ndarray, colors: np.ndarray, geometry: GridGeometry, scale: int = 2
) -> np.ndarray:
    """Splat points onto a top-down image of ``geometry``'s extent (one pixel per cell / ``scale``).

    Args:
        points_base: (N, 3) float32 points in base_frame [m]; NaN = invalid.
        colors: (N, 3) uint8 RGB per point (e.g. the class palette).
        geometry: the area drawn (same as the grids').
        scale: pixels per grid cell.
    Returns:
        (W*scale, H*scale, 3) uint8 RGB, +x up, +y left, black background; higher points drawn last.
    """
    res = geometry.resolution / scale
    w, h = geometry.width_cells * scale, geometry.height_cells * scale
    img = np.zeros((w, h, 3), dtype=np.uint8)
    x, y = points_base[:, 0], points_base[:, 1]
    col_x = np.floor((x - geometry.origin_x) / res)
    row_y = np.floor((y - geometry.origin_y) / res)
    ok = np.isfinite(col_x) & np.isfinite(row_y) & (col_x >= 0) & (col_x < w) & (row_y >= 0) & (row_y < h)
    order = np.argsort(points_base[ok, 2])
    r = (w - 1 - col_x[ok][order]).astype(np.int64)  # +x up
    c = (h - 1 - row_y[ok][order]).astype(np.int64)  # +y left
    img[r, c] = colors[ok][order]
    return img


def draw_robot(img: np.ndarray, geometry: GridGeometry, scale: int = 1) -> np.ndarray:
    """Mark base_frame's origin on a top-down image with a small triangle pointing along +x."""
    res = geometry.resolution / scale
    r = int((img.shape[0] - 1) - (0.0 - geometry.origin_x) / res)
    c = int((img.shape[1] - 1) - (0.0 - geometry.origin_y) / res)
    s = max(3, img.shape[0] // 60)
    pts = np.array([[c, r - 2 * s], [c - s, r + s], [c + s, r + s]], dtype=np.int32)
    cv2.fillPoly(img, [pts], (0, 120, 255))
    return img


def label_panel(img: np.ndarray, text: str) -> np.ndarray:
    """Return ``img`` with a caption bar on top."""
    bar = np.full((24, img.shape[1], 3), 30, dtype=np.uint8)
    cv2.putText(bar, text, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([bar, img], axis=0)


def hstack_panels(panels: list[tuple[np.ndarray, str]], height: int) -> np.ndarray:
    """Resize (nearest) captioned panels to a common image height, caption each, and stack them with a thin gap."""
    out = []
    for img, caption in panels:
        w = max(1, round(img.shape[1] * height / img.shape[0]))
        out.append(label_panel(cv2.resize(img, (w, height), interpolation=cv2.INTER_NEAREST), caption))
        out.append(np.full((height + 24, 4, 3), 255, dtype=np.uint8))
    return np.concatenate(out[:-1], axis=1)


def render_panel(
    overlay: np.ndarray,
    points_base: np.ndarray,
    point_colors: np.ndarray,
    drivable: np.ndarray,
    obstacle: np.ndarray,
    geometry: GridGeometry,
    title: str,
    fused: tuple[np.ndarray, np.ndarray] | None = None,
    projected: np.ndarray | None = None,
) -> np.ndarray:
    """One RGB picture of a frame: the overlay on top; the cloud by class, drivable and obstacle grids below.

    The top views are cropped to the known cells and the robot, with a 2 m margin.

    Args:
        overlay: (H, W, 3) uint8 RGB segmentation overlay.
        points_base: (N, 3) float32 points in base_frame [m].
        point_colors: (N, 3) uint8 RGB per point (class colours).
        drivable, obstacle: (rows, cols) int8 OccupancyGrid values of ``geometry``.
        geometry: placement of the grids in base_frame.
        title: caption of the overlay.
        fused: optional (M, 3) points and (M, 3) uint8 colours of the fused semantic map: a fourth top view.
        projected: optional (rows, cols) bool cells drivable by ground projection alone: teal in the drivable grid.
    Returns:
        (H', W', 3) uint8 RGB image.
    """
    scale = 2
    def top_view(points: np.ndarray, colors: np.ndarray) -> np.ndarray:
        black = (colors == 0).all(axis=-1, keepdims=True)  # e.g. VOC "background": draw it grey on black
        colors = np.where(black, np.uint8(170), colors).astype(np.uint8)
        return draw_robot(render_points_topdown(points, colors, geometry, scale=scale), geometry, scale=scale)

    bev = top_view(points_base, point_colors)
    drv = draw_robot(render_occupancy(drivable, drivable=True, projected=projected), geometry)
    obs = draw_robot(render_occupancy(obstacle), geometry)
    known = np.argwhere(grid_to_topdown((drivable != -1) | (obstacle != -1)))
    robot = np.array([[geometry.width_cells - 1 + geometry.origin_x / geometry.resolution,
                       geometry.height_cells - 1 + geometry.origin_y / geometry.resolution]])  # fmt: skip
    pts = np.concatenate([known, robot]) if known.size else robot
    m = int(2.0 / geometry.resolution)
    r0, c0 = np.maximum(pts.min(axis=0).astype(int) - m, 0)
    r1, c1 = pts.max(axis=0).astype(int) + m + 1
    grow = max(0, int(0.8 * (r1 - r0)) - (c1 - c0))  # keep panels at least 0.8 as wide as tall
    c0, c1 = max(0, c0 - grow // 2), min(drv.shape[1], c1 + grow - grow // 2)
    panels = [
        (bev[r0 * scale : r1 * scale, c0 * scale : c1 * scale], "semantic points (top view)"),
        (drv[r0:r1, c0:c1], "drivable_grid"),
        (obs[r0:r1, c0:c1], "obstacle_grid"),
    ]
    if fused is not None:
        panels.append((top_view(*fused)[r0 * scale : r1 * scale, c0 * scale : c1 * scale], "fused_points (top view)"))
    bottom = hstack_panels(panels, 420)
    top = label_panel(overlay, title)
    top = cv2.resize(top, (bottom.shape[1], round(top.shape[0] * bottom.shape[1] / top.shape[1])))
    return np.concatenate([top, np.full((4, bottom.shape[1], 3), 255, np.uint8), bottom], axis=0)
