"""YuNet-n rebuilt as a PyTorch module, with maskwatch's mask-class head added.

YuNet-n (ShiqiYu/libfacedetection.train, Apache-2.0) is a 75,856-parameter face detector trained
on all of WIDER FACE train. ``../shared/teachers/yunet_n_dynamic.onnx`` holds its weights with the
batch norms already folded into the convolutions; ``YuNet.from_onnx`` copies them into this module
(the convolutions are walked in graph order, so the file's anonymous initialiser names do not
matter). The layers, read off that graph:

* backbone: a 3x3 stride-2 convolution, then "depthwise-pointwise" units (a 1x1 convolution, a 3x3
  depthwise convolution, ReLU) in five stages separated by 2x2 max pooling (strides 4 to 32);
* neck: top-down, the stride-32 features through one unit, upsampled (nearest) and added to the
  stride-16 and stride-8 backbone features, each sum through one unit;
* head: one shared unit per level, then per output (class score, box, objectness, five landmarks)
  a 1x1 convolution and a 3x3 convolution grouped per output channel.

``YuNet("YuNetMaskLite")`` runs stage 2's two 64-channel units after the stride-8
pooling instead of before it: the same tensors on a quarter of the positions. Those two units were a
quarter of YuNet-n's time on a 640x480 input (docs/speed.md); in that layout the network takes 0.8x the time.
``YuNetMaskNarrow`` keeps them at stride 4 at 32 channels (stage 2: 16, 32, 32, 64; 0.83x): new
tensors there, taught first to give the starting network's stage-2 features (``loop.mimic_stage2``).

``YuNet`` gives the ONNX file's outputs (for the port test). ``YuNetMask`` adds a mask-class branch
per level (one unit, started from the level's shared unit, then 1x1 + grouped 3x3 to three logits)
and returns what maskwatch's training loop and exporter take: a face-score logit, distances (px)
from maskwatch's cell centres to the four box sides, and class logits. Its face score is YuNet's,
``sqrt(cls * obj)``.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

STRIDES = (8, 16, 32)
# the layouts of YuNet-n's network that maskwatch trains, by arch name: the stage-2 unit from which
# the features are at stride 8 (4: all four at stride 4, as YuNet-n), and stage 2's widths
LAYOUTS: dict[str, dict] = {
    "YuNetMask": {"stride8_from": 4, "stage2_widths": (16, 64, 64, 64)},
    "YuNetMaskLite": {"stride8_from": 2, "stage2_widths": (16, 64, 64, 64)},
    "YuNetMaskNarrow": {"stride8_from": 4, "stage2_widths": (16, 32, 32, 64)},
}
OUTPUTS = {"cls": 1, "bbox": 4, "obj": 1, "kps": 10}  # per level, in the graph's order
NUM_CLASSES = 3


def _flat(m: torch.Tensor, k: int) -> torch.Tensor:
    """(N, k, H, W) maps -> (N, H*W, k) rows, one per grid cell in row-major order."""
    return m.permute(0, 2, 3, 1).reshape(m.shape[0], -1, k)


class Unit(nn.Module):
    """1x1 convolution, 3x3 depthwise convolution, ReLU (YuNet's building block; biases carry the folded
    BN). Without ``act``: an output head (a 1x1 convolution to ``cout`` maps, a 3x3 grouped per map)."""

    def __init__(self, cin: int, cout: int, act: bool = True):
        super().__init__()
        self.pw = nn.Conv2d(cin, cout, 1)
        self.dw = nn.Conv2d(cout, cout, 3, 1, 1, groups=cout)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dw(self.pw(x))
        return F.relu(y) if self.act else y

    def convs(self) -> list[nn.Conv2d]:
        return [self.pw, self.dw]


def Out(cin: int, k: int) -> Unit:
    return Unit(cin, k, act=False)


class YuNet(nn.Module):
    """YuNet-n. Input: BGR 0..255 float, height and width multiples of 32 (padded with 0)."""

    def __init__(self, layout: str = "YuNetMask") -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"unknown YuNet arch {layout!r}: {', '.join(LAYOUTS)}")
        self.layout = layout
        self.stride8_from: int = LAYOUTS[layout]["stride8_from"]
        self.stem = nn.Conv2d(3, 16, 3, 2, 1)
        self.stage1 = nn.ModuleList([Unit(16, 16)])  # /2
        w = (16, *LAYOUTS[layout]["stage2_widths"])
        self.stage2 = nn.ModuleList([Unit(w[i], w[i + 1]) for i in range(4)])  # /4
        self.stage3 = nn.ModuleList([Unit(64, 64), Unit(64, 64)])  # /8
        self.stage4 = nn.ModuleList([Unit(64, 64), Unit(64, 64)])  # /16
        self.stage5 = nn.ModuleList([Unit(64, 64), Unit(64, 64)])  # /32
        self.lateral = nn.ModuleList([Unit(64, 64) for _ in STRIDES])  # applied to p5, then p4, then p3
        self.shared = nn.ModuleList([Unit(64, 64) for _ in STRIDES])  # per level 8, 16, 32
        self.outs = nn.ModuleDict({k: nn.ModuleList([Out(64, n) for _ in STRIDES]) for k, n in OUTPUTS.items()})

    def graph_convs(self) -> list[nn.Conv2d]:
        """Every convolution in the order the ONNX graph runs them."""
        convs: list[nn.Conv2d] = [self.stem]
        for stage in (self.stage1, self.stage2, self.stage3, self.stage4, self.stage5):
            for u in stage:
                convs += u.convs()
        convs += self.lateral[0].convs() + self.lateral[1].convs() + self.lateral[2].convs()
        convs += self.shared[0].convs() + self.shared[1].convs() + self.shared[2].convs()
        for k in OUTPUTS:
            for o in self.outs[k]:
                convs += o.convs()
        return convs

    def stage2_in(self, x: torch.Tensor) -> torch.Tensor:
        """What stage 2 takes (stride 4) for a BGR 0..255 input."""
        return F.max_pool2d(self.stage1[0](F.relu(self.stem(x))), 2, 2)

    def run_stage2(self, x: torch.Tensor) -> torch.Tensor:
        for i, u in enumerate(self.stage2):
            x = u(F.max_pool2d(x, 2, 2) if i == self.stride8_from else x)
        return x

    def stage2_out(self, x: torch.Tensor) -> torch.Tensor:
        """Stage 2's output for a BGR 0..255 input (what a narrower stage 2 is taught to give)."""
        return self.run_stage2(self.stage2_in(x))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Per-level head features (strides 8, 16, 32) for a BGR 0..255 input."""
        x = self.stage2_out(x)
        if self.stride8_from == len(self.stage2):
            x = F.max_pool2d(x, 2, 2)
        feats = []
        for j, stage in enumerate((self.stage3, self.stage4, self.stage5)):
            x = F.max_pool2d(x, 2, 2) if j else x
            for u in stage:
                x = u(x)
            feats.append(x)
        c3, c4, c5 = feats
        p5 = self.lateral[0](c5)
        p4 = self.lateral[1](c4 + F.interpolate(p5, size=c4.shape[-2:], mode="nearest"))
        p3 = self.lateral[2](c3 + F.interpolate(p4, size=c3.shape[-2:], mode="nearest"))
        return [self.shared[i](p) for i, p in enumerate((p3, p4, p5))]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The ONNX file's outputs: ``cls_8`` ... ``kps_32``, each (N, cells, k), cls and obj after sigmoid."""
        out = {}
        for i, (f, s) in enumerate(zip(self.features(x), STRIDES)):
            for k, n in OUTPUTS.items():
                m = _flat(self.outs[k][i](f), n)
                out[f"{k}_{s}"] = torch.sigmoid(m) if k in ("cls", "obj") else m
        return out

    @classmethod
    def from_onnx(cls, path: str | Path) -> "YuNet":
        net = cls()
        load_yunet_weights(net, path)
        return net


