"""ESPNetv2 for semantic segmentation, written to load the authors' pretrained checkpoints strictly.

Reference: S. Mehta, M. Rastegari, L. Shapiro, H. Hajishirzi, "ESPNetv2: A Light-weight, Power Efficient, and
General Purpose Convolutional Neural Network", CVPR 2019, arXiv:1811.11431.

The network has two halves:

* **Encoder** (paper Sec. 3, Fig. 1b and Table 1): a strided 3x3 conv, then three down-sampling stages built from
  strided EESP units (Extremely Efficient Spatial Pyramid of depth-wise dilated convolutions) plus a shortcut from
  the average-pooled input image ("input reinforcement"), each followed by a stack of stride-1 EESP units. Level 5
  of the ImageNet model is not used for segmentation, so the encoder stops at stride 16.
* **Decoder** (the authors' released segmentation head): four bottom-up blocks of efficient pyramid pooling that
  upsample by 2 and add gated projections of the encoder features at strides 8, 4 and 2.

Module attribute names follow the checkpoints' ``state_dict`` keys (``base_net.level3.0.spp_dw.2.conv.weight``,
``bu_dec_l4.merge_layer.3.weight``, ...); everything else (class names, structure of the code) is our own.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ESPNetv2Segmentation", "ESPNetv2Encoder", "EESP", "EESPDownsampler", "EfficientPyramidPool"]

# Encoder output channels of levels 1-4 per width scale s (paper Table 1; level 5 is unused here).
_ENCODER_CHANNELS: dict[float, tuple[int, int, int, int]] = {
    0.5: (16, 32, 64, 128),
    1.0: (32, 64, 128, 256),
    1.25: (32, 80, 160, 320),
    1.5: (32, 96, 192, 384),
    2.0: (32, 128, 256, 512),
}
_BRANCHES = 4  # K, parallel dilated branches per EESP unit
_LEVEL3_REPEATS = 3  # stride-1 EESP units after the level-3 down-sampler
_LEVEL4_REPEATS = 7  # stride-1 EESP units after the level-4 down-sampler
# Largest effective kernel size (receptive field) allowed per EESP unit at strides 4, 8, 16: the down-sampler
# entering level 2 uses 13, the one entering level 3 uses 11, level-3 units and the level-4 down-sampler use 9,
# level-4 units use 7. See ``branch_dilations``.
_RF_LEVEL2_DOWN, _RF_LEVEL3_DOWN, _RF_LEVEL3, _RF_LEVEL4 = 13, 11, 9, 7
_REINFORCE_CHANNELS = 3  # width of the input-reinforcement conv (= RGB)
_PYRAMID_SCALES = (2.0, 1.5, 1.0, 0.5, 0.1)  # relative sizes of the pyramid-pooling branches, largest first
_PYRAMID_MIN_SIZE = 5  # smallest side of a pyramid branch, in pixels
SIZE_MULTIPLE = 16  # input height and width must be multiples of the encoder's output stride


def branch_dilations(branches: int, max_receptive_field: int) -> list[int]:
    """Dilation rates of the depth-wise 3x3 branches of one EESP unit (paper Sec. 3.1).

    Branch ``i`` would have an effective kernel size of ``3 + 2 i`` (dilation ``i + 1``); a branch whose effective
    size exceeds ``max_receptive_field`` falls back to a plain 3x3 (dilation 1). Branches are then ordered by
    increasing receptive field, so the hierarchical feature fusion adds them from smallest to largest.

    Args:
        branches: number of parallel branches K (> 0).
        max_receptive_field: the limit on the effective kernel size (odd, >= 3).
    Returns:
        ``branches`` dilation rates in ascending order, e.g. ``[1, 2, 3, 4]`` for (4, 9), ``[1, 1, 2, 3]`` for (4, 7).
    """
    sizes = sorted(k if k <= max_receptive_field else 3 for k in (3 + 2 * i for i in range(branches)))
    return [(k - 1) // 2 for k in sizes]


class ConvBNAct(nn.Module):
    """Conv2d (no bias) -> BatchNorm2d -> optional PReLU, stored as ``conv``/``bn``/``act``.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        kernel_size: square kernel size; padding keeps the size at stride 1 ("same").
        stride: convolution stride.
        groups: convolution groups.
        act: append a per-channel PReLU (``False`` leaves an ``nn.Identity`` with no parameters).
    """

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, groups: int = 1, act: bool = True
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_ch, out_ch, kernel_size, stride=stride, padding=kernel_size // 2, groups=groups, bias=False
        )
        self.bn = nn.BatchNorm2d(out_ch)
        self.act: nn.Module = nn.PReLU(out_ch) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_ch, H, W) -> (N, out_ch, H / stride, W / stride)."""
        return self.act(self.bn(self.conv(x)))


