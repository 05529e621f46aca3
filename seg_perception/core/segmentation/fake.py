"""A fake segmentation model with known logits, for tests of the plumbing (nodes, tools, transports).

``fake_pattern`` ignores the image content: its logits depend only on the pixel position in the network input, so a
test can compute every label and confidence it must see without running a CNN and without trusting its quality.
At network resolution (h, w), pixel (row, col) belongs to

- class 0 ``top`` when ``row < h // 2``,
- class 1 ``bottom_left`` when ``row >= h // 2`` and ``col < w // 2``,
- class 2 ``bottom_right`` otherwise;

the logit of that class is ``FAKE_LOGIT`` and the others are 0, so the softmax confidence is the same everywhere:
``FAKE_CONFIDENCE = e^L / (e^L + 2)`` (0.787 for L = 2). Resized back to the image with nearest neighbour, the
regions keep their place: top half, bottom-left quarter, bottom-right quarter (up to one network pixel at the
borders). It is a registered model (``registry.get_model_spec("fake_pattern")``) without a weights file
(``self_contained``), so ``model: fake_pattern`` works wherever a model name does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from seg_perception.core.segmentation.models import ModelSpec

FAKE_CLASSES = ("top", "bottom_left", "bottom_right")
FAKE_PALETTE = ((70, 130, 180), (128, 64, 128), (220, 20, 60))
FAKE_LOGIT = 2.0
FAKE_CONFIDENCE = math.exp(FAKE_LOGIT) / (math.exp(FAKE_LOGIT) + len(FAKE_CLASSES) - 1)


class PatternLogits(nn.Module):
    """Logits (N, 3, h, w) of the fixed three-region pattern (module docstring) for an input (N, 3, h, w).

    The output has the input's dtype and device; the input values are not read.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, h, w) input -> (N, 3, h, w) logits."""
        n, _, h, w = x.shape
        rows = torch.arange(h, device=x.device)[:, None].expand(h, w)
        cols = torch.arange(w, device=x.device)[None, :].expand(h, w)
        classes = torch.where(rows < h // 2, 0, torch.where(cols < w // 2, 1, 2))
        logits = F.one_hot(classes, len(FAKE_CLASSES)).permute(2, 0, 1).to(x.dtype) * FAKE_LOGIT
        return logits.unsqueeze(0).expand(n, -1, -1, -1).contiguous()


def _build(num_classes: int) -> nn.Module:
    if num_classes != len(FAKE_CLASSES):
        raise ValueError(f"fake_pattern has {len(FAKE_CLASSES)} classes, got {num_classes}")
    return PatternLogits()


FAKE_PATTERN = ModelSpec(
    name="fake_pattern",
    builder=_build,
    categories=FAKE_CLASSES,
    palette=FAKE_PALETTE,
    mean=(0.0, 0.0, 0.0),
    std=(1.0, 1.0, 1.0),
    input_scale=1.0 / 255.0,
    size_multiple=2,
    default_hw=(32, 64),
    weights_file="",
    sha256="",
    url="",
    self_contained=True,
    ontology="fake",
    paper="none: a test model with known logits (core/segmentation/fake.py)",
    size_note="any even size; the pattern scales with the input",
)
