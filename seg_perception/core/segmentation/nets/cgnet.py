"""CGNet: a light-weight Context Guided Network for semantic segmentation.

Reference: T. Wu, S. Tang, R. Zhang, J. Cao, Y. Zhang, "CGNet: A Light-weight Context Guided Network for Semantic
Segmentation", IEEE Transactions on Image Processing 30:1169-1179, 2020, arXiv:1811.08201.

This is an independent implementation written from the paper. Module attribute names follow the authors' released
checkpoints (e.g. ``level3.7.F_sur.conv.weight``) so that those weights load with ``strict=True``. Details the
paper leaves open (BatchNorm eps, concatenation orders, the f_glo reductions, the pooling used for input
injection) were checked against the checkpoint and the authors' public code (wutianyiRosun/CGNet, MIT), which
was read for facts only.

Layout for ``m`` blocks in stage 2 and ``n`` in stage 3 (the paper's CGNet_M3N21 has m=3, n=21), stride 8 overall:

- stage 1 (1/2): three 3x3 conv-BN-PReLU layers (the first with stride 2), 32 channels; the input image, average
  pooled to 1/2, is concatenated ("input injection") and the 35 channels go through BN + PReLU.
- stage 2 (1/4): a down-sampling CG block (35 -> 64 channels, surrounding-context dilation 2) followed by
  ``m - 1`` residual CG blocks (64 channels, dilation 2); concat [last block, first block, input at 1/4] = 131
  channels, BN + PReLU.
- stage 3 (1/8): a down-sampling CG block (131 -> 128, dilation 4) followed by ``n - 1`` residual CG blocks
  (128 channels, dilation 4); concat [first block, last block] = 256 channels, BN + PReLU.
- a bias-free 1x1 classifier and bilinear up-sampling (``align_corners=False``) back to the input size.

A CG block joins a local feature ``f_loc`` (3x3 depthwise conv) and a surrounding-context feature ``f_sur``
(3x3 depthwise dilated conv) of the same input, normalises the joint feature (BN + PReLU) and re-weights its
channels with a global-context vector ``f_glo`` (global average pool -> FC -> ReLU -> FC -> sigmoid; the FC
bottleneck is ``channels // reduction`` with reduction 8 in stage 2 and 16 in stage 3). All BatchNorms use
eps = 1e-3.

Input convention of the released CamVid weights: RGB (not BGR) on the 0-255 scale minus the per-channel mean
(105.65775, 103.329834, 99.625404), no division by a std (see ``core.segmentation.zoo.CGNET_CAMVID``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CGNet"]

_BN_EPS = 1e-3


class _ConvBNPReLU(nn.Module):
    """``k x k`` convolution (no bias, "same" padding) -> BatchNorm -> PReLU.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        kernel: odd kernel size.
        stride: 1, or 2 to halve height and width (rounded up).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_ch, eps=_BN_EPS)
        self.act = nn.PReLU(out_ch)

    def forward(self, x: Tensor) -> Tensor:
        """(N, in_ch, H, W) -> (N, out_ch, ceil(H / stride), ceil(W / stride))."""
        return self.act(self.bn(self.conv(x)))


class _BNPReLU(nn.Module):
    """BatchNorm followed by a per-channel PReLU (shape preserving).

    Args:
        channels: number of channels.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=_BN_EPS)
        self.act = nn.PReLU(channels)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C, H, W)."""
        return self.act(self.bn(x))


