"""Ground projection on real frames (``tools/projection_check.measure``: segmentation once, the costmap core with
and without projection, offline = online): KITTI gains drivable cells ahead and agrees with the LiDAR-backed ground;
with the PASCAL VOC model (no drivable class: ``background`` is ``ground_if_flat``) nothing is projected and the
kitchen grids are unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from seg_perception.core.mapping.ontology import Role, load_ontology
from seg_perception.core.segmentation.registry import get_model_spec
from seg_perception.datasets import open_sequence
from seg_perception.resources import config_path
from seg_perception.tools.bag_from_frames import write_bag
from seg_perception.tools.projection_check import measure


@pytest.fixture(scope="module")
def kitti_bag(tmp_path_factory, kitti_dir):  # noqa: ANN001, ANN201
    bag = tmp_path_factory.mktemp("kitti") / "bag"
    write_bag(open_sequence(kitti_dir), bag, limit=6, progress=False)
    return bag


@pytest.fixture(scope="module")
def kitchen_bag(tmp_path_factory, kitchen_dir):  # noqa: ANN001, ANN201
    bag = tmp_path_factory.mktemp("kitchen") / "bag"
    write_bag(open_sequence(kitchen_dir), bag, limit=4, progress=False)
    return bag


def test_kitti_projection_fills_the_visible_road_and_agrees_with_lidar(kitti_bag, model_dir) -> None:  # noqa: ANN001
    # the set-up: default input size (camera aspect), cloud_stride 2, no odometry; grid and ranges to 30 m
    # so the whole box 1-25 m ahead, |y| < 2 m is inside
    params = {"weights": str(model_dir), "device": "cpu", "global_frame": "", "width": 60.0, "height": 60.0,
              "max_range_m": 30.0, "ground_projection.max_range_m": 30.0}  # fmt: skip
    res = measure(kitti_bag, [config_path("seg_perception.yaml")], params)
    assert res["frames"] == 6 and res["box_cells"] == 2400 and not res["rejected"]
    # LiDAR alone: ~29 % of the road the camera sees in the box is drivable; with projection ~96 % (60 frames)
    # LiDAR alone: ~29 % of the road the camera sees in the box is drivable; with projection 80-85 % (the rest is
    # road within the boundary margin of cars, under their bodies; 96 % without the margin)
    assert res["visible_filled_before"] < 0.4 and res["visible_filled_after"] > 0.75, res
    assert res["gain"] > 2.5 and res["grid_cells_after"] > 2.5 * res["grid_cells_before"], res
    # where LiDAR has points in a projected cell, it says drivable too (the issue's >= 90 %), ground cells or all
    assert res["overlap_cells"] > 1000 and res["agreement"] >= 0.9 and res["ground_agreement"] >= 0.95, res
    assert res["agree_cells"] <= res["ground_overlap_cells"] <= res["overlap_cells"]
    assert res["unchanged_frames"] == 0


def test_the_boundary_margin_keeps_projected_road_out_of_the_cars(kitti_bag, model_dir) -> None:  # noqa: ANN001
    # the same frames without the margin: road seen under and beside the cars lands in the cells of their LiDAR
    # points; the margin (obstacle_clearance_m 0.5, side_margin_m 0.05: the defaults) removes most of those
    params = {"weights": str(model_dir), "device": "cpu", "global_frame": "", "width": 60.0, "height": 60.0,
              "max_range_m": 30.0, "ground_projection.max_range_m": 30.0}  # fmt: skip
    files = [config_path("seg_perception.yaml")]
    off = measure(kitti_bag, files, params | {"ground_projection.obstacle_clearance_m": 0.0,
                                              "ground_projection.side_margin_m": 0.0}, limit=3)  # fmt: skip
    on = measure(kitti_bag, files, params, limit=3)
    in_cars = {name: r["overlap_cells"] - r["ground_overlap_cells"] for name, r in (("off", off), ("on", on))}
    assert in_cars["off"] > 300 and in_cars["on"] < 0.2 * in_cars["off"], in_cars
    assert off["agreement"] < 0.75 and on["agreement"] >= 0.9, (off["agreement"], on["agreement"])
    # the road away from the cars stays: most of the gain is kept
    assert on["box_cells_after"] > 0.7 * off["box_cells_after"] > on["box_cells_before"], (off, on)


def test_voc_has_no_drivable_class_so_kitchen_grids_are_unchanged(kitchen_bag, model_dir) -> None:  # noqa: ANN001
    spec = get_model_spec("espnetv2_pascal")
    roles = load_ontology(spec.ontology, spec.categories).roles_lut(spec.categories)
    assert Role.DRIVABLE not in roles and roles[spec.categories.index("background")] == Role.GROUND_IF_FLAT
    files = [config_path("seg_perception.yaml"), config_path("demo_kitchen.yaml")]
    res = measure(kitchen_bag, files, {"weights": str(model_dir), "device": "cpu", "input_width": 256,
                                       "input_height": 192})  # fmt: skip
    assert res["frames"] == 4 and res["unchanged_frames"] == 4  # fused grids too, frame after frame
    assert res["grid_cells_after"] == res["grid_cells_before"] > 0
    assert res["overlap_cells"] == 0 and not res["rejected"]


def test_a_ground_if_flat_class_is_never_projected(kitti_bag, model_dir, tmp_path) -> None:  # noqa: ANN001
    # Cityscapes with road turned into ground_if_flat: no class is drivable, so nothing is projected
    import yaml

    from seg_perception.core.mapping.ontology import find_package_ontology

    onto = yaml.safe_load(find_package_ontology("cityscapes").read_text())
    onto["classes"]["road"] = "ground_if_flat"
    path = tmp_path / "road_if_flat.yaml"
    path.write_text(yaml.safe_dump(onto))
    params = {"weights": str(model_dir), "device": "cpu", "global_frame": "", "ontology": str(path)}
    res = measure(kitti_bag, [config_path("seg_perception.yaml")], params, limit=2)
    assert res["frames"] == 2 and res["unchanged_frames"] == 2 and res["overlap_cells"] == 0
    assert np.isclose(res["grid_cells_after"], res["grid_cells_before"])
