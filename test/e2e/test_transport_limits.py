"""A 1920x1080 RGB-D stream at cloud_stride 1 crosses processes intact with the shipped Fast DDS profile.

Two processes (``seg-perception transport-check``): a sender publishes 16UC1 depth images (4.1 MB, reliable like
``seg-perception replay`` and most drivers) and 1920x1080 semantic clouds (49.8 MB at ``CLOUD_DTYPE``'s 24 bytes
a point, the segmentation node's ``OUTPUT_QOS``); a receiver subscribes with the nodes' QoS (``SENSOR_QOS``,
the costmap's ``CLOUD_IN_QOS``) and hashes what arrives.
"""

from __future__ import annotations

import os

import pytest

from seg_perception.core.geometry.cloud import CLOUD_DTYPE
from seg_perception.tools.transport_check import run_check

pytestmark = pytest.mark.e2e


def test_1080p_depth_and_stride_1_clouds_arrive_intact() -> None:
    count = 5
    result = run_check(1080, 1920, count=count, rate_hz=2.0, domain_id=int(os.environ["ROS_DOMAIN_ID"]) + 53)
    assert result["profile"].endswith("config/fastdds_shm_profile.xml")
    assert result["predicted_warning"] is None  # the start-up check agrees that it fits
    depth, cloud = result["topics"]["depth"], result["topics"]["semantic_points"]
    assert depth["bytes"] == 1080 * 1920 * 2 and cloud["bytes"] == 1080 * 1920 * CLOUD_DTYPE.itemsize
    for name, topic in (("depth", depth), ("semantic_points", cloud)):
        assert topic["sent"] == count, name
        assert (topic["intact"], topic["corrupt"], topic["missing"]) == (count, 0, []), (name, topic)
        assert topic["message_lost_events"] == 0 and topic["stamp_gaps"] == 0, (name, topic)
    assert result["all_intact"]
