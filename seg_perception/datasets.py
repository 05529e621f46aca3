"""Read RGB-D frame folders (KITTI raw colour + projected LiDAR depth, Microsoft 7-Scenes) without ROS.

Two on-disk layouts are recognised by ``open_sequence``:

``kitti`` (10 Hz, no per-frame timestamps)::

    FOLDER/image_02/<10-digit>.png     colour, rectified camera 2, 8-bit RGB PNG
    FOLDER/depth_02/<same name>.png    16-bit PNG, millimetres along the camera-2 optical z axis, 0 = no return
    FOLDER/intrinsics.json             {"fx", "fy", "cx", "cy", "width", "height", ...}

``7scenes`` (30 Hz)::

    FOLDER/frame-NNNNNN.color.jpg      colour, 8-bit RGB JPEG
    FOLDER/frame-NNNNNN.depth.png      16-bit PNG, millimetres, 0 = invalid
    FOLDER/frame-NNNNNN.pose.txt       4x4 camera-to-world transform (metres), optional per frame
    FOLDER/camera-intrinsics.txt       3x3 K as whitespace-separated numbers (no image size: taken from
                                       the first colour image)

Time stamps: neither layout ships per-frame times, so frame ``i`` of a sequence gets
``stamp_ns = EPOCH_NS + round(i * 1e9 / rate_hz)`` where ``EPOCH_NS`` is 1 700 000 000 s
(2023-11-14T22:13:20Z). A fixed non-zero epoch keeps stamps reproducible between runs and avoids the
"stamp 0 = unset" convention of some ROS tools. ``i`` is the frame's position in the sorted file list, so
frames skipped on the command line keep their original times.

Frames: pixels and depth live in the colour camera's optical frame (z forward, x right, y down; REP-103).
``pose`` maps points from that optical frame to the sequence's world frame.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from seg_perception.core.geometry.camera import Intrinsics

__all__ = [
    "EPOCH_NS",
    "KITTI_RATE_HZ",
    "SEVEN_SCENES_RATE_HZ",
    "Layout",
    "RGBDFrame",
    "RGBDSequence",
    "SequenceError",
    "detect_layout",
    "open_sequence",
]

EPOCH_NS: int = 1_700_000_000 * 1_000_000_000
"""Stamp of frame 0 of every sequence [ns since the Unix epoch] (2023-11-14T22:13:20Z)."""

KITTI_RATE_HZ: float = 10.0
"""KITTI raw camera rate [Hz] (the images are triggered by the Velodyne at 10 Hz)."""

SEVEN_SCENES_RATE_HZ: float = 30.0
"""7-Scenes Kinect v1 frame rate [Hz]."""

Layout = Literal["kitti", "7scenes"]

_KITTI_NAME = re.compile(r"^(\d+)\.png$")
_SEVEN_NAME = re.compile(r"^frame-(\d+)\.color\.(?:jpg|png)$")


class SequenceError(ValueError):
    """A frame folder that is not one of the supported layouts or is incomplete."""


@dataclass(frozen=True)
class RGBDFrame:
    """One colour + depth frame.

    Attributes:
        index: position of the frame in its sequence (0-based, sorted by file name).
        stamp_ns: ``EPOCH_NS + round(index * 1e9 / rate_hz)`` [ns]; see the module docstring.
        rgb: (H, W, 3) uint8 colour in RGB channel order.
        depth_mm: (H, W) uint16 depth along the optical z axis [mm]; 0 = invalid. Same size as ``rgb``
            (KITTI: exactly registered; 7-Scenes: roughly registered, a few pixels off at edges).
        pose: (4, 4) float64 camera-to-world transform (optical frame -> world, metres), or None when the
            layout has no poses (KITTI) or this frame's pose file is missing.
        rgb_path, depth_path: source files.
    """

    index: int
    stamp_ns: int
    rgb: np.ndarray
    depth_mm: np.ndarray
    pose: np.ndarray | None
    rgb_path: Path
    depth_path: Path


@dataclass(frozen=True)
class _FrameFiles:
    rgb: Path
    depth: Path
    pose: Path | None


class RGBDSequence:
    """A sorted, random-access list of RGB-D frames from one folder (use ``open_sequence``).

    Attributes:
        path: the folder.
        name: the folder's name.
        layout: ``"kitti"`` or ``"7scenes"``.
        rate_hz: nominal frame rate [Hz] (10 for KITTI, 30 for 7-Scenes).
        intrinsics: pinhole intrinsics of the colour image (the depth image shares them).
        has_poses: True when the layout provides camera-to-world poses.
    """

    def __init__(
        self,
        path: Path,
        layout: Layout,
        rate_hz: float,
        intrinsics: Intrinsics,
        files: list[_FrameFiles],
        has_poses: bool,
    ) -> None:
        self.path = path
        self.name = path.name
        self.layout: Layout = layout
        self.rate_hz = float(rate_hz)
        self.intrinsics = intrinsics
        self.has_poses = has_poses
        self._files = files

    def __len__(self) -> int:
        return len(self._files)

    def __repr__(self) -> str:
        k = self.intrinsics
        return (
            f"RGBDSequence(name={self.name!r}, layout={self.layout!r}, frames={len(self)}, "
            f"rate_hz={self.rate_hz:g}, size={k.width}x{k.height})"
        )

    def stamp_ns(self, index: int) -> int:
        """Stamp of frame ``index`` [ns]: ``EPOCH_NS + round(index * 1e9 / rate_hz)``."""
        return EPOCH_NS + round(index * 1e9 / self.rate_hz)

    def __getitem__(self, index: int) -> RGBDFrame:
        """Load frame ``index`` (negative indices count from the end).

        Raises:
            IndexError: index out of range.
            SequenceError: an image cannot be decoded, has the wrong dtype/size, or a pose is not 4x4.
        """
        n = len(self._files)
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"frame index must be an int, got {type(index).__name__}")
        i = int(index)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"frame {index} out of range for a sequence of {n} frames")
        files = self._files[i]
        rgb = _read_rgb(files.rgb)
        depth_mm = _read_depth_mm(files.depth)
        k = self.intrinsics
        if rgb.shape[:2] != (k.height, k.width):
            raise SequenceError(f"{files.rgb}: image {rgb.shape[:2]} does not match intrinsics ({k.height}, {k.width})")
        if depth_mm.shape != rgb.shape[:2]:
            raise SequenceError(f"{files.depth}: depth {depth_mm.shape} does not match rgb {rgb.shape[:2]}")
        pose = _read_pose(files.pose) if files.pose is not None else None
        return RGBDFrame(
            index=i,
            stamp_ns=self.stamp_ns(i),
            rgb=rgb,
            depth_mm=depth_mm,
            pose=pose,
            rgb_path=files.rgb,
            depth_path=files.depth,
        )

    def __iter__(self) -> Iterator[RGBDFrame]:
        for i in range(len(self)):
            yield self[i]


def detect_layout(path: str | Path) -> Layout:
    """Return the layout of a frame folder.

    Raises:
        SequenceError: if the folder does not exist or matches neither layout.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise SequenceError(f"{folder} is not a directory")
    if (folder / "image_02").is_dir():
        return "kitti"
    if any(_SEVEN_NAME.match(p.name) for p in folder.iterdir()):
        return "7scenes"
    raise SequenceError(
        f"{folder} matches no known RGB-D layout: expected KITTI (image_02/ + depth_02/ + intrinsics.json) "
        "or 7-Scenes (frame-NNNNNN.color.jpg + .depth.png [+ .pose.txt] + camera-intrinsics.txt)"
    )


