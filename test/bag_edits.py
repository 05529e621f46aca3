"""Edited copies of rosbag2 bags for tests (imported by path, as ``rviz_displays``): a bag with messages left out."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from seg_perception.bag import open_writer, read_messages, typestore


def copy_without(bag: Path, out: Path, skip: dict[str, set[int]]) -> Path:
    """A copy of ``bag`` (MCAP, the latest bag format) without the messages of ``skip`` (topic -> 0-based indices
    within that topic); every other message is written with its log time and CDR bytes unchanged."""
    writer, conns, seen = open_writer(out), {}, Counter[str]()
    for m in read_messages(bag):
        seen[m.topic] += 1
        if seen[m.topic] - 1 in skip.get(m.topic, set()):
            continue
        if m.topic not in conns:
            conns[m.topic] = writer.add_connection(m.topic, m.msgtype, typestore=typestore())
        writer.write(conns[m.topic], m.t_ns, m.data)
    writer.close()
    return out
