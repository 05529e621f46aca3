"""core.mapping (grid, ontology, single_frame, costs), core.geometry.transforms: hand-computable cases."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from seg_perception.core.geometry.ground import GroundPlane
from seg_perception.core.geometry.transforms import camera_to_base, transform_points
from seg_perception.core.mapping.costs import (
    COST_TRANSLATION_TABLE,
    FREE_SPACE,
    INSCRIBED_INFLATED_OBSTACLE,
    LETHAL_OBSTACLE,
    NO_INFORMATION,
    inflate,
    inflation_cost,
    to_occupancy,
)
from seg_perception.core.mapping.grid import CostmapConfig, GridGeometry
from seg_perception.core.mapping.ontology import Ontology, PointRole, Role, load_ontology
from seg_perception.core.mapping.single_frame import build_grids, cell_class_rules, classify_points

CITYSCAPES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle", "background",
)  # fmt: skip
CAMVID = (
    "sky", "building", "pole", "road", "pavement", "tree", "sign_symbol", "fence", "car", "pedestrian", "bicyclist",
)  # fmt: skip
VOC = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip

ONTOLOGY_DIR = Path(__file__).resolve().parents[2] / "config" / "ontology"


def nav2_cost(d_m: float, scaling: float = 3.0, inscribed: float = 0.0) -> int:
    """Nav2 InflationLayer::computeCost for a distance in metres (> 0)."""
    if d_m <= inscribed:
        return INSCRIBED_INFLATED_OBSTACLE
    return int((INSCRIBED_INFLATED_OBSTACLE - 1) * math.exp(-scaling * (d_m - inscribed)))


# --- extrinsics ------------------------------------------------------------------------------------------------------
LEVEL = dict(translation_m=(0.0, 0.0, 1.65), rpy_rad=(0.0, 0.0, 0.0))


@pytest.mark.parametrize(
    ("extrinsic", "optical", "expected_base"),
    [
        (LEVEL, (0, 0, 10), (10, 0, 1.65)),
        (LEVEL, (0, 1, 10), (10, 0, 0.65)),  # 1 m below the optical axis (optical y is down)
        (LEVEL, (1, 0, 10), (10, -1, 1.65)),  # 1 m right of the axis = -y in base_link
        (dict(translation_m=(0, 0, 1.65), rpy_rad=(0, math.pi / 2, 0)), (0, 0, 2), (0, 0, -0.35)),  # looking down
        (dict(translation_m=(0, 0, 1.65), rpy_rad=(0, math.pi / 2, 0)), (0, 1, 2), (-1, 0, -0.35)),  # image down=back
        (dict(translation_m=(0, 0, 1.65), rpy_rad=(0, 0, math.pi / 2)), (0, 0, 10), (0, 10, 1.65)),  # yaw left
        (dict(translation_m=(0, 0, 1.65), rpy_rad=(math.pi / 2, 0, 0)), (1, 0, 10), (10, 0, 0.65)),  # roll
        (dict(translation_m=(0.5, -0.2, 1.0), rpy_rad=(0, 0, 0)), (0, 0, 0), (0.5, -0.2, 1.0)),  # origin -> t
    ],
    ids=["level-ahead", "level-below-axis", "level-right", "pitch90-ahead", "pitch90-image-down", "yaw90",
         "roll90", "translation"],
)
def test_camera_to_base_points(extrinsic: dict, optical: tuple, expected_base: tuple) -> None:
    t = camera_to_base(**extrinsic)
    got = transform_points(t, np.array([optical], dtype=np.float32))
    np.testing.assert_allclose(got[0], expected_base, atol=1e-5)


@pytest.mark.parametrize("pitch", [0.05, 0.1, 0.3], ids=["p0.05", "p0.1", "p0.3"])
def test_positive_pitch_tilts_down(pitch: float) -> None:
    t = camera_to_base((0, 0, 1.65), (0, pitch, 0))
    p = transform_points(t, np.array([[0, 0, 10]], dtype=np.float32))[0]
    np.testing.assert_allclose(p, (10 * math.cos(pitch), 0, 1.65 - 10 * math.sin(pitch)), atol=1e-5)


def test_camera_to_base_is_rigid() -> None:
    t = camera_to_base((0.1, 0.2, 0.3), (0.3, -0.2, 1.1))
    r = t[:3, :3]
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0)
    np.testing.assert_array_equal(t[3], (0, 0, 0, 1))


@pytest.mark.parametrize(
    ("translation", "rpy"), [((0, 0), (0, 0, 0)), ((0, 0, 1), (0, math.nan, 0))], ids=["short", "nan"]
)
def test_camera_to_base_rejects_bad_input(translation: tuple, rpy: tuple) -> None:
    with pytest.raises(ValueError, match="3 finite values"):
        camera_to_base(translation, rpy)


def test_transform_points_nan_and_shape() -> None:
    t = camera_to_base(**LEVEL)
    pts = np.zeros((2, 3, 3), dtype=np.float32)
    pts[0, 0] = np.nan
    pts[1, 2, 0] = np.nan  # one NaN coordinate invalidates the whole point
    out = transform_points(t, pts)
    assert out.shape == (2, 3, 3) and out.dtype == np.float32
    assert np.isnan(out[0, 0]).all() and np.isnan(out[1, 2]).all()
    assert np.isfinite(out[0, 1]).all()
    assert transform_points(t, np.zeros((0, 3), np.float32)).shape == (0, 3)


# --- ontology --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "categories", "expected"),
    [
        ("cityscapes", CITYSCAPES, {"road": Role.DRIVABLE, "sidewalk": Role.OBSTACLE, "sky": Role.IGNORE,
                                    "car": Role.OBSTACLE, "terrain": Role.OBSTACLE}),
        ("camvid", CAMVID, {"road": Role.DRIVABLE, "pavement": Role.OBSTACLE, "sky": Role.IGNORE,
                            "pedestrian": Role.OBSTACLE}),
        ("voc", VOC, {"background": Role.GROUND_IF_FLAT, "person": Role.OBSTACLE, "chair": Role.OBSTACLE}),
    ],
    ids=["cityscapes", "camvid", "voc"],
)
def test_shipped_ontologies(name: str, categories: tuple, expected: dict) -> None:
    for source in (name, ONTOLOGY_DIR / f"{name}.yaml"):  # by name and by path
        onto = load_ontology(source, categories)
        assert set(onto.rules) == set(categories), "every class is listed explicitly"
        lut = onto.roles_lut(categories)
        assert lut.shape == (len(categories),) and lut.dtype == np.uint8
        for cls, role in expected.items():
            assert lut[categories.index(cls)] == role, cls
        assert (lut == Role.DRIVABLE).sum() <= 1


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "onto.yaml"
    p.write_text(text)
    return p


def test_ontology_unknown_class_names(tmp_path: Path) -> None:
    p = _write(tmp_path, "default: obstacle\nclasses:\n  road: drivable\n  roadd: drivable\n  skyy: ignore\n")
    with pytest.raises(ValueError, match=r"unknown class names \['roadd', 'skyy'\]"):
        load_ontology(p, CAMVID)


def test_ontology_default_and_missing(tmp_path: Path) -> None:
    p = _write(tmp_path, "default: obstacle\nclasses:\n  road: drivable\n  sky: ignore\n")
    lut = load_ontology(p, CAMVID).roles_lut(CAMVID)
    assert lut[CAMVID.index("road")] == Role.DRIVABLE
    assert lut[CAMVID.index("sky")] == Role.IGNORE
    assert lut[CAMVID.index("car")] == Role.OBSTACLE
    p = _write(tmp_path, "classes:\n  road: drivable\n  sky: ignore\n")
    with pytest.raises(ValueError, match="no role for classes"):
        load_ontology(p, CAMVID)


def test_ontology_long_form() -> None:
    onto = Ontology.from_dict(
        {"default": "obstacle",
         "classes": {"road": "drivable", "car": {"role": "obstacle", "cost": 200, "inflation_radius": 0.8}}}
    )
    assert onto.rule("car").cost == 200 and onto.rule("car").inflation_radius == 0.8
    assert onto.rule("road").cost is None and onto.rule("pole").role == Role.OBSTACLE


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"classes": {"road": "flyable"}}, "role must be one of"),
        ({"classes": {"car": {"role": "obstacle", "cost": 255}}}, "cost must be an integer in 0..254"),
        ({"classes": {"car": {"role": "obstacle", "cost": 1.5}}}, "cost must be an integer"),
        ({"classes": {"car": {"role": "obstacle", "inflation_radius": -1}}}, "inflation_radius must be"),
        ({"classes": {"car": {"role": "obstacle", "colour": 3}}}, r"unknown keys \['colour'\]"),
        ({"classes": {}}, "non-empty mapping"),
        ({"classes": {"road": "drivable"}, "defualt": "obstacle"}, "unknown top-level keys"),
    ],
    ids=["bad-role", "cost-255", "cost-float", "negative-radius", "unknown-key", "empty", "typo-top-level"],
)
def test_ontology_validation(data: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Ontology.from_dict(data, name="t")


def test_ontology_not_found() -> None:
    with pytest.raises(FileNotFoundError, match="no_such_ontology"):
        load_ontology("no_such_ontology", CAMVID)


# --- configuration ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(resolution=-0.1), r"resolution must be > 0 .*-0.1"),
        (dict(resolution=0.0), "resolution must be > 0"),
        (dict(resolution=math.nan), "resolution must be a finite number"),
        (dict(width=0.0), "width and height must be > 0"),
        (dict(width=1000.0, height=1000.0), r"at most 4000000 cells .* 10000x10000 = 100000000"),
        (dict(drivable_tolerance_m=0.3), r"drivable_tolerance_m must be in \[0, min_obstacle_height=0.2\].*0.3"),
        (dict(min_obstacle_height=2.0), "min_obstacle_height must be < max_obstacle_height=2.0"),
        (dict(min_confidence=1.5), r"min_confidence must be in \[0, 1\].*1.5"),
        (dict(max_range_m=0.0), "max_range_m must be > 0"),
        (dict(inflation_radius=-0.5), "inflation_radius must be >= 0"),
        (dict(cost_scaling_factor=-1.0), "cost_scaling_factor must be >= 0"),
        (dict(inscribed_radius=-0.1), "inscribed_radius must be >= 0"),
        (dict(min_obstacle_points=0), "min_obstacle_points must be an integer >= 1"),
    ],
    ids=["neg-resolution", "zero-resolution", "nan-resolution", "zero-width", "too-big", "tolerance-above-min",
         "min-above-max", "confidence", "range", "inflation", "scaling", "inscribed", "min-points"],
)
def test_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CostmapConfig(**kwargs)


def test_config_defaults_and_geometry() -> None:
    cfg = CostmapConfig()
    assert (cfg.width_cells, cfg.height_cells) == (200, 200)
    geo = GridGeometry.from_config(cfg)
    assert (geo.origin_x, geo.origin_y, geo.shape) == (-10.0, -10.0, (200, 200))
    x = np.array([0.0, -10.0, 9.99, 10.0, np.nan, 3.05], dtype=np.float32)
    y = np.array([0.0, -10.0, 9.99, 0.0, 0.0, -0.05], dtype=np.float32)
    rows, cols, keep = geo.cell_indices(x, y)
    np.testing.assert_array_equal(keep, [True, True, True, False, False, True])
    np.testing.assert_array_equal(rows, [100, 0, 199, 99])
    np.testing.assert_array_equal(cols, [100, 0, 199, 130])


# --- classification --------------------------------------------------------------------------------------------------
# Class ids of a toy ontology: 0 road (drivable), 1 sidewalk (obstacle), 2 car (obstacle), 3 sky (ignore),
# 4 background (ground_if_flat).
TOY_LUT = np.array([Role.DRIVABLE, Role.OBSTACLE, Role.OBSTACLE, Role.IGNORE, Role.GROUND_IF_FLAT], dtype=np.uint8)
ROAD, SIDEWALK, CAR, SKY, BACKGROUND = range(5)


@pytest.mark.parametrize(
    ("label", "z", "conf", "x", "expected"),
    [
        (ROAD, 0.0, 1.0, 5.0, PointRole.DRIVABLE),
        (ROAD, 0.18, 1.0, 5.0, PointRole.DRIVABLE),  # road label trusted below min_obstacle_height
        (ROAD, -0.25, 1.0, 5.0, PointRole.NOT_DRIVABLE),  # ditch
        (ROAD, 1.0, 1.0, 5.0, PointRole.OBSTACLE),  # height band wins over the class
        (ROAD, 2.5, 1.0, 5.0, PointRole.IGNORE),  # above max_obstacle_height
        (SIDEWALK, 0.05, 1.0, 5.0, PointRole.NOT_DRIVABLE),
        (CAR, 0.1, 1.0, 5.0, PointRole.NOT_DRIVABLE),  # near-ground obstacle class: seen, not drivable
        (CAR, 0.2, 1.0, 5.0, PointRole.OBSTACLE),  # exactly min_obstacle_height
        (CAR, 2.0, 1.0, 5.0, PointRole.OBSTACLE),  # exactly max_obstacle_height
        (SKY, 0.0, 1.0, 5.0, PointRole.IGNORE),
        (SKY, 1.0, 1.0, 5.0, PointRole.IGNORE),  # sky is ignored at every height
        (BACKGROUND, 0.1, 1.0, 5.0, PointRole.DRIVABLE),
        (BACKGROUND, 0.18, 1.0, 5.0, PointRole.NOT_DRIVABLE),  # above drivable_tolerance_m: a step
        (BACKGROUND, 1.0, 1.0, 5.0, PointRole.OBSTACLE),
        (BACKGROUND, 3.0, 1.0, 5.0, PointRole.IGNORE),
        (255, 0.0, 1.0, 5.0, PointRole.IGNORE),  # ignore label
        (7, 0.0, 1.0, 5.0, PointRole.IGNORE),  # id beyond the lookup table
        (ROAD, 0.0, 0.3, 5.0, PointRole.IGNORE),  # below min_confidence
        (ROAD, 0.0, math.nan, 5.0, PointRole.IGNORE),
        (ROAD, 0.0, 1.0, 12.0, PointRole.IGNORE),  # beyond max_range_m
        (ROAD, math.nan, 1.0, 5.0, PointRole.IGNORE),
    ],
    ids=["road-ground", "road-slope", "road-ditch", "road-high", "road-overhang", "sidewalk", "car-low",
         "car-min-height", "car-max-height", "sky-ground", "sky-high", "bg-flat", "bg-step", "bg-band", "bg-ceiling",
         "label-255", "label-out-of-lut", "low-confidence", "nan-confidence", "out-of-range", "nan-z"],
)
def test_classify_points(label: int, z: float, conf: float, x: float, expected: PointRole) -> None:
    cfg = CostmapConfig(min_confidence=0.5, max_range_m=10.0)
    pts = np.array([[x, 0.0, z]], dtype=np.float32)
    got = classify_points(pts, np.array([label], np.uint8), np.array([conf], np.float32), TOY_LUT, cfg)
    assert got.dtype == np.uint8 and got.tolist() == [expected]


def test_classify_points_int_labels_and_ground_height() -> None:
    cfg = CostmapConfig(ground_height_m=-1.65)  # base_frame at the camera height
    pts = np.array([[5, 0, -1.65], [5, 0, -0.5], [5, 0, -1.65]], dtype=np.float32)
    got = classify_points(pts, np.array([ROAD, CAR, -1], np.int64), None, TOY_LUT, cfg)
    assert got.tolist() == [PointRole.DRIVABLE, PointRole.OBSTACLE, PointRole.IGNORE]


def test_classify_points_size_mismatch() -> None:
    with pytest.raises(ValueError, match="labels has 2 values but points_base has 1 points"):
        classify_points(np.zeros((1, 3), np.float32), np.zeros(2, np.uint8), None, TOY_LUT, CostmapConfig())


# --- grids -----------------------------------------------------------------------------------------------------------
# 2 m x 2 m at 0.1 m: 20 x 20 cells, origin (-1, -1); cell (row, col) has centre (-0.95 + 0.1 col, -0.95 + 0.1 row).
SMALL = dict(resolution=0.1, width=2.0, height=2.0, inflation_radius=0.55, cost_scaling_factor=3.0)
GEO = GridGeometry.from_config(CostmapConfig(**SMALL))


def cloud(cells: list[tuple[int, int, float, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points at cell centres: (row, col, z, label) -> points, labels, confidence."""
    pts = np.array([(*GEO.cell_center(r, c), z) for r, c, z, _ in cells], dtype=np.float32).reshape(-1, 3)
    labels = np.array([lab for *_, lab in cells], dtype=np.uint8)
    return pts, labels, np.ones(len(cells), np.float32)


