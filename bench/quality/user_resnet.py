"""A pix2pix ResNet generator written as a user would write it: plain torch.nn layers, no
gancompress code. Its module names match the hand-written family's (models/resnet.py, dense
convs, instance norm without affine), so the `demo` teacher's state dict loads into it as is:
bench_quality's `paired-auto` task converts it automatically (models/traced.py) and compresses
it next to the hand-written ResNet family (issue 24 item 4)."""
from __future__ import annotations

import torch
import torch.nn as nn


class ConvNormAct(nn.Module):
    def __init__(self, conv: nn.Module, channels: int, pad: int = 0):
        super().__init__()
        self.pad = nn.ReflectionPad2d(pad) if pad else nn.Identity()
        self.conv = conv
        self.norm = nn.InstanceNorm2d(channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.norm(self.conv(self.pad(x))))


class Block(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.pad1, self.pad2 = nn.ReflectionPad2d(1), nn.ReflectionPad2d(1)
        self.conv1, self.conv2 = nn.Conv2d(c, c, 3), nn.Conv2d(c, c, 3)
        self.norm1, self.norm2 = nn.InstanceNorm2d(c), nn.InstanceNorm2d(c)
        self.act = nn.ReLU(inplace=True)
        self.dropout = nn.Identity()

    def forward(self, x):
        h = self.dropout(self.act(self.norm1(self.conv1(self.pad1(x)))))
        return x + self.norm2(self.conv2(self.pad2(h)))


class PlainResnet(nn.Module):
    def __init__(self, ngf: int = 24, n_blocks: int = 6, in_channels: int = 1,
                 out_channels: int = 3):
        super().__init__()
        self.stem = ConvNormAct(nn.Conv2d(in_channels, ngf, 7), ngf, pad=3)
        self.down1 = ConvNormAct(nn.Conv2d(ngf, 2 * ngf, 3, 2, 1), 2 * ngf)
        self.down2 = ConvNormAct(nn.Conv2d(2 * ngf, 4 * ngf, 3, 2, 1), 4 * ngf)
        self.blocks = nn.ModuleList(Block(4 * ngf) for _ in range(n_blocks))
        self.up1 = ConvNormAct(nn.ConvTranspose2d(4 * ngf, 2 * ngf, 3, 2, 1, 1), 2 * ngf)
        self.up2 = ConvNormAct(nn.ConvTranspose2d(2 * ngf, ngf, 3, 2, 1, 1), ngf)
        self.head_pad = nn.ReflectionPad2d(3)
        self.head = nn.Conv2d(ngf, out_channels, 7)

    def forward(self, x):
        h = self.down2(self.down1(self.stem(x.clamp(-1, 1))))
        for block in self.blocks:
            h = block(h)
        return torch.tanh(self.head(self.head_pad(self.up2(self.up1(h)))))
