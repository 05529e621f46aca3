"""Semantic voxel map: confidence-weighted class histograms per voxel, accumulated over frames (no ROS imports).

Each voxel of a regular 3-D lattice (edge ``resolution_m``) holds a histogram over the model's classes; inserting a
point with label ``c`` and confidence ``w`` adds ``w`` to bin ``c`` of its voxel (a Bayesian-free "voting" fusion,
as in SemanticFusion-style maps without the CRF). The class of a voxel is the histogram's argmax and its confidence
``max / sum``. Storage is a sorted int64 key array plus a (V, C) float32 histogram array, so inserts are vectorised:
``np.unique`` + ``np.bincount`` per batch, ``np.searchsorted`` to merge into existing voxels, ``np.insert`` for new
ones.

Keys: voxel index (i, j, k) = floor(p / resolution_m), each offset by 2^20 and packed in 21 bits (x << 42 | y << 21 |
z), so coordinates must lie within +-2^20 voxels (+-52 km at 0.05 m) of the origin.

Frames: the caller's fixed frame (``odom`` or ``map``), metres.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from seg_perception.core.geometry.cloud import CLOUD_DTYPE, pack_rgb

__all__ = ["SemanticVoxelMap"]

_BITS = 21
_OFFSET = 1 << (_BITS - 1)
_MASK = (1 << _BITS) - 1


class SemanticVoxelMap:
    """A bounded map of per-voxel class histograms.

    Memory bound: after each ``insert``, if more than ``max_voxels`` voxels are stored, the least recently updated
    voxels are dropped first (the insert counter of the last batch that touched them), and among equally old ones the
    farthest from the centroid of the latest batch. ``crop`` bounds the map spatially as well.

    Args:
        resolution_m: voxel edge [m], > 0.
        num_classes: number of classes C (labels >= C, e.g. 255 = ignore, are not inserted), >= 1.
        max_voxels: most voxels kept, >= 1 (memory ~ max_voxels * (4 C + 16) bytes).
    Raises:
        ValueError: on a bad argument (the message gives the value).
    """

    def __init__(self, resolution_m: float, num_classes: int, max_voxels: int = 1_000_000) -> None:
        if not (isinstance(resolution_m, (int, float)) and math.isfinite(resolution_m) and resolution_m > 0):
            raise ValueError(f"resolution_m must be a finite number > 0 [m], got {resolution_m!r}")
        if not (isinstance(num_classes, int) and num_classes >= 1):
            raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
        if not (isinstance(max_voxels, int) and max_voxels >= 1):
            raise ValueError(f"max_voxels must be an integer >= 1, got {max_voxels!r}")
        self.resolution_m = float(resolution_m)
        self.num_classes = num_classes
        self.max_voxels = max_voxels
        self._keys = np.zeros(0, np.int64)
        self._hist = np.zeros((0, num_classes), np.float32)
        self._tick = np.zeros(0, np.int64)
        self._n_inserts = 0

    def __len__(self) -> int:
        return int(self._keys.size)

    @property
    def keys(self) -> np.ndarray:
        """(V,) int64 sorted packed voxel keys (read-only copy)."""
        return self._keys.copy()

    @property
    def histograms(self) -> np.ndarray:
        """(V, C) float32 confidence sums per class, in key order (copy)."""
        return self._hist.copy()

    def clear(self) -> None:
        """Drop every voxel."""
        self._keys = np.zeros(0, np.int64)
        self._hist = np.zeros((0, self.num_classes), np.float32)
        self._tick = np.zeros(0, np.int64)

    def _pack(self, points: np.ndarray) -> np.ndarray:
        idx = np.floor(points / self.resolution_m).astype(np.int64) + _OFFSET
        if idx.size and (idx.min() < 0 or idx.max() > _MASK):
            raise ValueError(f"points must lie within +-{_OFFSET * self.resolution_m:g} m of the origin per axis, got "
                             f"extent {points.min(axis=0).tolist()} .. {points.max(axis=0).tolist()}")
        return (idx[:, 0] << (2 * _BITS)) | (idx[:, 1] << _BITS) | idx[:, 2]

    def centers(self) -> np.ndarray:
        """(V, 3) float64 voxel centres [m], in key order."""
        k = self._keys
        idx = np.stack([(k >> (2 * _BITS)) & _MASK, (k >> _BITS) & _MASK, k & _MASK], axis=1) - _OFFSET
        out: np.ndarray = (idx + 0.5) * self.resolution_m
        return out

    def insert(self, points: np.ndarray, labels: np.ndarray, confidence: np.ndarray | None = None) -> int:
        """Add one frame's labelled points.

        Points with any non-finite coordinate, labels outside [0, C) and non-finite or non-positive confidence are
        not inserted (NaN = invalid, 255 = ignore).

        Args:
            points: (N, 3) float points in the map frame [m].
            labels: (N,) integer class ids.
            confidence: (N,) float weights in [0, 1] (values above 1 count as given), or None = 1.
        Returns:
            Number of points inserted.
        Raises:
            ValueError: on mismatched lengths, wrong shapes, or points beyond the key range.
            TypeError: if labels are not integers.
        """
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise ValueError(f"points must be (N, 3), got {pts.shape}")
        lab = np.asarray(labels).reshape(-1)
        if not np.issubdtype(lab.dtype, np.integer):
            raise TypeError(f"labels must be integer class ids, got {lab.dtype}")
        if lab.size != pts.shape[0]:
            raise ValueError(f"labels has {lab.size} values but points has {pts.shape[0]} points")
        if confidence is None:
            w = np.ones(pts.shape[0], np.float64)
        else:
            w = np.asarray(confidence, dtype=np.float64).reshape(-1)
            if w.size != pts.shape[0]:
                raise ValueError(f"confidence has {w.size} values but points has {pts.shape[0]} points")
        ok = np.isfinite(pts).all(axis=1) & (lab >= 0) & (lab < self.num_classes) & np.isfinite(w) & (w > 0)
        pts, lab, w = pts[ok], lab[ok].astype(np.int64), w[ok]
        self._n_inserts += 1
        if pts.shape[0] == 0:
            return 0
        key = self._pack(pts)
        ukey, inv = np.unique(key, return_inverse=True)
        c = self.num_classes
        batch = np.bincount(inv.reshape(-1) * c + lab, weights=w, minlength=ukey.size * c)
        batch = batch.reshape(ukey.size, c).astype(np.float32)

        pos = np.searchsorted(self._keys, ukey)
        exists = pos < self._keys.size
        exists[exists] = self._keys[pos[exists]] == ukey[exists]
        self._hist[pos[exists]] += batch[exists]
        self._tick[pos[exists]] = self._n_inserts
        new = ~exists
        if new.any():
            self._keys = np.insert(self._keys, pos[new], ukey[new])
            self._hist = np.insert(self._hist, pos[new], batch[new], axis=0)
            self._tick = np.insert(self._tick, pos[new], self._n_inserts)
        if self._keys.size > self.max_voxels:
            self._evict(pts.mean(axis=0))
        return int(pts.shape[0])

    def _evict(self, center: np.ndarray) -> None:
        dist2 = ((self.centers() - center) ** 2).sum(axis=1)
        order = np.lexsort((-dist2, self._tick))  # oldest first; among equals, farthest first
        drop = order[: self._keys.size - self.max_voxels]
        keep = np.ones(self._keys.size, bool)
        keep[drop] = False
        self._select(keep)

    def _select(self, keep: np.ndarray) -> None:
        self._keys, self._hist, self._tick = self._keys[keep], self._hist[keep], self._tick[keep]

    def crop(self, center_xyz: Sequence[float], radius_m: float) -> int:
        """Drop voxels whose centre is farther than ``radius_m`` (3-D Euclidean) from ``center_xyz``.

        Args:
            center_xyz: (x, y, z) in the map frame [m], e.g. the robot position.
            radius_m: radius [m], >= 0.
        Returns:
            Number of voxels dropped.
        Raises:
            ValueError: if the centre is not 3 finite values or the radius is negative / NaN.
        """
        c = np.asarray(center_xyz, dtype=np.float64).reshape(-1)
        if c.size != 3 or not np.isfinite(c).all():
            raise ValueError(f"center_xyz must be 3 finite values, got {c.tolist()}")
        if not radius_m >= 0:
            raise ValueError(f"radius_m must be >= 0 [m], got {radius_m}")
        keep = ((self.centers() - c) ** 2).sum(axis=1) <= float(radius_m) ** 2
        n_drop = int(keep.size - np.count_nonzero(keep))
        if n_drop:
            self._select(keep)
        return n_drop

    def labels_and_confidence(self) -> tuple[np.ndarray, np.ndarray]:
        """(V,) uint32 argmax class (lowest id on ties) and (V,) float32 confidence ``max / sum`` per voxel."""
        total = self._hist.sum(axis=1)
        lab = np.argmax(self._hist, axis=1).astype(np.uint32)
        best = self._hist[np.arange(lab.size), lab]
        conf = np.divide(best, total, out=np.zeros_like(best), where=total > 0).astype(np.float32)
        return lab, conf

    def to_cloud(self, palette: np.ndarray) -> np.ndarray:
        """The map as a semantic cloud (one point per voxel, at the voxel centre).

        Args:
            palette: (C, 3) uint8 RGB colour per class.
        Returns:
            (V,) array of ``cloud.CLOUD_DTYPE``: x, y, z float32 voxel centres in the map frame [m], ``rgb`` packed
            ``palette[label]``, ``label`` argmax class, ``confidence`` = max / sum of the histogram.
        Raises:
            ValueError: if the palette is not (C, 3).
        """
        pal = np.asarray(palette)
        if pal.shape != (self.num_classes, 3):
            raise ValueError(f"palette must be ({self.num_classes}, 3) RGB, got {pal.shape}")
        lab, conf = self.labels_and_confidence()
        xyz = self.centers().astype(np.float32)
        out = np.empty(lab.size, dtype=CLOUD_DTYPE)
        out["x"], out["y"], out["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
        out["rgb"] = pack_rgb(pal.astype(np.uint8)[lab])
        out["label"] = lab
        out["confidence"] = conf
        return out