HAND_CLOUD = [
    (10, 2, 0.0, ROAD), (10, 3, 0.0, ROAD), (10, 4, 0.02, ROAD), (10, 4, -0.02, ROAD),
    (10, 9, 1.0, CAR),  # car body 1 m above the ground
    (5, 5, 0.05, SIDEWALK),
    (0, 0, 1.0, SKY),
]


def test_build_grids_hand_cloud() -> None:
    cfg = CostmapConfig(**SMALL)
    pts, labels, conf = cloud(HAND_CLOUD)
    pts = np.vstack([pts, np.full((3, 3), np.nan, np.float32)])  # invalid points are dropped
    labels = np.concatenate([labels, np.zeros(3, np.uint8)])
    conf = np.concatenate([conf, np.ones(3, np.float32)])
    drivable, obstacle = build_grids(pts, labels, conf, TOY_LUT, cfg)
    assert drivable.shape == obstacle.shape == (20, 20)
    assert drivable.dtype == obstacle.dtype == np.uint8

    expected_drivable = np.full((20, 20), NO_INFORMATION, np.uint8)
    expected_drivable[10, 2:5] = FREE_SPACE
    expected_drivable[10, 9] = LETHAL_OBSTACLE
    expected_drivable[5, 5] = LETHAL_OBSTACLE  # seen, not drivable
    np.testing.assert_array_equal(drivable, expected_drivable)

    assert obstacle[10, 9] == LETHAL_OBSTACLE
    assert obstacle[10, 8] == obstacle[10, 10] == obstacle[9, 9] == nav2_cost(0.1) == 186  # into unknown cells
    assert obstacle[11, 8] == nav2_cost(0.1 * math.sqrt(2))
    assert obstacle[10, 4] == nav2_cost(0.5) == 56  # road cell: max(FREE_SPACE, inflation)
    assert obstacle[10, 3] == nav2_cost(0.6) == 41  # 6 cells: Nav2 inflates out to ceil(0.55 / 0.1) cells
    assert obstacle[10, 2] == FREE_SPACE  # 7 cells: beyond the inflation radius
    assert obstacle[5, 5] == FREE_SPACE  # seen, sqrt(41) cells from the car
    assert obstacle[0, 0] == NO_INFORMATION  # sky only
    assert obstacle[19, 19] == NO_INFORMATION
    # Exactly the cells within 6 cells of the car or seen are known.
    rr, cc = np.mgrid[0:20, 0:20]
    known = ((rr - 10) ** 2 + (cc - 9) ** 2 <= 36) | np.isin(rr * 20 + cc, [10 * 20 + 2, 5 * 20 + 5])
    np.testing.assert_array_equal(obstacle != NO_INFORMATION, known)


