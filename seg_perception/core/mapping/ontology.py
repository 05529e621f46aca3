"""Semantic ontologies: each class's navigation role, optional obstacle cost and inflation radius (no ROS imports).

An ontology is a YAML file (``config/ontology/<name>.yaml``; schema in ``Ontology``). Trusted configuration (a node
parameter, a CLI option) may name a file path; untrusted input (a message) only a package ontology *name*
(``find_package_ontology``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from seg_perception.core.mapping.costs import LETHAL_OBSTACLE
from seg_perception.core.segmentation.class_info import check_ontology_name


# --- Ontology ---------------------------------------------------------------------------------------------------------
class Role(IntEnum):
    """What a semantic class means for driving (the ``role`` of a class in the ontology YAML).

    IGNORE: never evidence of anything (sky; its depth is meaningless). Such points leave cells unknown.
    DRIVABLE: a driving surface (road). Near-ground points are drivable; see ``classify_points`` for the band.
    OBSTACLE: anything physical that is not a driving surface (car, person, building, and also sidewalk/terrain for a
        road vehicle). Near the ground it is "seen, not drivable"; in the obstacle height band it is an obstacle.
    GROUND_IF_FLAT: a catch-all class with no surface meaning (VOC ``background``): drivable only where the geometry
        says flat ground (|h| <= drivable_tolerance_m), otherwise decided by height like any other class.
    """

    IGNORE = 0
    DRIVABLE = 1
    OBSTACLE = 2
    GROUND_IF_FLAT = 3


class PointRole(IntEnum):
    """Per-point outcome of ``classify_points`` (class role combined with the height band)."""

    IGNORE = 0  # invalid, low confidence, out of range, ignore class, or above max_obstacle_height
    DRIVABLE = 1  # evidence that the cell is drivable ground
    OBSTACLE = 2  # in the obstacle height band: lethal in the obstacle grid
    NOT_DRIVABLE = 3  # seen at ground level but not a driving surface (sidewalk, curb, ditch)


_ROLE_NAMES = {r.name.lower(): r for r in Role}
_RULE_KEYS = {"role", "cost", "inflation_radius"}


def class_roles(labels: np.ndarray, roles_lut: np.ndarray) -> np.ndarray:
    """The ``Role`` of each class id through a (C,) uint8 lookup (``Ontology.roles_lut``).

    Args:
        labels: integer class ids, any shape.
        roles_lut: (C,) ``Role`` per class id.
    Returns:
        (N,) uint8 roles of the flattened labels; ids outside [0, C) (the ignore label 255, negative ids) are IGNORE.
    """
    lut = np.asarray(roles_lut, dtype=np.uint8).reshape(-1)
    lab = np.asarray(labels).reshape(-1)
    if lab.dtype == np.uint8:  # one gather through a 256-entry table
        full = np.full(256, Role.IGNORE, np.uint8)
        full[: min(lut.size, 256)] = lut[:256]
        return full[lab]
    out = np.full(lab.shape, np.uint8(Role.IGNORE))
    ok = (lab >= 0) & (lab < lut.size)
    out[ok] = lut[lab[ok]]
    return out


@dataclass(frozen=True)
class ClassRule:
    """How one semantic class enters the costmap.

    Attributes:
        role: the class role.
        cost: optional uint8 cost (0..254) of an obstacle cell of this class; None = LETHAL_OBSTACLE. Applied by
            ``build_grids`` through ``Ontology.cost_lut`` (see ``inflate`` for how it caps the inflation).
        inflation_radius: optional per-class inflation radius [m] (>= 0); None = ``CostmapConfig.inflation_radius``.
            Applied by ``build_grids`` through ``Ontology.inflation_lut``.
    """

    role: Role
    cost: int | None = None
    inflation_radius: float | None = None


@dataclass(frozen=True)
class Ontology:
    """Roles of a model's classes, loaded from ``config/ontology/<name>.yaml``.

    YAML schema::

        name: cityscapes            # optional, informative
        default: obstacle           # role of any category the file does not list (omit to require every class)
        classes:
          road: drivable            # short form: just the role
          sky: ignore
          person: {role: obstacle, cost: 254, inflation_radius: 0.8}   # long form: role + optional cost / radius

    Roles: ``drivable``, ``obstacle``, ``ignore``, ``ground_if_flat`` (see ``Role``).

    Attributes:
        name: ontology name.
        rules: class name -> ClassRule for every class listed in the file.
        default: ClassRule for categories the file does not list, or None if every category must be listed.
    """

    name: str
    rules: Mapping[str, ClassRule]
    default: ClassRule | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], name: str = "") -> Ontology:
        """Parse and validate the YAML structure (see the class docstring).

        Raises:
            ValueError: on a missing/ill-typed ``classes`` mapping, an unknown role, an unknown key, a cost outside
                0..254 or a negative/non-finite inflation radius; the message names the class and the bad value.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"ontology {name!r}: expected a mapping at top level, got {type(data).__name__}")
        unknown_top = set(data) - {"name", "default", "classes"}
        if unknown_top:
            raise ValueError(f"ontology {name!r}: unknown top-level keys {sorted(unknown_top)}; "
                             "expected name, default, classes")
        name = str(data.get("name", name))
        classes = data.get("classes")
        if not isinstance(classes, Mapping) or not classes:
            raise ValueError(f"ontology {name!r}: 'classes' must be a non-empty mapping of class name -> role, "
                             f"got {classes!r}")
        rules = {str(k): _parse_rule(v, f"ontology {name!r} class {k!r}") for k, v in classes.items()}
        default = None if data.get("default") is None else _parse_rule(data["default"], f"ontology {name!r} default")
        return cls(name=name, rules=rules, default=default)

    def check_categories(self, categories: Sequence[str]) -> None:
        """Raise ValueError if the file names classes that ``categories`` lacks, or misses some without a default."""
        cats = list(categories)
        if len(set(cats)) != len(cats):
            dup = sorted({c for c in cats if cats.count(c) > 1})
            raise ValueError(f"ontology {self.name!r}: duplicate category names {dup}")
        unknown = [k for k in self.rules if k not in set(cats)]
        if unknown:
            raise ValueError(
                f"ontology {self.name!r}: unknown class names {unknown}; the model's categories are {cats}"
            )
        missing = [c for c in cats if c not in self.rules]
        if missing and self.default is None:
            raise ValueError(f"ontology {self.name!r}: no role for classes {missing} and no 'default' role")

    def rule(self, name: str) -> ClassRule:
        """The rule of one class (the default rule when the file does not list it).

        Raises:
            KeyError: if the class is not listed and there is no default.
        """
        if name in self.rules:
            return self.rules[name]
        if self.default is None:
            raise KeyError(f"ontology {self.name!r} has no rule for {name!r} and no default")
        return self.default

    def roles_lut(self, categories: Sequence[str]) -> np.ndarray:
        """Role lookup table indexed by class id.

        Args:
            categories: class names in model output order (class id i = ``categories[i]``).
        Returns:
            (C,) uint8 ``Role`` values, ``C = len(categories)``.
        Raises:
            ValueError: as ``check_categories``.
        """
        self.check_categories(categories)
        return np.array([int(self.rule(c).role) for c in categories], dtype=np.uint8)

    def cost_lut(self, categories: Sequence[str], default: int = LETHAL_OBSTACLE) -> np.ndarray:
        """Obstacle cost lookup table indexed by class id (for ``build_grids(cost_lut=...)``).

        Args:
            categories: class names in model output order.
            default: cost of classes whose rule has no ``cost`` (0..254; default LETHAL_OBSTACLE).
        Returns:
            (C,) uint8 Nav2 costs.
        Raises:
            ValueError: as ``check_categories``, or ``default`` outside 0..254.
        """
        if not 0 <= int(default) <= LETHAL_OBSTACLE:
            raise ValueError(f"default cost must be in 0..{LETHAL_OBSTACLE}, got {default}")
        self.check_categories(categories)
        costs = [self.rule(c).cost for c in categories]
        return np.array([int(default) if v is None else v for v in costs], dtype=np.uint8)

    def inflation_lut(self, categories: Sequence[str], default: float) -> np.ndarray:
        """Inflation radius lookup table indexed by class id (for ``build_grids(inflation_lut=...)``).

        Args:
            categories: class names in model output order.
            default: radius [m] of classes whose rule has no ``inflation_radius`` (``CostmapConfig.inflation_radius``).
        Returns:
            (C,) float64 radii [m].
        Raises:
            ValueError: as ``check_categories``, or ``default`` negative / non-finite.
        """
        if not (math.isfinite(default) and default >= 0):
            raise ValueError(f"default inflation radius must be a finite number >= 0 [m], got {default}")
        self.check_categories(categories)
        radii = [self.rule(c).inflation_radius for c in categories]
        return np.array([float(default) if v is None else v for v in radii], dtype=np.float64)


