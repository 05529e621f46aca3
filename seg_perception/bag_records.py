"""The records of bag reading (no I/O here): a topic, a stored message, and what reading a damaged file found.

``seg_perception.bag`` re-exports them; ``seg_perception.sqlite_salvage`` uses them without importing ``bag``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


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


@dataclass
class SalvageReport:
    """What reading a storage file found (filled in while ``salvage_mcap`` / ``sqlite_salvage.read_db3`` stream).

    Attributes:
        file: the MCAP or ``.db3`` file.
        file_size: its size [bytes].
        messages: messages read (of the requested topics).
        bad_chunks: MCAP: byte offsets of chunks skipped (bad CRC, undecodable), in file order.
        end_offset: MCAP: byte offset where reading stopped before the end of the data (a truncated file, an
            unreadable record), or None when the data section was read to its end.
        expected_size: sqlite3: the size [bytes] the file's header states (more than ``file_size``: a cut file).
        bad_rows: sqlite3: message id ranges [first, resume) skipped as unreadable (resume None: to the end).
        bad_messages: sqlite3: ids of messages whose data is unreadable (their overflow pages damaged or cut).
        error: why reading stopped or data was skipped (the first such error), "" if nothing was lost.
    """

    file: Path | None = None
    file_size: int = 0
    messages: int = 0
    bad_chunks: list[int] = field(default_factory=list)
    end_offset: int | None = None
    expected_size: int | None = None
    bad_rows: list[tuple[int, int | None]] = field(default_factory=list)
    bad_messages: list[int] = field(default_factory=list)
    error: str = ""

    @property
    def damaged(self) -> bool:
        """True when something was lost."""
        return bool(self.bad_chunks or self.bad_rows or self.bad_messages) or self.end_offset is not None

    def describe(self) -> str:
        """One line for the user: where the file is damaged and what was read."""
        if not self.damaged:
            return f"{self.file}: read completely ({self.messages} messages)"
        parts = []
        if self.end_offset is not None:
            parts.append(f"the file ends inside a record at byte {self.end_offset} of {self.file_size}")
        if self.bad_chunks:
            offs = ", ".join(str(o) for o in self.bad_chunks[:5]) + (" ..." if len(self.bad_chunks) > 5 else "")
            parts.append(f"{len(self.bad_chunks)} damaged chunk(s) skipped at byte(s) {offs}")
        if self.expected_size is not None and self.file_size < self.expected_size:
            parts.append(f"the file is cut at byte {self.file_size} of {self.expected_size}")
        if self.bad_rows:
            spans = ", ".join(f"{a}-{b - 1}" if b is not None else f"{a} on" for a, b in self.bad_rows[:5])
            parts.append(f"unreadable pages: message ids {spans} lost")
        if self.bad_messages:
            ids = ", ".join(str(i) for i in self.bad_messages[:5]) + (" ..." if len(self.bad_messages) > 5 else "")
            parts.append(f"{len(self.bad_messages)} message(s) with unreadable data skipped (id {ids})")
        return f"{self.file}: {'; '.join(parts)} ({self.error}); {self.messages} messages read"
