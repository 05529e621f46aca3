"""rosbag2 files for the whole package (``rosbags``, pure Python): topics, time-ordered messages, writers, types.

Used by the ROS shell (``ros/``) and the tools alike, so reading and writing bags lives in one place.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rosbags.interfaces import ConnectionExtRosbag2, QosDurability
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer, WriterError
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


@dataclass(frozen=True)
class BagTopic:
    """One topic of a bag.

    Attributes:
        name: topic name as stored.
        msgtype: ROS 2 type name, e.g. ``sensor_msgs/msg/Image``.
        count: number of messages.
        transient_local: True when every recorded publisher offered transient-local durability (latched).
    """

    name: str
    msgtype: str
    count: int
    transient_local: bool = False


@dataclass(frozen=True)
class BagMessage:
    """One stored message: topic, type, bag time [ns] and the serialized CDR bytes."""

    topic: str
    msgtype: str
    t_ns: int
    data: bytes


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
    except (ReaderError, FileNotFoundError) as exc:
        raise ValueError(f"{bag}: not a readable rosbag2: {exc}") from exc


def bag_dir(bag: str | Path) -> Path:
    """The bag folder; a storage file inside a bag folder (``bag/bag_0.mcap``) is accepted too."""
    path = Path(bag)
    if path.is_file() and (path.parent / "metadata.yaml").is_file():
        return path.parent
    return path


def read_messages(bag: str | Path, topics: Collection[str] | None = None) -> Iterator[BagMessage]:
    """Stream a bag's messages in time order, optionally only ``topics``.

    Yields:
        ``BagMessage`` with ``data`` as ``bytes`` (what ``Publisher.publish`` needs for raw CDR).
    """
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