class _PlainConv(nn.Module):
    """A bias-free convolution with "same" padding, optionally depthwise and dilated.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        kernel: odd kernel size.
        dilation: dilation rate (padding grows with it so the size is kept).
        depthwise: one filter per channel (``groups = in_ch``; requires ``out_ch == in_ch``).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, dilation: int = 1, depthwise: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_ch,
            out_ch,
            kernel,
            padding=(kernel // 2) * dilation,
            dilation=dilation,
            groups=in_ch if depthwise else 1,
            bias=False,
        )

    def forward(self, x: Tensor) -> Tensor:
        """(N, in_ch, H, W) -> (N, out_ch, H, W)."""
        return self.conv(x)


class _GlobalContext(nn.Module):
    """The global-context extractor ``f_glo``: channel re-weighting from the globally pooled feature.

    ``w = sigmoid(FC2(relu(FC1(avgpool(x)))))``, output ``x * w`` (per sample and channel).

    Args:
        channels: feature channels.
        reduction: width of the FC bottleneck is ``channels // reduction``.
    """

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = channels // reduction
        # Index layout (0: FC, 1: ReLU, 2: FC, 3: sigmoid) matches the checkpoint keys fc.0.* and fc.2.*.
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels), nn.Sigmoid()
        )

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C, H, W)."""
        weights = self.fc(x.mean(dim=(2, 3)))
        return x * weights[:, :, None, None]


class _CGBlockDown(nn.Module):
    """Down-sampling context guided block: (N, in_ch, H, W) -> (N, out_ch, ceil(H/2), ceil(W/2)).

    A stride-2 3x3 conv-BN-PReLU maps to ``out_ch``; ``f_loc`` and ``f_sur`` each give ``out_ch`` channels; their
    concatenation (``2 * out_ch``) passes BN + PReLU and a 1x1 conv back to ``out_ch``, then ``f_glo``. No
    residual connection (the shapes differ).

    Args:
        in_ch: input channels.
        out_ch: output channels.
        dilation: dilation of the surrounding-context conv.
        reduction: ``f_glo`` bottleneck reduction.
    """

    def __init__(self, in_ch: int, out_ch: int, dilation: int, reduction: int) -> None:
        super().__init__()
        # Named conv1x1 in the released weights although it is a 3x3 stride-2 conv.
        self.conv1x1 = _ConvBNPReLU(in_ch, out_ch, 3, stride=2)
        self.F_loc = _PlainConv(out_ch, out_ch, 3, depthwise=True)
        self.F_sur = _PlainConv(out_ch, out_ch, 3, dilation=dilation, depthwise=True)
        self.bn = nn.BatchNorm2d(2 * out_ch, eps=_BN_EPS)
        self.act = nn.PReLU(2 * out_ch)
        self.reduce = _PlainConv(2 * out_ch, out_ch, 1)
        self.F_glo = _GlobalContext(out_ch, reduction)

    def forward(self, x: Tensor) -> Tensor:
        """(N, in_ch, H, W) -> (N, out_ch, ceil(H/2), ceil(W/2))."""
        y = self.conv1x1(x)
        joint = torch.cat((self.F_loc(y), self.F_sur(y)), dim=1)
        joint = self.reduce(self.act(self.bn(joint)))
        return self.F_glo(joint)


