"""Where the package's data files (config/, launch/) are: the source tree, the pip prefix or the ament index."""

from __future__ import annotations

import sys
from pathlib import Path

PACKAGE = "seg_perception"


def share_dir() -> Path:
    """The folder holding ``config/`` and ``launch/``.

    Looks, in order, at the source tree beside the Python package (editable installs and a plain checkout),
    ``<sys.prefix>/share/seg_perception`` (pip installs of the data_files) and the ament index (colcon installs).

    Raises:
        FileNotFoundError: if none of them has a ``config`` folder.
    """
    candidates = [Path(__file__).resolve().parents[1], Path(sys.prefix) / "share" / PACKAGE]
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(PACKAGE)))
    except Exception:  # noqa: BLE001 - not on a ROS machine / not in the index
        pass
    for c in candidates:
        if (c / "config").is_dir():
            return c
    raise FileNotFoundError(f"seg_perception config folder not found in {[str(c) for c in candidates]}")


def config_path(name: str) -> Path:
    """Path of ``config/<name>`` (a YAML, the Fast DDS profile, an ontology ``ontology/<x>.yaml``)."""
    return share_dir() / "config" / name
