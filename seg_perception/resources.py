"""Where the package's data files (config/, launch/) are: the source tree, the pip prefix or the ament index."""

from __future__ import annotations

import sys
from pathlib import Path

PACKAGE = "seg_perception"


def share_dirs() -> list[Path]:
    """Folders that may hold the package's ``config/`` and ``launch/``, in search order.

    The source tree beside the Python package (editable installs and a plain checkout),
    ``<sys.prefix>/share/seg_perception`` (pip installs of the data_files) and the ament index (colcon installs).
    """
    candidates = [Path(__file__).resolve().parents[1], Path(sys.prefix) / "share" / PACKAGE]
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(PACKAGE)))
    except Exception:  # noqa: BLE001 - not on a ROS machine / not in the index
        pass
    return candidates


def share_dir() -> Path:
    """The first of ``share_dirs()`` that has a ``config`` folder.

    Raises:
        FileNotFoundError: if none of them has one.
    """
    candidates = share_dirs()
    for c in candidates:
        if (c / "config").is_dir():
            return c
    raise FileNotFoundError(f"seg_perception config folder not found in {[str(c) for c in candidates]}")


def config_path(name: str) -> Path:
    """Path of ``config/<name>`` (a YAML, the Fast DDS profile, an ontology ``ontology/<x>.yaml``)."""
    return share_dir() / "config" / name


def find_config(subfolder: str, name: str) -> Path:
    """``config/<subfolder>/<name>`` from the first of ``share_dirs()`` that has it.

    Raises:
        FileNotFoundError: naming every place searched.
    """
    places = [d / "config" / subfolder / name for d in share_dirs()]
    for path in places:
        if path.is_file():
            return path
    raise FileNotFoundError(f"{name} not found; looked in {', '.join(map(str, places))}")
