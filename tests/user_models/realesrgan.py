"""Real-ESRGAN's SRVGGNetCompact (Wang et al. 2021, xinntao/Real-ESRGAN srvgg_arch.py): a plain
conv + PReLU body at low resolution, a last conv to out * upscale^2 channels, pixel shuffle, plus
the nearest-upsampled input. Keys: body.0.weight, body.1.weight (PReLU), body.2.weight, ..."""
from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F


class SRVGGNetCompact(nn.Module):
    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64,
                 num_conv: int = 16, upscale: int = 4, act_type: str = "prelu"):
        super().__init__()
        self.upscale = upscale
        self.body = nn.ModuleList([nn.Conv2d(num_in_ch, num_feat, 3, 1, 1),
                                   self._act(act_type, num_feat)])
        for _ in range(num_conv):
            self.body.append(nn.Conv2d(num_feat, num_feat, 3, 1, 1))
            self.body.append(self._act(act_type, num_feat))
        self.body.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.upsampler = nn.PixelShuffle(upscale)

    @staticmethod
    def _act(kind: str, channels: int) -> nn.Module:
        if kind == "relu":
            return nn.ReLU(inplace=True)
        if kind == "prelu":
            return nn.PReLU(num_parameters=channels)
        return nn.LeakyReLU(negative_slope=0.1, inplace=True)

    def forward(self, x):
        out = x
        for layer in self.body:
            out = layer(out)
        out = self.upsampler(out)
        return out + F.interpolate(x, scale_factor=self.upscale, mode="nearest")
