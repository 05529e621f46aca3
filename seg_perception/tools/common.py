"""Helpers shared by the ``seg-perception`` subcommands: image sizes, ROS 2 parameter files, rclpy contexts and
SIGINT/SIGTERM handling. ``seg_perception.cli`` owns the argument parsing; the tools call these."""

from __future__ import annotations

import argparse
import array
import contextlib
import os
import shutil
import signal
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple, Self

import rclpy
import yaml
from rclpy.node import Node
from rclpy.parameter import parameter_dict_from_yaml_file, parameter_value_to_python
from rclpy.signals import SignalHandlerOptions

from seg_perception.workspace import DEFAULT_NAMESPACE, param_sections
from seg_perception.workspace import parse_overrides as parse_overrides  # the tools' import; defined in workspace


class ImageSize(NamedTuple):
    """An image or network input size in pixels, height first (STYLE.md); written ``WIDTHxHEIGHT`` on the command
    line, as ``ros2``/OpenCV users type it."""

    height: int
    width: int

    @property
    def hw(self) -> tuple[int, int]:
        """``(height, width)``, the order of ``ModelSpec.default_hw`` and ``Segmenter(input_hw=...)``."""
        return self.height, self.width


def parse_size(text: str) -> ImageSize:
    """Parse ``"WIDTHxHEIGHT"`` (e.g. ``"640x480"``; ``X`` too) into an ``ImageSize`` (height, width).

    Raises:
        argparse.ArgumentTypeError: if the text is not two positive integers joined by ``x`` (argparse turns it
            into a usage error naming the option).
    """
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 640x480, got {text!r}") from None
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return ImageSize(height, width)


def _python(value: Any) -> Any:  # noqa: ANN401 - any ROS parameter value
    return list(value) if isinstance(value, (array.array, list, tuple)) else value


def load_node_params(files: Sequence[Path], node: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The parameters a node called ``node`` gets from ROS 2 YAML parameter files, read by rclpy's own parser
    (``rclpy.parameter.parameter_dict_from_yaml_file``): sections ``/**``, ``/**/<node>``, ``/<node>``, ``<node>``
    and the full name ``/seg_perception/<node>`` (``workspace.param_sections``); nested keys become dotted names
    (``fusion.hit_log_odds``), as the node sees them.

    Later files win and ``overrides`` win over files, as with ``--params-file`` and ``-p`` on a node. A file
    without a section for ``node`` contributes nothing.

    Args:
        files: YAML parameter files, in order.
        node: node name without namespace (``segmentation`` / ``costmap``).
        overrides: ``name -> value`` applied last (``parse_overrides``).
    Returns:
        ``name -> value`` with Python values (lists for arrays).
    Raises:
        FileNotFoundError: a file does not exist.
        RuntimeError: a section is not a valid parameter section (rclpy's message).
    """
    params: dict[str, Any] = {}
    for f in files:
        data = yaml.safe_load(Path(f).read_text()) or {}
        if not any(key in data for key in param_sections(node)):
            continue  # rclpy raises for a file without parameters for this node
        targets = [f"/**/{node}", f"/{node}", f"{DEFAULT_NAMESPACE}/{node}"]  # `<node>` is matched via `/<node>`
        found = parameter_dict_from_yaml_file(str(f), use_wildcard=True, target_nodes=targets)
        params.update({name: _python(parameter_value_to_python(p.value)) for name, p in found.items()})
    params.update(overrides or {})
    return params


@contextlib.contextmanager
def ros_node(name: str, domain_id: int | None = None) -> Iterator[Node]:
    """A node in a fresh rclpy context, destroyed and its context shut down on exit.

    ``args=[]``: rcl does not parse ``sys.argv``, where a tool's ``a:=b`` arguments would become global remap rules.
    rclpy installs no signal handlers (``StopFlag`` turns SIGINT/SIGTERM into a flag the tool polls). Executors take
    ``node.context``.

    Args:
        name: node name.
        domain_id: ROS domain (default: ``ROS_DOMAIN_ID``).
    """
    context = rclpy.Context()
    rclpy.init(args=[], context=context, domain_id=domain_id, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        node = rclpy.create_node(name, context=context)
        yield node
    finally:
        if node is not None:
            node.destroy_node()
        context.try_shutdown()


@contextlib.contextmanager
def staged_output(out: Path) -> Iterator[Path]:
    """Build an output folder under a temporary name and give it its name only when the block completes.

    Yields ``.OUT.partial-<id>`` beside ``out`` (not created: a rosbags Writer creates its folder itself). When the
    block returns, that folder is renamed to ``out`` (one ``os.replace``); when it raises, the folder is removed. A
    failed or interrupted run leaves nothing that looks like a result.

    Raises:
        ValueError: ``out`` exists and is not an empty folder (before the block runs).
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not empty: choose a new output folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if out.exists():
        out.rmdir()
    os.replace(work, out)


class StopFlag:
    """SIGINT/SIGTERM -> a flag: ``with StopFlag() as stop: while not stop(): ...``.

    Handlers are installed only in the main thread (elsewhere the flag is only set by ``set()``); the previous
    handlers are restored on exit.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self._old: dict[int, Any] = {}

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()

    def set(self) -> None:
        """Raise the flag (as a signal would)."""
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()

    def __call__(self) -> bool:
        return self.event.is_set()