class BNAct(nn.Module):
    """BatchNorm2d -> PReLU, stored as ``bn``/``act``.

    Args:
        channels: number of channels.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H, W)."""
        return self.act(self.bn(x))


class DepthwiseDilatedConv(nn.Module):
    """A depth-wise 3x3 convolution with dilation ``d`` (padding ``d``, no bias), stored as ``conv``.

    Args:
        channels: input = output channels (one filter per channel).
        dilation: dilation rate.
        stride: 1, or 2 to halve the resolution.
    """

    def __init__(self, channels: int, dilation: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            channels, channels, 3, stride=stride, padding=dilation, dilation=dilation, groups=channels, bias=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H / stride, W / stride)."""
        return self.conv(x)


class EESP(nn.Module):
    """Extremely Efficient Spatial Pyramid unit (ESPNetv2 paper Sec. 3.1, Fig. 1b/c).

    Reduce with a group point-wise conv to ``out_ch / K`` channels, transform with K depth-wise dilated 3x3 convs,
    fuse hierarchically (branch ``i`` adds the sum of branches ``< i``) to remove gridding artefacts, concatenate,
    BN + PReLU, and merge with a group point-wise conv + BN. At stride 1 (``in_ch == out_ch``) the input is added
    back and a PReLU closes the unit. At stride 2 the unit returns the merged features before the residual and the
    activation, because ``EESPDownsampler`` concatenates them with an average-pooled copy first; its
    ``module_act`` is then unused but kept so the checkpoints load strictly.

    Args:
        in_ch: input channels (divisible by ``branches``).
        out_ch: output channels (divisible by ``branches``); must equal ``in_ch`` at stride 1.
        stride: 1 or 2.
        branches: K, the number of parallel dilated branches (the conv groups too).
        max_receptive_field: limit on the branches' effective kernel size (``branch_dilations``).
    Raises:
        ValueError: on channel counts that do not divide by ``branches`` or a stride-1 unit with in_ch != out_ch.
    """

    def __init__(
        self, in_ch: int, out_ch: int, stride: int = 1, branches: int = _BRANCHES, max_receptive_field: int = 7
    ) -> None:
        super().__init__()
        if out_ch % branches or in_ch % branches:
            raise ValueError(f"EESP channels ({in_ch} -> {out_ch}) must be divisible by branches={branches}")
        if stride == 1 and in_ch != out_ch:
            raise ValueError(f"a stride-1 EESP unit needs in_ch == out_ch for its residual, got {in_ch} -> {out_ch}")
        width = out_ch // branches
        self.stride = stride
        self.proj_1x1 = ConvBNAct(in_ch, width, 1, groups=branches)
        self.spp_dw = nn.ModuleList(
            DepthwiseDilatedConv(width, d, stride) for d in branch_dilations(branches, max_receptive_field)
        )
        self.br_after_cat = BNAct(out_ch)
        self.conv_1x1_exp = ConvBNAct(out_ch, out_ch, 1, groups=branches, act=False)
        self.module_act = nn.PReLU(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_ch, H, W) -> (N, out_ch, H / stride, W / stride)."""
        reduced = self.proj_1x1(x)
        fused: list[torch.Tensor] = []
        for branch in self.spp_dw:
            y = branch(reduced)
            fused.append(y if not fused else y + fused[-1])
        merged = self.conv_1x1_exp(self.br_after_cat(torch.cat(fused, dim=1)))
        if self.stride != 1:
            return merged
        return self.module_act(merged + x)


