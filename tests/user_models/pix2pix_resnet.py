"""pix2pix / CycleGAN's ResNet generator (Zhu, Isola et al. 2017, junyanz/pytorch-CycleGAN-and-
pix2pix networks.ResnetGenerator), the teacher of GAN Compression, written as a user's plain
module: reflection-padded 7x7 stem, two stride-2 convs, residual blocks, two transposed convs,
a 7x7 head and tanh. Batch norm (the class default, convs without bias) or instance norm
(CycleGAN; convs with bias). Keys: model.1.weight, model.2.running_mean,
model.10.conv_block.1.weight, model.19.weight, model.26.weight (ngf 64, 9 blocks, batch)."""
from __future__ import annotations

import torch.nn as nn


def _norm(kind: str, c: int) -> nn.Module:
    return nn.BatchNorm2d(c) if kind == "batch" else nn.InstanceNorm2d(c)


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, norm: str, bias: bool, dropout: bool):
        super().__init__()
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), _norm(norm, dim),
                  nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), _norm(norm, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 9,
                 norm: str = "batch", dropout: bool = False):
        super().__init__()
        bias = norm != "batch"
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=bias),
                  _norm(norm, ngf), nn.ReLU(True)]
        for i in range(2):
            c = ngf * 2 ** i
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=bias), _norm(norm, 2 * c),
                       nn.ReLU(True)]
        layers += [ResnetBlock(4 * ngf, norm, bias, dropout) for _ in range(n_blocks)]
        for i in range(2):
            c = ngf * 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1,
                                          bias=bias), _norm(norm, c // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)
