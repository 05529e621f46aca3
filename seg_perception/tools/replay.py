"""Replay a rosbag2 (MCAP or sqlite3) with its original timing, publishing the stored CDR bytes with rclpy.

Usage::

    seg-perception replay BAG [--rate 1.0] [--loop] [--clock] [--topics T [T ...]] [--remap FROM:=TO ...]
        [--start-delay-s S] [--wait-for-subscribers N] [--wait-timeout-s S]
    python -m seg_perception.tools.replay ...   (same arguments)

Timing: message ``i`` with bag time ``t_i`` (the bag's receive time, ns) is published at wall time
``t0 + (t_i - t_bag0) / rate``, where ``t_bag0`` is the first selected message's time and ``t0`` the
monotonic time playback started (each ``--loop`` pass restarts ``t0``). Messages are never dropped to catch
up: a late message is published at once and counted in the lateness statistics.

``--clock`` publishes ``rosgraph_msgs/Clock`` on ``/clock`` with the bag time ``t_bag0 + (now - t0) * rate``
at a steady ~100 Hz, and with exactly ``t_i`` just before each message, so nodes with ``use_sim_time`` see
the bag's time. During ``--start-delay-s`` the clock holds ``t_bag0``.

QoS: every topic is published reliable, keep-last, depth 10, volatile. Reliable publishers match both
reliable and best-effort (``qos_profile_sensor_data``) subscribers, and depth 10 absorbs short stalls. A topic
whose recorded publishers were all transient-local (latched, e.g. Nav2 grids) is replayed reliable +
transient-local with depth 1, so late subscribers still receive the last message. ``/tf_static`` is always
replayed transient-local (depth 100, as tf2's static listener subscribes), whatever the bag's offered QoS: a
``TransformListener`` that joins late still gets the static transforms. ``/clock`` is reliable,
keep-last 10 (compatible with rclpy's best-effort clock subscription).

``--wait-for-subscribers N`` waits (at most ``--wait-timeout-s``) until the replayed topics have at least
``N`` matched subscriptions in total (summed over topics), then starts; on timeout it warns and starts anyway.

The DDS-free core (``Schedule``, ``play``) is ``tools.playback``, unit-tested with a fake clock; bags are read by
``seg_perception.bag``; ``Replayer`` adds the rclpy publishers.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock

from seg_perception import cli
from seg_perception.bag import BagMessage, BagTopic, read_messages, read_topics, resolve_message_class
from seg_perception.tools.common import StopFlag, ros_node
from seg_perception.tools.playback import CLOCK_PERIOD_S, PlayStats, play

__all__ = ["Replayer", "add_arguments", "parse_remaps", "run"]

STATIC_TF_DEPTH = 100
"""Depth of the latched ``/tf_static`` publisher (tf2_ros's static listener keeps 100)."""

def parse_remaps(items: Sequence[str]) -> dict[str, str]:
    """Parse ``from:=to`` pairs.

    Raises:
        ValueError: for an item without ``:=`` or with an empty side.
    """
    remaps: dict[str, str] = {}
    for item in items:
        src, sep, dst = item.partition(":=")
        if not sep or not src or not dst:
            raise ValueError(f"remap must look like /from:=/to, got {item!r}")
        remaps[src] = dst
    return remaps



# --------------------------------------------------------------------------------------------------------------
# ROS shell
# --------------------------------------------------------------------------------------------------------------


class Replayer:
    """Publishers for a bag's topics on an rclpy node, plus ``play`` wired to them.

    Publishes (see the module docstring for QoS): every selected bag topic (renamed by ``remap``) with its
    stored type, and ``clock_topic`` (``rosgraph_msgs/Clock``, default ``/clock``) when ``clock=True``.
    Topics whose message package is not installed are skipped with a warning (``skipped``).
    """

    def __init__(
        self,
        node: Any,
        bag: str | Path,
        *,
        topics: Collection[str] | None = None,
        remap: Mapping[str, str] | None = None,
        clock: bool = False,
        clock_topic: str = "/clock",
        depth: int = 10,
    ) -> None:
        self.node = node
        self.bag = Path(bag)
        remap = dict(remap or {})
        all_topics = read_topics(self.bag)
        if topics:
            unknown = sorted(set(topics) - set(all_topics))
            if unknown:
                raise ValueError(f"{self.bag} has no topic(s) {unknown}; it has {sorted(all_topics)}")
            selected = [all_topics[t] for t in all_topics if t in set(topics)]
        else:
            selected = list(all_topics.values())
        self.topics: dict[str, BagTopic] = {}
        self.publishers: dict[str, Any] = {}
        self.output_names: dict[str, str] = {}
        self.skipped: dict[str, str] = {}
        for bt in selected:
            try:
                cls = resolve_message_class(bt.msgtype)
            except ValueError as exc:
                self.skipped[bt.name] = str(exc)
                node.get_logger().warning(f"skipping {bt.name}: {exc}")
                continue
            static_tf = bt.name == "/tf_static"  # latched whatever the bag says, as tf2 publishes and expects it
            latched = bt.transient_local or static_tf
            qos = QoSProfile(
                history=HistoryPolicy.KEEP_LAST,
                depth=STATIC_TF_DEPTH if static_tf else 1 if latched else depth,
                reliability=ReliabilityPolicy.RELIABLE,
                durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
            )
            out = remap.get(bt.name, bt.name)
            self.topics[bt.name] = bt
            self.output_names[bt.name] = out
            self.publishers[bt.name] = node.create_publisher(cls, out, qos)
        if not self.publishers:
            raise ValueError(f"{self.bag}: no topic to replay (skipped: {self.skipped or 'none'})")
        self.clock_publisher = None
        if clock:
            self._Clock = Clock
            self.clock_publisher = node.create_publisher(
                Clock, clock_topic, QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
            )

    def subscription_count(self) -> int:
        """Matched subscriptions summed over the replayed topics (``/clock`` excluded)."""
        return sum(p.get_subscription_count() for p in self.publishers.values())

    def wait_for_subscribers(
        self, count: int, timeout_s: float, should_stop: Callable[[], bool] = lambda: False
    ) -> bool:
        """Wait until ``subscription_count() >= count``; False on timeout or stop. Polls every 20 ms."""
        deadline = time.monotonic() + timeout_s
        while self.subscription_count() < count:
            if should_stop() or time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def publish_clock(self, t_ns: int) -> None:
        """Publish ``/clock`` = ``t_ns`` (no-op without ``clock=True``)."""
        if self.clock_publisher is None:
            return
        msg = self._Clock()
        msg.clock.sec, msg.clock.nanosec = divmod(int(t_ns), 1_000_000_000)
        self.clock_publisher.publish(msg)

    def first_time_ns(self) -> int | None:
        """Bag time of the first selected message [ns], or None for an empty selection."""
        for msg in read_messages(self.bag, self.publishers.keys()):
            return msg.t_ns
        return None

    def hold_clock(self, duration_s: float, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Wait ``duration_s``, publishing ``/clock`` = first message time at ~100 Hz when clock is on."""
        t0 = self.first_time_ns()
        deadline = time.monotonic() + duration_s
        while not should_stop():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if t0 is not None:
                self.publish_clock(t0)
            time.sleep(min(remaining, CLOCK_PERIOD_S))

    def play(
        self, *, rate: float = 1.0, loop: bool = False, should_stop: Callable[[], bool] = lambda: False,
        max_passes: int = 0,
    ) -> PlayStats:
        """Play the selected topics (blocking); then wait up to 2 s for reliable acknowledgements."""
        def publish(msg: BagMessage) -> None:
            self.publishers[msg.topic].publish(msg.data)

        stats = play(
            lambda: read_messages(self.bag, self.publishers.keys()),
            publish,
            rate=rate,
            loop=loop,
            clock=self.publish_clock if self.clock_publisher is not None else None,
            should_stop=should_stop,
            max_passes=max_passes,
        )
        deadline = time.monotonic() + 2.0
        for pub in self.publishers.values():
            remaining = max(0.0, deadline - time.monotonic())
            pub.wait_for_all_acked(Duration(nanoseconds=int(remaining * 1e9)))
        return stats


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``replay`` arguments to ``parser``."""
    parser.add_argument("bag", type=Path, help="rosbag2 folder (mcap or sqlite3)")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1.0)")
    parser.add_argument("--loop", action="store_true", help="repeat until interrupted")
    parser.add_argument("--loops", type=int, default=0, metavar="N",
                        help="play N passes (implies --loop; each pass republishes the original stamps)")
    parser.add_argument("--clock", action="store_true", help="publish /clock (rosgraph_msgs/Clock) with the bag time")
    parser.add_argument("--topics", nargs="+", default=None, metavar="TOPIC", help="replay only these bag topics")
    parser.add_argument("--remap", nargs="+", default=[], metavar="FROM:=TO", help="rename topics on output")
    parser.add_argument("--start-delay-s", type=float, default=0.0, help="wait this long before the first message [s]")
    parser.add_argument("--wait-for-subscribers", type=int, default=0, metavar="N",
                        help="wait until the topics have N matched subscriptions in total (default 0: don't wait)")
    parser.add_argument("--wait-timeout-s", type=float, default=10.0,
                        help="longest wait for --wait-for-subscribers [s] (default 10); then start anyway")
    parser.add_argument("--node-name", default="seg_perception_replay", help="ROS node name")


def run(args: argparse.Namespace, should_stop: Callable[[], bool] | None = None) -> int:
    """Run ``replay`` with parsed arguments; returns the exit code (0 also after Ctrl-C / SIGTERM).

    ``should_stop`` (optional) is polled in addition to the SIGINT/SIGTERM flag (for in-process use).
    """
    try:
        if not args.rate > 0:
            raise ValueError(f"--rate must be > 0, got {args.rate}")
        remap = parse_remaps(args.remap)
        read_topics(args.bag)
    except ValueError as exc:
        print(f"replay: error: {exc}", file=sys.stderr)
        return 2
    with StopFlag() as flag, ros_node(args.node_name) as node:
        extra = should_stop

        def stop() -> bool:
            return flag() or (extra is not None and extra())

        try:
            replayer = Replayer(node, args.bag, topics=args.topics, remap=remap, clock=args.clock)
        except ValueError as exc:
            print(f"replay: error: {exc}", file=sys.stderr)
            return 2
        wanted = args.wait_for_subscribers
        if wanted > 0 and not replayer.wait_for_subscribers(wanted, args.wait_timeout_s, stop):
            if stop():
                print("replay: interrupted while waiting for subscribers")
                return 0
            print(
                f"replay: warning: {replayer.subscription_count()} of {wanted} "
                f"subscriptions after {args.wait_timeout_s:g} s; starting anyway",
                file=sys.stderr,
            )
        if args.start_delay_s > 0:
            replayer.hold_clock(args.start_delay_s, stop)
        stats = replayer.play(rate=args.rate, loop=args.loop or args.loops > 0, should_stop=stop,
                              max_passes=args.loops)
        print(stats.line())
        return 0


if __name__ == "__main__":
    sys.exit(cli.main(["replay", *sys.argv[1:]]))
