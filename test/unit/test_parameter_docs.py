"""One declaration per parameter: README's tables, the shipped YAML files and the declared defaults agree.

Every parameter of both nodes is a ``core.config.param`` field; README.md carries the table ``seg-perception
params NODE`` prints from those declarations, and every YAML file in config/ may only set declared parameters, with
values of the declared type inside the declared range that the configs accept.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from seg_perception.core.config import ParamRow, from_params
from seg_perception.core.mapping.pipeline import build_costmap_pipeline
from seg_perception.core.segmentation.pipeline import SegmentationConfig
from seg_perception.tools.common import load_node_params
from seg_perception.tools.params_doc import FOREIGN, NODES, node_rows, parameter_table

REPO = Path(__file__).resolve().parents[2]
YAML_FILES = sorted((REPO / "config").glob("*.yaml"))
NODE_NAMES = sorted(NODES)


def _readme_table(node: str) -> str:
    text = (REPO / "README.md").read_text()
    m = re.search(rf"<!-- parameters: {node} .*?-->\n(.*?)<!-- end parameters: {node} -->", text, re.S)
    assert m, f"README.md has no generated parameter table for {node}"
    return m.group(1)


@pytest.mark.parametrize("node", NODE_NAMES)
def test_readme_table_is_the_declarations(node: str) -> None:
    assert _readme_table(node) == parameter_table(node), f"README.md is stale: paste `seg-perception params {node}`"


def _matches(row: ParamRow, value: object) -> bool:
    if row.type_name == "bool":
        return isinstance(value, bool)
    if row.type_name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if row.type_name == "double":
        return isinstance(value, float | int) and not isinstance(value, bool)
    if row.type_name == "string":
        return isinstance(value, str)
    return isinstance(value, list)


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("node", NODE_NAMES)
def test_yaml_sets_only_declared_parameters_in_range(path: Path, node: str) -> None:
    declared = {r.name: r for r in node_rows(node)}
    values = load_node_params([path], node)
    for name, value in values.items():
        if name in FOREIGN:
            continue
        assert name in declared, f"{path.name}: {node} has no parameter {name!r}"
        row = declared[name]
        assert _matches(row, value), f"{path.name}: {name}={value!r} is not a {row.type_name}"
        if row.range is not None:
            lo, hi = row.range
            assert lo <= value <= hi, f"{path.name}: {name}={value!r} outside [{lo}, {hi}]"
    # and the configs accept the values together (cross-field rules: min < max, grid size...)
    if node == "segmentation":
        from_params(SegmentationConfig, values)
    else:
        build_costmap_pipeline(values)


def test_numeric_parameters_have_ranges_and_units_match_names() -> None:
    units = {"_m": "[m", "_s": "[s]", "_deg": "[deg]", "_hz": "[Hz]", "_log_odds": "[log-odds]"}
    for node in NODE_NAMES:
        for row in node_rows(node):
            if row.type_name in ("int", "double"):
                assert row.range is not None and row.range[0] <= row.default <= row.range[1], row
            for suffix, unit in units.items():
                if row.name.endswith(suffix):
                    assert unit in row.description, f"{row.name}: description lacks {unit}]: {row.description!r}"


@pytest.mark.parametrize(
    ("node", "name", "value"),
    [("costmap", "inflation_radius", 150.0), ("costmap", "fusion.hit_log_odds", 500.0), ("costmap", "ground.seed", -1),
     ("costmap", "ground_projection.side_margin_m", 3.0), ("segmentation", "overlay_alpha", 1.5)],
)  # fmt: skip
def test_a_value_outside_the_declared_range_is_refused_offline_too(node: str, name: str, value: float) -> None:
    """rclpy refuses such a value on the node; the configs built offline (``from_params``) refuse it the same way."""
    row = {r.name: r for r in node_rows(node)}[name]
    assert row.range is not None and not row.range[0] <= value <= row.range[1]
    with pytest.raises(ValueError, match=rf"{name.split('.')[-1]} must be"):
        if node == "segmentation":
            from_params(SegmentationConfig, {name: value})
        else:
            build_costmap_pipeline({name: value})
