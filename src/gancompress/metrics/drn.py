"""DRN-D-105 semantic segmentation network (Yu, Koltun, Funkhouser, "Dilated Residual Networks",
CVPR 2017), the judge of the Cityscapes mIoU in the GAN Compression papers (docs/reference.md sec. 5).

Written on PyTorch alone. Tensor names follow the published `drn-d-105_ms_cityscapes.pth`
(layout: tests/fixtures/drn_d_105_cityscapes_layout.json): `base.0` .. `base.8` are the DRN's
layers 0-8 (its classifier removed), `seg` is a 1x1 conv to the 19 classes, and `up` is a fixed
depthwise transposed conv (kernel 16, stride 8) initialised to bilinear upsampling, stored in the
file. The output resolution of `forward` is the input resolution (stride 8 in, x8 up).

DRN-D layout (channels 16, 32, 64, 128, 256, 512, 512, 512; output stride 8):
    base.0  7x7 conv 3->16, BN, ReLU
    base.1  3x3 conv 16->16, BN, ReLU
    base.2  3x3 conv 16->32 stride 2, BN, ReLU
    base.3  3 bottlenecks, 64 (x4 = 256 out), stride 2
    base.4  4 bottlenecks, 128 (512 out), stride 2
    base.5  23 bottlenecks, 256 (1024 out), dilation 2
    base.6  3 bottlenecks, 512 (2048 out), dilation 4
    base.7  3x3 conv 2048->512 dilation 2, BN, ReLU  (no residual: removes gridding artifacts)
    base.8  3x3 conv 512->512, BN, ReLU
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

NUM_CLASSES = 19  # Cityscapes train ids 0..18
DRN_D_105_BLOCKS = (1, 1, 3, 4, 23, 3, 1, 1)
DRN_CHANNELS = (16, 32, 64, 128, 256, 512, 512, 512)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride, dilation) -> 1x1 x4, with a projected shortcut when shapes change."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=dilation,
                               dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + shortcut)


def _conv_layers(in_channels: int, channels: int, convs: int, stride: int = 1,
                 dilation: int = 1) -> nn.Sequential:
    modules: list[nn.Module] = []
    for i in range(convs):
        modules += [nn.Conv2d(in_channels if i == 0 else channels, channels, kernel_size=3,
                              stride=stride if i == 0 else 1, padding=dilation, dilation=dilation,
                              bias=False),
                    nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
    return nn.Sequential(*modules)


def _bottleneck_layer(in_channels: int, planes: int, blocks: int, stride: int = 1,
                      dilation: int = 1) -> nn.Sequential:
    # In DRN-D the dilated stages (5, 6) keep their dilation from the first block on
    # (new_level=False in the authors' code); the first block projects the shortcut.
    out_channels = planes * Bottleneck.expansion
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(out_channels))
    layers = [Bottleneck(in_channels, planes, stride, dilation, downsample)]
    layers += [Bottleneck(out_channels, planes, dilation=dilation) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def bilinear_up_weights(classes: int, kernel: int = 16) -> torch.Tensor:
    """(classes, 1, k, k) bilinear interpolation kernel, the fixed init of DRNSeg's `up` layer."""
    f = math.ceil(kernel / 2)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    ramp = torch.tensor([1 - abs(i / f - c) for i in range(kernel)], dtype=torch.float32)
    return (ramp[:, None] * ramp[None, :]).expand(classes, 1, kernel, kernel).clone()


class DRNSegD105(nn.Module):
    """DRN-D-105 segmenter: (B, 3, H, W) normalised image -> (B, classes, H, W) log-probabilities.

    H and W should be multiples of 8 (the network's output stride).
    """

    def __init__(self, classes: int = NUM_CLASSES) -> None:
        super().__init__()
        ch, blocks = DRN_CHANNELS, DRN_D_105_BLOCKS
        self.base = nn.Sequential(
            nn.Sequential(nn.Conv2d(3, ch[0], kernel_size=7, padding=3, bias=False),
                          nn.BatchNorm2d(ch[0]), nn.ReLU(inplace=True)),
            _conv_layers(ch[0], ch[0], blocks[0]),
            _conv_layers(ch[0], ch[1], blocks[1], stride=2),
            _bottleneck_layer(ch[1], ch[2], blocks[2], stride=2),
            _bottleneck_layer(ch[2] * 4, ch[3], blocks[3], stride=2),
            _bottleneck_layer(ch[3] * 4, ch[4], blocks[4], dilation=2),
            _bottleneck_layer(ch[4] * 4, ch[5], blocks[5], dilation=4),
            _conv_layers(ch[5] * 4, ch[6], blocks[6], dilation=2),
            _conv_layers(ch[6], ch[7], blocks[7]),
        )
        self.seg = nn.Conv2d(ch[7], classes, kernel_size=1, bias=True)
        self.up = nn.ConvTranspose2d(classes, classes, kernel_size=16, stride=8, padding=4,
                                     groups=classes, bias=False)
        with torch.no_grad():
            self.up.weight.copy_(bilinear_up_weights(classes))
        self.up.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-probabilities over the classes (log-softmax over dim 1) at the input size."""
        return torch.log_softmax(self.up(self.seg(self.base(x))), dim=1)
