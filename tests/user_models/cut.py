"""CUT / FastCUT's ResNet generator (Park et al. 2020, taesungp/contrastive-unpaired-translation
networks.ResnetGenerator) with its anti-aliased sampling: a stride-1 conv followed by a blurred
stride-2 Downsample, and an Upsample (blurred transposed conv, filter as a buffer) before each
up conv. Keys: model.1.weight, model.6.filt, model.10.conv_block.1.weight, ..."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _filter(size: int) -> torch.Tensor:
    a = {1: [1.0], 2: [1.0, 1.0], 3: [1.0, 2.0, 1.0], 4: [1.0, 3.0, 3.0, 1.0]}[size]
    f = torch.tensor(a)
    f = f[:, None] * f[None, :]
    return f / f.sum()


class Downsample(nn.Module):
    def __init__(self, channels: int, filt_size: int = 3, stride: int = 2):
        super().__init__()
        self.stride = stride
        p = (filt_size - 1) / 2
        self.pad = nn.ReflectionPad2d([int(p), int(p + 0.5), int(p), int(p + 0.5)])
        self.register_buffer("filt", _filter(filt_size)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x):
        return F.conv2d(self.pad(x), self.filt, stride=self.stride, groups=x.shape[1])


class Upsample(nn.Module):
    def __init__(self, channels: int, filt_size: int = 4, stride: int = 2):
        super().__init__()
        self.filt_odd = filt_size % 2 == 1
        self.pad_size = (filt_size - 1) // 2
        self.stride = stride
        self.pad = nn.ReplicationPad2d([1, 1, 1, 1])
        filt = _filter(filt_size) * stride ** 2
        self.register_buffer("filt", filt[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x):
        out = F.conv_transpose2d(self.pad(x), self.filt, stride=self.stride,
                                 padding=1 + self.pad_size, groups=x.shape[1])[:, :, 1:, 1:]
        return out if self.filt_odd else out[:, :, :-1, :-1]


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, norm_layer):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), norm_layer(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), norm_layer(dim))

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 9,
                 no_antialias: bool = False):
        super().__init__()
        norm_layer = nn.InstanceNorm2d
        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=True), norm_layer(ngf),
                 nn.ReLU(True)]
        for i in range(2):
            mult = 2 ** i
            if no_antialias:
                model += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1),
                          norm_layer(ngf * mult * 2), nn.ReLU(True)]
            else:
                model += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=1, padding=1),
                          norm_layer(ngf * mult * 2), nn.ReLU(True), Downsample(ngf * mult * 2)]
        model += [ResnetBlock(ngf * 4, norm_layer) for _ in range(n_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            if no_antialias:
                model += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1,
                                             output_padding=1)]
            else:
                model += [Upsample(ngf * mult),
                          nn.Conv2d(ngf * mult, ngf * mult // 2, 3, stride=1, padding=1)]
            model += [norm_layer(ngf * mult // 2), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x)
