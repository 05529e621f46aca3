"""``seg-perception bag-convert``: ROS 1 bags -> a rosbag2 that ``replay`` (or ``ros2 bag play``) can play.

Usage::

    seg-perception bag-convert SRC.bag [SRC.bag ...] -o DST [--storage mcap|sqlite3] [--topic T ...]
        [--exclude-topic T ...]

Uses rosbags' converter (``rosbags.convert.convert``): every message is converted from the ROS 1 definition
stored in the bag (or ROS 1 Noetic's, if the bag has none) to the ROS 2 Kilted type of the same name
(``seg_perception.bag.typestore``), e.g. ``sensor_msgs/CameraInfo``'s ``K``/``D``/``R``/``P`` -> ``k``/``d``/``r``/
``p`` and ``Header.seq`` dropped. Bag times and topic names are kept; a ROS 1 topic recorded without a leading
``/`` (``raspicam_node/camera/image/compressed``) stays relative and is published in the player's namespace.
Several sources are merged into one bag in time order.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from rosbags.convert import ConverterError, convert
from rosbags.rosbag2 import Writer
from rosbags.typesys import Stores, get_typestore

from seg_perception.bag import STORAGES, read_topics, typestore
from seg_perception.tools.common import staged_output

__all__ = ["add_arguments", "convert_bags", "run"]


def convert_bags(
    srcs: Sequence[Path], dst: Path, storage: str = "mcap", topics: Sequence[str] = (),
    exclude_topics: Sequence[str] = (),
) -> dict[str, tuple[str, int]]:  # fmt: skip
    """Convert ROS 1 bags into one new rosbag2 folder ``dst``.

    Args:
        srcs: ROS 1 ``.bag`` files.
        dst: the rosbag2 folder to create (must not exist).
        storage: ``mcap`` or ``sqlite3``.
        topics: convert only these topics (default: all); exclude_topics: leave these out.
    Returns:
        topic -> (ROS 2 message type, message count) of the written bag.
    Raises:
        ValueError: unknown storage, a missing source, ``dst`` exists, or the converter refused the input.
    """
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {sorted(STORAGES)}, got {storage!r}")
    missing = [str(s) for s in srcs if not Path(s).is_file()]
    if missing:
        raise ValueError(f"no such ROS 1 bag: {missing}")
    if dst.exists():
        raise ValueError(f"{dst} exists; rosbag2 never overwrites")
    with staged_output(dst) as work:  # a refused or interrupted conversion leaves no half-written bag
        _convert(srcs, work, storage, topics, exclude_topics)
    return {name: (t.msgtype, t.count) for name, t in read_topics(dst).items()}


def _convert(srcs: Sequence[Path], dst: Path, storage: str, topics: Sequence[str], exclude: Sequence[str]) -> None:
    try:
        convert(
            srcs=[Path(s) for s in srcs], dst=dst, dst_storage=storage, dst_version=Writer.VERSION_LATEST,
            compress=None, compress_mode="file", default_typestore=get_typestore(Stores.ROS1_NOETIC),
            typestore=typestore(), exclude_topics=list(exclude), include_topics=list(topics),
            exclude_msgtypes=[], include_msgtypes=[],
        )  # fmt: skip
    except ConverterError as e:
        raise ValueError(f"conversion failed: {e}") from e


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``seg-perception bag-convert``."""
    p.add_argument("srcs", nargs="+", type=Path, metavar="SRC.bag", help="ROS 1 bag file(s)")
    p.add_argument("-o", "--output", type=Path, required=True, help="rosbag2 folder to create")
    p.add_argument("--storage", choices=sorted(STORAGES), default="mcap", help="storage plugin (default mcap)")
    p.add_argument("--topic", action="append", default=[], help="convert only this topic (repeatable)")
    p.add_argument("--exclude-topic", action="append", default=[], help="leave this topic out (repeatable)")


def run(args: argparse.Namespace) -> int:
    """Convert and print the written topics."""
    written = convert_bags(args.srcs, args.output, args.storage, args.topic, args.exclude_topic)
    for name, (msgtype, count) in written.items():
        print(f"{name}  {msgtype}  {count}")
    print(f"wrote {args.output}")
    return 0
