"""The networks maskwatch trains: a small anchor-free face + mask detector and a crop classifier.

Detector: depthwise-separable backbone (stride 32), a light top-down FPN, and one head per level
(strides 8, 16, 32). Each grid cell predicts a face score, four distances to the box sides (in
pixels) and three mask-class logits. The exported ONNX graph applies sigmoid / softmax / exp so
that the runtime only adds cell centres (``maskwatch.core.geometry``).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.registry import STRIDES  # the one definition (core/geometry.py), read through the registry

NUM_CLASSES = 3


def conv_bn(cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class DWBlock(nn.Module):
    """Depthwise k x k then pointwise 1 x 1; residual when the shape allows."""

    def __init__(self, cin: int, cout: int, stride: int = 1, k: int = 3):
        super().__init__()
        self.dw = conv_bn(cin, cin, k, stride, groups=cin, act=False)
        self.pw = conv_bn(cin, cout, 1)
        self.res = stride == 1 and cin == cout

    def forward(self, x):
        y = self.pw(self.dw(x))
        return x + y if self.res else y


class FaceMaskNet(nn.Module):
    """Face detector with a mask-class head. ``width`` scales every channel count."""

    def __init__(self, width: float = 1.0, neck: int = 64):
        super().__init__()
        c = [max(8, int(round(v * width / 8)) * 8) for v in (16, 32, 64, 96, 160)]
        neck = max(16, int(round(neck * width / 8)) * 8)
        self.config = {"width": width, "neck": neck}
        self.stem = nn.Sequential(conv_bn(3, c[0], 3, 2), DWBlock(c[0], c[0]))  # /2
        self.s4 = nn.Sequential(DWBlock(c[0], c[1], 2), DWBlock(c[1], c[1]))  # /4
        self.s8 = nn.Sequential(DWBlock(c[1], c[2], 2), DWBlock(c[2], c[2]), DWBlock(c[2], c[2], k=5))  # /8
        self.s16 = nn.Sequential(DWBlock(c[2], c[3], 2), DWBlock(c[3], c[3], k=5), DWBlock(c[3], c[3], k=5))  # /16
        self.s32 = nn.Sequential(DWBlock(c[3], c[4], 2), DWBlock(c[4], c[4], k=5), DWBlock(c[4], c[4], k=5))  # /32
        self.lat = nn.ModuleList([conv_bn(ci, neck, 1) for ci in (c[2], c[3], c[4])])
        self.smooth = nn.ModuleList([DWBlock(neck, neck, k=5) for _ in STRIDES])
        self.head = nn.ModuleList(
            [nn.Sequential(DWBlock(neck, neck), nn.Conv2d(neck, 1 + 4 + NUM_CLASSES, 1)) for _ in STRIDES]
        )
        self._init_head()

    def _init_head(self):
        for h in self.head:
            conv = h[-1]
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)
            conv.bias.data[0] = -math.log((1 - 0.01) / 0.01)  # face prior 1 %
            conv.bias.data[1:5] = math.log(2.0)  # boxes start at about 4 strides wide

    def raw(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Per-level raw maps (N, 8, H/s, W/s), input is BGR 0..255."""
        x = (x - 127.5) / 128.0
        x = self.stem(x)
        x = self.s4(x)
        c3 = self.s8(x)
        c4 = self.s16(c3)
        c5 = self.s32(c4)
        p5 = self.lat[2](c5)
        p4 = self.lat[1](c4) + F.interpolate(p5, size=c4.shape[-2:], mode="nearest")
        p3 = self.lat[0](c3) + F.interpolate(p4, size=c3.shape[-2:], mode="nearest")
        feats = [self.smooth[i](p) for i, p in enumerate((p3, p4, p5))]
        return [self.head[i](f) for i, f in enumerate(feats)]

    @staticmethod
    def flatten(maps: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Raw maps -> (obj logits (N, A), box distances in pixels (N, A, 4), class logits (N, A, C))."""
        objs, boxes, clss = [], [], []
        for m, s in zip(maps, STRIDES):
            n = m.shape[0]
            m = m.permute(0, 2, 3, 1).reshape(n, -1, 1 + 4 + NUM_CLASSES)
            objs.append(m[..., 0])
            boxes.append(torch.exp(m[..., 1:5].clamp(-6.0, 6.0)) * s)
            clss.append(m[..., 5:])
        return torch.cat(objs, 1), torch.cat(boxes, 1), torch.cat(clss, 1)

    def forward(self, x):
        obj, dist, cls = self.flatten(self.raw(x))
        return obj, dist, cls


class ExportWrapper(nn.Module):
    """What goes into ONNX: probabilities instead of logits."""

    def __init__(self, net: FaceMaskNet):
        super().__init__()
        self.net = net

    def forward(self, x):
        obj, dist, cls = self.net(x)
        return torch.sigmoid(obj), dist, torch.softmax(cls, dim=-1)


class CropClassifier(nn.Module):
    """Mask classifier on square face crops (BGR 0..255, 96 x 96 by default)."""

    def __init__(self, width: float = 1.0, num_classes: int = NUM_CLASSES):
        super().__init__()
        c = [max(8, int(round(v * width / 8)) * 8) for v in (24, 48, 96, 160, 256)]
        self.config = {"width": width, "num_classes": num_classes}
        self.features = nn.Sequential(
            conv_bn(3, c[0], 3, 2),
            DWBlock(c[0], c[1], 2),
            DWBlock(c[1], c[1]),
            DWBlock(c[1], c[2], 2),
            DWBlock(c[2], c[2]),
            DWBlock(c[2], c[3], 2),
            DWBlock(c[3], c[3], k=5),
            DWBlock(c[3], c[4], 2),
            DWBlock(c[4], c[4], k=5),
        )
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(c[4], num_classes)

    def forward(self, x):
        x = (x - 127.5) / 128.0
        x = self.features(x)
        x = x.mean(dim=(2, 3))
        return self.fc(self.drop(x))


class ClassifierExport(nn.Module):
    def __init__(self, net: CropClassifier):
        super().__init__()
        self.net = net

    def forward(self, x):
        return torch.softmax(self.net(x), dim=-1)