@pytest.mark.parametrize(
    ("inflate_unknown", "expected"), [(True, 186), (False, NO_INFORMATION)], ids=["inflate-unknown", "nav2-default"]
)
def test_inflate_unknown(inflate_unknown: bool, expected: int) -> None:
    cfg = CostmapConfig(**SMALL, inflate_unknown=inflate_unknown)
    _, obstacle = build_grids(*cloud(HAND_CLOUD), TOY_LUT, cfg)
    assert obstacle[10, 8] == expected
    assert obstacle[10, 4] == 56  # known cells are inflated either way


def test_inscribed_radius() -> None:
    cfg = CostmapConfig(**{**SMALL, "inscribed_radius": 0.15})
    _, obstacle = build_grids(*cloud(HAND_CLOUD), TOY_LUT, cfg)
    assert obstacle[10, 8] == INSCRIBED_INFLATED_OBSTACLE  # 0.1 m
    assert obstacle[11, 8] == INSCRIBED_INFLATED_OBSTACLE  # 0.141 m
    assert obstacle[10, 7] == nav2_cost(0.2, inscribed=0.15) == 216


def test_inflation_cost_formula() -> None:
    cfg = CostmapConfig(inscribed_radius=0.2, cost_scaling_factor=10.0)
    d = np.array([0.0, 0.1, 0.2, 0.25, 0.5])
    expected = [LETHAL_OBSTACLE, 253, 253, nav2_cost(0.25, 10.0, 0.2), nav2_cost(0.5, 10.0, 0.2)]
    np.testing.assert_array_equal(inflation_cost(d, cfg), expected)