class EESPDownsampler(nn.Module):
    """Strided EESP block with input reinforcement (ESPNetv2 paper Sec. 3.2, Fig. 3).

    ``out = PReLU(cat(avgpool3x3/2(x), EESP/2(x)) + reinforce(image_s))`` where ``image_s`` is the RGB input
    average-pooled (3x3, stride 2, padding 1, repeatedly) down to the output resolution and ``reinforce`` is a
    3x3 conv-BN-PReLU followed by a 1x1 conv-BN to ``out_ch`` channels.

    Args:
        in_ch: input channels.
        out_ch: output channels (> in_ch; the EESP branch gives ``out_ch - in_ch``).
        max_receptive_field: limit for the EESP unit's branches.
        image_ch: channels of the reinforcing image.
    """

    def __init__(self, in_ch: int, out_ch: int, max_receptive_field: int, image_ch: int = 3) -> None:
        super().__init__()
        self.eesp = EESP(in_ch, out_ch - in_ch, stride=2, max_receptive_field=max_receptive_field)
        self.inp_reinf = nn.Sequential(
            ConvBNAct(image_ch, _REINFORCE_CHANNELS, 3),
            ConvBNAct(_REINFORCE_CHANNELS, out_ch, 1, act=False),
        )
        self.act = nn.PReLU(out_ch)

    def forward(self, x: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Down-sample by 2.

        Args:
            x: (N, in_ch, H, W) features, H and W even.
            image: (N, 3, H / 2, W / 2) input image pooled to the output resolution.
        Returns:
            (N, out_ch, H / 2, W / 2).
        """
        pooled = F.avg_pool2d(x, 3, stride=2, padding=1)
        out = torch.cat([pooled, self.eesp(x)], dim=1)
        return self.act(out + self.inp_reinf(image))


class ESPNetv2Encoder(nn.Module):
    """The ESPNetv2 backbone up to level 4 (stride 16), with input reinforcement (paper Table 1, Sec. 3.2).

    Args:
        scale: width multiplier s, one of 0.5, 1.0, 1.25, 1.5, 2.0.
    Raises:
        ValueError: for an unsupported scale.
    """

    def __init__(self, scale: float = 2.0) -> None:
        super().__init__()
        if scale not in _ENCODER_CHANNELS:
            raise ValueError(f"unsupported ESPNetv2 scale {scale}; choose one of {sorted(_ENCODER_CHANNELS)}")
        c1, c2, c3, c4 = self.channels = _ENCODER_CHANNELS[scale]
        self.level1 = ConvBNAct(3, c1, 3, stride=2)
        self.level2_0 = EESPDownsampler(c1, c2, _RF_LEVEL2_DOWN)
        self.level3_0 = EESPDownsampler(c2, c3, _RF_LEVEL3_DOWN)
        self.level3 = nn.ModuleList(EESP(c3, c3, max_receptive_field=_RF_LEVEL3) for _ in range(_LEVEL3_REPEATS))
        self.level4_0 = EESPDownsampler(c3, c4, _RF_LEVEL3)
        self.level4 = nn.ModuleList(EESP(c4, c4, max_receptive_field=_RF_LEVEL4) for _ in range(_LEVEL4_REPEATS))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode an image.

        Args:
            x: (N, 3, H, W) normalised image, H and W multiples of 16.
        Returns:
            Features at strides 2, 4, 8, 16 with ``self.channels`` channels: (N, c1, H/2, W/2), (N, c2, H/4, W/4),
            (N, c3, H/8, W/8), (N, c4, H/16, W/16).
        """
        # Input reinforcement: the image pooled (3x3, stride 2, pad 1) 2, 3 and 4 times; computed once per level
        # and shared, which gives the same values as pooling the full image again for each down-sampler.
        img4 = F.avg_pool2d(F.avg_pool2d(x, 3, stride=2, padding=1), 3, stride=2, padding=1)
        img8 = F.avg_pool2d(img4, 3, stride=2, padding=1)
        img16 = F.avg_pool2d(img8, 3, stride=2, padding=1)

        f2 = self.level1(x)
        f4 = self.level2_0(f2, img4)
        f8 = self.level3_0(f4, img8)
        for unit in self.level3:
            f8 = unit(f8)
        f16 = self.level4_0(f8, img16)
        for unit in self.level4:
            f16 = unit(f16)
        return f2, f4, f8, f16


class _ConvBNActSeq(nn.Module):
    """Conv2d (no bias) -> BatchNorm2d -> PReLU as one ``nn.Sequential`` named ``cbr`` (decoder key layout)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, groups: int = 1) -> None:
        super().__init__()
        self.cbr = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.PReLU(out_ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_ch, H, W) -> (N, out_ch, H, W)."""
        return self.cbr(x)


class _BNActSeq(nn.Module):
    """BatchNorm2d -> PReLU as one ``nn.Sequential`` named ``br`` (decoder key layout)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.br = nn.Sequential(nn.BatchNorm2d(channels), nn.PReLU(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H, W)."""
        return self.br(x)


class ChannelShuffle(nn.Module):
    """Interleave ``groups`` channel groups: channel ``g * n + i`` moves to ``i * groups + g`` (ShuffleNet).

    Args:
        groups: number of groups; the channel count must be a multiple of it.
    """

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H, W) with channels interleaved."""
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class EfficientPyramidPool(nn.Module):
    """Efficient pyramid pooling block of the ESPNetv2 segmentation decoder.

    Project to ``proj_ch`` channels (1x1 conv-BN-PReLU), then run one depth-wise 3x3 conv per pyramid scale
    s in (2.0, 1.5, 1.0, 0.5, 0.1) at ``ceil(s * size)`` pixels (at least 5): scales above 1 upsample first
    (bilinear, align_corners=True) and adaptive-average-pool back; scales below 1 adaptive-average-pool first and
    upsample back. The branches are concatenated, BN + PReLU'd, channel-shuffled so each group holds one
    projected channel at every scale, fused by a group 3x3 conv-BN-PReLU and expanded by a 1x1 conv to
    ``out_ch``; a final BN + PReLU (``br``) follows unless this is the classifier block.

    Args:
        in_ch: input channels.
        proj_ch: channels inside the pyramid.
        out_ch: output channels.
        final_bn_act: add the trailing BN + PReLU; ``False`` gives raw logits and a biased last conv.
    """

    def __init__(self, in_ch: int, proj_ch: int, out_ch: int, final_bn_act: bool = True) -> None:
        super().__init__()
        n = len(_PYRAMID_SCALES)
        self.projection_layer = _ConvBNActSeq(in_ch, proj_ch, 1)
        self.stages = nn.ModuleList(
            nn.Conv2d(proj_ch, proj_ch, 3, padding=1, groups=proj_ch, bias=False) for _ in _PYRAMID_SCALES
        )
        self.merge_layer = nn.Sequential(
            _BNActSeq(proj_ch * n),
            ChannelShuffle(n),
            _ConvBNActSeq(proj_ch * n, proj_ch, 3, groups=proj_ch),
            nn.Conv2d(proj_ch, out_ch, 1, bias=not final_bn_act),
        )
        self.br: nn.Module = _BNActSeq(out_ch) if final_bn_act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_ch, H, W) -> (N, out_ch, H, W)."""
        x = self.projection_layer(x)
        height, width = x.shape[-2:]
        branches = []
        for scale, conv in zip(_PYRAMID_SCALES, self.stages, strict=True):
            # Same float expression as the authors' (e.g. ceil(60 * 0.1) = 7), so branch sizes match exactly.
            size = (max(math.ceil(height * scale), _PYRAMID_MIN_SIZE), max(math.ceil(width * scale), _PYRAMID_MIN_SIZE))
            if scale > 1.0:
                y = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
                y = F.adaptive_avg_pool2d(conv(y), (height, width))
            elif scale < 1.0:
                y = conv(F.adaptive_avg_pool2d(x, size))
                y = F.interpolate(y, size=(height, width), mode="bilinear", align_corners=True)
            else:
                y = conv(x)
            branches.append(y)
        return self.br(self.merge_layer(torch.cat(branches, dim=1)))


