"""Semantic point clouds as numpy structured arrays (no ROS imports).

The point layout matches the ``sensor_msgs/PointCloud2`` this package publishes (``ros/convert.py`` turns the
structured array into a message with ``arr.tobytes()``): fields ``x, y, z`` float32 metres in the camera optical
frame, ``rgb`` float32 holding the packed ``0x00RRGGBB`` bits (the PCL/RViz convention), ``label`` uint32 class id,
``confidence`` float32 in [0, 1].
"""

from __future__ import annotations

import numpy as np

from seg_perception.core.geometry.camera import Intrinsics, backproject

CLOUD_DTYPE = np.dtype(
    [
        ("x", "<f4"),
        ("y", "<f4"),
        ("z", "<f4"),
        ("rgb", "<f4"),
        ("label", "<u4"),
        ("confidence", "<f4"),
    ]
)


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """Pack (..., 3) uint8 RGB into float32 whose bits are ``0x00RRGGBB`` (PCL's ``rgb`` field).

    Returns:
        (...) float32 array (the values are bit patterns, not numbers to compute with).
    """
    rgb = rgb.astype(np.uint32)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    return packed.astype(np.uint32).view(np.float32)


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """Inverse of ``pack_rgb``: (...) float32 bit patterns -> (..., 3) uint8 RGB."""
    bits = np.ascontiguousarray(packed, dtype=np.float32).view(np.uint32)
    return np.stack([(bits >> 16) & 0xFF, (bits >> 8) & 0xFF, bits & 0xFF], axis=-1).astype(np.uint8)


def semantic_cloud(
    depth_m: np.ndarray,
    k: Intrinsics,
    rgb: np.ndarray,
    labels: np.ndarray,
    confidence: np.ndarray,
    stride: int = 1,
) -> np.ndarray:
    """Fuse depth, colour and segmentation into an organized semantic point cloud.

    Pixel ``(v, u)`` of the (optionally decimated) grid is pixel ``(stride*v, stride*u)`` of the inputs, lifted with
    the pinhole model (``camera.backproject``). The cloud is organized: its shape is the decimated image's.

    Args:
        depth_m: (H, W) float32 metres along optical z, NaN = invalid (REP-118 after ``depth_to_meters``).
        k: intrinsics of the full-resolution (H, W) image.
        rgb: (H, W, 3) uint8 colour image registered to the depth image.
        labels: (H, W) uint8 class ids.
        confidence: (H, W) float32 in [0, 1].
        stride: keep every ``stride``-th row and column (>= 1).
    Returns:
        (ceil(H/stride), ceil(W/stride)) array of ``CLOUD_DTYPE``; pixels without valid depth have NaN x, y, z.
    Raises:
        ValueError: if the input sizes disagree with each other or with ``k``, or ``stride < 1``.
    """
    hw = (k.height, k.width)
    for name, arr in (("depth", depth_m), ("rgb", rgb), ("labels", labels), ("confidence", confidence)):
        if arr.shape[:2] != hw:
            raise ValueError(f"{name} {arr.shape[:2]} does not match camera_info {hw}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    ks = k.scaled(stride)
    sl = (slice(None, None, stride), slice(None, None, stride))
    points = backproject(np.ascontiguousarray(depth_m[sl]), ks)
    cloud = np.empty(points.shape[:2], dtype=CLOUD_DTYPE)
    cloud["x"] = points[..., 0]
    cloud["y"] = points[..., 1]
    cloud["z"] = points[..., 2]
    cloud["rgb"] = pack_rgb(rgb[sl])
    cloud["label"] = labels[sl]
    cloud["confidence"] = confidence[sl]
    return cloud


def valid_points(cloud: np.ndarray) -> np.ndarray:
    """The points of a (possibly organized) cloud whose x, y, z are all finite, flattened to (N,)."""
    flat = cloud.reshape(-1)
    ok = np.isfinite(flat["x"]) & np.isfinite(flat["y"]) & np.isfinite(flat["z"])
    return flat[ok]


def finite_points(
    xyz: np.ndarray, labels: np.ndarray, confidence: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Keep the points whose x, y and z are all finite (an organized cloud marks missing depth with NaN, REP-118).

    Done once, first: every later stage then works on measured points only (3.5 % of a KITTI frame's pixels).

    Args:
        xyz: (N, 3) or (H, W, 3) float points [m].
        labels: (N,) or (H, W) class ids.
        confidence: (N,) or (H, W) float, or None.
    Returns:
        (M, 3) xyz, (M,) labels, (M,) confidence or None, in the input's (C) order.
    Raises:
        ValueError: if the sizes differ.
    """
    pts = np.asarray(xyz).reshape(-1, 3)
    lab = np.asarray(labels).reshape(-1)
    conf = None if confidence is None else np.asarray(confidence).reshape(-1)
    if lab.size != pts.shape[0] or (conf is not None and conf.size != pts.shape[0]):
        n_conf = None if conf is None else conf.size
        raise ValueError(f"{pts.shape[0]} points but {lab.size} labels / {n_conf} confidences")
    ok = np.isfinite(pts[:, 0])
    ok &= np.isfinite(pts[:, 1])
    ok &= np.isfinite(pts[:, 2])
    if ok.all():
        return pts, lab, conf
    return pts[ok], lab[ok], None if conf is None else conf[ok]


def cloud_arrays(cloud: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Split a structured semantic cloud (any shape) into (N, 3) xyz, (N,) labels and (N,) confidence or None."""
    flat = cloud.reshape(-1)
    xyz = np.stack([flat["x"], flat["y"], flat["z"]], axis=-1)
    confidence = flat["confidence"] if "confidence" in (flat.dtype.names or ()) else None
    return xyz, flat["label"], confidence
