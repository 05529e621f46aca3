"""Mapping: ontology roles, grids and Nav2 costs, single-frame grids, temporal fusion, the voxel map, the pipeline."""
