"""Declare a node's parameters from its frozen ``Config`` dataclass and read them back.

Each dataclass field becomes a ROS parameter of the same name and type with a ``ParameterDescriptor`` built from the
field's metadata (``description``, ``read_only``, ``range``); see ``core/segmentation/pipeline.py``'s ``_param``.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter

C = TypeVar("C")


def docstring_attributes(cls: type) -> dict[str, str]:
    """Descriptions of a class's fields from the ``Attributes:`` section of its Google-style docstring.

    A line ``name: text`` (or ``a, b: text``) starts an entry; deeper-indented lines continue it.
    """
    out: dict[str, str] = {}
    lines = inspect.getdoc(cls) or ""
    in_attrs, current = False, []
    for line in lines.splitlines():
        if line.strip() == "Attributes:":
            in_attrs = True
            continue
        if not in_attrs:
            continue
        if line and not line.startswith(" "):
            break
        m = re.match(r"^ {4}([\w, ]+):\s*(.*)$", line)
        if m:
            current = [n.strip() for n in m.group(1).split(",")]
            for n in current:
                out[n] = m.group(2)
        elif line.strip() and current:
            for n in current:
                out[n] += " " + line.strip()
    return out


def _descriptor(f: dataclasses.Field, doc: dict[str, str]) -> ParameterDescriptor:  # type: ignore[type-arg]
    meta: Mapping[str, Any] = f.metadata or {}
    d = ParameterDescriptor(
        description=meta.get("description", doc.get(f.name, "")), read_only=bool(meta.get("read_only", False))
    )
    rng = meta.get("range")
    if rng is not None and rng[0] is not None:
        lo, hi = rng
        if isinstance(f.default, bool):
            pass
        elif isinstance(f.default, int):
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
        elif isinstance(f.default, float):
            d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
    return d


def declare_config(
    node: Node, cls: type[C], prefix: str = "", exclude: tuple[str, ...] = (), read_only: bool | tuple[str, ...] = ()
) -> C:
    """Declare every field of ``cls`` on ``node`` and build a ``cls`` from the resulting values.

    Args:
        node: the node.
        cls: a frozen dataclass whose fields have scalar or list defaults.
        prefix: parameter namespace (``"fusion."``) for nested configs.
        exclude: fields not declared (they keep their dataclass defaults; the caller sets them from elsewhere).
        read_only: field names declared read-only (they need a restart), or True for all of them.
    Returns:
        An instance built from the declared (override-aware) parameter values.
    Raises:
        ValueError / TypeError: from ``cls.__post_init__`` when the values are invalid (fail fast at start-up).
    """
    values: dict[str, Any] = {}
    doc = docstring_attributes(cls)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in exclude:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc,operator]
        if isinstance(default, tuple):
            default = list(default)
        descriptor = _descriptor(f, doc)
        if read_only is True or (read_only and f.name in read_only):
            descriptor.read_only = True
        p = node.declare_parameter(prefix + f.name, default, descriptor)
        value = p.value
        if isinstance(f.default, tuple):
            value = tuple(value)
        if isinstance(f.default, float) and isinstance(value, int):
            value = float(value)
        values[f.name] = value
    return cls(**values)


def enable_dynamic_config(node: Node, get: Callable[[], Any], apply: Callable[[Any], None], prefix: str = "") -> None:
    """Let a node's config fields change at run time (``ros2 param set``), validated by the config itself.

    Parameters named ``prefix + field`` of the dataclass returned by ``get()`` are checked in an on-set callback: the
    candidate config is built with ``dataclasses.replace``, and a ``ValueError``/``TypeError`` from its validation
    rejects the change with that message. Accepted changes are handed to ``apply`` after they are set. Parameters of
    other owners are never rejected (rclpy's rule); read-only ones are refused by rclpy before this runs.
    """

    def changes(params: list[Parameter]) -> dict[str, Any]:
        names = {f.name for f in dataclasses.fields(get())}
        out = {}
        for p in params:
            if p.name.startswith(prefix) and p.name[len(prefix):] in names:
                value = p.value
                current = getattr(get(), p.name[len(prefix):])
                if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
                    value = float(value)
                if isinstance(current, tuple):
                    value = tuple(value)
                out[p.name[len(prefix):]] = value
        return out

    def validate(params: list[Parameter]) -> SetParametersResult:
        try:
            dataclasses.replace(get(), **changes(params))
        except (ValueError, TypeError) as e:
            return SetParametersResult(successful=False, reason=str(e))
        except Exception as e:  # noqa: BLE001 - a parameter request must never stop the node
            return SetParametersResult(successful=False, reason=f"{type(e).__name__}: {e}")
        return SetParametersResult(successful=True)

    def on_set(params: list[Parameter]) -> None:
        new = changes(params)
        if not new:
            return
        try:
            apply(dataclasses.replace(get(), **new))
        except Exception as e:  # noqa: BLE001 - validated already; log instead of stopping the node
            node.get_logger().error(f"applying parameters {new} failed: {type(e).__name__}: {e}")
            return
        node.get_logger().info(f"parameters changed: {new}")

    node.add_on_set_parameters_callback(validate)
    node.add_post_set_parameters_callback(on_set)
