"""rosbag2 files for the whole package (``rosbags``, pure Python): topics, time-ordered messages, writers, types.

Used by the ROS shell (``ros/``) and the tools alike, so reading and writing bags lives in one place.
"""

from __future__ import annotations

import functools
import heapq
import importlib
import io
import logging
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import yaml
from mcap.reader import SeekingReader
from mcap.records import Channel, Chunk, McapRecord, Message, Schema
from mcap.stream_reader import StreamReader, breakup_chunk
from rosbags.interfaces import ConnectionExtRosbag2, QosDurability
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer, WriterError
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from seg_perception.bag_records import BagMessage, BagTopic, SalvageReport
from seg_perception.sqlite_salvage import read_db3

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
_log = logging.getLogger("seg_perception.bag")


def read_topics(bag: str | Path) -> dict[str, BagTopic]:
    """Topics of a rosbag2 folder, in the bag's connection order.

    Raises:
        ValueError: if the path is not a readable rosbag2 or a topic has several types.
    """
    try:
        with Reader(bag_dir(bag)) as reader:
            topics: dict[str, BagTopic] = {}
            for conn in reader.connections:
                latched = False
                if isinstance(conn.ext, ConnectionExtRosbag2) and conn.ext.offered_qos_profiles:
                    latched = all(q.durability == QosDurability.TRANSIENT_LOCAL for q in conn.ext.offered_qos_profiles)
                old = topics.get(conn.topic)
                if old is not None:
                    if old.msgtype != conn.msgtype:
                        raise ValueError(f"{bag}: topic {conn.topic} has two types, {old.msgtype} and {conn.msgtype}")
                    topics[conn.topic] = BagTopic(conn.topic, conn.msgtype, old.count + conn.msgcount,
                                                  old.transient_local and latched)
                else:
                    topics[conn.topic] = BagTopic(conn.topic, conn.msgtype, conn.msgcount, latched)
            return topics
    except (ReaderError, FileNotFoundError, UnicodeDecodeError) as exc:
        if mcap_files(bag) or db3_files(bag):  # a cut or damaged recording, or no metadata.yaml: read what can be
            return salvage_topics(bag)
        raise ValueError(f"{bag}: not a readable rosbag2: {exc}") from exc


def bag_dir(bag: str | Path) -> Path:
    """The bag folder; a storage file inside a bag folder (``bag/bag_0.mcap``) is accepted too."""
    path = Path(bag)
    if path.is_file() and (path.parent / "metadata.yaml").is_file():
        return path.parent
    return path


def read_messages(
    bag: str | Path, topics: Collection[str] | None = None, report: SalvageReport | None = None
) -> Iterator[BagMessage]:
    """Stream a bag's messages in time order, optionally only ``topics``.

    MCAP bags are read with the ``mcap`` library, chunk by chunk with CRC checks (``salvage_mcap``): a damaged or
    truncated file gives every message up to the damage (and after it, when the file's summary survived). sqlite3
    bags are read with rosbags, and where rosbags fails with ``sqlite3`` around the unreadable pages
    (``sqlite_salvage.read_db3``). ``report`` says what was lost. Neither needs metadata.yaml.

    Yields:
        ``BagMessage`` with ``data`` as ``bytes`` (what ``Publisher.publish`` needs for raw CDR).
    Raises:
        ValueError: the path is not a rosbag2 folder or storage file.
    """
    files = mcap_files(bag)
    if files:
        for f in files:
            yield from salvage_mcap(f, topics, report)
        return
    if db3 := db3_files(bag):
        streams = [read_storage_file(f, topics, report) for f in db3]
        yield from streams[0] if len(streams) == 1 else heapq.merge(*streams, key=lambda m: m.t_ns)
        return
    with Reader(bag_dir(bag)) as reader:
        conns = [c for c in reader.connections if topics is None or c.topic in topics]
        if not conns:
            return
        for conn, t_ns, raw in reader.messages(connections=conns):
            yield BagMessage(conn.topic, conn.msgtype, int(t_ns), bytes(raw))


#: Message definitions the rosbags Kilted store lacks (vision_msgs 4.x, as installed by scripts/ros_deps.sh).
EXTRA_MSGDEFS = {
    "vision_msgs/msg/VisionClass": "uint16 class_id\nstring class_name\n",
    "vision_msgs/msg/LabelInfo": "std_msgs/Header header\nvision_msgs/VisionClass[] class_map\nfloat32 threshold\n",
}


@functools.cache
def typestore() -> Any:  # noqa: ANN401
    """The rosbags type store of ROS 2 Kilted (message definitions for (de)serialisation), plus ``EXTRA_MSGDEFS``."""
    store = get_typestore(Stores.ROS2_KILTED)
    for name, text in EXTRA_MSGDEFS.items():
        store.register(get_types_from_msg(text, name))
    return store