def test_no_inflation_radius() -> None:
    cfg = CostmapConfig(**{**SMALL, "inflation_radius": 0.0})
    grid = np.full((5, 5), NO_INFORMATION, np.uint8)
    mask = np.zeros((5, 5), bool)
    mask[2, 2] = True
    out = inflate(grid, mask, cfg)
    assert out[2, 2] == LETHAL_OBSTACLE and (out[~mask] == NO_INFORMATION).all()


@pytest.mark.parametrize(
    ("n_road", "n_sidewalk", "expected"),
    [(2, 1, FREE_SPACE), (1, 1, LETHAL_OBSTACLE), (1, 2, LETHAL_OBSTACLE), (0, 1, LETHAL_OBSTACLE)],
    ids=["road-majority", "tie", "sidewalk-majority", "sidewalk-only"],
)
def test_drivable_majority(n_road: int, n_sidewalk: int, expected: int) -> None:
    cells = [(3, 3, 0.0, ROAD)] * n_road + [(3, 3, 0.0, SIDEWALK)] * n_sidewalk
    drivable, obstacle = build_grids(*cloud(cells), TOY_LUT, CostmapConfig(**SMALL))
    assert drivable[3, 3] == expected
    assert obstacle[3, 3] == FREE_SPACE


def test_any_obstacle_wins_and_min_points() -> None:
    cells = [(3, 3, 0.0, ROAD)] * 10 + [(3, 3, 0.5, CAR)]
    drivable, obstacle = build_grids(*cloud(cells), TOY_LUT, CostmapConfig(**SMALL))
    assert drivable[3, 3] == LETHAL_OBSTACLE and obstacle[3, 3] == LETHAL_OBSTACLE
    drivable, obstacle = build_grids(*cloud(cells), TOY_LUT, CostmapConfig(**SMALL, min_obstacle_points=2))
    assert drivable[3, 3] == FREE_SPACE and obstacle[3, 3] == FREE_SPACE


