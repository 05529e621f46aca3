"""Labelled image folders for ``seg-perception eval`` and ``quantize``: find image/label pairs (CamVid and
Cityscapes layouts), check them, read them.

Layouts (labels mirror the image folder, searched recursively):
  camvid      ``images/<name>.png`` <-> ``labels/<name>.png`` (8-bit ids; CamVid: 0-10, 11 = ignore)
  cityscapes  ``<city>/<stem>_leftImg8bit.png`` <-> ``<city>/<stem>_gtFine_labelTrainIds.png`` (255 = ignore)
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
CITYSCAPES_IMAGE_SUFFIX = "_leftImg8bit"
CITYSCAPES_LABEL_SUFFIX = "_gtFine_labelTrainIds"
DEFAULT_IGNORE = {"camvid": 11, "cityscapes": 255}


class DatasetError(ValueError):
    """The image/label folders are missing, empty, or hold a missing or mismatched label file."""


@dataclass(frozen=True)
class Sample:
    """One image and its ground-truth label file."""

    image: Path
    label: Path


def detect_layout(images_dir: Path) -> str:
    """``"cityscapes"`` if any image is named ``*_leftImg8bit.*`` (searched recursively), else ``"camvid"``."""
    for path in images_dir.rglob(f"*{CITYSCAPES_IMAGE_SUFFIX}.*"):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return "cityscapes"
    return "camvid"


def _label_path(image: Path, images_dir: Path, labels_dir: Path, layout: str) -> Path:
    rel = image.relative_to(images_dir)
    if layout == "cityscapes":
        stem = image.stem.removesuffix(CITYSCAPES_IMAGE_SUFFIX)
        return labels_dir / rel.parent / f"{stem}{CITYSCAPES_LABEL_SUFFIX}.png"
    return labels_dir / rel.parent / f"{image.stem}.png"


def find_samples(
    images_dir: Path,
    labels_dir: Path,
    layout: str = "auto",
    pattern: str | None = None,
    prefix: str | None = None,
    limit: int | None = None,
) -> list[Sample]:
    """List image/label pairs, sorted by image path, and check that every label file exists.

    Args:
        images_dir: folder of images (searched recursively, for Cityscapes' per-city folders).
        labels_dir: folder of label images, mirroring ``images_dir``.
        layout: ``"camvid"``, ``"cityscapes"`` or ``"auto"`` (``detect_layout``).
        pattern: shell glob on the image file name (e.g. ``"0016E5_*"``).
        prefix: keep image file names starting with this.
        limit: keep the first N pairs after filtering (``None`` = all).
    Returns:
        The pairs.
    Raises:
        DatasetError: a folder is missing, no image matches, or label files are missing (the message names them).
    """
    for what, folder in (("images", images_dir), ("labels", labels_dir)):
        if not folder.is_dir():
            raise DatasetError(f"{what} folder {folder} does not exist")
    if layout == "auto":
        layout = detect_layout(images_dir)
    images = sorted(p for p in images_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if layout == "cityscapes":
        images = [p for p in images if p.stem.endswith(CITYSCAPES_IMAGE_SUFFIX)]
    if pattern:
        images = [p for p in images if fnmatch.fnmatch(p.name, pattern)]
    if prefix:
        images = [p for p in images if p.name.startswith(prefix)]
    if limit is not None:
        images = images[: max(0, limit)]
    if not images:
        raise DatasetError(
            f"no {layout} images in {images_dir}" + (f" matching glob {pattern!r}" if pattern else "")
            + (f" with prefix {prefix!r}" if prefix else "")
        )
    samples = [Sample(p, _label_path(p, images_dir, labels_dir, layout)) for p in images]
    missing = [s for s in samples if not s.label.is_file()]
    if missing:
        shown = "; ".join(f"{s.label} (for image {s.image})" for s in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DatasetError(f"{len(missing)} label file(s) missing: {shown}{more}")
    return samples


def check_sizes(samples: Iterable[Sample]) -> None:
    """Check that every label is an 8-bit single-channel image of its image's size (headers only, fast).

    Raises:
        DatasetError: naming the label file, its size and mode, and the expected size.
    """
    for s in samples:
        with Image.open(s.image) as im:
            expected = im.size
        with Image.open(s.label) as lab:
            actual, mode = lab.size, lab.mode
        if actual != expected:
            raise DatasetError(
                f"label {s.label} is {actual[0]}x{actual[1]}, expected {expected[0]}x{expected[1]} "
                f"(the size of image {s.image})"
            )
        if mode not in ("L", "P"):
            raise DatasetError(f"label {s.label} has PIL mode {mode!r}, expected 8-bit class ids ('L' or 'P')")


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file (writable copy)."""
    with Image.open(path) as im:
        return np.array(im.convert("RGB"))


def read_labels(path: Path) -> np.ndarray:
    """(H, W) uint8 class ids of a label image (palette images give their indices)."""
    with Image.open(path) as im:
        return np.array(im)


def resize_labels(labels: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of (H, W) uint8 ids to ``out_hw`` = (height, width), sampling pixel centres.

    PIL's NEAREST (output pixel ``i`` takes source ``floor((i + 0.5) * scale)``), as in the reference protocol:
    a 2x reduction keeps the odd rows and columns. ``torch``'s legacy "nearest" and ``cv2.INTER_NEAREST`` keep
    the even ones, which moved per-class IoU of ESPNetv2 on CamVid by up to 0.5 points. Same-size input is
    returned as is.
    """
    if labels.shape[:2] == tuple(out_hw):
        return labels
    size_wh = (out_hw[1], out_hw[0])  # PIL's order
    return np.asarray(Image.fromarray(labels).resize(size_wh, Image.Resampling.NEAREST)).copy()
