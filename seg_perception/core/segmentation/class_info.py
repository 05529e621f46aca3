"""Class metadata of a segmentation model, validated as data before any use.

Two messages carry it (README.md, "label_info"): ``label_info`` (vision_msgs/LabelInfo: class id -> name, the
standard that Nav2's semantic segmentation layer and Isaac ROS use) and ``label_info_json`` (the JSON below: the
same classes plus what LabelInfo has no field for: colours, model name, ontology name, ignore label).
``class_info_from_label_info`` combines them; both go through the same rules.

A message from the wire is untrusted: it is checked for size and nesting before JSON parsing, then field by field
(class count, ids, names, colours, ontology name). The ontology is a *name* (``[a-z0-9_]{1,64}``) resolved only among
the package's own ontology folders; it is never used as a file path. Every rule failure raises ``ClassInfoError``
whose ``reason`` names the offending field, so a node can count the drop per reason.

JSON schema (README.md, "label_info"):
``{"model": str, "ontology": str, "ignore_label": int, "classes": [{"id": int, "name": str, "color": [r, g, b]}]}``
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from seg_perception.core.errors import InputRejected

#: Largest accepted label_info payload [bytes] (255 classes with 64-character names take about 20 kB).
MAX_LABEL_INFO_BYTES = 65536
#: Deepest accepted JSON nesting (the schema needs 4: object > classes list > class object > colour list).
MAX_NESTING = 8
MAX_CLASSES = 255
MAX_NAME_CHARS = 64
#: Class id that marks "no class" in label images (never a class id itself).
IGNORE_LABEL = 255
ONTOLOGY_NAME = re.compile(r"[a-z0-9_]{1,64}")


class ClassInfoError(InputRejected):
    """A label_info payload that breaks a rule; ``reason`` is the drop reason (``label_info_<field>``)."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"label_info_{field}", detail)


@dataclass(frozen=True)
class ClassInfo:
    """Validated class metadata.

    Attributes:
        model: model name (informational; at most 128 characters).
        ontology: ontology name (``[a-z0-9_]{1,64}``), or "" when the payload names none.
        categories: class names indexed by class id (``categories[i]`` is the name of id ``i``).
        palette: (r, g, b) per class id, each 0-255.
        ignore_label: label value meaning "no class" (not a class id).
    """

    model: str
    ontology: str
    categories: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_label: int = IGNORE_LABEL


def json_nesting_depth(text: str) -> int:
    """Deepest ``[``/``{`` nesting of a JSON text, brackets inside strings excluded (linear scan, no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _is_int(v: Any) -> TypeGuard[int]:  # noqa: ANN401
    return isinstance(v, int) and not isinstance(v, bool)


def _short(v: Any, n: int = 60) -> str:  # noqa: ANN401
    s = repr(v)
    return s if len(s) <= n else s[: n - 3] + "..."


def check_ontology_name(name: Any) -> str:  # noqa: ANN401
    """Return ``name`` if it is a valid ontology name (``[a-z0-9_]{1,64}``), else raise ``ClassInfoError``."""
    if not isinstance(name, str) or not ONTOLOGY_NAME.fullmatch(name):
        raise ClassInfoError("ontology", f"must be a name matching [a-z0-9_]{{1,64}}, got {_short(name)}")
    return name


def parse_label_info(text: str | bytes) -> ClassInfo:
    """Parse and validate a label_info payload.

    Rules, in order (each failure raises with the field as reason): at most ``MAX_LABEL_INFO_BYTES`` bytes and
    ``MAX_NESTING`` levels (checked before parsing, so deep or huge payloads cost no recursion); valid UTF-8 JSON
    object; ``classes`` a list of 1-255 objects; each ``id`` an integer, the ids together a permutation of 0..N-1
    (ids are used as ids, never list positions); each ``name`` a non-empty string of at most 64 printable characters,
    names unique; each ``color`` three integers 0-255; ``ontology`` absent/empty or a valid name; ``model`` a string
    of at most 128 characters; ``ignore_label`` an integer 0-255 that is not a class id.

    Args:
        text: the payload (std_msgs/String ``data``).
    Returns:
        The ClassInfo, categories and palette ordered by class id.
    Raises:
        ClassInfoError: naming the field that breaks a rule.
    """
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if len(raw) > MAX_LABEL_INFO_BYTES:
        raise ClassInfoError("size", f"{len(raw)} bytes > limit {MAX_LABEL_INFO_BYTES}")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ClassInfoError("json", f"not UTF-8: {e}") from None
    depth = json_nesting_depth(decoded)
    if depth > MAX_NESTING:
        raise ClassInfoError("nesting", f"JSON nested {depth} levels > limit {MAX_NESTING}")
    try:
        info = json.loads(decoded)
    except (ValueError, RecursionError) as e:
        raise ClassInfoError("json", f"not valid JSON: {e}") from None
    if not isinstance(info, dict):
        raise ClassInfoError("json", f"top level must be an object, got {type(info).__name__}")

    return _class_info_from_dict(info)


def check_class_count(n: int) -> None:
    """Raise ``ClassInfoError("classes")`` unless 1 <= n <= ``MAX_CLASSES`` (checked before reading any class)."""
    if not 1 <= n <= MAX_CLASSES:
        raise ClassInfoError("classes", f"must be a list of 1-{MAX_CLASSES} classes, got {n}")


def voc_palette(n: int) -> tuple[tuple[int, int, int], ...]:
    """The PASCAL VOC colour map for ``n`` class ids (bits of the id spread over R, G, B; VOC devkit
    ``labelcolormap``; id 0 is black): the package's default colours where a model or LabelInfo gives none."""
    out = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append((r, g, b))
    return tuple(out)


