"""Segmentation: model registry and specs, built-in and custom models, nets, inference runtimes, class metadata,
overlay and metrics."""
