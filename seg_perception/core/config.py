"""Dataclass fields that double as ROS parameters, and building configs from parameter dictionaries (no ROS).

A config field made with ``param(default, description, ...)`` carries its ROS ``ParameterDescriptor`` facts in the
field's metadata; ``ros/params.py`` declares it on a node, and ``from_params`` builds the same dataclass from a
YAML parameter dictionary for the offline tools, so nodes and tools read one configuration the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

C = TypeVar("C")


def param(
    default: Any, description: str, read_only: bool = False, lo: float | None = None, hi: float | None = None  # noqa: ANN401
) -> Any:  # noqa: ANN401
    """A dataclass field with a ROS parameter description (unit in brackets), read-only flag and numeric range."""
    meta = {"description": description, "read_only": read_only, "range": (lo, hi) if lo is not None else None}
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: default.copy(), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def from_params(cls: type[C], params: Mapping[str, Any], prefix: str = "", **fixed: Any) -> C:  # noqa: ANN401
    """Build dataclass ``cls`` from a parameter dictionary (as in a ROS 2 YAML ``ros__parameters`` section).

    Keys may be flat (``"fusion.hit"``) or nested (``{"fusion": {"hit": ...}}``); unknown keys are ignored; ints are
    accepted for float fields and lists for tuple fields. ``fixed`` values win over ``params``.

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