@pytest.mark.parametrize(
    "points",
    [np.zeros((0, 3), np.float32), np.full((100, 3), np.nan, np.float32), np.full((4, 5, 3), np.nan, np.float32)],
    ids=["empty", "all-nan", "organized-all-nan"],
)
def test_build_grids_degenerate(points: np.ndarray) -> None:
    labels = np.zeros(points.shape[:-1], np.uint8)
    drivable, obstacle = build_grids(points, labels, None, TOY_LUT, CostmapConfig(**SMALL))
    assert (drivable == NO_INFORMATION).all() and (obstacle == NO_INFORMATION).all()


def test_build_grids_organized_matches_flat() -> None:
    rng = np.random.default_rng(0)
    pts = rng.uniform([-1, -1, -0.1], [1, 1, 1.5], size=(6, 7, 3)).astype(np.float32)
    labels = rng.integers(0, 5, size=(6, 7)).astype(np.uint8)
    cfg = CostmapConfig(**SMALL)
    a = build_grids(pts, labels, None, TOY_LUT, cfg)
    b = build_grids(pts.reshape(-1, 3), labels.reshape(-1), None, TOY_LUT, cfg)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_build_grids_end_to_end_from_camera() -> None:
    """A level camera 1.65 m up sees the road 5 m ahead and a car 1 m below the optical axis 8 m ahead."""
    cfg = CostmapConfig(**SMALL, max_range_m=20.0)
    geo = GridGeometry(origin_x=0.0, origin_y=-1.0, resolution=0.1, width_cells=100, height_cells=20)
    optical = np.array([[0.05, 1.65, 5.05], [0.05, 0.65, 8.05]], dtype=np.float32)
    base = transform_points(camera_to_base(**LEVEL), optical)
    drivable, obstacle = build_grids(base, np.array([ROAD, CAR], np.uint8), None, TOY_LUT, cfg, geometry=geo)
    assert drivable[9, 50] == FREE_SPACE  # x = 5.05, y = -0.05
    assert obstacle[9, 80] == LETHAL_OBSTACLE and drivable[9, 80] == LETHAL_OBSTACLE


# --- ground plane heights --------------------------------------------------------------------------------------------
# A road rising 5 % along x (pitch 2.86 deg): at x = 5 m the road surface is 0.25 m above z = 0.
SLOPE = GroundPlane(normal=(-0.05, 0.0, 1.0), offset=0.0)


