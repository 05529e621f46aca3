"""Damaged sqlite3 recordings (issue 10): a real kitchen ``.db3`` bag cut at 50 % (a robot that lost power), with
a B-tree leaf page or blob pages destroyed in the middle, or without metadata.yaml is read up to / around the damage
(rosbags first, ``sqlite_salvage`` where it fails) and reported (``test_salvage.py`` processes a cut db3 as it
processes a cut MCAP file); a failed ``process`` run on a db3 bag
leaves nothing that looks like a result."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from seg_perception.bag import SalvageReport, read_messages, read_topics, recorded_count
from seg_perception.datasets import open_sequence
from seg_perception.resources import config_path
from seg_perception.tools.bag_from_frames import write_bag
from seg_perception.tools.process import process_bag

FILES = [config_path("seg_perception.yaml"), config_path("demo_kitchen.yaml")]
IMAGE = "/camera/color/image_raw"
N_FRAMES = 12
PAGE = 4096  # the page size rosbags' sqlite3 writer leaves (SQLite's default); checked in the fixture


@pytest.fixture(scope="module")
def bag(tmp_path_factory, kitchen_dir) -> Path:  # noqa: ANN001
    out = tmp_path_factory.mktemp("salvage_db3") / "bag"
    write_bag(open_sequence(kitchen_dir), out, storage="sqlite3", limit=N_FRAMES, progress=False)
    (db3,) = out.glob("*.db3")
    assert int.from_bytes(db3.read_bytes()[16:18], "big") == PAGE
    return out


def _copy(bag: Path, dst: Path, edit: Callable[[bytearray], bytes], metadata: bool = True) -> Path:
    """A copy of ``bag`` whose db3 bytes went through ``edit`` (and without metadata.yaml if not ``metadata``)."""
    dst.mkdir(parents=True)
    if metadata:
        shutil.copy(bag / "metadata.yaml", dst)
    (db3,) = bag.glob("*.db3")
    (dst / db3.name).write_bytes(edit(bytearray(db3.read_bytes())))
    return dst


def _messages(bag: Path, report: SalvageReport | None = None) -> list[tuple[str, int, bytes]]:
    return [(m.topic, m.t_ns, m.data) for m in read_messages(bag, None, report)]


def _in_order_subset(got: list, full: list) -> bool:  # noqa: ANN001
    return len(set(got)) == len(got) and [m for m in full if m in got] == got


def _destroy_pages(pages: list[int]) -> Callable[[bytearray], bytes]:
    def edit(b: bytearray) -> bytes:
        for p in pages:  # 1-based page numbers
            b[(p - 1) * PAGE : p * PAGE] = b"\xff" * PAGE
        return bytes(b)

    return edit


def _table_leaf_pages(db3: Path) -> list[int]:
    """Page numbers of the file's table B-tree leaf pages (type byte 0x0d; sqlite.org/fileformat2.html#b_tree_pages)."""
    b = db3.read_bytes()
    return [i + 1 for i in range(1, len(b) // PAGE) if b[i * PAGE] == 0x0D]


def test_a_db3_cut_in_half_gives_the_messages_before_the_cut(bag: Path, tmp_path: Path) -> None:
    full = _messages(bag)
    (db3,) = bag.glob("*.db3")
    size = db3.stat().st_size
    cut = _copy(bag, tmp_path / "cut", lambda b: bytes(b[: len(b) // 2]))
    report = SalvageReport()
    got = _messages(cut, report)
    assert 0 < len(got) < len(full) and _in_order_subset(got, full)
    first_lost = next(i for i, m in enumerate(full) if m not in got)
    assert got[:first_lost] == full[:first_lost]  # everything before the first lost message
    assert len(got) - first_lost <= 4  # after it only the small rows of that frame (its blob ran past the cut)
    assert report.expected_size == size and report.file_size == size // 2
    assert report.bad_rows and report.bad_rows[-1][1] is None  # unreadable to the end
    assert f"the file is cut at byte {size // 2} of {size}" in report.describe()
    topics = read_topics(cut)  # rosbags refuses the file; the counts come from what can be read
    images = sum(1 for t, _, _ in got if t == IMAGE)
    assert topics[IMAGE].count == images and 0 < images < N_FRAMES
    assert recorded_count(cut, IMAGE) == N_FRAMES  # metadata.yaml still says what was recorded
    print(f"db3 cut at 50 %: read {images} of {N_FRAMES} frames; {report.describe()}")


def test_a_destroyed_leaf_page_in_the_middle_loses_only_its_rows(bag: Path, tmp_path: Path) -> None:
    full = _messages(bag)
    (db3,) = bag.glob("*.db3")
    leaves = [p for p in _table_leaf_pages(db3) if p > 8]  # the messages table's leaves (after the small tables)
    n_pages = db3.stat().st_size // PAGE
    victim = min(leaves, key=lambda p: abs(p - n_pages / 2))
    damaged = _copy(bag, tmp_path / "leaf", _destroy_pages([victim]))
    report = SalvageReport()
    got = _messages(damaged, report)
    assert len(report.bad_rows) == 1 and report.bad_messages == []
    first, resume = report.bad_rows[0]
    assert resume is not None and len(got) == len(full) - (resume - first)  # ids are 1..n: the range is what's lost
    assert _in_order_subset(got, full) and got[-1] == full[-1]  # read on after the damage to the end
    assert f"message ids {first}-{resume - 1} lost" in report.describe()


def test_destroyed_blob_pages_lose_only_that_message(bag: Path, tmp_path: Path) -> None:
    full = _messages(bag)
    (db3,) = bag.glob("*.db3")
    middle = db3.stat().st_size // PAGE // 2
    assert not set(range(middle, middle + 4)) & set(_table_leaf_pages(db3))  # overflow (blob) pages only
    damaged = _copy(bag, tmp_path / "blob", _destroy_pages(list(range(middle, middle + 4))))
    report = SalvageReport()
    got = _messages(damaged, report)  # rosbags reads up to the blob, the rest comes from sqlite3, none twice
    assert len(report.bad_messages) == 1 and report.bad_rows == []
    assert len(got) == len(full) - 1 and _in_order_subset(got, full)
    assert "rosbags:" in report.error


@pytest.mark.parametrize("metadata", ["missing", "garbage"])
def test_a_db3_without_usable_metadata_is_read_whole(bag: Path, tmp_path: Path, metadata: str) -> None:
    copy = _copy(bag, tmp_path / "copy", bytes, metadata=False)
    if metadata == "garbage":
        (copy / "metadata.yaml").write_bytes(b"\x00\xff rosbag2_bagfile_information: [")
    report = SalvageReport()
    assert _messages(copy, report) == _messages(bag) and not report.damaged
    assert {t: v.count for t, v in read_topics(copy).items()} == {t: v.count for t, v in read_topics(bag).items()}
    assert recorded_count(copy, IMAGE) is None


def test_a_failed_process_run_on_a_db3_leaves_nothing_behind(bag: Path, tmp_path: Path, model_dir: Path) -> None:
    src = tmp_path / "src"
    header_only = _copy(bag, src / "bag", lambda b: bytes(b[:50]))  # not even a whole SQLite header
    seg = {"weights": str(model_dir), "device": "cpu"}
    with pytest.raises(ValueError, match="not a readable rosbag2"):
        process_bag(header_only, tmp_path / "out", FILES, seg, None, render_every=0, progress=False)
    with pytest.raises(Exception, match="weights"):
        process_bag(bag, tmp_path / "out", FILES, {"weights": str(tmp_path / "none")}, None, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # neither out/ nor a partial folder