class _CGBlock(nn.Module):
    """Residual context guided block: (N, C, H, W) -> (N, C, H, W).

    A 1x1 conv-BN-PReLU halves the channels; ``f_loc`` and ``f_sur`` (C/2 each) are concatenated back to C,
    normalised (BN + PReLU), re-weighted by ``f_glo`` and added to the block input.

    Args:
        channels: input = output channels (even).
        dilation: dilation of the surrounding-context conv.
        reduction: ``f_glo`` bottleneck reduction.
    """

    def __init__(self, channels: int, dilation: int, reduction: int) -> None:
        super().__init__()
        half = channels // 2
        self.conv1x1 = _ConvBNPReLU(channels, half, 1)
        self.F_loc = _PlainConv(half, half, 3, depthwise=True)
        self.F_sur = _PlainConv(half, half, 3, dilation=dilation, depthwise=True)
        self.bn_prelu = _BNPReLU(channels)
        self.F_glo = _GlobalContext(channels, reduction)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C, H, W)."""
        y = self.conv1x1(x)
        joint = self.bn_prelu(torch.cat((self.F_loc(y), self.F_sur(y)), dim=1))
        return x + self.F_glo(joint)


def _avg_downsample(x: Tensor, times: int) -> Tensor:
    """Halve height and width ``times`` times with a 3x3 stride-2 average pool (zero padding counted).

    Used for the paper's input injection: (N, 3, H, W) -> (N, 3, ~H / 2**times, ~W / 2**times), sizes rounded up
    at each step exactly as the stride-2 convolutions of the main branch.
    """
    for _ in range(times):
        x = F.avg_pool2d(x, kernel_size=3, stride=2, padding=1)
    return x


class CGNet(nn.Module):
    """Context Guided Network (Wu et al., IEEE TIP 30:1169-1179, 2020, arXiv:1811.08201).

    Args:
        num_classes: output channels (11 for the CamVid weights, 19 for Cityscapes).
        m: number of CG blocks in stage 2 (including the down-sampling block), >= 1.
        n: number of CG blocks in stage 3 (including the down-sampling block), >= 1.

    Input: (N, 3, H, W) float32, any H and W (the network has stride 8; features are rounded up at each stride-2
    step). Output: logits (N, num_classes, H, W), bilinearly up-sampled (``align_corners=False``) from 1/8.

    Raises:
        ValueError: if ``num_classes``, ``m`` or ``n`` is smaller than 1.
    """

    def __init__(self, num_classes: int = 11, m: int = 3, n: int = 21) -> None:
        super().__init__()
        if num_classes < 1 or m < 1 or n < 1:
            raise ValueError(f"num_classes, m and n must be >= 1, got {num_classes}, {m}, {n}")
        self.num_classes = num_classes
        # Stage 1, 1/2 resolution.
        self.level1_0 = _ConvBNPReLU(3, 32, 3, stride=2)
        self.level1_1 = _ConvBNPReLU(32, 32, 3)
        self.level1_2 = _ConvBNPReLU(32, 32, 3)
        self.b1 = _BNPReLU(32 + 3)
        # Stage 2, 1/4 resolution.
        self.level2_0 = _CGBlockDown(32 + 3, 64, dilation=2, reduction=8)
        self.level2 = nn.ModuleList(_CGBlock(64, dilation=2, reduction=8) for _ in range(m - 1))
        self.bn_prelu_2 = _BNPReLU(64 + 64 + 3)
        # Stage 3, 1/8 resolution.
        self.level3_0 = _CGBlockDown(64 + 64 + 3, 128, dilation=4, reduction=16)
        self.level3 = nn.ModuleList(_CGBlock(128, dilation=4, reduction=16) for _ in range(n - 1))
        self.bn_prelu_3 = _BNPReLU(128 + 128)
        # Bias-free 1x1 classifier (a Sequential so that its key is classifier.0.conv.weight).
        self.classifier = nn.Sequential(_PlainConv(256, num_classes, 1))
        self._init_weights()

    def _init_weights(self) -> None:
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight)

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, H, W) normalised RGB -> logits (N, num_classes, H, W)."""
        height, width = x.shape[-2:]
        # A permuted HWC image arrives channels-last; the depthwise/dilated convs are much slower in that layout
        # on the CPU, so run in the default (NCHW-contiguous) layout.
        x = x.contiguous()
        # Stage 1 and input injection at 1/2.
        s1 = self.level1_2(self.level1_1(self.level1_0(x)))
        img_half = _avg_downsample(x, 1)
        s1 = self.b1(torch.cat((s1, img_half), dim=1))
        # Stage 2: keep the down-sampling block's output for the stage-end concatenation.
        first2 = self.level2_0(s1)
        last2 = first2
        for block in self.level2:
            last2 = block(last2)
        img_quarter = _avg_downsample(img_half, 1)
        s2 = self.bn_prelu_2(torch.cat((last2, first2, img_quarter), dim=1))
        # Stage 3.
        first3 = self.level3_0(s2)
        last3 = first3
        for block in self.level3:
            last3 = block(last3)
        s3 = self.bn_prelu_3(torch.cat((first3, last3), dim=1))
        logits = self.classifier(s3)
        return F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