@pytest.mark.parametrize(
    ("label", "x", "z", "flat", "sloped"),
    [
        (ROAD, 5.0, 0.25, PointRole.OBSTACLE, PointRole.DRIVABLE),  # the flat model sees the slope as a wall
        (CAR, 5.0, 0.25 + 0.5, PointRole.OBSTACLE, PointRole.OBSTACLE),  # 0.5 m above the sloped road
        (CAR, 5.0, 0.25 + 0.1, PointRole.OBSTACLE, PointRole.NOT_DRIVABLE),  # 0.1 m: below min_obstacle_height
        (BACKGROUND, 5.0, 0.25 + 0.1, PointRole.OBSTACLE, PointRole.DRIVABLE),  # flat within 0.15 m
        (ROAD, -4.0, -0.2, PointRole.NOT_DRIVABLE, PointRole.DRIVABLE),  # downhill behind: a "ditch" when flat
        (CAR, 5.0, 0.25 + 1.9, PointRole.IGNORE, PointRole.OBSTACLE),  # 2.15 m > max height flat; 1.9 m sloped
    ],
    ids=["road-on-slope", "car-on-slope", "low-step", "bg-flat", "road-downhill", "max-height"],
)
def test_classify_points_with_ground_plane(label: int, x: float, z: float, flat: PointRole, sloped: PointRole) -> None:
    cfg = CostmapConfig()
    pts = np.array([[x, 0.0, z]], np.float32)
    lab = np.array([label], np.uint8)
    assert classify_points(pts, lab, None, TOY_LUT, cfg).tolist() == [flat]
    assert classify_points(pts, lab, None, TOY_LUT, cfg, ground=SLOPE).tolist() == [sloped]


def test_flat_ground_plane_equals_ground_height() -> None:
    rng = np.random.default_rng(0)
    pts = rng.uniform([-10, -10, -2.5], [10, 10, 1.0], size=(2000, 3)).astype(np.float32)
    labels = rng.integers(0, 5, 2000).astype(np.uint8)
    cfg = CostmapConfig(ground_height_m=-1.65)
    a = classify_points(pts, labels, None, TOY_LUT, cfg)
    b = classify_points(pts, labels, None, TOY_LUT, CostmapConfig(), ground=GroundPlane.from_height(-1.65))
    np.testing.assert_array_equal(a, b)
    assert len(set(a.tolist())) == 4  # every role occurs, so the comparison means something


def test_build_grids_with_ground_plane() -> None:
    cfg = CostmapConfig(**SMALL)
    pts = np.array([[*GEO.cell_center(10, 15), 0.05 * GEO.cell_center(10, 15)[0]]], np.float32)  # on the slope
    pts = np.vstack([pts, pts])
    pts[1, 2] += 0.5  # and an obstacle 0.5 m above it, one row up
    pts[1, 1] += 0.1
    labels = np.array([ROAD, CAR], np.uint8)
    drivable, obstacle = build_grids(pts, labels, None, TOY_LUT, cfg, ground=SLOPE)
    assert drivable[10, 15] == FREE_SPACE and obstacle[11, 15] == LETHAL_OBSTACLE
    steep = GroundPlane(normal=(-0.5, 0.0, 1.0), offset=0.0)  # 27 deg: the road point is now 0.2 m "below" it
    drivable, _ = build_grids(pts, labels, None, TOY_LUT, cfg, ground=steep)
    assert drivable[10, 15] == LETHAL_OBSTACLE  # a ditch


# --- per-class cost and inflation ------------------------------------------------------------------------------------
def test_ontology_cost_and_inflation_luts() -> None:
    onto = Ontology.from_dict({"default": "obstacle", "classes": {
        "road": "drivable", "car": {"role": "obstacle", "inflation_radius": 1.0},
        "tree": {"role": "obstacle", "cost": 120, "inflation_radius": 0.2}}})
    cats = ("road", "car", "tree", "pole")
    np.testing.assert_array_equal(onto.cost_lut(cats), [LETHAL_OBSTACLE, LETHAL_OBSTACLE, 120, LETHAL_OBSTACLE])
    assert onto.cost_lut(cats).dtype == np.uint8
    np.testing.assert_allclose(onto.inflation_lut(cats, 0.55), [0.55, 1.0, 0.2, 0.55])
    assert onto.inflation_lut(cats, 0.55).dtype == np.float64
    with pytest.raises(ValueError, match="default inflation radius"):
        onto.inflation_lut(cats, -1.0)
    with pytest.raises(ValueError, match="unknown class names"):
        onto.cost_lut(("road", "car"))  # 'tree' is listed in the file but not a category


def test_shipped_ontology_luts_keep_default_behaviour() -> None:
    """The shipped files set no cost or radius: the tables reproduce the table-less grids exactly."""
    onto = load_ontology("cityscapes", CITYSCAPES)
    rng = np.random.default_rng(1)
    pts = rng.uniform([-1, -1, -0.1], [1, 1, 1.5], size=(300, 3)).astype(np.float32)
    labels = rng.integers(0, len(CITYSCAPES), 300).astype(np.uint8)
    cfg = CostmapConfig(**SMALL)
    lut = onto.roles_lut(CITYSCAPES)
    plain = build_grids(pts, labels, None, lut, cfg)
    tabled = build_grids(pts, labels, None, lut, cfg, cost_lut=onto.cost_lut(CITYSCAPES),
                         inflation_lut=onto.inflation_lut(CITYSCAPES, cfg.inflation_radius))
    np.testing.assert_array_equal(plain[0], tabled[0])
    np.testing.assert_array_equal(plain[1], tabled[1])
    assert (plain[1] == LETHAL_OBSTACLE).sum() > 10


