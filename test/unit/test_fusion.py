"""core.mapping.fusion: hand-computed log-odds, ray clearing, decay and the rolling window."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from seg_perception.core.geometry.camera import backproject, depth_to_meters
from seg_perception.core.geometry.ground import GroundConfig, fit_ground_plane
from seg_perception.core.geometry.transforms import camera_to_base, transform_points
from seg_perception.core.mapping.costs import FREE_SPACE, LETHAL_OBSTACLE, NO_INFORMATION
from seg_perception.core.mapping.fusion import RollingLogOddsGrid
from seg_perception.core.mapping.grid import CostmapConfig, FusionConfig
from seg_perception.core.mapping.ontology import PointRole, Role
from seg_perception.core.mapping.single_frame import build_grids, classify_points
from seg_perception.core.mapping.stability import grid_agreement, grid_flicker
from seg_perception.datasets import open_sequence

# 2 m x 2 m at 0.1 m: 20 x 20 cells; centred on (0, 0) the origin is (-1, -1) and cell (row, col) has its centre at
# (-0.95 + 0.1 col, -0.95 + 0.1 row). The sensor sits in cell (10, 10).
SMALL = dict(resolution=0.1, width=2.0, height=2.0)
SENSOR = (0.05, 0.05)
A = np.array([[0.55, 0.05]])  # cell (10, 15)
BEHIND_A = np.array([[0.85, 0.05]])  # cell (10, 18): rays to it cross A


def grid(**kwargs: object) -> RollingLogOddsGrid:
    return RollingLogOddsGrid(FusionConfig(**{**SMALL, **kwargs}))  # type: ignore[arg-type]


def test_hits_and_ray_misses_hand_computed() -> None:
    g = grid()
    for i in range(3):
        g.update_obstacles(SENSOR, A, None, None, None, stamp_s=0.1 * i)
    lo = g.obstacle_log_odds
    assert lo[10, 15] == pytest.approx(3 * 0.85, abs=1e-5)  # 3 hits
    np.testing.assert_allclose(lo[10, 10:15], 3 * -0.4, atol=1e-5)  # cells before the endpoint: 3 misses
    assert (lo[10, 16:] == 0).all() and (np.delete(lo, 10, axis=0) == 0).all()  # nothing else touched
    cost = g.obstacle_cost()
    assert cost[10, 15] == LETHAL_OBSTACLE
    assert (cost[10, 10:15] == FREE_SPACE).all()
    assert (cost == NO_INFORMATION).sum() == 400 - 6
    for i in range(3, 6):
        g.update_obstacles(SENSOR, A, None, None, None, stamp_s=0.1 * i)
    assert g.obstacle_log_odds[10, 15] == pytest.approx(3.5)  # clamped at clamp_max_log_odds
    assert g.obstacle_log_odds[10, 10] == pytest.approx(-2.0)  # clamped at clamp_min_log_odds


def test_confidence_weighting() -> None:
    g = grid()
    g.update_obstacles(SENSOR, A, np.array([0.5]), BEHIND_A + [0, 0.1], np.array([0.25]), stamp_s=0.0)
    assert g.obstacle_log_odds[10, 15] == pytest.approx(0.425)  # 0.85 * 0.5
    assert g.obstacle_log_odds[11, 18] == pytest.approx(-0.1)  # free endpoint: -0.4 * 0.25
    assert g.obstacle_log_odds[10, 12] == pytest.approx(-0.2)  # ray: max weight of the rays through it (0.5)
    g = grid(confidence_weighting=False)
    g.update_obstacles(SENSOR, A, np.array([0.5]), None, None, stamp_s=0.0)
    assert g.obstacle_log_odds[10, 15] == pytest.approx(0.85)


def test_hit_wins_over_miss_in_the_same_frame() -> None:
    """A ray to the ground behind a low obstacle crosses the obstacle's cell in 2-D; the hit of the same frame wins."""
    g = grid()
    g.update_obstacles(SENSOR, A, None, BEHIND_A, None, stamp_s=0.0)
    lo = g.obstacle_log_odds
    assert lo[10, 15] == pytest.approx(0.85)
    assert lo[10, 18] == pytest.approx(-0.4)  # free endpoint
    np.testing.assert_allclose(lo[10, 16:18], -0.4)  # behind A on the ray


