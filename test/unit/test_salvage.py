"""Damaged recordings (issue 10): a real kitchen MCAP bag cut at 50 % (a robot that lost power) or with one chunk
destroyed in the middle is read up to / around the damage (``bag.salvage_mcap``), processed, and reported; a failed
``process`` run (MCAP or sqlite3) leaves nothing that looks like a result. The bags, ``copy_bag`` and
``bag_messages`` are fixtures of test/unit/conftest.py, shared with ``test_salvage_db3.py``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from mcap.reader import SeekingReader

from seg_perception.bag import SalvageReport, read_messages, read_topics, recorded_count
from seg_perception.core.segmentation.models import WeightsError
from seg_perception.resources import config_path
from seg_perception.tools.process import process_bag

FILES = [config_path("seg_perception.yaml"), config_path("demo_kitchen.yaml")]
IMAGE = "/camera/color/image_raw"
N_FRAMES = 12  # KITCHEN_FRAMES of test/unit/conftest.py (the salvage_bag fixture)


@pytest.fixture
def bag(salvage_bag: Callable[[str], Path]) -> Path:
    return salvage_bag("mcap")


def test_a_bag_cut_in_half_gives_every_message_before_the_cut(
    bag: Path, tmp_path: Path, copy_bag: Callable[..., Path], bag_messages: Callable[..., list]
) -> None:
    full = bag_messages(bag)
    cut = copy_bag(bag, tmp_path / "cut", lambda b: bytes(b[: len(b) // 2]))
    report = SalvageReport()
    got = bag_messages(cut, report)
    assert 0 < len(got) < len(full) and got == full[: len(got)]  # the same bytes, in order, up to the cut
    (mcap,) = cut.glob("*.mcap")
    assert report.damaged and report.file_size == mcap.stat().st_size
    assert report.end_offset is not None and report.end_offset <= report.file_size
    assert f"byte {report.end_offset} of {report.file_size}" in report.describe()
    topics = read_topics(cut)  # rosbags refuses the file; the counts come from what can be read
    assert topics[IMAGE].count == sum(1 for t, _, _ in got if t == IMAGE) and topics[IMAGE].count < N_FRAMES
    assert recorded_count(cut, IMAGE) == N_FRAMES  # metadata.yaml still says what was recorded


def test_a_destroyed_chunk_in_the_middle_loses_only_its_messages(
    bag: Path, tmp_path: Path, copy_bag: Callable[..., Path], bag_messages: Callable[..., list]
) -> None:
    full = bag_messages(bag)
    (mcap,) = bag.glob("*.mcap")
    with open(mcap, "rb") as f:
        chunks = sorted(SeekingReader(f).get_summary().chunk_indexes, key=lambda c: c.chunk_start_offset)
    victim = chunks[len(chunks) // 2]

    def destroy(b: bytearray) -> bytes:
        start = victim.chunk_start_offset + 1 + 8 + 40  # past the chunk's opcode, length and header fields
        b[start : start + 64] = b"\xff" * 64
        return bytes(b)

    damaged = copy_bag(bag, tmp_path / "damaged", destroy)
    report = SalvageReport()
    got = bag_messages(damaged, report)
    assert report.bad_chunks == [victim.chunk_start_offset] and report.end_offset is None
    lost = [m for m in full if m not in got]
    assert 1 <= len(lost) <= 4 and all(victim.message_start_time <= t <= victim.message_end_time for _, t, _ in lost)
    assert [m for m in full if m in got] == got  # everything else, in order


def test_a_topic_read_reads_only_the_chunks_that_hold_the_topic(
    bag: Path, tmp_path: Path, copy_bag: Callable[..., Path], bag_messages: Callable[..., list]
) -> None:
    full = bag_messages(bag)
    (mcap,) = bag.glob("*.mcap")
    with open(mcap, "rb") as f:
        summary = SeekingReader(f).get_summary()
    tf_ids = {cid for cid, ch in summary.channels.items() if ch.topic == "/tf_static"}
    without_tf = [c for c in summary.chunk_indexes if not tf_ids & c.message_index_offsets.keys()]
    assert tf_ids and without_tf  # the image chunks hold no /tf_static
    victim = without_tf[-1]

    def destroy(b: bytearray) -> bytes:
        start = victim.chunk_start_offset + 1 + 8 + 40
        b[start : start + 64] = b"\xff" * 64
        return bytes(b)

    damaged = copy_bag(bag, tmp_path / "damaged", destroy)
    report = SalvageReport()
    got = [(m.topic, m.t_ns, m.data) for m in read_messages(damaged, ["/tf_static"], report)]
    assert got == [m for m in full if m[0] == "/tf_static"] and len(got) == 1
    assert report.bad_chunks == [] and not report.damaged  # the destroyed image chunk was never read
    assert [(m.topic, m.t_ns, m.data) for m in read_messages(bag, [IMAGE])] == [m for m in full if m[0] == IMAGE]


@pytest.mark.parametrize(("storage", "damage"), [("mcap", "the file ends inside a record at byte"),
                                                  ("sqlite3", "the file is cut at byte")])  # fmt: skip
def test_process_reads_a_cut_bag_up_to_the_cut_and_says_so(
    storage: str,
    damage: str,
    salvage_bag: Callable[[str], Path],
    copy_bag: Callable[..., Path],
    tmp_path: Path,
    model_dir: Path,
) -> None:
    bag = salvage_bag(storage)
    cut = copy_bag(bag, tmp_path / "cut", lambda b: bytes(b[: len(b) // 2]))
    seg = {"weights": str(model_dir), "device": "cpu", "input_width": 256, "input_height": 192}
    s = process_bag(cut, tmp_path / "out", FILES, seg, None, render_every=0, progress=False)
    readable = read_topics(cut)[IMAGE].count
    assert s["frames_recorded"] == N_FRAMES and s["frames_in"] == readable
    assert s["frames_out"] >= readable - 1  # the last colour frame may have lost its depth to the cut
    assert s["input_damage"] and damage in s["input_damage"]
    assert (tmp_path / "out" / "summary.json").is_file()
    assert read_topics(tmp_path / "out" / "bag")["/seg_perception/drivable_grid"].count == s["frames_out"]
    assert not list(tmp_path.glob(".out.partial-*"))


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_a_failed_process_run_leaves_nothing_behind(
    storage: str, salvage_bag: Callable[[str], Path], copy_bag: Callable[..., Path], tmp_path: Path, model_dir: Path
) -> None:
    bag = salvage_bag(storage)
    src = tmp_path / "src"
    header_only = copy_bag(bag, src / "bag", lambda b: bytes(b[:50]))  # not even a whole file header
    seg = {"weights": str(model_dir), "device": "cpu"}
    with pytest.raises(ValueError, match="not a readable rosbag2"):
        process_bag(header_only, tmp_path / "out", FILES, seg, None, render_every=0, progress=False)
    seg = {"weights": str(tmp_path / "no_such_weights"), "device": "cpu"}
    with pytest.raises(WeightsError, match="weights for model .* not found"):
        process_bag(bag, tmp_path / "out", FILES, seg, None, render_every=0, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # neither out/ nor a partial folder
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "summary.json").write_text("{}")
    with pytest.raises(ValueError, match="not empty"):
        process_bag(bag, tmp_path / "taken", FILES, {"weights": str(model_dir)}, None, progress=False)
