"""Geometry: camera model, point clouds, rigid transforms and poses, the ground plane."""
