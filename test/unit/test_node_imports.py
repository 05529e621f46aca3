"""What each node process loads: the costmap node needs numpy, not the network runtimes."""

from __future__ import annotations

import subprocess
import sys


def test_costmap_node_does_not_load_torch() -> None:
    """The costmap node maps clouds with numpy; torch, torchvision, OpenVINO or ONNX Runtime in its process would
    cost it ~700 MB of RSS for nothing (measured: 1,034 MB in the 30-minute soak before; after, 338 MB at start and
    373-375 MB over a 3-minute soak)."""
    code = (
        "import sys, seg_perception.ros.costmap_node; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'torchvision', 'openvino', 'onnxruntime')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
