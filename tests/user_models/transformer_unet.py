"""A convolutional generator with a transformer block in its bottleneck (the E2GAN / TransUNet
pattern): conv downsampling, tokens = flattened feature map, pre-norm self-attention (single
head by default) with one qkv projection split in three and a learned per-channel layer scale,
a GELU MLP, tokens back to a feature map, transposed-conv upsampling. Keys: down.0.weight,
blocks.0.qkv.weight, blocks.0.gamma1, blocks.0.mlp.0.weight, up.0.weight, ..."""
from __future__ import annotations

import torch
import torch.nn as nn


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, mlp_ratio: int = 2, heads: int = 1):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.gamma1 = nn.Parameter(torch.full((dim,), 0.5))
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(),
                                 nn.Linear(mlp_ratio * dim, dim))
        self.scale = dim ** -0.5

    def forward(self, x):  # x: (B, N, C)
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        b, n, c = q.shape
        if self.heads > 1:  # (B, heads, N, C / heads): channels folded into a heads dimension
            q, k, v = (t.reshape(b, n, self.heads, c // self.heads).transpose(1, 2)
                       for t in (q, k, v))
        attn = torch.softmax(q @ k.transpose(-2, -1) * self.scale, dim=-1)
        h = attn @ v
        if self.heads > 1:
            h = h.transpose(1, 2).reshape(b, n, c)
        x = x + self.gamma1 * self.proj(h)
        return x + self.mlp(self.norm2(x))


class TransformerUNet(nn.Module):
    def __init__(self, in_ch: int = 3, out_ch: int = 3, ngf: int = 32, depth: int = 2,
                 heads: int = 1):
        super().__init__()
        self.down = nn.Sequential(
            nn.Conv2d(in_ch, ngf, 7, 1, 3), nn.InstanceNorm2d(ngf), nn.ReLU(True),
            nn.Conv2d(ngf, 2 * ngf, 4, 2, 1), nn.InstanceNorm2d(2 * ngf), nn.ReLU(True),
            nn.Conv2d(2 * ngf, 4 * ngf, 4, 2, 1), nn.InstanceNorm2d(4 * ngf), nn.ReLU(True))
        self.blocks = nn.ModuleList([TransformerBlock(4 * ngf, heads=heads) for _ in range(depth)])
        self.up = nn.Sequential(
            nn.ConvTranspose2d(4 * ngf, 2 * ngf, 4, 2, 1), nn.InstanceNorm2d(2 * ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(2 * ngf, ngf, 4, 2, 1), nn.InstanceNorm2d(ngf), nn.ReLU(True),
            nn.Conv2d(ngf, out_ch, 7, 1, 3), nn.Tanh())

    def forward(self, x):
        h = self.down(x)
        b, c, hh, ww = h.shape
        t = h.flatten(2).transpose(1, 2)
        for block in self.blocks:
            t = block(t)
        h = t.transpose(1, 2).reshape(b, c, hh, ww)
        return self.up(h)