class GatedProjection(nn.Module):
    """Gated projection of encoder features into the decoder (the authors' "efficient PW conv" skip connection).

    A group 3x3 conv-BN-PReLU whose output channels are scaled by ``sigmoid(W . global_avg_pool(x))``.

    Args:
        in_ch: encoder channels.
        out_ch: decoder channels; the 3x3 conv uses ``gcd(in_ch, out_ch)`` groups.
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.wt_layer = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.Sigmoid())
        self.expansion_layer = _ConvBNActSeq(in_ch, out_ch, 3, groups=math.gcd(in_ch, out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_ch, H, W) -> (N, out_ch, H, W)."""
        return self.expansion_layer(x) * self.wt_layer(x)


class ESPNetv2Segmentation(nn.Module):
    """ESPNetv2 semantic segmentation network (Mehta et al., CVPR 2019, arXiv:1811.11431).

    The encoder (``base_net``, levels 1-4) feeds a bottom-up decoder: an efficient pyramid pooling block at
    stride 16, then three times "upsample x2 (bilinear, align_corners=True) + gated projection of the encoder
    feature at that stride, BN + PReLU, pyramid pooling block"; the last block outputs the class logits at
    stride 2, which are upsampled bilinearly (align_corners=True) to the input size.

    Input: RGB scaled to [0, 1] and normalised with the ImageNet mean (0.485, 0.456, 0.406) and std
    (0.229, 0.224, 0.225). The pretrained checkpoints (Cityscapes, 20 outputs; PASCAL VOC, 21) use ``scale=2.0``.

    Args:
        num_classes: number of output channels C (>= 2).
        scale: encoder width multiplier s (0.5, 1.0, 1.25, 1.5 or 2.0).
        decoder_width: base decoder width (16 for the Cityscapes and PASCAL models); decoder blocks have
            4x, 3x and 2x this many channels and pyramids ``min(num_classes // 2, decoder_width)``.
    Raises:
        ValueError: for an unsupported scale or fewer than 2 classes.
    """

    def __init__(self, num_classes: int, scale: float = 2.0, decoder_width: int = 16) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.num_classes = num_classes
        self.base_net = ESPNetv2Encoder(scale)
        c1, c2, c3, c4 = self.base_net.channels
        d1, d2, d3 = 4 * decoder_width, 3 * decoder_width, 2 * decoder_width
        proj = min(num_classes // 2, decoder_width)

        self.bu_dec_l1 = EfficientPyramidPool(c4, proj, d1)
        self.bu_dec_l2 = EfficientPyramidPool(d1, proj, d2)
        self.bu_dec_l3 = EfficientPyramidPool(d2, proj, d3)
        self.bu_dec_l4 = EfficientPyramidPool(d3, proj, num_classes, final_bn_act=False)

        self.merge_enc_dec_l2 = GatedProjection(c3, d1)
        self.merge_enc_dec_l3 = GatedProjection(c2, d2)
        self.merge_enc_dec_l4 = GatedProjection(c1, d3)

        self.bu_br_l2 = nn.Sequential(nn.BatchNorm2d(d1), nn.PReLU(d1))
        self.bu_br_l3 = nn.Sequential(nn.BatchNorm2d(d2), nn.PReLU(d2))
        self.bu_br_l4 = nn.Sequential(nn.BatchNorm2d(d3), nn.PReLU(d3))
        self._init_weights()

    def _init_weights(self) -> None:
        # Training-from-scratch init (Kaiming fan-out for convs, BN = identity); overwritten by pretrained weights.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @staticmethod
    def _up2(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Segment a batch of normalised images.

        Args:
            x: (N, 3, H, W) float tensor, H and W multiples of 16.
        Returns:
            (N, num_classes, H, W) logits; argmax over dim 1 gives class ids.
        Raises:
            ValueError: if ``x`` is not (N, 3, H, W) or H, W are not positive multiples of 16.
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected input (N, 3, H, W), got {tuple(x.shape)}")
        height, width = x.shape[-2:]
        if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE or height == 0 or width == 0:
            raise ValueError(
                f"ESPNetv2 input height and width must be positive multiples of {SIZE_MULTIPLE}, "
                f"got {height}x{width} (HxW)"
            )
        f2, f4, f8, f16 = self.base_net(x)
        y = self.bu_dec_l1(f16)
        y = self.bu_dec_l2(self.bu_br_l2(self._up2(y) + self.merge_enc_dec_l2(f8)))
        y = self.bu_dec_l3(self.bu_br_l3(self._up2(y) + self.merge_enc_dec_l3(f4)))
        y = self.bu_dec_l4(self.bu_br_l4(self._up2(y) + self.merge_enc_dec_l4(f2)))
        return F.interpolate(y, size=(height, width), mode="bilinear", align_corners=True)