def test_moved_obstacle_is_cleared() -> None:
    """A car at A for 5 frames, then gone: rays to the road behind it pass through A every frame.
    From L = 3.5: 3.5 - 0.4 k > 0.5 (occupied) for k <= 7; unknown for k = 8, 9; < -0.3 (free) from k = 10."""
    g = grid()
    for i in range(5):
        g.update_obstacles(SENSOR, A, None, None, None, stamp_s=0.1 * i)
    assert g.obstacle_cost()[10, 15] == LETHAL_OBSTACLE
    states = []
    for k in range(1, 11):
        g.update_obstacles(SENSOR, None, None, BEHIND_A, None, stamp_s=0.5 + 0.1 * k)
        states.append(int(g.obstacle_cost()[10, 15]))
    assert states == [LETHAL_OBSTACLE] * 7 + [NO_INFORMATION] * 2 + [FREE_SPACE]
    assert g.obstacle_log_odds[10, 15] == pytest.approx(3.5 - 10 * 0.4, abs=1e-5)
    assert g.drivable_cost()[10, 15] == NO_INFORMATION  # no longer blocked by the obstacle layer


def test_ground_points_at_the_obstacle_clear_it() -> None:
    g = grid()
    for i in range(3):
        g.update_obstacles(SENSOR, A, None, None, None, stamp_s=0.1 * i)
    for i in range(3, 10):
        g.update_obstacles(SENSOR, None, None, A, None, stamp_s=0.1 * i)  # the road where the car stood
    assert g.obstacle_log_odds[10, 15] == pytest.approx(2.55 - 7 * 0.4, abs=1e-5)
    assert g.obstacle_cost()[10, 15] == NO_INFORMATION


def test_decay_with_observation_persistence() -> None:
    g = grid(decay_time_constant_s=1.0)
    for i in range(5):
        g.update_obstacles(SENSOR, A, None, None, None, stamp_s=0.1 * i)  # re-observed cells do not decay
    assert g.obstacle_log_odds[10, 15] == pytest.approx(3.5)
    g.decay(1.4)  # 1 s after the last update
    assert g.obstacle_log_odds[10, 15] == pytest.approx(3.5 * math.exp(-1.0), rel=1e-5)
    assert g.obstacle_log_odds[10, 10] == pytest.approx(-2.0 * math.exp(-1.0), rel=1e-5)
    assert g.obstacle_cost()[10, 15] == LETHAL_OBSTACLE
    for t in np.linspace(1.5, 2.4, 10):  # decaying in steps gives the same as one step
        g.decay(float(t))
    assert g.obstacle_log_odds[10, 15] == pytest.approx(3.5 * math.exp(-2.0), rel=1e-4)  # 0.47 < 0.5
    assert g.obstacle_cost()[10, 15] == NO_INFORMATION
    # An update elsewhere decays the cells it does not touch.
    g.update_obstacles(SENSOR, np.array([[0.05, 0.55]]), None, None, None, stamp_s=3.4)
    assert g.obstacle_log_odds[10, 15] == pytest.approx(3.5 * math.exp(-3.0), rel=1e-4)
    assert g.obstacle_log_odds[15, 10] == pytest.approx(0.85)


def test_no_decay_by_default() -> None:
    g = grid()
    g.update_obstacles(SENSOR, A, None, None, None, stamp_s=0.0)
    g.decay(100.0)
    g.update_obstacles(SENSOR, np.array([[0.05, 0.55]]), None, None, None, stamp_s=100.0)
    assert g.obstacle_log_odds[10, 15] == pytest.approx(0.85)


def test_raytrace_max_range() -> None:
    g = grid(raytrace_max_range_m=0.5)
    sensor = (-0.95, 0.05)  # cell (10, 0)
    g.update_obstacles(sensor, None, None, np.array([[0.55, 0.05]]), None, stamp_s=0.0)  # 1.5 m away
    lo = g.obstacle_log_odds
    np.testing.assert_allclose(lo[10, 0:5], -0.4)  # the ray is cut at 0.5 m (cell 5)
    assert (lo[10, 5:] == 0).all()  # the far free endpoint is not marked


