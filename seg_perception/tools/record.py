"""``seg-perception record``: record ROS 2 topics into a rosbag2 (MCAP or sqlite3); the recorder is
``tools.recorder.Recorder`` (topic discovery, QoS adaptation, storage).

Usage::

    seg-perception record -o BAG TOPIC [TOPIC ...] [--duration-s S] [--max-messages N]
        [--storage mcap|sqlite3] [--discovery-timeout-s S]
    python -m seg_perception.tools.record ...   (same arguments)

Stops on ``--duration-s``, ``--max-messages`` (total over all topics; exactly N are written), SIGINT or SIGTERM,
and always closes the bag (metadata.yaml written) before exiting with code 0. After a signal or the duration it
keeps taking already-delivered messages until 50 ms pass without one (at most 0.5 s), so messages a publisher
saw acknowledged are not lost.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rclpy.executors import SingleThreadedExecutor

from seg_perception import cli
from seg_perception.tools.common import StopFlag, ros_node
from seg_perception.tools.recorder import Recorder, parse_topic_args

__all__ = ["add_arguments", "run"]


def _drain(executor: Any, recorder: Recorder, quiet_s: float = 0.05, max_s: float = 0.5) -> None:
    """Take messages already delivered to the subscriptions before closing (stop after ``quiet_s`` without a
    message or ``max_s`` in total), so a stop right after a publisher finished loses nothing it had acked."""
    deadline = time.monotonic() + max_s
    last_total, last_change = recorder.total, time.monotonic()
    while not recorder.done:
        now = time.monotonic()
        if now >= deadline or now - last_change >= quiet_s:
            break
        executor.spin_once(timeout_sec=0.01)
        if recorder.total != last_total:
            last_total, last_change = recorder.total, time.monotonic()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``record`` arguments to ``parser``."""
    parser.add_argument("topics", nargs="+", metavar="TOPIC", help="topic name, or name:=pkg/msg/Type")
    parser.add_argument("-o", "--output", type=Path, required=True, help="bag folder to create (must not exist)")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="rosbag2 storage plugin")
    parser.add_argument("--duration-s", type=float, default=None, help="stop after this long [s]")
    parser.add_argument("--max-messages", type=int, default=None, help="stop after N messages (all topics)")
    parser.add_argument("--discovery-timeout-s", type=float, default=10.0,
                        help="report topics without publishers after this long [s] (default 10)")
    parser.add_argument("--node-name", default="seg_perception_record", help="ROS node name")


def run(args: argparse.Namespace, should_stop: Callable[[], bool] | None = None) -> int:
    """Run ``record`` with parsed arguments; exit code 0 after a clean stop (also SIGINT/SIGTERM), 1 when the
    bag has writer errors, 2 for bad arguments."""
    try:
        requests = parse_topic_args(args.topics)
        if args.duration_s is not None and args.duration_s <= 0:
            raise ValueError(f"--duration-s must be > 0, got {args.duration_s}")
        if args.output.exists():
            raise ValueError(f"{args.output} exists already; choose a new path")
    except ValueError as exc:
        print(f"record: error: {exc}", file=sys.stderr)
        return 2
    recorder: Recorder | None = None
    with StopFlag() as flag, ros_node(args.node_name) as node:
        try:
            recorder = Recorder(
                node, args.output, requests, storage=args.storage, max_messages=args.max_messages,
                discovery_timeout_s=args.discovery_timeout_s,
            )
        except ValueError as exc:
            print(f"record: error: {exc}", file=sys.stderr)
            return 2
        executor = SingleThreadedExecutor(context=node.context)
        executor.add_node(node)
        try:
            deadline = None if args.duration_s is None else time.monotonic() + args.duration_s
            while not flag() and not recorder.done:
                if should_stop is not None and should_stop():
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
                executor.spin_once(timeout_sec=0.05)
            if not recorder.done:
                _drain(executor, recorder)
            summary = recorder.close()
            recorder = None
            print(summary.line(), flush=True)
            return 1 if summary.errors else 0
        finally:
            if recorder is not None:  # an exception escaped: still close the bag
                print(recorder.close().line(), flush=True)
            executor.shutdown(timeout_sec=1.0)


if __name__ == "__main__":
    sys.exit(cli.main(["record", *sys.argv[1:]]))