# Toy rules: sidewalk-class obstacles (a bollard) are soft (cost 120, radius 0.2 m); cars are lethal with 0.3 m.
TOY_COST = np.array([LETHAL_OBSTACLE, 120, LETHAL_OBSTACLE, LETHAL_OBSTACLE, 0], np.uint8)
TOY_RADIUS = np.array([0.55, 0.2, 0.3, 0.55, 0.55], np.float32)


def test_build_grids_per_class_cost_and_radius() -> None:
    cells = [(10, 9, 1.0, CAR), (5, 5, 1.0, SIDEWALK), (15, 15, 1.0, BACKGROUND), (15, 12, 0.0, ROAD)]
    cfg = CostmapConfig(**SMALL)
    drivable, obstacle = build_grids(*cloud(cells), TOY_LUT, cfg, cost_lut=TOY_COST, inflation_lut=TOY_RADIUS)
    # Car: lethal, inflated out to ceil(0.3 / 0.1) = 3 cells.
    assert obstacle[10, 9] == LETHAL_OBSTACLE
    assert obstacle[10, 10] == nav2_cost(0.1) == 186 and obstacle[10, 12] == nav2_cost(0.3) == 102
    assert obstacle[10, 13] == NO_INFORMATION  # 4 cells: beyond the car's radius (the global 0.55 would reach it)
    # Bollard: its own cost, inflation capped at it, out to 2 cells.
    assert obstacle[5, 5] == 120
    assert obstacle[5, 6] == 120  # min(120, 186)
    assert obstacle[5, 7] == 120  # min(120, 138)
    assert obstacle[6, 6] == 120  # min(120, 164) at sqrt(2) cells
    assert obstacle[6, 7] == NO_INFORMATION  # sqrt(5) = 2.24 cells > ceil(0.2 / 0.1) = 2
    assert obstacle[5, 8] == NO_INFORMATION
    # Cost-0 class: seen, free, not inflated.
    assert obstacle[15, 15] == FREE_SPACE and obstacle[15, 14] == NO_INFORMATION
    assert obstacle[15, 12] == FREE_SPACE  # road cell 3 cells away: no inflation from a cost-0 obstacle
    # The drivable grid ignores class costs: every obstacle cell is not drivable.
    assert drivable[10, 9] == drivable[5, 5] == drivable[15, 15] == LETHAL_OBSTACLE


def test_mixed_cell_takes_max_cost_and_radius() -> None:
    cells = [(10, 10, 1.0, SIDEWALK), (10, 10, 1.0, CAR)]
    cost, radius = cell_class_rules(np.array([210, 210]), np.array([SIDEWALK, CAR]), 400, TOY_COST, TOY_RADIUS, 0.55)
    assert cost[210] == LETHAL_OBSTACLE and radius[210] == pytest.approx(0.3)
    assert cost[0] == 0 and radius[0] == pytest.approx(0.55)
    _, obstacle = build_grids(*cloud(cells), TOY_LUT, CostmapConfig(**SMALL), cost_lut=TOY_COST,
                              inflation_lut=TOY_RADIUS)
    assert obstacle[10, 10] == LETHAL_OBSTACLE and obstacle[10, 13] == nav2_cost(0.3)


def test_soft_obstacle_does_not_inflate_unknown_with_nav2_default() -> None:
    cfg = CostmapConfig(**SMALL, inflate_unknown=False)
    _, obstacle = build_grids(*cloud([(5, 5, 1.0, SIDEWALK)]), TOY_LUT, cfg, cost_lut=TOY_COST,
                              inflation_lut=TOY_RADIUS)
    assert obstacle[5, 5] == 120 and obstacle[5, 6] == NO_INFORMATION  # 120 < INSCRIBED: unknown stays unknown


def test_inflate_uniform_rules_match_default() -> None:
    rng = np.random.default_rng(2)
    cost = rng.choice(np.array([FREE_SPACE, NO_INFORMATION], np.uint8), size=(30, 40))
    mask = rng.random((30, 40)) < 0.03
    cfg = CostmapConfig(**SMALL)
    a = inflate(cost, mask, cfg)
    b = inflate(cost, mask, cfg, np.full(cost.shape, LETHAL_OBSTACLE, np.uint8),
                np.full(cost.shape, cfg.inflation_radius, np.float32))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="obstacle_radius_m must be finite and >= 0"):
        inflate(cost, mask, cfg, None, np.full(cost.shape, -1.0))


# --- publishing ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cost", "occupancy"),
    [(0, 0), (1, 1), (2, 1), (127, 49), (186, 72), (252, 98), (253, 99), (254, 100), (255, -1)],
    ids=["free", "1", "2", "127", "186", "252", "inscribed", "lethal", "unknown"],
)
def test_to_occupancy(cost: int, occupancy: int) -> None:
    got = to_occupancy(np.array([[cost]], np.uint8))
    assert got.dtype == np.int8 and got.shape == (1, 1) and int(got[0, 0]) == occupancy


