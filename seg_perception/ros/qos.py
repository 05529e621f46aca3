"""QoS profiles, defined once for the whole package."""

from __future__ import annotations

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

#: Camera / depth / camera_info inputs: best effort, keep last 1 (sensor data). While a frame is being segmented
#: only the newest message per topic waits, so the node always works on the newest frame instead of a backlog;
#: the node's pairing buffer (message_filters' synchronizer, ``ros/pairing.py``) holds a few recent messages to
#: match colour and depth stamps.
SENSOR_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=qos_profile_sensor_data.reliability,
    durability=DurabilityPolicy.VOLATILE,
)

#: Outputs of the segmentation node (labels, confidence, overlay, semantic_points): reliable, keep last 2.
#: A reliable publisher serves both reliable and best-effort subscribers.
OUTPUT_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=2,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)

#: Cloud input of the costmap node: reliable, keep last 1 (always work on the newest cloud; a cloud the transport
#: lost is sent again while the writer still has it). Best effort lost clouds above ~32 MB that reliable gets
#: (Fast DDS 3.2 over shared memory, 1920x1080 at cloud_stride 1 = 49.8 MB: the first cloud after the
#: subscription starts always, and about 1 in 10 after it; reliable: 10/10 at 2 and 5 Hz; README
#: "Transport limits"). Needs a reliable publisher: the segmentation node and ``seg-perception replay`` are.
CLOUD_IN_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)

#: Grids and label_info: reliable + transient local, depth 1 (Nav2's LatchedPublisherQoS), so late joiners such as
#: RViz or a costmap layer get the last value.
LATCHED_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
