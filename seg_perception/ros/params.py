"""Declare a node's parameters from its frozen config dataclasses and read them back (and change them at run time).

Each dataclass field made with ``core.config.param`` becomes a ROS parameter of the same name and type with a
``ParameterDescriptor`` built from the field's metadata (``description`` with the unit, ``read_only``, ``range``).
A node lists its config dataclasses once, as ``core.config.ParamGroup``s (``PARAMETERS`` in each node module);
README's parameter tables are generated from the same list (``seg-perception params``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter

from seg_perception.core.config import ParamGroup, field_default, param


@dataclasses.dataclass(frozen=True)
class LifecycleSettings:
    """The lifecycle parameter every node of the package has (``node_utils.GuardedNode``)."""

    autostart: bool = param(True, "configure and activate at start-up (false: wait for a lifecycle manager, e.g. "
                            "Nav2's lifecycle_manager, or `ros2 lifecycle set`)", read_only=True)  # fmt: skip


#: Declared by every ``GuardedNode`` as ``node.lifecycle``.
LIFECYCLE = ParamGroup("lifecycle", LifecycleSettings)


def _descriptor(name: str, f: dataclasses.Field, read_only: bool) -> ParameterDescriptor:  # type: ignore[type-arg]
    meta: Mapping[str, Any] = f.metadata or {}
    if "description" not in meta:
        raise TypeError(f"parameter {name}: field {f.name} is not declared with core.config.param")
    d = ParameterDescriptor(description=meta["description"], read_only=read_only)
    rng = meta.get("range")
    if rng is not None and not isinstance(f.default, bool):
        lo, hi = rng
        if isinstance(f.default, int):
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
        elif isinstance(f.default, float):
            d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
    return d


def declare_config(node: Node, group: ParamGroup) -> Any:  # noqa: ANN401
    """Declare every field of ``group.cls`` on ``node`` and build a ``group.cls`` from the resulting values.

    Each field becomes parameter ``group.prefix + name`` of the field's type, with a descriptor (description with
    unit, read-only flag, range) from its ``core.config.param`` metadata, the one declaration of that parameter.

    Returns:
        An instance built from the declared (override-aware) parameter values; excluded fields keep their defaults.
    Raises:
        ValueError / TypeError: from ``cls.__post_init__`` when the values are invalid (fail fast at start-up);
            rclpy's InvalidParameterValueException for an override outside the declared range.
    """
    values: dict[str, Any] = {}
    for f in group.fields():
        name = group.prefix + f.name
        value = node.declare_parameter(name, field_default(f), _descriptor(name, f, group.is_read_only(f))).value
        if isinstance(f.default, tuple):
            value = tuple(value)
        if isinstance(f.default, float) and isinstance(value, int):
            value = float(value)
        values[f.name] = value
    return group.cls(**values)


def declare_groups(node: Node, groups: Sequence[ParamGroup]) -> None:
    """``declare_config`` for each group, storing each config as ``node.<group.attr>``."""
    for g in groups:
        setattr(node, g.attr, declare_config(node, g))


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
