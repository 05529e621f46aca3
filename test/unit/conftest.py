"""Fixtures of the unit folder: the real kitchen bag in both rosbag2 storages (built once per session) and the
helpers the salvage tests share (a copy of a bag with edited storage bytes, the messages of a bag)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from seg_perception.bag import SalvageReport, read_messages
from seg_perception.datasets import open_sequence
from seg_perception.tools.bag_from_frames import write_bag

#: Frames of the 7-Scenes kitchen in the salvage bags.
KITCHEN_FRAMES = 12

Edit = Callable[[bytearray], bytes]


@pytest.fixture(scope="session")
def salvage_bag(tmp_path_factory, kitchen_dir) -> Callable[[str], Path]:  # noqa: ANN001
    """``salvage_bag(storage)``: the first ``KITCHEN_FRAMES`` kitchen frames as a rosbag2 bag in ``storage``
    ("mcap" or "sqlite3"), written on first use and shared by the session (read-only: tests edit copies)."""
    bags: dict[str, Path] = {}

    def get(storage: str) -> Path:
        if storage not in bags:
            out = tmp_path_factory.mktemp(f"kitchen_{storage}") / "bag"
            write_bag(open_sequence(kitchen_dir), out, storage=storage, limit=KITCHEN_FRAMES, progress=False)
            bags[storage] = out
        return bags[storage]

    return get


def _copy_bag(bag: Path, dst: Path, edit: Edit, metadata: bool = True) -> Path:
    """A copy of ``bag`` whose storage file's bytes (MCAP or db3) went through ``edit`` (and without metadata.yaml
    if not ``metadata``)."""
    dst.mkdir(parents=True)
    if metadata:
        shutil.copy(bag / "metadata.yaml", dst)
    (storage,) = [p for p in bag.iterdir() if p.suffix in (".mcap", ".db3")]
    (dst / storage.name).write_bytes(edit(bytearray(storage.read_bytes())))
    return dst


def _bag_messages(bag: Path, report: SalvageReport | None = None) -> list[tuple[str, int, bytes]]:
    """(topic, log time [ns], CDR bytes) of every message ``read_messages`` gives, in order."""
    return [(m.topic, m.t_ns, m.data) for m in read_messages(bag, None, report)]


# The helpers as fixtures: test modules do not import a conftest (two conftest modules share the name).
@pytest.fixture(scope="session")
def copy_bag() -> Callable[..., Path]:
    """``copy_bag(bag, dst, edit, metadata=True)``: see ``_copy_bag``."""
    return _copy_bag


@pytest.fixture(scope="session")
def bag_messages() -> Callable[..., list[tuple[str, int, bytes]]]:
    """``bag_messages(bag, report=None)``: see ``_bag_messages``."""
    return _bag_messages
