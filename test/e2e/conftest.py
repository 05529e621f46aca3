"""Fixtures of the end-to-end tests: a colcon workspace with this package, built once per test session."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from seg_perception.workspace import build_workspace, local_ros_env

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def colcon_ws(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A colcon workspace with a copy of this repository's package in src/seg_perception, built into a temp dir
    (``colcon build``, as a user does: no symlink install); returns the workspace and the environment to run it in
    (the venv's ``bin`` first on PATH, the venv prefix on AMENT_PREFIX_PATH; each test sets its ROS_DOMAIN_ID).

    A copy rather than a symlink: `colcon build` of an ament_python package writes egg-info into the source tree.
    """
    ws = tmp_path_factory.mktemp("ws")
    skip = ("out", "build", "install", "log", "__pycache__", "*.egg-info", ".git", ".venv", ".*_cache")
    shutil.copytree(REPO, ws / "src" / "seg_perception", ignore=shutil.ignore_patterns(*skip), symlinks=True)
    env = local_ros_env()
    prefixes = [p for p in env.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    env["AMENT_PREFIX_PATH"] = os.pathsep.join([sys.prefix] + [p for p in prefixes if p != sys.prefix])
    build_workspace(ws, ws / "src" / "seg_perception", symlink=False)
    return ws, env
