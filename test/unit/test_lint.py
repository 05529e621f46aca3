"""Linters as tests (the ament_flake8 / ament_pep257 role on a ROS machine): ruff over the package and tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is not installed (scripts/setup.sh installs it from requirements.txt)"
    proc = subprocess.run([ruff, "check", "seg_perception", "test", "launch"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_is_clean() -> None:
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent)) or shutil.which("mypy")
    assert mypy, "mypy is not installed (scripts/setup.sh installs it from requirements.txt)"
    cmd = [mypy, "--ignore-missing-imports", "--python-executable", sys.executable, "seg_perception"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
