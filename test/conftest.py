"""Shared pytest fixtures and the ROS 2 environment every test process needs.

The environment is set before anything imports rclpy: discovery stays on this machine, each test process gets its own
ROS_DOMAIN_ID, logs go to a temp dir and Fast DDS loads the package's shared-memory transport profile.
"""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SEG_PERCEPTION_SHARED", REPO.parent / "shared"))

# A run started in the background by a non-interactive shell (CI, ``cmd &``) inherits SIGINT ignored, and so would
# every process the tests start: ros2 launch would never see the SIGINT that stops it. Ctrl-C as in a terminal:
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
# Domain ids 0-101 are safe on Linux; the e2e tests use this id + 50..58 for their own processes (at most 99).
os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 41)  # our own, whatever the shell had
os.environ["ROS_LOG_DIR"] = tempfile.mkdtemp(prefix="seg_perception_roslog_")  # whatever the shell had too
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "fastdds_shm_profile.xml"))


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"test data missing: {path} (the tests need ../shared beside the repository)")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only ../shared folder (real weights and sensor data)."""
    return _require(SHARED)


@pytest.fixture(scope="session")
def model_dir(shared_dir: Path) -> Path:
    """Folder with the real pretrained weights."""
    return _require(shared_dir / "models")


@pytest.fixture(scope="session")
def kitti_dir(shared_dir: Path) -> Path:
    """KITTI raw 2011_09_26: 60 frames of 1242x375 RGB + LiDAR depth (16-bit mm) + intrinsics.json."""
    return _require(shared_dir / "data" / "kitti_2011_09_26_seq")


@pytest.fixture(scope="session")
def kitchen_dir(shared_dir: Path) -> Path:
    """7-Scenes RedKitchen: 300 frames of 640x480 RGB + Kinect depth (16-bit mm) + camera-to-world poses."""
    return _require(shared_dir / "data" / "7scenes_kitchen")


@pytest.fixture(scope="session")
def camvid_dir(shared_dir: Path) -> Path:
    """CamVid: 480x360 images/ and labels/ (ids 0-10, 11 = ignore)."""
    return _require(shared_dir / "data" / "camvid")


def _fake_pattern_expected(height: int, width: int, net_height: int, net_width: int) -> np.ndarray:
    """The labels ``fake_pattern`` must give on an (height, width) image run at (net_height, net_width), from the
    pattern's definition alone (top half 0, bottom-left quarter 1, bottom-right quarter 2, by the position of each
    pixel centre); 255 where a pixel centre lies within one network pixel of a region border (either side is
    right there, depending on the resize's rounding)."""
    y = (np.arange(height)[:, None] + 0.5) / height  # relative pixel-centre position in [0, 1]
    x = (np.arange(width)[None, :] + 0.5) / width
    expected = np.where(y < 0.5, 0, np.where(x < 0.5, 1, 2)).astype(np.uint8)
    near_row = np.abs(y - 0.5) <= 1.0 / net_height
    near_col = (np.abs(x - 0.5) <= 1.0 / net_width) & (y > 0.5 - 1.0 / net_height)
    expected[np.broadcast_to(near_row | near_col, expected.shape)] = 255
    return expected


@pytest.fixture(scope="session")
def fake_pattern_expected():  # noqa: ANN201
    """``expected(height, width, net_height, net_width)`` -> (H, W) uint8 labels of ``fake_pattern`` (255 = border)."""
    return _fake_pattern_expected


#: Fixtures that read ../shared (real weights and sensor data): a test using any of them is in the ``data`` tier.
DATA_FIXTURES = {"shared_dir", "model_dir", "kitti_dir", "kitchen_dir", "camvid_dir"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tiers by folder and by what a test reads: ``e2e`` (processes), ``node`` (in-process ROS), ``data`` (real
    weights or data from ../shared), ``unit`` (the rest: pure, fast; ``scripts/test.sh -m unit``)."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "e2e" in parts:
            item.add_marker(pytest.mark.e2e)
        elif "node" in parts:
            item.add_marker(pytest.mark.node)
        elif DATA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.data)
        else:
            item.add_marker(pytest.mark.unit)