def class_info_from_label_info(class_map: Sequence[tuple[int, str]], extras: ClassInfo | None = None) -> ClassInfo:
    """Class metadata from a vision_msgs/LabelInfo ``class_map`` (as (class_id, class_name) pairs), under the same
    rules as ``parse_label_info`` (1-255 classes, ids a permutation of 0..N-1, names unique, 1-64 printable).

    Args:
        class_map: (class_id, class_name) per VisionClass; the caller checks ``check_class_count`` first when the
            sequence comes from a message (so a huge class_map is refused before it is copied).
        extras: the validated ``label_info_json`` of the same model, or None. Its colours, model, ontology and
            ignore label are used when its class names equal the LabelInfo's id for id.
    Returns:
        ClassInfo; without extras: model "", ontology "", ``voc_palette``, ignore label 255.
    Raises:
        ClassInfoError: a rule broken (reason ``label_info_<field>``), or ``label_info_mismatch`` when ``extras``
            names other classes than the LabelInfo (they describe different models).
    """
    check_class_count(len(class_map))
    classes = [{"id": cid, "name": name, "color": [0, 0, 0]} for cid, name in class_map]
    info = _class_info_from_dict({"classes": classes})
    if extras is None:
        return ClassInfo("", "", info.categories, voc_palette(len(info.categories)), IGNORE_LABEL)
    if extras.categories != info.categories:
        diff = [i for i, (a, b) in enumerate(zip(info.categories, extras.categories, strict=False)) if a != b][:3]
        raise ClassInfoError("mismatch", f"label_info_json names other classes than label_info "
                                         f"({len(extras.categories)} vs {len(info.categories)} classes; "
                                         f"differing ids {diff}): extras not used")  # fmt: skip
    return extras


def _class_info_from_dict(info: dict[str, Any]) -> ClassInfo:
    """The field rules of ``parse_label_info`` on a parsed JSON object."""
    classes = info.get("classes")
    if not isinstance(classes, list) or not 1 <= len(classes) <= MAX_CLASSES:
        n = len(classes) if isinstance(classes, list) else type(classes).__name__
        raise ClassInfoError("classes", f"must be a list of 1-{MAX_CLASSES} classes, got {n}")
    by_id: dict[int, tuple[str, tuple[int, int, int]]] = {}
    for i, c in enumerate(classes):
        if not isinstance(c, dict):
            raise ClassInfoError("classes", f"entry {i} must be an object, got {type(c).__name__}")
        cid = c.get("id")
        if not _is_int(cid) or not 0 <= cid < len(classes):
            raise ClassInfoError("id", f"entry {i}: id must be an integer in 0..{len(classes) - 1} "
                                       f"(ids are a permutation of 0..N-1), got {_short(cid)}")  # fmt: skip
        if cid in by_id:
            raise ClassInfoError("id", f"entry {i}: id {cid} appears twice")
        name = c.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS or not name.isprintable():
            raise ClassInfoError("name", f"id {cid}: name must be 1-{MAX_NAME_CHARS} printable characters, "
                                         f"got {_short(name)}")  # fmt: skip
        color = c.get("color")
        if not (isinstance(color, list) and len(color) == 3 and all(_is_int(v) and 0 <= v <= 255 for v in color)):
            raise ClassInfoError("color", f"id {cid} ({name}): color must be 3 integers 0-255, got {_short(color)}")
        by_id[cid] = (name, (color[0], color[1], color[2]))
    categories = tuple(by_id[i][0] for i in range(len(classes)))
    if len(set(categories)) != len(categories):
        dup = sorted({n for n in categories if categories.count(n) > 1})
        raise ClassInfoError("name", f"duplicate class names {dup[:5]}")

    ontology = info.get("ontology", "")
    if ontology not in ("", None):
        check_ontology_name(ontology)
    model = info.get("model", "")
    if not isinstance(model, str) or len(model) > 128:
        raise ClassInfoError("model", f"must be a string of at most 128 characters, got {_short(model)}")
    ignore = info.get("ignore_label", IGNORE_LABEL)
    if not _is_int(ignore) or not 0 <= ignore <= 255 or ignore in by_id:
        raise ClassInfoError("ignore_label", f"must be an integer 0-255 that is no class id, got {_short(ignore)}")
    return ClassInfo(model, ontology or "", categories, tuple(by_id[i][1] for i in range(len(classes))), ignore)


def label_info_json(model: str, ontology: str, categories: Sequence[str], palette: Sequence[Sequence[int]]) -> str:
    """The ``label_info`` payload for a model: class id i = ``categories[i]`` with colour ``palette[i]``.

    ``{"model": str, "ontology": str, "ignore_label": 255,
       "classes": [{"id": int, "name": str, "color": [r, g, b]}, ...]}``
    """
    classes = [
        {"id": i, "name": name, "color": [int(c) for c in color]}
        for i, (name, color) in enumerate(zip(categories, palette, strict=True))
    ]
    return json.dumps({"model": model, "ontology": ontology, "ignore_label": IGNORE_LABEL, "classes": classes})
