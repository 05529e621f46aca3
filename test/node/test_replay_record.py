"""Replay a small bag made from real 7-Scenes frames while recording it; the recording must be byte-identical.

1. In-process: ``Replayer`` (context A, main thread) -> ``Recorder`` (context B, executor thread), with /clock.
2. Cross-process: the ``record`` CLI as a subprocess, discovering types from the graph, plus a latched
   (transient-local) grid published before it starts; stopped with SIGINT or SIGTERM.
All waits are deadline-bounded polls.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from seg_perception import cli
from seg_perception.bag import BagMessage, read_messages, read_topics
from seg_perception.datasets import open_sequence
from seg_perception.ros.convert import stamp_to_ns
from seg_perception.tools.bag_from_frames import write_bag
from seg_perception.tools.recorder import Recorder
from seg_perception.tools.replay import Replayer

REPO = Path(__file__).resolve().parents[2]
CAMERA_TOPICS = ["/camera/color/image_raw", "/camera/depth/image_raw", "/camera/color/camera_info", "/tf"]
ALL_TOPICS = [*CAMERA_TOPICS, "/tf_static"]  # /tf_static: one latched message (the camera mount)
N_FRAMES = 15  # 0.5 s at 30 Hz, 60 messages


@pytest.fixture(scope="module")
def small_bag(tmp_path_factory: pytest.TempPathFactory, kitchen_dir: Path) -> Path:
    bag = tmp_path_factory.mktemp("replay") / "kitchen15"
    write_bag(open_sequence(kitchen_dir), bag, limit=N_FRAMES, progress=False)
    return bag


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.01)


def by_topic(messages: list[BagMessage]) -> dict[str, list[BagMessage]]:
    out: dict[str, list[BagMessage]] = defaultdict(list)
    for m in messages:
        out[m.topic].append(m)
    return out


def assert_same_messages_and_timing(original: Path, recorded: Path, remap: dict[str, str]) -> None:
    """Every message of ``original`` arrived byte-identical (bag topic -> recorded topic in ``remap``)."""
    src = by_topic(list(read_messages(original)))
    got = by_topic(list(read_messages(recorded, list(remap.values()))))
    for topic, out in remap.items():
        assert len(got[out]) == len(src[topic]), topic
        for a, b in zip(src[topic], got[out], strict=True):
            assert a.data == b.data, f"{topic}: recorded bytes differ"
    # Timing: receive times keep the bag's spacing (same offset for every message, within 100 ms).
    first = next(iter(remap))
    t_src = np.array([m.t_ns for m in src[first]], dtype=np.float64) / 1e9
    t_got = np.array([m.t_ns for m in got[remap[first]]], dtype=np.float64) / 1e9
    offset = (t_got - t_got[0]) - (t_src - t_src[0])
    assert np.max(np.abs(offset - np.median(offset))) < 0.1, offset
    assert (t_got[-1] - t_got[0]) == pytest.approx(t_src[-1] - t_src[0], abs=0.1)


def test_replay_to_recorder_in_process(small_bag: Path, tmp_path: Path) -> None:
    ctx_play, ctx_rec = rclpy.Context(), rclpy.Context()
    rclpy.init(context=ctx_play)
    rclpy.init(context=ctx_rec)
    executor = SingleThreadedExecutor(context=ctx_rec)
    thread = None
    recorder = None
    try:
        ns = f"/t{os.getpid()}"
        play_node = rclpy.create_node("player", namespace=ns, context=ctx_play)
        rec_node = rclpy.create_node("recorder", namespace=ns, context=ctx_rec)
        remap = {t: f"{ns}{t}" for t in ALL_TOPICS}
        replayer = Replayer(play_node, small_bag, remap=remap, clock=True, clock_topic=f"{ns}/clock")
        recorder = rec = Recorder(
            rec_node, tmp_path / "rec", [*remap.values(), f"{ns}/clock"], storage="mcap", discovery_timeout_s=5.0
        )
        executor.add_node(rec_node)
        thread = threading.Thread(target=executor.spin, daemon=True)
        thread.start()
        wait_until(lambda: not rec.missing(), 10.0, "the recorder to discover the topics")
        subs = rec.subscribed()
        wait_until(lambda: replayer.subscription_count() >= len(ALL_TOPICS)
                   and all(s.get_publisher_count() >= 1 for s in subs.values()), 10.0, "matching")
        stats = replayer.play()
        assert stats.counts == {t: N_FRAMES for t in CAMERA_TOPICS} | {"/tf_static": 1}
        assert max(stats.lateness_s) < 0.1
        wait_until(lambda: all(rec.counts()[remap[t]] == N_FRAMES for t in CAMERA_TOPICS)
                   and rec.counts()[remap["/tf_static"]] == 1, 10.0, "all messages at the recorder")
        summary = recorder.close()
        recorder = None
        assert not summary.errors and not summary.missing
    finally:
        if recorder is not None:
            recorder.close()
        executor.shutdown(timeout_sec=2.0)
        if thread is not None:
            thread.join(2.0)
        ctx_play.try_shutdown()
        ctx_rec.try_shutdown()

    recorded = tmp_path / "rec"
    renamed = [BagMessage(m.topic.removeprefix(ns), m.msgtype, m.t_ns, m.data)
               for m in read_messages(recorded)]
    src = by_topic(list(read_messages(small_bag)))
    got = by_topic(renamed)
    for topic in ALL_TOPICS:
        assert [m.data for m in got[topic]] == [m.data for m in src[topic]], topic
    assert read_topics(recorded)[f"{ns}/tf_static"].transient_local  # replayed latched, as tf2 expects
    # /clock: monotonic, starts and ends at the bag's times, ~100 Hz in between.
    from rclpy.serialization import deserialize_message
    from rosgraph_msgs.msg import Clock

    clock_ns = [stamp_to_ns(deserialize_message(m.data, Clock).clock) for m in got["/clock"]]
    first, last = src[CAMERA_TOPICS[0]][0].t_ns, src[CAMERA_TOPICS[0]][-1].t_ns
    assert clock_ns == sorted(clock_ns)
    assert clock_ns[0] == first and clock_ns[-1] == last
    span_s = (last - first) / 1e9
    assert 0.5 * 100 * span_s <= len(clock_ns) <= 4 * N_FRAMES + 2 * 100 * span_s
    t_rec = np.array([m.t_ns for m in got[CAMERA_TOPICS[0]]]) / 1e9
    t_src = np.array([m.t_ns for m in src[CAMERA_TOPICS[0]]]) / 1e9
    offset = (t_rec - t_rec[0]) - (t_src - t_src[0])
    assert np.max(np.abs(offset - np.median(offset))) < 0.1, offset


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_record_cli_subprocess(sig: signal.Signals, small_bag: Path, tmp_path: Path) -> None:
    from nav_msgs.msg import OccupancyGrid

    out = tmp_path / "rec"
    ns = f"/cli{os.getpid()}"  # private names: parallel test processes never see each other's topics
    remap = {t: f"{ns}{t}" for t in ALL_TOPICS}
    grid_topic = f"{ns}/latched_grid"
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    proc = None
    try:
        node = rclpy.create_node("player", context=ctx)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        grid_pub = node.create_publisher(OccupancyGrid, grid_topic, latched)
        grid = OccupancyGrid()
        grid.header.frame_id = "map"
        grid.info.width, grid.info.height, grid.info.resolution = 4, 3, 0.1
        grid.data = [0, 100, -1, 50] * 3
        grid_pub.publish(grid)  # before the recorder exists: only a transient-local subscription gets it
        replayer = Replayer(node, small_bag, remap=remap)
        proc = subprocess.Popen(
            [sys.executable, "-m", "seg_perception.cli", "record", "-o", str(out), *remap.values(), grid_topic,
             "--storage", "sqlite3"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        if not replayer.wait_for_subscribers(len(ALL_TOPICS), timeout_s=15.0):
            proc.kill()
            raise AssertionError(f"recorder never subscribed: {proc.communicate()}")
        wait_until(lambda: grid_pub.get_subscription_count() >= 1, 10.0, "the grid subscription")
        stats = replayer.play()  # waits for reliable acknowledgements at the end
        assert stats.total == len(CAMERA_TOPICS) * N_FRAMES + 1
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=15.0)
        assert proc.returncode == 0, stderr
        assert f"recorded {len(CAMERA_TOPICS) * N_FRAMES + 2} messages" in stdout, (stdout, stderr)  # + mount, grid
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.communicate()
        ctx.try_shutdown()

    assert_same_messages_and_timing(small_bag, out, remap)
    topics = read_topics(out)
    assert topics[grid_topic].msgtype == "nav_msgs/msg/OccupancyGrid"
    assert topics[grid_topic].transient_local  # replay will latch it again
    from rclpy.serialization import deserialize_message

    (grid_msg,) = [deserialize_message(m.data, OccupancyGrid) for m in read_messages(out, [grid_topic])]
    assert list(grid_msg.data) == [0, 100, -1, 50] * 3


def test_cli_argument_errors(tmp_path: Path, small_bag: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["record", "-o", str(tmp_path / "r"), "/x:=foo_msgs/msg/Bar"]) == 2
    assert "foo_msgs/msg/Bar is not installed" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    assert cli.main(["record", "-o", str(small_bag), "/x"]) == 2
    assert "exists already" in capsys.readouterr().err
    assert cli.main(["replay", str(tmp_path / "missing")]) == 2
    assert "not a readable rosbag2" in capsys.readouterr().err
    assert cli.main(["replay", str(small_bag), "--topics", "/nope"]) == 2
    assert "has no topic(s) ['/nope']" in capsys.readouterr().err
    assert cli.main(["replay", str(small_bag), "--remap", "/a=/b"]) == 2
    assert "remap must look like" in capsys.readouterr().err