def cdr_bytes(ts: Any, msg: Any, msgtype: str) -> bytes:  # noqa: ANN401
    """A rosbags message as the CDR bytes a bag should hold: rosbags' serializer (zeroed alignment padding, so the
    same message always gives the same bytes), zero-padded to a multiple of 4 bytes as Fast DDS puts it on the
    wire, so a message replayed through DDS and recorded again is byte-identical (CDR readers ignore up to 3
    trailing bytes)."""
    data = bytes(ts.serialize_cdr(msg, msgtype))
    return data + b"\0" * (-len(data) % 4)


def open_writer(path: str | Path, storage: str = "mcap") -> Writer:
    """An opened rosbag2 writer (the latest bag format) for a new folder ``path``.

    Raises:
        ValueError: unknown storage, or the folder exists / cannot be created (rosbag2 never overwrites).
    """
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {sorted(STORAGES)}, got {storage!r}")
    writer = Writer(Path(path), version=Writer.VERSION_LATEST, storage_plugin=STORAGES[storage])
    try:
        writer.open()
    except WriterError as exc:
        raise ValueError(str(exc)) from exc
    return writer


def resolve_message_class(msgtype: str) -> type:
    """Import the rclpy message class of a type name such as ``sensor_msgs/msg/Image``.

    Raises:
        ValueError: if the name is malformed or the package/class is not installed.
    """
    parts = msgtype.split("/")
    if len(parts) == 2:  # ROS 1 style "pkg/Type"
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"message type must look like pkg/msg/Type, got {msgtype!r}")
    pkg, kind, name = parts
    try:
        module = importlib.import_module(f"{pkg}.{kind}")
        cls: type = getattr(module, name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"message type {msgtype} is not installed ({exc})") from exc
    return cls


# --- Reading damaged recordings ---------------------------------------------------------------------------------------
def read_storage_file(
    path: Path, topics: Collection[str] | None = None, report: SalvageReport | None = None
) -> Iterator[BagMessage]:
    """The readable messages of one storage file: ``salvage_mcap`` for ``.mcap``, else ``sqlite_salvage.read_db3``."""
    if path.suffix == ".mcap":
        return salvage_mcap(path, topics, report)
    return read_db3(path, topics, report)


def mcap_files(bag: str | Path) -> list[Path]:
    """The MCAP storage files of a bag folder (in metadata.yaml's order when it lists them), or [] for sqlite3."""
    return _storage_files(bag, ".mcap")


def db3_files(bag: str | Path) -> list[Path]:
    """The sqlite3 storage files of a bag folder (in metadata.yaml's order when it lists them), or [] for MCAP."""
    return _storage_files(bag, ".db3")


def _storage_files(bag: str | Path, suffix: str) -> list[Path]:
    folder = bag_dir(bag)
    if folder.is_file():
        return [folder] if folder.suffix == suffix else []
    files = sorted(folder.glob(f"*{suffix}"))
    meta = folder / "metadata.yaml"
    if files and meta.is_file():
        try:
            info = yaml.safe_load(meta.read_text())["rosbag2_bagfile_information"]
            listed = [folder / name for name in info.get("relative_file_paths", [])]
            files = [f for f in listed if f in files] + [f for f in files if f not in listed]
        except (OSError, ValueError, yaml.YAMLError, KeyError, TypeError):  # a damaged metadata.yaml
            pass
    return files


def salvage_mcap(
    path: Path, topics: Collection[str] | None = None, report: SalvageReport | None = None
) -> Iterator[BagMessage]:
    """Every readable message of one MCAP file, in log-time order.

    With an intact summary (footer) every chunk is read on its own from the chunk index and the chunks are merged by
    time, so a damaged chunk is skipped and the rest read. Without one (a recording cut short: the robot lost power)
    the file is streamed up to the first incomplete or unreadable record, chunk by chunk (time order within each
    chunk; rosbag2 writes chunks in arrival order). Chunk CRCs are checked. What was lost goes into ``report``.

    Args:
        path: the ``.mcap`` file.
        topics: only these topics (None = all).
        report: filled in while reading (see ``SalvageReport``).
    Yields:
        ``BagMessage`` (topic, ROS 2 type from the channel's schema, log time [ns], CDR bytes).
    """
    rep = report if report is not None else SalvageReport()
    rep.file, rep.file_size = path, path.stat().st_size
    schemas: dict[int, Schema] = {}
    channels: dict[int, Channel] = {}
    with open(path, "rb") as f:
        try:
            summary = SeekingReader(f).get_summary()
        except Exception:  # noqa: BLE001 - no footer / summary: stream the file instead
            summary = None
        if summary is not None and summary.chunk_indexes:
            schemas.update(summary.schemas)
            channels.update(summary.channels)
            yield from _merged_chunks(f, summary.chunk_indexes, schemas, channels, topics, rep)
            return
        f.seek(0)
        reader = StreamReader(f, emit_chunks=True)
        records_it = iter(reader.records)
        while True:
            start = f.tell()
            try:
                rec = next(records_it)
                records = breakup_chunk(rec, validate_crc=True) if isinstance(rec, Chunk) else [rec]
            except StopIteration:
                return
            except Exception as exc:  # noqa: BLE001 - a cut or damaged file: keep what came before
                rep.end_offset = start
                rep.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                return
            yield from sorted(_messages(records, schemas, channels, topics, rep), key=lambda m: m.t_ns)