def test_max_rays_subsamples_rays_not_endpoints() -> None:
    ends = np.array([[0.55, 0.05], [0.05, 0.55], [-0.45, 0.05], [0.05, -0.45]])  # four rays of 5 cells
    full, few = grid(), grid(max_rays=1)
    full.update_obstacles(SENSOR, None, None, ends, None, stamp_s=0.0)
    few.update_obstacles(SENSOR, None, None, ends, None, stamp_s=0.0)
    # Each ray misses 5 cells (sensor cell included, shared by all rays); the 4 endpoints are marked either way.
    assert (full.obstacle_log_odds < 0).sum() == 4 * 5 - 3 + 4
    assert (few.obstacle_log_odds < 0).sum() == 5 + 4


def test_update_roles_and_drivable_layer() -> None:
    g = grid()
    pts = np.array([[0.55, 0.05, 0.0], [0.55, 0.05, 0.0], [0.55, 0.05, 0.0],  # cell (10, 15): 2 drivable vs 1
                    [0.05, 0.55, 0.0], [0.05, 0.55, 0.0],  # cell (15, 10): tie -> not drivable
                    [-0.45, 0.05, 0.8],  # cell (10, 5): obstacle
                    [0.05, -0.45, 0.0], [np.nan, 0, 0]])  # cell (5, 10): ignored point; NaN point
    roles = np.array([PointRole.DRIVABLE, PointRole.DRIVABLE, PointRole.NOT_DRIVABLE, PointRole.DRIVABLE,
                      PointRole.NOT_DRIVABLE, PointRole.OBSTACLE, PointRole.IGNORE, PointRole.DRIVABLE], np.uint8)
    for i in range(2):
        g.update_roles(SENSOR, pts, roles, None, stamp_s=0.1 * i)
    d = g.drivable_log_odds
    assert d[10, 15] == pytest.approx(1.7) and d[15, 10] == pytest.approx(-1.7)
    drivable = g.drivable_cost()
    assert drivable[10, 15] == FREE_SPACE and drivable[15, 10] == LETHAL_OBSTACLE
    assert drivable[10, 5] == LETHAL_OBSTACLE  # any obstacle wins
    assert drivable[5, 10] == NO_INFORMATION  # IGNORE points give no evidence, not even rays
    obstacle = g.obstacle_cost()
    assert obstacle[10, 15] == obstacle[15, 10] == FREE_SPACE and obstacle[10, 5] == LETHAL_OBSTACLE
    assert obstacle[5, 10] == NO_INFORMATION


def test_obstacle_cost_inflation() -> None:
    g = grid()
    g.update_obstacles(SENSOR, A, None, None, None, stamp_s=0.0)
    cost = g.obstacle_cost(CostmapConfig(resolution=0.1, width=2.0, height=2.0, inflation_radius=0.3))
    assert cost[10, 15] == LETHAL_OBSTACLE
    assert cost[10, 16] == int(252 * math.exp(-3.0 * 0.1))  # unknown cell, inflate_unknown (default True)
    assert cost[10, 14] == int(252 * math.exp(-3.0 * 0.1))  # free ray cell
    assert cost[10, 11] == FREE_SPACE  # 4 cells away > ceil(0.3 / 0.1)
    with pytest.raises(ValueError, match="resolution 0.05 does not match"):
        g.obstacle_cost(CostmapConfig(resolution=0.05, width=2.0, height=2.0))


