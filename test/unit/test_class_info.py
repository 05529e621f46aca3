"""Class metadata (label_info) validated as data: limits before parsing, ids as ids, ontology as a name only."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import numpy as np
import pytest

from seg_perception.core.mapping.grid import CostmapConfig
from seg_perception.core.mapping.ontology import Role, load_ontology
from seg_perception.core.mapping.pipeline import ClassRules
from seg_perception.core.segmentation.class_info import (
    MAX_LABEL_INFO_BYTES,
    ClassInfoError,
    class_info_from_label_info,
    json_nesting_depth,
    label_info_json,
    parse_label_info,
)
from seg_perception.core.segmentation.registry import get_model_spec

REPO = Path(__file__).resolve().parents[2]


def _real(name: str = "cgnet_camvid") -> dict:
    spec = get_model_spec(name)
    return json.loads(label_info_json(spec.name, spec.ontology, spec.categories, spec.palette))


def test_schema_round_trip_of_a_real_model() -> None:
    spec = get_model_spec("espnetv2_city")
    text = label_info_json(spec.name, spec.ontology, spec.categories, spec.palette)
    d = json.loads(text)
    assert d["ignore_label"] == 255 and d["classes"][0] == {"id": 0, "name": "road", "color": [128, 64, 128]}
    info = parse_label_info(text)
    assert info.categories == tuple(spec.categories) and info.ontology == "cityscapes"
    assert info.palette[13] == (0, 0, 142)  # car


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d["classes"][0].update(color=[300, 0, 0]), "label_info_color"),
        (lambda d: d["classes"][0].update(color=[-1, 0, 0]), "label_info_color"),
        (lambda d: d["classes"][0].update(color=[1.5, 0, 0]), "label_info_color"),
        (lambda d: d["classes"][0].update(color=[1, 2]), "label_info_color"),
        (lambda d: d.update(ontology="a" * 300), "label_info_ontology"),
        (lambda d: d.update(ontology=str(REPO / "README.md")), "label_info_ontology"),
        (lambda d: d.update(ontology="../../etc/passwd"), "label_info_ontology"),
        (lambda d: d.update(ontology=7), "label_info_ontology"),
        (lambda d: d.update(classes=[]), "label_info_classes"),
        (lambda d: d.update(classes=d["classes"] * 30), "label_info_classes"),
        (lambda d: d.update(classes=d["classes"] * 2), "label_info_id"),
        (lambda d: d.update(classes="road"), "label_info_classes"),
        (lambda d: d["classes"][0].update(id=True), "label_info_id"),
        (lambda d: d["classes"][1].update(id=0), "label_info_id"),
        (lambda d: [c.update(id=c["id"] + 1) for c in d["classes"]], "label_info_id"),  # 1-based
        (lambda d: d["classes"][0].update(name=""), "label_info_name"),
        (lambda d: d["classes"][0].update(name="x" * 65), "label_info_name"),
        (lambda d: d["classes"][0].update(name="a\nb"), "label_info_name"),
        (lambda d: d["classes"][1].update(name=d["classes"][0]["name"]), "label_info_name"),
        (lambda d: d.update(model=["x"]), "label_info_model"),
        (lambda d: d.update(ignore_label=3), "label_info_ignore_label"),
    ],
    ids=["color_300", "color_neg", "color_float", "color_2", "ontology_long", "ontology_path", "ontology_dots",
         "ontology_int", "no_classes", "too_many", "ids_repeated", "classes_str", "id_bool", "id_dup", "ids_1_based",
         "name_empty", "name_long", "name_newline", "name_dup", "model_list", "ignore_is_class"],
)
def test_each_rule_names_its_field(mutate, reason: str) -> None:  # noqa: ANN001
    d = _real()
    mutate(d)
    with pytest.raises(ClassInfoError) as e:
        parse_label_info(json.dumps(d))
    assert e.value.reason == reason, str(e.value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [("[" * 100_000, "label_info_size"), ("[" * 60_000, "label_info_nesting"), ('{"classes": [[[[[[[[[1]]]]]]]]]}',
      "label_info_nesting"), ("not json", "label_info_json"), ("[1, 2]", "label_info_json"), ("", "label_info_json")],
    ids=["100kB", "deep", "deep_small", "garbage", "list", "empty"],
)
def test_size_and_nesting_are_checked_before_parsing(text: str, reason: str) -> None:
    with pytest.raises(ClassInfoError) as e:
        parse_label_info(text)
    assert e.value.reason == reason


def test_limits() -> None:
    assert json_nesting_depth('{"a": "[[[[", "b": [{"c": [1]}]}') == 4  # brackets in strings do not count
    big = _real()
    big["model"] = ""
    big["classes"] = [{"id": i, "name": f"class_{i:03d}_" + "x" * 54, "color": [i, i, i]} for i in range(255)]
    big.pop("ontology")
    text = json.dumps(big)
    assert len(text) < MAX_LABEL_INFO_BYTES  # the largest valid payload fits the size limit
    assert len(parse_label_info(text).categories) == 255


def test_ids_are_ids_not_positions() -> None:
    """A class list in reverse order gives the same rules as the ordered one (ids, not list positions)."""
    d = _real("espnetv2_city")
    reversed_d = dict(d, classes=list(reversed(d["classes"])))
    cfg = CostmapConfig()
    _, rules = ClassRules.from_class_info(parse_label_info(json.dumps(d)), cfg)
    _, rules_rev = ClassRules.from_class_info(parse_label_info(json.dumps(reversed_d)), cfg)
    np.testing.assert_array_equal(rules.roles, rules_rev.roles)
    assert rules.roles[0] == Role.DRIVABLE and rules.roles[13] == Role.OBSTACLE  # road, car
    # names moved with their ids: swapping road and car swaps their roles
    swapped = json.loads(json.dumps(d))
    swapped["classes"][0]["id"], swapped["classes"][13]["id"] = 13, 0
    _, rules_sw = ClassRules.from_class_info(parse_label_info(json.dumps(swapped)), cfg)
    assert rules_sw.roles[0] == Role.OBSTACLE and rules_sw.roles[13] == Role.DRIVABLE


def test_ontology_from_the_wire_opens_only_package_ontology_files(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    real_open = builtins.open

    def spy(file, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    cfg = CostmapConfig()
    for bad in (str(REPO / "README.md"), "/etc/passwd", "../README", "a" * 300, "cityscapes/../../README"):
        d = _real()
        d["ontology"] = bad
        with pytest.raises(ClassInfoError):
            ClassRules.from_class_info(parse_label_info(json.dumps(d)), cfg)
    d = _real()
    d["ontology"] = "no_such_ontology"
    with pytest.raises(ClassInfoError) as e:
        ClassRules.from_class_info(parse_label_info(json.dumps(d)), cfg)
    assert e.value.reason == "label_info_ontology"
    d["ontology"] = "cityscapes"  # exists, but its class names do not fit CamVid's
    with pytest.raises(ClassInfoError, match="unknown class names"):
        ClassRules.from_class_info(parse_label_info(json.dumps(d)), cfg)
    onto, rules = ClassRules.from_class_info(parse_label_info(json.dumps(_real())), cfg)
    assert onto.name == "camvid" and rules.roles[3] == Role.DRIVABLE  # road
    assert opened and all(Path(p).parent.name == "ontology" and Path(p).suffix == ".yaml" for p in opened), opened


def test_trusted_ontology_parameter_wins_over_the_message() -> None:
    d = _real()
    d["ontology"] = "voc"  # a valid name that does not fit: ignored when the parameter gives one
    onto = load_ontology("camvid", get_model_spec("cgnet_camvid").categories)
    used, rules = ClassRules.from_class_info(parse_label_info(json.dumps(d)), CostmapConfig(), onto)
    assert used is onto and rules.roles[3] == Role.DRIVABLE


def test_label_info_class_map_follows_the_same_rules_and_takes_the_extras_of_the_same_model() -> None:
    spec = get_model_spec("espnetv2_city")
    pairs = list(enumerate(spec.categories))
    extras = parse_label_info(label_info_json(spec.name, spec.ontology, spec.categories, spec.palette))
    alone = class_info_from_label_info(pairs[::-1])  # order of the class_map does not matter: ids are ids
    assert alone.categories == tuple(spec.categories) and alone.ontology == "" and alone.ignore_label == 255
    assert len(set(alone.palette)) == len(spec.categories)  # distinct default colours
    assert class_info_from_label_info(pairs, extras) == extras
    camvid = get_model_spec("cgnet_camvid")
    with pytest.raises(ClassInfoError) as e:
        class_info_from_label_info(list(enumerate(camvid.categories)), extras)
    assert e.value.reason == "label_info_mismatch"


@pytest.mark.parametrize(
    ("pairs", "reason"),
    [([], "label_info_classes"), ([(i, f"c{i}") for i in range(256)], "label_info_classes"),
     ([(1, "a"), (2, "b")], "label_info_id"), ([(0, "a"), (0, "b")], "label_info_id"),
     ([(0, "a"), (1, "a")], "label_info_name"), ([(0, "")], "label_info_name"), ([(0, "a\nb")], "label_info_name")],
    ids=["empty", "too-many", "not-0-based", "id-twice", "name-twice", "empty-name", "control-char"],
)  # fmt: skip
def test_bad_label_info_class_maps_are_refused_by_field(pairs: list, reason: str) -> None:
    with pytest.raises(ClassInfoError) as e:
        class_info_from_label_info(pairs)
    assert e.value.reason == reason