def test_translation_table_is_nav2s() -> None:
    """Nav2's table (Costmap2DPublisher): 0 -> 0, 253 -> 99, 254 -> 100, 255 -> -1, and costs 1..252 scaled linearly
    onto 1..98, rounded down. The oracle samples that line in floating point (``linspace``), not the integer
    division the code uses: 97 j / 251 is never within 1/251 of an integer for 0 < j < 251 (251 is prime), so the
    float floor is exact."""
    table = COST_TRANSLATION_TABLE.astype(int)
    assert (table[0], table[253], table[254], table[255]) == (0, 99, 100, -1)
    np.testing.assert_array_equal(table[1:253], 1 + np.floor(np.linspace(0.0, 97.0, 252)).astype(int))
    assert (table[1], table[252]) == (1, 98)  # the ends of the range
    steps = np.diff(table[:255])
    assert set(steps[:252].tolist()) == {0, 1} and steps[252] == 1  # one level at a time, 252 -> 253 is 98 -> 99
    runs = np.bincount(table[1:253])[1:]  # 251 / 97 = 2.6 costs per level; 98 is reached only at 252
    assert set(runs[:97].tolist()) == {2, 3} and runs[97] == 1


def test_to_occupancy_rejects_non_uint8() -> None:
    with pytest.raises(TypeError, match="uint8"):
        to_occupancy(np.zeros(3, np.int32))


def test_shipped_cityscapes_ontology_inflates_people_wider_than_poles() -> None:
    from seg_perception.core.segmentation.zoo import CITYSCAPES_CLASSES

    cfg = CostmapConfig(resolution=0.1, width=20.0, height=20.0, inflation_radius=0.55, inflate_unknown=True)
    onto = load_ontology("cityscapes", CITYSCAPES_CLASSES)
    person, pole = CITYSCAPES_CLASSES.index("person"), CITYSCAPES_CLASSES.index("pole")
    points = np.array([[5.05, 3.05, 1.0], [5.05, -2.95, 1.0]], dtype=np.float32)  # 1 m above the ground
    labels = np.array([person, pole])
    _, obstacle = build_grids(points, labels, None, onto.roles_lut(CITYSCAPES_CLASSES), cfg,
                              cost_lut=onto.cost_lut(CITYSCAPES_CLASSES),
                              inflation_lut=onto.inflation_lut(CITYSCAPES_CLASSES, cfg.inflation_radius))  # fmt: skip
    geo = GridGeometry.from_config(cfg)
    rows, cols, _ = geo.cell_indices(np.array([5.05, 5.05, 5.05, 5.05]), np.array([3.05, 4.05, -2.95, -1.95]))
    at_person, person_1m, at_pole, pole_1m = obstacle[rows, cols]
    assert at_person == LETHAL_OBSTACLE and at_pole == LETHAL_OBSTACLE
    assert person_1m == inflation_cost(1.0, cfg) > 0  # within the person's 1.5 m radius
    assert pole_1m == NO_INFORMATION  # beyond the pole's 0.55 m: nothing written into the unknown cell


def test_precomputed_roles_give_the_same_grids() -> None:
    rng = np.random.default_rng(0)
    cfg = CostmapConfig(resolution=0.2, width=10.0, height=10.0)
    points = rng.uniform([-4, -4, -0.3], [4, 4, 1.5], size=(2000, 3)).astype(np.float32)
    labels = rng.integers(0, 3, size=2000)
    lut = np.array([Role.DRIVABLE, Role.OBSTACLE, Role.IGNORE], dtype=np.uint8)
    roles = classify_points(points, labels, None, lut, cfg)
    direct = build_grids(points, labels, None, lut, cfg)
    reused = build_grids(points, labels, None, lut, cfg, roles=roles)
    np.testing.assert_array_equal(direct[0], reused[0])
    np.testing.assert_array_equal(direct[1], reused[1])
    assert (direct[1] == LETHAL_OBSTACLE).sum() > 10 and (direct[0] == FREE_SPACE).sum() > 10
    with pytest.raises(ValueError, match="roles has 3 values"):
        build_grids(points, labels, None, lut, cfg, roles=roles[:3])


def test_class_roles_maps_ids_outside_the_table_to_ignore() -> None:
    from seg_perception.core.mapping.ontology import Role, class_roles

    lut = np.array([Role.DRIVABLE, Role.OBSTACLE, Role.GROUND_IF_FLAT], np.uint8)
    ids = [0, 1, 2, 3, 254, 255]
    want = [Role.DRIVABLE, Role.OBSTACLE, Role.GROUND_IF_FLAT, Role.IGNORE, Role.IGNORE, Role.IGNORE]
    for dtype in (np.uint8, np.uint32, np.int64):
        np.testing.assert_array_equal(class_roles(np.array(ids, dtype), lut), want)
    np.testing.assert_array_equal(class_roles(np.array([-1, 1], np.int64), lut), [Role.IGNORE, Role.OBSTACLE])