def test_recenter_keeps_world_cells_in_place() -> None:
    g = grid()
    g.update_obstacles(SENSOR, A, None, None, None, stamp_s=0.0)
    g.update_obstacles(SENSOR, np.array([[-0.95, 0.05]]), None, None, None, stamp_s=0.1)  # cell (10, 0)
    before = g.obstacle_log_odds.copy()
    assert g.recenter((0.32, -0.17)) == (3, -2)  # floor(3.2) - 10 = -7 vs -10; floor(-1.7) - 10 = -12 vs -10
    geo = g.geometry
    assert (geo.origin_x, geo.origin_y) == pytest.approx((-0.7, -1.2))
    assert g.origin_cells == (-7, -12)
    rows, cols, _ = geo.cell_indices(A[:, 0], A[:, 1])
    assert (rows[0], cols[0]) == (12, 12)
    lo = g.obstacle_log_odds
    assert lo[12, 12] == pytest.approx(0.85)
    np.testing.assert_array_equal(lo[2:, :17], before[:18, 3:])  # whole-cell shift: new[r, c] = old[r - 2, c + 3]
    assert (lo[:2] == 0).all() and (lo[:, 17:] == 0).all()  # entering cells are unknown
    assert g.recenter((0.3, -0.2)) == (0, 0)  # same cells: no shift
    g.recenter((0.0, 0.0))
    lo = g.obstacle_log_odds
    assert lo[10, 15] == pytest.approx(0.85)  # back in place
    assert lo[10, 0] == 0  # left the window on the way: dropped
    g.recenter((100.0, 0.0))  # jump farther than the window
    assert (g.obstacle_log_odds == 0).all()


def test_reset() -> None:
    g = grid()
    g.update_roles(SENSOR, np.array([[0.55, 0.05, 0.0]]), np.array([PointRole.DRIVABLE], np.uint8), None, 0.0)
    g.reset()
    assert (g.obstacle_log_odds == 0).all() and (g.drivable_log_odds == 0).all()
    assert (g.obstacle_cost() == NO_INFORMATION).all() and (g.drivable_cost() == NO_INFORMATION).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(width=1000.0, height=1000.0), r"at most 4000000 cells .* 10000x10000 = 100000000"),
        (dict(max_rays=100_000), r"at most 4000000 ray samples but is 100000 \* 201 = 20100000"),
        (dict(hit_log_odds=-0.1), "hit_log_odds must be > 0"),
        (dict(miss_log_odds=0.4), "miss_log_odds must be < 0"),
        (dict(free_threshold_log_odds=0.1), "clamp_min_log_odds < free_threshold_log_odds < 0 <"),
        (dict(occupied_threshold_log_odds=4.0), "occupied_threshold_log_odds < clamp_max_log_odds"),
        (dict(decay_time_constant_s=-1.0), "decay_time_constant_s must be >= 0"),
        (dict(resolution=math.nan), "resolution must be a finite number"),
        (dict(max_rays=0), "max_rays must be an integer >= 1"),
        (dict(drivable_threshold_log_odds=0.0), "drivable_threshold_log_odds"),
    ],
    ids=["grid-too-big", "too-many-ray-samples", "hit", "miss", "free-threshold", "occupied-threshold",
         "persistence", "nan-resolution", "max-rays", "drivable-threshold"],
)
def test_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FusionConfig(**kwargs)


def test_bad_inputs() -> None:
    g = grid()
    with pytest.raises(ValueError, match=r"hit_xy must be \(N, 2\) or \(N, 3\)"):
        g.update_obstacles(SENSOR, np.zeros(4), None, None, None, 0.0)
    with pytest.raises(ValueError, match="hit_weight has 2 values but there are 1 points"):
        g.update_obstacles(SENSOR, A, np.ones(2), None, None, 0.0)
    with pytest.raises(ValueError, match="must be finite"):
        g.update_obstacles((math.nan, 0.0), A, None, None, None, 0.0)
    with pytest.raises(ValueError, match="roles has 1 values but points_odom has 2 points"):
        g.update_roles(SENSOR, np.zeros((2, 3)), np.zeros(1, np.uint8), None, 0.0)


def test_timing_30k_points_200x200() -> None:
    """Print (not assert) the time of one update with ~30k points on the default 200 x 200 grid."""
    rng = np.random.default_rng(0)
    g = RollingLogOddsGrid(FusionConfig())
    pts = np.c_[rng.uniform(0.5, 10, 30_000), rng.uniform(-5, 5, 30_000), np.zeros(30_000)]
    roles = rng.choice([PointRole.OBSTACLE, PointRole.DRIVABLE, PointRole.NOT_DRIVABLE], 30_000, p=[0.2, 0.6, 0.2])
    conf = rng.uniform(0.5, 1.0, 30_000)
    times = []
    for i in range(5):
        t0 = time.perf_counter()
        g.recenter((0.01 * i, 0.0))
        g.update_roles((0.0, 0.0), pts, roles.astype(np.uint8), conf, stamp_s=0.1 * i)
        g.obstacle_cost(CostmapConfig())
        times.append(time.perf_counter() - t0)
    print(f"fusion update, 30k points, 200x200: median {np.median(times) * 1e3:.1f} ms")
    assert (g.obstacle_cost() == LETHAL_OBSTACLE).sum() > 0


