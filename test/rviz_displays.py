"""The displays of ``config/seg_perception.rviz``: what RViz 2 would subscribe to (shared by the RViz config tests).

RViz 2 cannot run here, so its config is read as the YAML it is; each default-plugin display class maps to the one
message type it subscribes to (rviz_default_plugins, Kilted).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

RVIZ_FILE = Path(__file__).resolve().parents[1] / "config" / "seg_perception.rviz"
#: rviz_default_plugins display class -> the message type it subscribes to.
DISPLAY_TYPES = {
    "rviz_default_plugins/Map": "nav_msgs/msg/OccupancyGrid",
    "rviz_default_plugins/PointCloud2": "sensor_msgs/msg/PointCloud2",
    "rviz_default_plugins/Image": "sensor_msgs/msg/Image",
    "rviz_default_plugins/Marker": "visualization_msgs/msg/Marker",
}
#: Displays without a topic (they read TF or draw by themselves).
NO_TOPIC = {"rviz_default_plugins/Grid", "rviz_default_plugins/TF"}


@dataclass(frozen=True)
class Display:
    """One RViz display with a topic."""

    name: str
    cls: str
    topic: str
    msg_type: str
    durability: str  # "Volatile" (RViz's default) or "Transient Local"
    reliability: str  # "Reliable" (RViz's default) or "Best Effort"


def load(path: Path = RVIZ_FILE) -> tuple[dict, list[Display]]:
    """(the parsed config, the displays with a topic).

    Raises:
        KeyError: a display of a class not in ``DISPLAY_TYPES`` / ``NO_TOPIC`` (add it once its type is known).
    """
    cfg = yaml.safe_load(path.read_text())
    out = []
    for d in cfg["Visualization Manager"]["Displays"]:
        if d["Class"] in NO_TOPIC:
            continue
        topic = d["Topic"]
        qos = topic.get("Durability Policy", "Volatile"), topic.get("Reliability Policy", "Reliable")
        out.append(Display(d["Name"], d["Class"], topic["Value"], DISPLAY_TYPES[d["Class"]], *qos))
    return cfg, out
