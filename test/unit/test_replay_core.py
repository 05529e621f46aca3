"""DDS-free parts of tools.replay and tools.record: schedule, play loop on a fake clock, argument parsing, QoS."""

from __future__ import annotations

from pathlib import Path

import pytest

from seg_perception.bag import BagMessage, read_messages, read_topics
from seg_perception.tools.playback import Schedule, play
from seg_perception.tools.recorder import choose_qos, parse_topic_args
from seg_perception.tools.replay import parse_remaps


class FakeClock:
    """Monotonic time that only moves when ``sleep`` is called (plus an optional cost per publish)."""

    def __init__(self, start: float = 100.0) -> None:
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        assert dt >= 0
        self.sleeps.append(dt)
        self.t += dt


def _msgs(times_ms: list[int], topic: str = "/a") -> list[BagMessage]:
    return [BagMessage(topic, "std_msgs/msg/String", 5_000_000_000 + t * 1_000_000, b"x") for t in times_ms]


def test_schedule() -> None:
    s = Schedule(t_bag0_ns=1_000_000_000, t0_s=50.0, rate=2.0)
    assert s.due_s(1_000_000_000) == 50.0
    assert s.due_s(2_000_000_000) == pytest.approx(50.5)
    assert s.bag_ns_at(50.25) == 1_500_000_000
    with pytest.raises(ValueError):
        Schedule(0, 0.0, rate=0.0)


@pytest.mark.parametrize("rate", [1.0, 2.0, 0.5], ids=["x1", "x2", "x0.5"])
def test_play_keeps_timing(rate: float) -> None:
    clock = FakeClock()
    sent: list[tuple[float, BagMessage]] = []
    msgs = _msgs([0, 100, 100, 250, 1000])
    stats = play(lambda: msgs, lambda m: sent.append((clock.t, m)), rate=rate, now=clock.now, sleep=clock.sleep)
    t0 = sent[0][0]
    assert [round((t - t0) * rate, 9) for t, _ in sent] == [0.0, 0.1, 0.1, 0.25, 1.0]
    assert [m for _, m in sent] == msgs
    assert stats.counts == {"/a": 5} and stats.loops == 1 and not stats.stopped
    assert max(stats.lateness_s) == pytest.approx(0.0, abs=1e-9)
    assert stats.bag_span_s == pytest.approx(1.0)
    assert stats.elapsed_s == pytest.approx(1.0 / rate)
    assert max(clock.sleeps) <= 0.05 + 1e-12  # bounded sleeps keep Ctrl-C responsive


def test_clock_ticks_are_steady_and_monotonic() -> None:
    clock = FakeClock()
    ticks: list[tuple[float, int]] = []
    msgs = _msgs([0, 500])
    stats = play(lambda: msgs, lambda m: None, clock=lambda ns: ticks.append((clock.t, ns)),
                 now=clock.now, sleep=clock.sleep)
    values = [ns for _, ns in ticks]
    assert values == sorted(values)
    assert values[0] == msgs[0].t_ns and values[-1] == msgs[-1].t_ns  # exact at each message
    # ~100 Hz in between: 0.5 s -> about 50 ticks, each tick's value = bag time at that wall time
    assert 48 <= len(ticks) <= 53 and stats.clock_ticks == len(ticks)
    t0 = ticks[0][0]
    for t, ns in ticks:
        assert ns == pytest.approx(msgs[0].t_ns + (t - t0) * 1e9, abs=1)


def test_late_publish_is_counted_not_skipped() -> None:
    clock = FakeClock()

    def slow_publish(m: BagMessage) -> None:
        clock.t += 0.3  # a 300 ms publish makes the next message late

    stats = play(lambda: _msgs([0, 100, 1000]), slow_publish, now=clock.now, sleep=clock.sleep)
    assert stats.total == 3
    assert stats.lateness_s[1] == pytest.approx(0.2)
    assert stats.lateness_s[2] == pytest.approx(0.0)


def test_stop_and_loop() -> None:
    clock = FakeClock()
    sent: list[BagMessage] = []
    stats = play(lambda: _msgs([0, 100]), sent.append, loop=True, now=clock.now, sleep=clock.sleep,
                 should_stop=lambda: len(sent) >= 5)
    assert stats.stopped and len(sent) == 5 and stats.loops == 2
    empty = play(list, sent.append, loop=True, now=clock.now, sleep=clock.sleep)
    assert empty.total == 0 and empty.loops == 1


def test_parse_remaps_and_topics() -> None:
    assert parse_remaps(["/a:=/b", "c:=/d"]) == {"/a": "/b", "c": "/d"}
    with pytest.raises(ValueError):
        parse_remaps(["/a=/b"])
    reqs = parse_topic_args(["/a", "b:=nav_msgs/msg/OccupancyGrid"])
    assert [(r.name, r.msgtype) for r in reqs] == [("/a", None), ("/b", "nav_msgs/msg/OccupancyGrid")]
    with pytest.raises(ValueError, match="pkg/msg/Type"):
        parse_topic_args(["/a:=Image"])
    with pytest.raises(ValueError, match="twice"):
        parse_topic_args(["/a", "a"])


def test_choose_qos() -> None:
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    volatile = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
    q = choose_qos([])
    assert (q.reliability, q.durability) == (ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE)
    q = choose_qos([latched])
    assert (q.reliability, q.durability) == (ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL)
    q = choose_qos([latched, volatile])
    assert q.durability == DurabilityPolicy.VOLATILE
    q = choose_qos([qos_profile_sensor_data, volatile])
    assert (q.reliability, q.durability) == (ReliabilityPolicy.BEST_EFFORT, DurabilityPolicy.VOLATILE)


def test_read_bag(tmp_path: Path) -> None:
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_KILTED)
    bag = tmp_path / "bag"
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        a = w.add_connection("/a", "std_msgs/msg/String", typestore=ts)
        b = w.add_connection("/b", "std_msgs/msg/Int32", typestore=ts)
        for i in range(3):
            w.write(b, 20 + i, ts.serialize_cdr(ts.types["std_msgs/msg/Int32"](data=i), "std_msgs/msg/Int32"))
            text = ts.types["std_msgs/msg/String"](data=str(i))
            w.write(a, 10 + i * 5, ts.serialize_cdr(text, "std_msgs/msg/String"))
    topics = read_topics(bag)
    assert {t.name: (t.msgtype, t.count, t.transient_local) for t in topics.values()} == {
        "/a": ("std_msgs/msg/String", 3, False), "/b": ("std_msgs/msg/Int32", 3, False)}
    times = [m.t_ns for m in read_messages(bag)]
    assert times == sorted(times) and len(times) == 6
    only_b = list(read_messages(bag, ["/b"]))
    assert [m.t_ns for m in only_b] == [20, 21, 22] and all(isinstance(m.data, bytes) for m in only_b)
    with pytest.raises(ValueError, match="not a readable rosbag2"):
        read_topics(tmp_path)
