"""``seg-perception``: the package's command line (offline tools, weights, demo).

Each subcommand lives in ``seg_perception.tools.<module>`` and defines ``add_arguments(parser)`` and ``run(args)``;
modules are imported only when their subcommand runs, so ``seg-perception --help`` stays fast. This is the only
argument parser of the tools: ``python -m seg_perception.cli COMMAND ...`` is the same as ``seg-perception COMMAND``
(the tools started as processes, replay / record / bag-from-frames / transport-check, also run as ``python -m
seg_perception.tools.<module>``, which calls ``main`` here). What the tools share (image sizes, parameter files,
rclpy contexts, SIGINT/SIGTERM) is in ``seg_perception.tools.common``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module in seg_perception.tools, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "models": ("weights", "list the registered models and where their weights are"),
    "weights": ("weights", "download or verify model weights (sha256-checked)"),
    "bag-from-frames": ("bag_from_frames", "turn a folder of RGB-D frames (KITTI / 7-Scenes layout) into a rosbag2"),
    "bag-convert": ("bag_convert", "convert ROS 1 bags into a rosbag2 (rosbags' converter)"),
    "replay": ("replay", "publish a rosbag2 with its original timing"),
    "record": ("record", "record topics into a rosbag2"),
    "process": ("process", "run the whole pipeline offline on a bag (no DDS); write an output bag and renders"),
    "demo": ("demo", "end-to-end demo on real KITTI frames: bag, nodes, replay, record, renders, summary"),
    "eval": ("eval", "mIoU / pixel accuracy / Dice of a model on a labelled image folder"),
    "bench": ("bench", "time each pipeline stage on real frames and print the figures"),
    "transport-check": ("transport_check", "do 1920x1080 depth images and semantic clouds cross processes intact?"),
    "quantize": ("quantize", "int8 post-training quantisation of a model with NNCF on real frames (cached)"),
    "stability": ("stability", "label / grid flicker with and without temporal fusion, and map agreement"),
    "projection-check": ("projection_check", "ground projection: drivable cells gained and agreement with depth"),
    "fleet": ("fleet", "process many bags as Ray tasks (local or a cluster), resumable, with a summary table"),
    "soak": ("soak", "both nodes for a long time on a looped bag: memory, CPU and rates sampled, CSV + plot"),
    "params": ("params_doc", "a node's parameters (default, unit, range, shipped value) as README's Markdown table"),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per available command."""
    parser = argparse.ArgumentParser(prog="seg-perception", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module, _command=name)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``seg-perception``."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    if argv[0] not in COMMANDS:
        parser.error(f"unknown command {argv[0]!r}")  # exits with status 2
    name = argv[0]
    module = importlib.import_module(f"seg_perception.tools.{COMMANDS[name][0]}")
    sub = argparse.ArgumentParser(prog=f"seg-perception {name}", description=COMMANDS[name][1])
    if name == "models":
        sub.set_defaults(weights_command="list")
        module.add_list_arguments(sub)
    else:
        module.add_arguments(sub)
    args = sub.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except (ValueError, KeyError, FileNotFoundError, RuntimeError) as e:  # WeightsError is a RuntimeError
        print(f"seg-perception {name}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
