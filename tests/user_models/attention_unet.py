"""Attention U-Net (Oktay et al. 2018; the AttU_Net of LeeJunHyun/Image_Segmentation): double
conv blocks, max-pool downsampling, upsample + conv, and on every skip an attention gate
(1x1 convs of gate and skip, ReLU, 1x1 conv to one channel, sigmoid) that scales the skip before
it is concatenated with the decoder. Keys: Conv1.conv.0.weight, Att5.W_g.0.weight,
Up5.up.1.weight, ..."""
from __future__ import annotations

import torch
import torch.nn as nn


class conv_block(nn.Module):  # noqa: N801 - the published name
    def __init__(self, ch_in: int, ch_out: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(ch_in, ch_out, 3, 1, 1, bias=True), nn.BatchNorm2d(ch_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(ch_out, ch_out, 3, 1, 1, bias=True), nn.BatchNorm2d(ch_out),
            nn.ReLU(inplace=True))

    def forward(self, x):
        return self.conv(x)


class up_conv(nn.Module):  # noqa: N801
    def __init__(self, ch_in: int, ch_out: int):
        super().__init__()
        self.up = nn.Sequential(nn.Upsample(scale_factor=2),
                                nn.Conv2d(ch_in, ch_out, 3, 1, 1, bias=True),
                                nn.BatchNorm2d(ch_out), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.up(x)


class Attention_block(nn.Module):  # noqa: N801
    def __init__(self, F_g: int, F_l: int, F_int: int):  # noqa: N803
        super().__init__()
        self.W_g = nn.Sequential(nn.Conv2d(F_g, F_int, 1), nn.BatchNorm2d(F_int))
        self.W_x = nn.Sequential(nn.Conv2d(F_l, F_int, 1), nn.BatchNorm2d(F_int))
        self.psi = nn.Sequential(nn.Conv2d(F_int, 1, 1), nn.BatchNorm2d(1), nn.Sigmoid())
        self.relu = nn.ReLU(inplace=True)

    def forward(self, g, x):
        psi = self.psi(self.relu(self.W_g(g) + self.W_x(x)))
        return x * psi


class AttU_Net(nn.Module):  # noqa: N801
    def __init__(self, img_ch: int = 3, output_ch: int = 3, base: int = 64, tanh: bool = True):
        super().__init__()
        c = [base, base * 2, base * 4, base * 8, base * 16]
        self.tanh = tanh
        self.Maxpool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.Conv1 = conv_block(img_ch, c[0])
        self.Conv2 = conv_block(c[0], c[1])
        self.Conv3 = conv_block(c[1], c[2])
        self.Conv4 = conv_block(c[2], c[3])
        self.Conv5 = conv_block(c[3], c[4])
        self.Up5 = up_conv(c[4], c[3])
        self.Att5 = Attention_block(c[3], c[3], c[2])
        self.Up_conv5 = conv_block(c[4], c[3])
        self.Up4 = up_conv(c[3], c[2])
        self.Att4 = Attention_block(c[2], c[2], c[1])
        self.Up_conv4 = conv_block(c[3], c[2])
        self.Up3 = up_conv(c[2], c[1])
        self.Att3 = Attention_block(c[1], c[1], c[0])
        self.Up_conv3 = conv_block(c[2], c[1])
        self.Up2 = up_conv(c[1], c[0])
        self.Att2 = Attention_block(c[0], c[0], c[0] // 2)
        self.Up_conv2 = conv_block(c[1], c[0])
        self.Conv_1x1 = nn.Conv2d(c[0], output_ch, 1)

    def forward(self, x):
        x1 = self.Conv1(x)
        x2 = self.Conv2(self.Maxpool(x1))
        x3 = self.Conv3(self.Maxpool(x2))
        x4 = self.Conv4(self.Maxpool(x3))
        x5 = self.Conv5(self.Maxpool(x4))
        d = x5
        for up, att, conv, skip in ((self.Up5, self.Att5, self.Up_conv5, x4),
                                    (self.Up4, self.Att4, self.Up_conv4, x3),
                                    (self.Up3, self.Att3, self.Up_conv3, x2),
                                    (self.Up2, self.Att2, self.Up_conv2, x1)):
            d = up(d)
            d = conv(torch.cat((att(g=d, x=skip), d), dim=1))
        out = self.Conv_1x1(d)
        return torch.tanh(out) if self.tanh else out
