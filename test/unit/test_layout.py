"""Package layering read from the source (``ast``, nothing imported): no import circle between the package's
modules, no upward import (core -> ros/tools/rclpy, ros -> tools), and every module within the size limit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "seg_perception"
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module named by an import anywhere in the file (module level or inside a function)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)  # `from pkg import module`
    return names


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {m: {n for n in _imports(p) if n in files and n != m} for m, p in files.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle as a path ``[a, b, ..., a]``, or ``[]`` (depth-first search, colours white/grey/black)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str]:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n) :] + [n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return []

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return []


def test_cycle_finder_finds_a_planted_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_no_import_circle() -> None:
    assert _cycle(_graph()) == []


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("seg_perception.core", ("seg_perception.ros", "seg_perception.tools", "rclpy", "cv_bridge", "*_msgs")),
        ("seg_perception.ros", ("seg_perception.tools",)),
    ],
)
def test_no_upward_import(layer: str, forbidden: tuple[str, ...]) -> None:
    bad = [
        f"{_module_name(p)} imports {n}"
        for p in PACKAGE.rglob("*.py")
        if _module_name(p).startswith(layer)
        for n in sorted(_imports(p))
        if n.startswith(tuple(f for f in forbidden if f[0] != "*"))
        or ("*_msgs" in forbidden and n.split(".")[0].endswith("_msgs"))
    ]
    assert bad == []


@pytest.mark.parametrize("folder", ["core/segmentation", "tools"])
def test_modules_stay_within_the_size_limit(folder: str) -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in (PACKAGE / folder).glob("*.py")}
    assert len(sizes) >= 10
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
