"""AnimeGANv2's generator (bryandlee/animegan2-pytorch model.py): ConvNormLReLU blocks (reflect
pad, conv, GroupNorm(1), LeakyReLU 0.2), inverted residual blocks with a depthwise conv,
bilinear upsampling between blocks. Keys: block_a.0.1.weight, block_c.1.layers.1.1.weight, ..."""
from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F


class ConvNormLReLU(nn.Sequential):
    def __init__(self, c_in, c_out, kernel_size=3, stride=1, padding=1, groups=1, bias=False):
        super().__init__(nn.ReflectionPad2d(padding),
                         nn.Conv2d(c_in, c_out, kernel_size, stride, 0, groups=groups, bias=bias),
                         nn.GroupNorm(1, c_out, affine=True), nn.LeakyReLU(0.2, inplace=True))


class InvertedResBlock(nn.Module):
    def __init__(self, c_in, c_out, expansion_ratio=2):
        super().__init__()
        self.use_res_connect = c_in == c_out
        bottleneck = int(round(c_in * expansion_ratio))
        layers = []
        if expansion_ratio != 1:
            layers.append(ConvNormLReLU(c_in, bottleneck, kernel_size=1, padding=0))
        layers.append(ConvNormLReLU(bottleneck, bottleneck, groups=bottleneck, bias=True))
        layers.append(nn.Conv2d(bottleneck, c_out, kernel_size=1, padding=0, bias=False))
        layers.append(nn.GroupNorm(1, c_out, affine=True))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        out = self.layers(x)
        return x + out if self.use_res_connect else out


class Generator(nn.Module):
    def __init__(self, width: int = 32):
        super().__init__()
        w = width
        self.block_a = nn.Sequential(ConvNormLReLU(3, w, kernel_size=7, padding=3),
                                     ConvNormLReLU(w, 2 * w, stride=2, padding=(0, 1, 0, 1)),
                                     ConvNormLReLU(2 * w, 2 * w))
        self.block_b = nn.Sequential(ConvNormLReLU(2 * w, 4 * w, stride=2, padding=(0, 1, 0, 1)),
                                     ConvNormLReLU(4 * w, 4 * w))
        self.block_c = nn.Sequential(ConvNormLReLU(4 * w, 4 * w), InvertedResBlock(4 * w, 8 * w, 2),
                                     InvertedResBlock(8 * w, 8 * w, 2),
                                     InvertedResBlock(8 * w, 8 * w, 2),
                                     InvertedResBlock(8 * w, 8 * w, 2),
                                     ConvNormLReLU(8 * w, 4 * w))
        self.block_d = nn.Sequential(ConvNormLReLU(4 * w, 4 * w), ConvNormLReLU(4 * w, 4 * w))
        self.block_e = nn.Sequential(ConvNormLReLU(4 * w, 2 * w), ConvNormLReLU(2 * w, 2 * w),
                                     ConvNormLReLU(2 * w, w, kernel_size=7, padding=3))
        self.out_layer = nn.Sequential(nn.Conv2d(w, 3, kernel_size=1, stride=1, padding=0,
                                                 bias=False), nn.Tanh())

    def forward(self, x):
        out = self.block_a(x)
        half_size = out.size()[-2:]
        out = self.block_b(out)
        out = self.block_c(out)
        out = F.interpolate(out, half_size, mode="bilinear", align_corners=True)
        out = self.block_d(out)
        out = F.interpolate(out, x.size()[-2:], mode="bilinear", align_corners=True)
        out = self.block_e(out)
        return self.out_layer(out)