def load_yunet_weights(net: YuNet, path: str | Path) -> int:
    """Copy the weights of YuNet-n's ONNX file into ``net`` (conv by conv, in graph order)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    nodes = [n for n in graph.node if n.op_type == "Conv"]
    convs = net.graph_convs()
    if len(nodes) != len(convs):
        raise ValueError(f"{path}: {len(nodes)} convolutions, the YuNet-n port has {len(convs)}")
    for node, conv in zip(nodes, convs):
        w, b = (torch.from_numpy(inits[name].copy()) for name in node.input[1:3])
        if tuple(w.shape) != tuple(conv.weight.shape):
            raise ValueError(
                f"{path}: {node.name} has weights {tuple(w.shape)}, the port expects {tuple(conv.weight.shape)}"
            )
        with torch.no_grad():
            conv.weight.copy_(w)
            assert conv.bias is not None
            conv.bias.copy_(b)
    return len(convs)


class YuNetMask(nn.Module):
    """YuNet-n with a mask-class branch; forward gives maskwatch's (face logit, distances, class logits)."""

    def __init__(self, base: YuNet | None = None):
        super().__init__()
        self.base = base or YuNet()
        self.cls_shared = nn.ModuleList([Unit(64, 64) for _ in STRIDES])
        self.cls_out = nn.ModuleList([Out(64, NUM_CLASSES) for _ in STRIDES])
        self.config = {"arch": self.base.layout}
        # YuNet's landmark head feeds no output of maskwatch's file: exported files leave it out
        self.export_unused = ("base.outs.kps.",)
        self._init_class_branch()

    @classmethod
    def of_arch(cls, arch: str) -> "YuNetMask":
        """``YuNetMask`` (YuNet-n's layout), ``YuNetMaskLite`` (stage 2's 64-channel units at stride 8:
        the same tensors, so either loads the other's weights) or ``YuNetMaskNarrow`` (stage 2 at 32
        channels until its last unit: new tensors there, taught first to give YuNet-n's stage-2
        features, ``loop.mimic_stage2``)."""
        return cls(YuNet(arch))

    @torch.no_grad()
    def _init_class_branch(self) -> None:
        """The class units start as copies of the face units (features already tuned to faces)."""
        for mine, theirs in zip(self.cls_shared, self.base.shared):
            mine.load_state_dict(theirs.state_dict())
        for o in self.cls_out:
            nn.init.normal_(o.pw.weight, std=0.01)
            nn.init.zeros_(o.pw.bias)
            nn.init.zeros_(o.dw.weight)
            o.dw.weight[:, :, 1, 1] = 1.0  # the grouped 3x3 starts as the identity
            nn.init.zeros_(o.dw.bias)

    def load_teacher(self, path: str | Path) -> None:
        load_yunet_weights(self.base, path)
        self._init_class_branch()

    def freeze_backbone(self, stages: int) -> list[nn.Parameter]:
        """Freeze the stem and the first ``stages`` backbone stages (they keep YuNet's weights)."""
        frozen: list[nn.Parameter] = []
        mods: list[nn.Module] = [
            self.base.stem,
            self.base.stage1,
            self.base.stage2,
            self.base.stage3,
            self.base.stage4,
            self.base.stage5,
        ][: stages + 1]
        for m in mods:
            for p in m.parameters():
                p.requires_grad_(False)
                frozen.append(p)
        return frozen

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b = self.base
        objs, dists, clss = [], [], []
        for i, (f, s) in enumerate(zip(b.features(x), STRIDES)):
            flat = _flat
            # face score sqrt(sigmoid(cls) * sigmoid(obj)), as a logit (the exporter applies the sigmoid)
            s_face = torch.sqrt(
                torch.sigmoid(flat(b.outs["cls"][i](f), 1)) * torch.sigmoid(flat(b.outs["obj"][i](f), 1))
            )
            s_face = s_face.clamp(1e-6, 1 - 1e-6)
            objs.append((torch.log(s_face) - torch.log(1 - s_face))[..., 0])
            bb = flat(b.outs["bbox"][i](f), 4)
            half = torch.exp(bb[..., 2:4].clamp(-8.0, 8.0)) * (s / 2)
            off = (bb[..., 0:2] - 0.5) * s  # box centre minus maskwatch's cell centre (YuNet's prior is the corner)
            dists.append(torch.cat([half - off, half + off], -1))
            clss.append(flat(self.cls_out[i](self.cls_shared[i](f)), NUM_CLASSES))
        return torch.cat(objs, 1), torch.cat(dists, 1), torch.cat(clss, 1)
