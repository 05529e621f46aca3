"""Reading rosbag2 sqlite3 storage files (``.db3``), damaged ones too: rosbags first, own rows where it fails.

rosbags opens a ``.db3`` read-only with ``immutable=1`` and counts every topic's rows at open, so one unreadable
page (a file cut short when the robot lost power, a bad sector) makes it refuse the whole file. Then the rows are
read here with the standard ``sqlite3`` module: the ``topics`` table, then the ``messages`` table in id (rowid)
order, jumping over the rowid ranges whose B-tree pages are unreadable (``_readable_rows``) and over messages whose
blob (its overflow pages) is unreadable; the rest is merged by timestamp as rosbags would give it.

SQLite keeps no checksums: a destroyed page is found only when its structure is broken (SQLite's "database disk
image is malformed"); damage inside a blob's content is not detectable and passes through as wrong bytes.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Collection, Iterator
from pathlib import Path

import apsw
from rosbags.rosbag2 import Reader, ReaderError

from seg_perception.bag_records import BagMessage, SalvageReport

#: Largest SQLite rowid.
MAX_ROWID = 2**63 - 1


def read_db3(
    path: Path, topics: Collection[str] | None = None, report: SalvageReport | None = None
) -> Iterator[BagMessage]:
    """Every readable message of one ``.db3`` file, in timestamp order (ties in id order, as rosbags).

    rosbags reads the file (no metadata.yaml needed); when it fails, at open or part way, the rest comes from
    ``salvage_db3`` (messages rosbags already gave are not repeated). What was lost goes into ``report``.

    Yields:
        ``BagMessage`` (topic, ROS 2 type, timestamp [ns], CDR bytes).
    """
    rep = report if report is not None else SalvageReport()
    rep.file, rep.file_size = path, path.stat().st_size
    last_t, n_at_last = -1, 0  # the last timestamp rosbags gave, and how many messages it gave with it
    try:
        with Reader(path) as reader:
            conns = [c for c in reader.connections if topics is None or c.topic in topics]
            if not conns:
                return
            for conn, t_ns, raw in reader.messages(connections=conns):
                last_t, n_at_last = int(t_ns), (n_at_last + 1 if t_ns == last_t else 1)
                rep.messages += 1
                yield BagMessage(conn.topic, conn.msgtype, int(t_ns), bytes(raw))
        return
    except (ReaderError, apsw.Error) as exc:
        cause = exc.__cause__ or exc  # rosbags' ReaderError wraps SQLite's error
        rep.error = rep.error or f"rosbags: {type(cause).__name__}: {cause}"
    yield from salvage_db3(path, topics, rep, (last_t, n_at_last))


def salvage_db3(
    path: Path, topics: Collection[str] | None, report: SalvageReport, after: tuple[int, int] = (-1, 0)
) -> Iterator[BagMessage]:
    """The readable rows of a damaged ``.db3`` file, in (timestamp, id) order, read with ``sqlite3``.

    Args:
        path: the ``.db3`` file.
        topics: only these topics (None = all).
        report: gets the file's expected size, unreadable rowid ranges and messages (see ``SalvageReport``).
        after: (timestamp [ns], n): skip messages older than the timestamp and the first n at it (given already).
    """
    report.expected_size = header_size(path)
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        try:
            con.execute("PRAGMA writable_schema=ON")  # else a cut file (fewer pages than its header says) is refused
            names = {int(i): (str(n), str(t)) for i, n, t in con.execute("SELECT id, name, type FROM topics")}
        except sqlite3.DatabaseError as exc:
            report.error = report.error or f"no topics table: {exc}"
            report.bad_rows.append((0, None))
            return
        wanted = {i for i, (name, _) in names.items() if topics is None or name in topics}
        seen_at_last = 0
        for t_ns, mid, tid in sorted(_readable_rows(con, report)):
            if tid not in wanted:
                continue
            try:
                (data,) = con.execute("SELECT data FROM messages WHERE id = ?", (mid,)).fetchone()
            except sqlite3.DatabaseError as exc:  # its overflow pages are damaged or missing
                report.bad_messages.append(mid)
                report.error = report.error or f"{type(exc).__name__}: {exc}"
                continue
            if t_ns < after[0] or (t_ns == after[0] and seen_at_last < after[1]):
                seen_at_last += t_ns == after[0]
                continue
            report.messages += 1
            yield BagMessage(names[tid][0], names[tid][1], t_ns, bytes(data))
    finally:
        con.close()


def header_size(path: Path) -> int | None:
    """The file size [bytes] the SQLite header states (page size x page count), None when the header is unusable.

    Source: https://www.sqlite.org/fileformat2.html#the_database_header (offsets 16, 28).
    """
    with open(path, "rb") as f:
        head = f.read(100)
    if len(head) < 100 or not head.startswith(b"SQLite format 3\x00"):
        return None
    (page_size,) = struct.unpack(">H", head[16:18])
    (pages,) = struct.unpack(">I", head[28:32])
    return (65536 if page_size == 1 else page_size) * pages or None


def _readable_rows(con: sqlite3.Connection, report: SalvageReport) -> list[tuple[int, int, int]]:
    """(timestamp, id, topic id) of every message row whose B-tree page reads, in id order; the unreadable id
    ranges go into ``report.bad_rows``."""
    rows: list[tuple[int, int, int]] = []
    start = 0
    while True:
        try:
            query = "SELECT id, topic_id, timestamp FROM messages WHERE id >= ? ORDER BY id"
            for mid, tid, t_ns in con.execute(query, (start,)):
                rows.append((int(t_ns), int(mid), int(tid)))
                start = int(mid) + 1
            return rows
        except sqlite3.DatabaseError as exc:
            report.error = report.error or f"{type(exc).__name__}: {exc}"
            resume = _next_readable(con, start)
            report.bad_rows.append((start, resume))
            if resume is None:
                return rows
            start = resume


def _probe(con: sqlite3.Connection, rowid: int) -> int | None | Exception:
    """The first id >= ``rowid`` (None: there is none), or the error reading the page where it would be."""
    try:
        row = con.execute("SELECT id FROM messages WHERE id >= ? ORDER BY id LIMIT 1", (rowid,)).fetchone()
    except sqlite3.DatabaseError as exc:
        return exc
    return None if row is None else int(row[0])


def _next_readable(con: sqlite3.Connection, bad: int) -> int | None:
    """The smallest id > ``bad`` from which rows read again (None: nothing after ``bad`` reads).

    Rowids in a table B-tree leaf are contiguous ranges, so probes at ``bad`` + 1, 2, 4, ... find a readable leaf,
    and a bisection between the last unreadable and the first readable probe finds where it starts.
    """
    lo, step = bad, 1
    while True:
        hi = min(bad + step, MAX_ROWID)
        found = _probe(con, hi)
        if not isinstance(found, Exception):
            break
        if hi == MAX_ROWID:
            return None
        lo, step = hi, step * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if isinstance(_probe(con, mid), Exception):
            lo = mid
        else:
            hi = mid
    return hi if isinstance(_probe(con, hi), int) else None
