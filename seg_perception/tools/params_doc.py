"""``seg-perception params NODE``: a node's parameter table, from the parameters' one declaration.

Every parameter of the package's nodes is a dataclass field made with ``core.config.param`` (default, description
with unit, range, read-only); each node module lists its config dataclasses as ``PARAMETERS``. This prints them as
the Markdown table README.md carries (``test/unit/test_parameter_docs.py`` keeps README equal to this output), with
the value ``config/seg_perception.yaml`` ships where it differs from the declared default.
"""

from __future__ import annotations

import argparse
from types import ModuleType
from typing import Any

from seg_perception.core.config import ParamRow, markdown_table, parameter_rows
from seg_perception.resources import config_path
from seg_perception.ros import costmap_node, segmentation_node
from seg_perception.ros.params import LIFECYCLE
from seg_perception.tools.common import load_node_params

#: Node name (as in the YAML sections) -> the module that declares its parameters.
NODES: dict[str, ModuleType] = {"segmentation": segmentation_node, "costmap": costmap_node}
#: Parameters a node has that no dataclass of ours declares (their owners document them).
FOREIGN = ("use_sim_time", "start_type_description_service", "diagnostic_updater.period",
           "diagnostic_updater.use_fqn")  # fmt: skip


def node_rows(node: str) -> list[ParamRow]:
    """The parameters ``node`` (``segmentation`` | ``costmap``) declares from its dataclasses, in order.

    Raises:
        KeyError: an unknown node name.
    """
    return parameter_rows((LIFECYCLE, *NODES[node].PARAMETERS))


def shipped_values(node: str) -> dict[str, Any]:
    """``name -> value`` that ``config/seg_perception.yaml`` sets for ``node`` (flattened, as the node sees them)."""
    return load_node_params([config_path("seg_perception.yaml")], node)


def parameter_table(node: str) -> str:
    """README's Markdown parameter table of ``node``."""
    return markdown_table(node_rows(node), shipped_values(node))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``seg-perception params``."""
    parser.add_argument("node", choices=sorted(NODES), help="the node whose parameters to print")


def run(args: argparse.Namespace) -> int:
    """Print the table."""
    print(parameter_table(args.node), end="")
    return 0
