"""StarGAN's generator (Choi et al. 2018, yunjey/stargan model.Generator): the target domain
label, a (B, c_dim) vector, is tiled over the image and concatenated to it; a 7x7 stem, two
stride-2 convs, residual blocks and two transposed convs, all with affine InstanceNorm that
tracks running statistics. Two inputs: forward(x, c). Keys: main.0.weight, main.1.running_mean,
main.9.main.0.weight, ..."""
from __future__ import annotations

import torch
import torch.nn as nn


def _norm(c: int) -> nn.Module:
    return nn.InstanceNorm2d(c, affine=True, track_running_stats=True)


class ResidualBlock(nn.Module):
    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(dim_in, dim_out, 3, 1, 1, bias=False), _norm(dim_out), nn.ReLU(inplace=True),
            nn.Conv2d(dim_out, dim_out, 3, 1, 1, bias=False), _norm(dim_out))

    def forward(self, x):
        return x + self.main(x)


class Generator(nn.Module):
    def __init__(self, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6):
        super().__init__()
        layers = [nn.Conv2d(3 + c_dim, conv_dim, 7, 1, 3, bias=False), _norm(conv_dim),
                  nn.ReLU(inplace=True)]
        curr = conv_dim
        for _ in range(2):
            layers += [nn.Conv2d(curr, curr * 2, 4, 2, 1, bias=False), _norm(curr * 2),
                       nn.ReLU(inplace=True)]
            curr *= 2
        layers += [ResidualBlock(curr, curr) for _ in range(repeat_num)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(curr, curr // 2, 4, 2, 1, bias=False),
                       _norm(curr // 2), nn.ReLU(inplace=True)]
            curr //= 2
        layers += [nn.Conv2d(curr, 3, 7, 1, 3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x, c):
        c = c.view(c.size(0), c.size(1), 1, 1).repeat(1, 1, x.size(2), x.size(3))
        return self.main(torch.cat([x, c], dim=1))


def first_domain(x: torch.Tensor) -> torch.Tensor:
    """A user's condition hook (not part of StarGAN): the target label for an image batch, here
    always the first of the 5 domains, so that image-only callers (the compress pipeline,
    generate, the demo) run the generator as an image-to-image translation into that domain."""
    c = x.new_zeros(x.shape[0], 5)
    c[:, 0] = 1
    return c