def _merged_chunks(
    f: Any, chunk_indexes: list[Any], schemas: dict[int, Schema], channels: dict[int, Channel],  # noqa: ANN401
    topics: Collection[str] | None, report: SalvageReport,
) -> Iterator[BagMessage]:  # fmt: skip
    """The messages of every readable chunk (from the summary's chunk index), merged in log-time order: a chunk is
    read once the next message due is not older than its first message (ties keep file order). A chunk that does
    not parse or fails its CRC is skipped and its offset reported. With ``topics``, a chunk whose message index
    lists none of the wanted channels is not read at all (a /tf-only read of a camera bag then reads no images)."""
    order = sorted(chunk_indexes, key=lambda c: (c.message_start_time, c.chunk_start_offset))
    if topics is not None:
        wanted = {cid for cid, ch in channels.items() if ch.topic in topics}
        # no message index (optional in MCAP): the chunk's content is unknown, so it is read
        order = [c for c in order if not c.message_index_offsets or wanted & c.message_index_offsets.keys()]
    heap: list[tuple[int, int, BagMessage]] = []
    seq = 0
    nxt = 0
    while nxt < len(order) or heap:
        while nxt < len(order) and (not heap or order[nxt].message_start_time <= heap[0][0]):
            idx = order[nxt]
            nxt += 1
            f.seek(idx.chunk_start_offset)
            raw = f.read(idx.chunk_length)
            try:
                chunk = next(iter(StreamReader(io.BytesIO(raw), skip_magic=True, emit_chunks=True).records))
                if not isinstance(chunk, Chunk):
                    raise ValueError(f"a {type(chunk).__name__} record where the index points to a chunk")
                records = breakup_chunk(chunk, validate_crc=True)
            except Exception as exc:  # noqa: BLE001 - any damage: skip this chunk, keep the others
                report.bad_chunks.append(idx.chunk_start_offset)
                report.error = report.error or f"{type(exc).__name__}: {exc}"
                continue
            for m in _messages(records, schemas, channels, topics, report):
                heapq.heappush(heap, (m.t_ns, seq, m))
                seq += 1
        if heap:
            yield heapq.heappop(heap)[2]


def _messages(
    records: list[McapRecord], schemas: dict[int, Schema], channels: dict[int, Channel],
    topics: Collection[str] | None, report: SalvageReport,
) -> Iterator[BagMessage]:  # fmt: skip
    for rec in records:
        if isinstance(rec, Schema):
            schemas[rec.id] = rec
        elif isinstance(rec, Channel):
            channels[rec.id] = rec
        elif isinstance(rec, Message):
            ch = channels.get(rec.channel_id)
            if ch is None or (topics is not None and ch.topic not in topics):
                continue
            schema = schemas.get(ch.schema_id)
            report.messages += 1
            yield BagMessage(ch.topic, schema.name if schema else "", int(rec.log_time), bytes(rec.data))


def recorded_count(bag: str | Path, topic: str) -> int | None:
    """How many messages of ``topic`` the bag's metadata.yaml says were recorded (None without a usable one)."""
    meta = bag_dir(bag) / "metadata.yaml"
    try:
        info = yaml.safe_load(meta.read_text())["rosbag2_bagfile_information"]
        for t in info["topics_with_message_count"]:
            if t["topic_metadata"]["name"] == topic:
                return int(t["message_count"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
        return None
    return None


def salvage_topics(bag: str | Path) -> dict[str, BagTopic]:
    """Topics and message counts of what can be read of a damaged bag or one without metadata.yaml (reads it
    through); logs the damage.

    Raises:
        ValueError: nothing readable (not an MCAP / sqlite3 file, or no message before the damage).
    """
    topics: dict[str, BagTopic] = {}
    for f in mcap_files(bag) or db3_files(bag):
        report = SalvageReport()
        for m in read_storage_file(f, None, report):
            old = topics.get(m.topic)
            topics[m.topic] = BagTopic(m.topic, m.msgtype, (old.count if old else 0) + 1)
        if report.damaged:
            _log.warning(report.describe())
    if not topics:
        raise ValueError(f"{bag}: not a readable rosbag2 (no message could be read)")
    return topics