def _parse_rule(value: Any, where: str) -> ClassRule:
    if isinstance(value, str):
        value = {"role": value}
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a role name or a mapping, got {value!r}")
    extra = set(value) - _RULE_KEYS
    if extra:
        raise ValueError(f"{where}: unknown keys {sorted(extra)}; expected a subset of {sorted(_RULE_KEYS)}")
    role_name = value.get("role")
    if not isinstance(role_name, str) or role_name.lower() not in _ROLE_NAMES:
        raise ValueError(f"{where}: role must be one of {sorted(_ROLE_NAMES)}, got {role_name!r}")
    cost = value.get("cost")
    if cost is not None and (isinstance(cost, bool) or not isinstance(cost, int) or not 0 <= cost <= LETHAL_OBSTACLE):
        raise ValueError(f"{where}: cost must be an integer in 0..{LETHAL_OBSTACLE}, got {cost!r}")
    radius = value.get("inflation_radius")
    if radius is not None:
        if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not (
            math.isfinite(radius) and radius >= 0
        ):
            raise ValueError(f"{where}: inflation_radius must be a finite number >= 0 [m], got {radius!r}")
        radius = float(radius)
    return ClassRule(role=_ROLE_NAMES[role_name.lower()], cost=cost, inflation_radius=radius)


