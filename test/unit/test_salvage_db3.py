"""Damaged sqlite3 recordings (issue 10): a real kitchen ``.db3`` bag cut at 50 % (a robot that lost power), with
a B-tree leaf page or blob pages destroyed in the middle, or without metadata.yaml is read up to / around the damage
(rosbags first, ``sqlite_salvage`` where it fails) and reported. ``test_salvage.py`` processes a cut db3 as it
processes a cut MCAP file and checks a failed ``process`` run on both; the bag, ``copy_bag`` and ``bag_messages``
are fixtures of test/unit/conftest.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from seg_perception.bag import SalvageReport, read_topics, recorded_count

IMAGE = "/camera/color/image_raw"
N_FRAMES = 12  # KITCHEN_FRAMES of test/unit/conftest.py (the salvage_bag fixture)
PAGE = 4096  # the page size rosbags' sqlite3 writer leaves (SQLite's default); checked in the fixture


@pytest.fixture
def bag(salvage_bag: Callable[[str], Path]) -> Path:
    out = salvage_bag("sqlite3")
    (db3,) = out.glob("*.db3")
    assert int.from_bytes(db3.read_bytes()[16:18], "big") == PAGE
    return out


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


def test_a_db3_cut_in_half_gives_the_messages_before_the_cut(
    bag: Path, tmp_path: Path, copy_bag: Callable[..., Path], bag_messages: Callable[..., list]
) -> None:
    full = bag_messages(bag)
    (db3,) = bag.glob("*.db3")
    size = db3.stat().st_size
    cut = copy_bag(bag, tmp_path / "cut", lambda b: bytes(b[: len(b) // 2]))
    report = SalvageReport()
    got = bag_messages(cut, report)
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


def test_a_destroyed_leaf_page_in_the_middle_loses_only_its_rows(
    bag: Path, tmp_path: Path, copy_bag: Callable[..., Path], bag_messages: Callable[..., list]
) -> None:
    full = bag_messages(bag)
    (db3,) = bag.glob("*.db3")
    leaves = [p for p in _table_leaf_pages(db3) if p > 8]  # the messages table's leaves (after the small tables)
    n_pages = db3.stat().st_size // PAGE
    victim = min(leaves, key=lambda p: abs(p - n_pages / 2))
    damaged = copy_bag(bag, tmp_path / "leaf", _destroy_pages([victim]))
    report = SalvageReport()
    got = bag_messages(damaged, report)
    assert len(report.bad_rows) == 1 and report.bad_messages == []
    first, resume = report.bad_rows[0]
    assert resume is not None and len(got) == len(full) - (resume - first)  # ids are 1..n: the range is what's lost
    assert _in_order_subset(got, full) and got[-1] == full[-1]  # read on after the damage to the end
    assert f"message ids {first}-{resume - 1} lost" in report.describe()


def test_destroyed_blob_pages_lose_only_that_message(
    bag: Path, tmp_path: Path, copy_bag: Callable[..., Path], bag_messages: Callable[..., list]
) -> None:
    full = bag_messages(bag)
    (db3,) = bag.glob("*.db3")
    middle = db3.stat().st_size // PAGE // 2
    assert not set(range(middle, middle + 4)) & set(_table_leaf_pages(db3))  # overflow (blob) pages only
    damaged = copy_bag(bag, tmp_path / "blob", _destroy_pages(list(range(middle, middle + 4))))
    report = SalvageReport()
    got = bag_messages(damaged, report)  # rosbags reads up to the blob, the rest comes from sqlite3, none twice
    assert len(report.bad_messages) == 1 and report.bad_rows == []
    assert len(got) == len(full) - 1 and _in_order_subset(got, full)
    assert "rosbags:" in report.error


@pytest.mark.parametrize("metadata", ["missing", "garbage"])
def test_a_db3_without_usable_metadata_is_read_whole(
    bag: Path, tmp_path: Path, metadata: str, copy_bag: Callable[..., Path], bag_messages: Callable[..., list]
) -> None:
    copy = copy_bag(bag, tmp_path / "copy", bytes, metadata=False)
    if metadata == "garbage":
        (copy / "metadata.yaml").write_bytes(b"\x00\xff rosbag2_bagfile_information: [")
    report = SalvageReport()
    assert bag_messages(copy, report) == bag_messages(bag) and not report.damaged
    assert {t: v.count for t, v in read_topics(copy).items()} == {t: v.count for t, v in read_topics(bag).items()}
    assert recorded_count(copy, IMAGE) is None