def open_sequence(path: str | Path) -> RGBDSequence:
    """Open an RGB-D frame folder, detecting its layout (see the module docstring).

    Only file names are listed here; images are decoded lazily by ``RGBDSequence.__getitem__`` (the
    7-Scenes image size is read from the first colour image).

    Raises:
        SequenceError: unknown layout, no frames, a colour image without its depth image, or a missing
            or malformed intrinsics file.
    """
    folder = Path(path)
    layout = detect_layout(folder)
    if layout == "kitti":
        return _open_kitti(folder)
    return _open_seven_scenes(folder)


def _open_kitti(folder: Path) -> RGBDSequence:
    image_dir, depth_dir = folder / "image_02", folder / "depth_02"
    if not depth_dir.is_dir():
        raise SequenceError(f"{folder}: KITTI layout has image_02/ but no depth_02/ folder")
    names = sorted((p.name for p in image_dir.iterdir() if _KITTI_NAME.match(p.name)), key=lambda s: int(s[:-4]))
    if not names:
        raise SequenceError(f"{image_dir}: no <number>.png colour images")
    files = []
    for name in names:
        depth = depth_dir / name
        if not depth.is_file():
            raise SequenceError(f"{image_dir / name} has no depth image (expected {depth})")
        files.append(_FrameFiles(rgb=image_dir / name, depth=depth, pose=None))
    intr_path = folder / "intrinsics.json"
    if not intr_path.is_file():
        raise SequenceError(f"{folder}: KITTI layout needs intrinsics.json (fx, fy, cx, cy, width, height)")
    try:
        d = json.loads(intr_path.read_text())
        intrinsics = Intrinsics(
            fx=float(d["fx"]),
            fy=float(d["fy"]),
            cx=float(d["cx"]),
            cy=float(d["cy"]),
            width=int(d["width"]),
            height=int(d["height"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SequenceError(f"{intr_path}: cannot read fx, fy, cx, cy, width, height: {exc}") from exc
    return RGBDSequence(folder, "kitti", KITTI_RATE_HZ, intrinsics, files, has_poses=False)


def _open_seven_scenes(folder: Path) -> RGBDSequence:
    matches = [(m, p) for p in folder.iterdir() if (m := _SEVEN_NAME.match(p.name))]
    matches.sort(key=lambda mp: int(mp[0].group(1)))
    files = []
    any_pose = False
    for m, rgb in matches:
        stem = f"frame-{m.group(1)}"
        depth = folder / f"{stem}.depth.png"
        if not depth.is_file():
            raise SequenceError(f"{rgb} has no depth image (expected {depth})")
        pose: Path | None = folder / f"{stem}.pose.txt"
        if pose is not None and pose.is_file():
            any_pose = True
        else:
            pose = None
        files.append(_FrameFiles(rgb=rgb, depth=depth, pose=pose))
    intr_path = folder / "camera-intrinsics.txt"
    if not intr_path.is_file():
        raise SequenceError(f"{folder}: 7-Scenes layout needs camera-intrinsics.txt (3x3 K)")
    try:
        values = np.array(intr_path.read_text().split(), dtype=np.float64)
    except ValueError as exc:
        raise SequenceError(f"{intr_path}: not a list of numbers: {exc}") from exc
    if values.size not in (9, 11):
        raise SequenceError(f"{intr_path}: expected a 3x3 K (9 numbers) [+ width height], got {values.size} numbers")
    if values.size == 11:
        width, height = int(values[9]), int(values[10])
    else:
        first = _read_rgb(files[0].rgb)
        height, width = first.shape[:2]
    try:
        intrinsics = Intrinsics.from_k(values[:9], width=width, height=height)
    except ValueError as exc:
        raise SequenceError(f"{intr_path}: {exc}") from exc
    return RGBDSequence(folder, "7scenes", SEVEN_SCENES_RATE_HZ, intrinsics, files, has_poses=any_pose)


def _read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SequenceError(f"{path}: cannot decode colour image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _read_depth_mm(path: Path) -> np.ndarray:
    depth = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if depth is None:
        raise SequenceError(f"{path}: cannot decode depth image")
    if depth.dtype != np.uint16 or depth.ndim != 2:
        raise SequenceError(f"{path}: depth must be a 1-channel 16-bit PNG (mm), got {depth.dtype} {depth.shape}")
    return depth


def _read_pose(path: Path) -> np.ndarray:
    try:
        pose = np.loadtxt(path, dtype=np.float64)
    except ValueError as exc:
        raise SequenceError(f"{path}: not a 4x4 matrix of numbers: {exc}") from exc
    if pose.shape != (4, 4):
        raise SequenceError(f"{path}: pose must be 4x4, got {pose.shape}")
    return pose