def ontology_search_dirs() -> list[Path]:
    """Folders searched for ``<name>.yaml`` by ``load_ontology``, in order.

    ``$SEG_PERCEPTION_ONTOLOGY_DIR`` (if set), then ``config/ontology`` in each of ``resources.share_dirs()`` (the
    source tree, the pip install's ``share/seg_perception``, the colcon install).
    """
    from seg_perception.resources import share_dirs

    env = os.environ.get("SEG_PERCEPTION_ONTOLOGY_DIR")
    return ([Path(env)] if env else []) + [d / "config" / "ontology" for d in share_dirs()]


def load_ontology(path_or_name: str | os.PathLike[str], categories: Sequence[str]) -> Ontology:
    """Load an ontology YAML named by trusted configuration (a node parameter, a CLI option) and check it.

    Args:
        path_or_name: a path to a YAML file, or a bare name (``"cityscapes"``, ``"camvid"``, ``"voc"``) looked up as
            ``<name>.yaml`` in ``ontology_search_dirs()``.
        categories: the model's class names (``ModelSpec.categories``).
    Returns:
        The validated Ontology; ``ontology.roles_lut(categories)`` gives the (C,) uint8 lookup.
    Raises:
        FileNotFoundError: if no file is found (the message lists the folders searched).
        ValueError: on a malformed file, class names not in ``categories`` (named in the message), or classes missing
            from the file when it has no ``default``.
    """
    onto = open_ontology(path_or_name)
    onto.check_categories(categories)
    return onto


def open_ontology(path_or_name: str | os.PathLike[str]) -> Ontology:
    """Read an ontology named by trusted configuration: a YAML path, or a package ontology name.

    Raises:
        FileNotFoundError: no such file or package ontology. ValueError: a malformed file or an invalid name.
    """
    p = Path(path_or_name)
    if not (p.suffix in (".yaml", ".yml") or p.exists()):
        p = find_package_ontology(str(path_or_name))
    if not p.is_file():
        raise FileNotFoundError(f"ontology file {str(p)!r} does not exist")
    return read_ontology_file(p)


def find_package_ontology(name: str) -> Path:
    """The file of a package ontology *name* (untrusted input, e.g. from a message): only ``<dir>/<name>.yaml`` in
    ``ontology_search_dirs()`` is ever considered, and only for names matching ``[a-z0-9_]{1,64}``.

    Raises:
        ValueError: if ``name`` is not such a name (a path, a long or odd string).
        FileNotFoundError: if no search folder has it (the message lists the places tried).
    """
    check_ontology_name(name)
    tried = [d / f"{name}.yaml" for d in ontology_search_dirs()]
    found = next((t for t in tried if t.is_file()), None)
    if found is None:
        raise FileNotFoundError(f"ontology {name!r} not found; tried {[str(t) for t in tried]}")
    return found


def read_ontology_file(path: Path) -> Ontology:
    """Parse one ontology YAML file (see ``Ontology.from_dict``).

    Raises:
        ValueError: on YAML syntax errors or an invalid structure (the message names the file).
    """
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise ValueError(f"ontology file {str(path)!r} is not valid YAML: {e}") from None
    return Ontology.from_dict(data, name=path.stem)