def test_seven_scenes_fusion_is_steadier_than_single_frames(kitchen_dir: Path) -> None:
    """Real hand-held Kinect frames with their poses: fused obstacle grids flicker less than single-frame grids,
    know more cells, and agree with the latest single frame on most cells they both know.

    odom is built from the sequence's (not z-up) world frame: z = the floor normal fitted in frame 0 (rough extrinsic:
    camera 1.35 m up, pitched 27 deg down), floor at z = 0. No labels: every class is ``ground_if_flat``, so the floor
    is drivable and furniture is an obstacle by height.
    """
    seq = open_sequence(kitchen_dir)
    k = seq.intrinsics.scaled(4)
    t_bc = camera_to_base((0, 0, 1.35), (0, math.radians(27), 0))
    f0 = seq[0]
    assert f0.pose is not None
    cam0 = backproject(depth_to_meters(f0.depth_mm[::4, ::4]), k)
    plane, ok = fit_ground_plane(transform_points(t_bc, cam0), GroundConfig(distance_threshold_m=0.03,
                                                                             min_inliers=100))
    assert ok
    m = f0.pose @ np.linalg.inv(t_bc)  # base_frame of frame 0 -> world
    n_w = m[:3, :3] @ np.asarray(plane.normal)
    x = np.cross([0.0, 0.0, 1.0], n_w)
    x /= np.linalg.norm(x)
    t_ow = np.eye(4)
    t_ow[:3, :3] = np.stack([x, np.cross(n_w, x), n_w])
    t_ow[2, 3] = plane.offset - float(n_w @ m[:3, 3])  # world -> odom: height above the floor is z
    assert (t_ow @ f0.pose)[2, 3] == pytest.approx(1.36, abs=0.1)  # the camera is ~1.36 m above the floor

    lut = np.array([Role.GROUND_IF_FLAT], np.uint8)
    ccfg = CostmapConfig(resolution=0.05, width=6.0, height=6.0, max_range_m=math.inf, inflation_radius=0.0)
    g = RollingLogOddsGrid(FusionConfig(resolution=0.05, width=6.0, height=6.0, raytrace_max_range_m=5.0),
                           center_xy=(t_ow @ f0.pose)[:2, 3])
    single, fused = [], []
    for i in range(0, 60, 2):
        f = seq[i]
        assert f.pose is not None
        t_oc = t_ow @ f.pose
        p = transform_points(t_oc, backproject(depth_to_meters(f.depth_mm[::4, ::4]), k).reshape(-1, 3))
        labels = np.zeros(p.shape[0], np.uint8)
        g.update_roles(t_oc[:2, 3], p, classify_points(p, labels, None, lut, ccfg), None, stamp_s=i / 30)
        single.append(build_grids(p, labels, None, lut, ccfg, geometry=g.geometry)[1])
        fused.append(g.obstacle_cost())
    flicker_single = np.nanmean([grid_flicker(a, b) for a, b in zip(single, single[1:], strict=False)])
    flicker_fused = np.nanmean([grid_flicker(a, b) for a, b in zip(fused, fused[1:], strict=False)])
    print(f"7-Scenes flicker: single {flicker_single:.4f}, fused {flicker_fused:.4f}")
    assert flicker_single > 0.005  # single frames do flicker (depth noise at obstacle borders)
    assert flicker_fused < 0.5 * flicker_single
    assert (fused[-1] != NO_INFORMATION).sum() > 1.5 * (single[-1] != NO_INFORMATION).sum()  # memory of past views
    assert grid_agreement(single[-1], fused[-1]) > 0.9
    assert (fused[-1] == LETHAL_OBSTACLE).sum() > 100 and (fused[-1] == FREE_SPACE).sum() > 500
