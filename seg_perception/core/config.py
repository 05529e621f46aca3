"""Dataclass fields that double as ROS parameters, and building configs from parameter dictionaries (no ROS).

A config field made with ``param(default, description, ...)`` is the one declaration of a parameter: its default,
description (unit in brackets), read-only flag and numeric range live in the field's metadata. ``ros/params.py``
declares it on a node with a ``ParameterDescriptor`` built from them (``ros2 param describe`` shows it),
``parameter_rows`` / ``markdown_table`` render README's parameter tables from the same facts (a test keeps README
equal to them), and ``from_params`` builds the same dataclass from a YAML parameter dictionary for the offline
tools, so nodes and tools read one configuration the same way.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

C = TypeVar("C")


def param(
    default: Any, description: str, read_only: bool = False, lo: float | None = None, hi: float | None = None  # noqa: ANN401
) -> Any:  # noqa: ANN401
    """A dataclass field with a ROS parameter description (unit in brackets), read-only flag and numeric range.

    Raises:
        ValueError: an empty description, or a numeric field without a range or with its default outside it (a
            declaration error, raised at import).
    """
    if not description.strip():
        raise ValueError("a parameter needs a description")
    numeric = isinstance(default, int | float) and not isinstance(default, bool)
    if numeric and (lo is None or hi is None or not lo <= default <= hi):
        raise ValueError(f"numeric parameter ({description!r}) needs a range [lo, hi] holding its default {default}")
    meta = {"description": description, "read_only": read_only, "range": (lo, hi) if lo is not None else None}
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: default.copy(), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def from_params(cls: type[C], params: Mapping[str, Any], prefix: str = "", **fixed: Any) -> C:  # noqa: ANN401
    """Build dataclass ``cls`` from a parameter dictionary (as in a ROS 2 YAML ``ros__parameters`` section).

    Keys may be flat (``"fusion.hit_log_odds"``) or nested (``{"fusion": {"hit_log_odds": ...}}``); unknown keys
    are ignored; ints are accepted for float fields and lists for tuple fields. ``fixed`` values win over ``params``.

    Raises:
        ValueError / TypeError: from the dataclass's own validation.
    """
    section: dict[str, Any] = {}
    if prefix:
        section.update(params.get(prefix.rstrip("."), {}) or {})
        section.update({k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)})
    else:
        section.update(params)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in fixed:
            kwargs[f.name] = fixed[f.name]
        elif f.name in section:
            value = section[f.name]
            if isinstance(f.default, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if isinstance(f.default, tuple):
                value = tuple(value)
            kwargs[f.name] = value
    return cls(**kwargs)


def require(owner: object, ok: bool, what: str, value: object) -> None:
    """A config's validation step: unless ``ok``, raise ``ValueError("<Config>.<what>, got <value>")``."""
    if not ok:
        raise ValueError(f"{type(owner).__name__}.{what}, got {value!r}")


def check_declared_ranges(config: object) -> None:
    """Every numeric ``param`` field of ``config`` inside its declared ``[lo, hi]`` (NaN is outside).

    rclpy enforces the ranges on a node's parameters; configs built offline (``from_params``) or in code get the
    same rule from here, so a value the node refuses is refused everywhere. A config calls this at the end of its
    ``__post_init__``, after its own checks (which give the more specific messages).

    Raises:
        ValueError: naming the field, the range and the value.
    """
    for f in dataclasses.fields(config):  # type: ignore[arg-type]
        rng = dict(f.metadata or {}).get("range")
        value = getattr(config, f.name)
        if rng is None or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        lo, hi = rng
        if not lo <= value <= hi:
            raise ValueError(f"{type(config).__name__}.{f.name} must be in [{lo}, {hi}] (its declared range), got "
                             f"{value!r}")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class ParamGroup:
    """One config dataclass declared on a node: parameters ``prefix + field`` for every field not in ``exclude``.

    Attributes:
        attr: the node attribute that holds the built config (``cfg``, ``settings``...).
        cls: the frozen dataclass whose fields are made with ``param``.
        prefix: parameter namespace with its dot (``"fusion."``), or "".
        exclude: fields not declared (the node sets them from other parameters).
        read_only: True for all fields, or the names of the read-only ones (besides ``param(read_only=True)``).
    """

    attr: str
    cls: type
    prefix: str = ""
    exclude: tuple[str, ...] = ()
    read_only: bool | tuple[str, ...] = ()

    def fields(self) -> list[dataclasses.Field]:  # type: ignore[type-arg]
        """The declared fields, in declaration order."""
        return [f for f in dataclasses.fields(self.cls) if f.name not in self.exclude]

    def is_read_only(self, f: dataclasses.Field) -> bool:  # type: ignore[type-arg]
        """Whether field ``f`` is declared read-only (its metadata or this group's ``read_only``)."""
        ro, meta = self.read_only, dict(f.metadata or {})
        return bool(meta.get("read_only")) or ro is True or (isinstance(ro, tuple) and f.name in ro)


def field_default(f: dataclasses.Field) -> Any:  # type: ignore[type-arg]  # noqa: ANN401
    """A field's default value (lists for tuple defaults, as ROS parameters hold them)."""
    value = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc,operator]
    return list(value) if isinstance(value, tuple) else value


@dataclasses.dataclass(frozen=True)
class ParamRow:
    """One declared parameter as documented: name, ROS type name, default, range (or None), read-only, text."""

    name: str
    type_name: str
    default: Any
    range: tuple[float, float] | None
    read_only: bool
    description: str


_ROS_TYPE_NAMES = {bool: "bool", int: "int", float: "double", str: "string", list: "array"}


def parameter_rows(groups: Sequence[ParamGroup]) -> list[ParamRow]:
    """Every parameter the groups declare, in declaration order."""
    rows = []
    for g in groups:
        for f in g.fields():
            meta: Mapping[str, Any] = f.metadata or {}
            default = field_default(f)
            type_name = _ROS_TYPE_NAMES[type(default)]
            if isinstance(default, list):  # ROS parameter arrays are typed by their elements
                type_name = _ROS_TYPE_NAMES[type(default[0]) if default else float] + "[]"
            rows.append(ParamRow(g.prefix + f.name, type_name, default, meta.get("range"), g.is_read_only(f),
                                 meta["description"]))  # fmt: skip
    return rows


def yaml_value(value: Any) -> str:  # noqa: ANN401
    """A parameter value as written in a ROS 2 YAML parameter file (``.inf``, ``""``, ``[1.0]``, ``true``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    if isinstance(value, str):
        return f'"{value}"' if value == "" else value
    if isinstance(value, list):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    return repr(value)


def markdown_table(rows: Sequence[ParamRow], shipped: Mapping[str, Any]) -> str:
    """README's parameter table: name, type, default, the value in the shipped YAML where it differs, range,
    when a change takes effect, description."""
    out = ["| parameter | type | default | shipped YAML | range | set at run time | description |",
           "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        rng = "" if r.range is None else f"{yaml_value(r.range[0])} .. {yaml_value(r.range[1])}"
        value = shipped.get(r.name, r.default)
        differs = "" if value == r.default else f"`{yaml_value(value)}`"
        when = "no (restart)" if r.read_only else "yes"
        out.append(f"| `{r.name}` | {r.type_name} | `{yaml_value(r.default)}` | {differs} | {rng} | {when} | "
                   f"{r.description.replace('|', '/')} |")  # fmt: skip
    return "\n".join(out) + "\n"
