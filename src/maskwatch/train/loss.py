"""Target assignment and losses for the anchor-free detector.

Each face is taught at the levels whose size range holds it, on the cells near its centre
(within 1.5 strides and inside the box; always at least the nearest cell). The face score is
trained toward the IoU of the predicted box (quality focal loss), so scores rank boxes well
for AP; boxes with GIoU; classes with cross-entropy on faces whose class is known.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .net import STRIDES

# face size (longest side, px at network input) taught at each stride
LEVEL_RANGES = {8: (0.0, 64.0), 16: (32.0, 160.0), 32: (96.0, 1e9)}
CENTER_RADIUS = 1.5


def anchor_points(h: int, w: int, device=None) -> torch.Tensor:
    pts = []
    for s in STRIDES:
        gh, gw = -(-h // s), -(-w // s)
        ys, xs = torch.meshgrid(torch.arange(gh, device=device), torch.arange(gw, device=device), indexing="ij")
        cx = (xs.reshape(-1).float() + 0.5) * s
        cy = (ys.reshape(-1).float() + 0.5) * s
        pts.append(torch.stack([cx, cy, torch.full_like(cx, s)], 1))
    return torch.cat(pts, 0)


def assign(points: torch.Tensor, boxes: torch.Tensor, ignore: torch.Tensor):
    """Returns (gt index per point or -1, ignore mask per point)."""
    A = points.shape[0]
    gt_idx = torch.full((A,), -1, dtype=torch.long)
    ign = torch.zeros(A, dtype=torch.bool)
    if boxes.numel() == 0:
        return gt_idx, ign
    cx, cy, st = points[:, 0:1], points[:, 1:2], points[:, 2:3]
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    gcx, gcy = (x1 + x2) / 2, (y1 + y2) / 2
    side = torch.maximum(x2 - x1, y2 - y1)
    inside = (cx > x1) & (cx < x2) & (cy > y1) & (cy < y2)
    near = ((cx - gcx).abs() < CENTER_RADIUS * st) & ((cy - gcy).abs() < CENTER_RADIUS * st)
    lo = torch.zeros_like(st)
    hi = torch.zeros_like(st)
    for s, (a, b) in LEVEL_RANGES.items():
        m = st == s
        lo[m], hi[m] = a, b
    in_range = (side >= lo) & (side <= hi)
    cand = inside & near & in_range
    # make sure each face has at least its nearest cell at its best level
    best_stride = torch.where(side < 40, 8, torch.where(side < 112, 16, 32))
    dist = (cx - gcx) ** 2 + (cy - gcy) ** 2
    dist = torch.where(st == best_stride[None, :].float(), dist, torch.full_like(dist, 1e12))
    nearest = dist.argmin(0)
    cand[nearest, torch.arange(len(boxes))] = True
    area = ((x2 - x1) * (y2 - y1))[None, :].expand(A, -1)
    area = torch.where(cand, area, torch.full_like(area, 1e12))
    min_area, best = area.min(1)
    has = min_area < 1e12
    gt_idx[has] = best[has]
    # points taken by an ignored face are neither positive nor negative
    ign_pts = has & ignore[gt_idx.clamp(min=0)]
    gt_idx[ign_pts] = -1
    ign |= ign_pts
    # also ignore points whose centre lies inside an ignored face
    if ignore.any():
        ign |= inside[:, ignore].any(1) & (gt_idx < 0)
    return gt_idx, ign


def giou(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """IoU and GIoU of matching rows of x1y1x2y2 boxes."""
    lt = torch.maximum(a[:, :2], b[:, :2])
    rb = torch.minimum(a[:, 2:], b[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    union = area_a + area_b - inter + 1e-7
    iou = inter / union
    elt = torch.minimum(a[:, :2], b[:, :2])
    erb = torch.maximum(a[:, 2:], b[:, 2:])
    ewh = (erb - elt).clamp(min=0)
    enc = ewh[:, 0] * ewh[:, 1] + 1e-7
    return iou, iou - (enc - union) / enc


CLASS_WEIGHTS = torch.tensor([1.0, 1.5, 2.0])  # mask, no_mask, incorrect (rare)


def detection_loss(obj, dist, cls, gt_boxes, gt_labels, gt_ignore, image_hw, labelled_out: list | None = None):
    """obj (N, A) logits, dist (N, A, 4) px, cls (N, A, C) logits; ground truth as lists per image.
    ``labelled_out``, when given, receives the (N, A) mask of the cells that a labelled face takes
    (``distill_loss``'s ``labelled``)."""
    n = obj.shape[0]
    pts = anchor_points(*image_hw)
    obj_t = torch.zeros_like(obj)
    obj_w = torch.ones_like(obj)
    box_p, box_t, cls_p, cls_t = [], [], [], []
    npos = 0
    for i in range(n):
        b = torch.as_tensor(gt_boxes[i], dtype=torch.float32).reshape(-1, 4)
        lab = torch.as_tensor(gt_labels[i], dtype=torch.long).reshape(-1)
        ig = torch.as_tensor(gt_ignore[i], dtype=torch.bool).reshape(-1)
        idx, ign = assign(pts, b, ig)
        obj_w[i, ign] = 0.0
        pos = idx >= 0
        if not pos.any():
            continue
        p = pts[pos]
        d = dist[i, pos]
        pred = torch.stack([p[:, 0] - d[:, 0], p[:, 1] - d[:, 1], p[:, 0] + d[:, 2], p[:, 1] + d[:, 3]], 1)
        tgt = b[idx[pos]]
        box_p.append(pred)
        box_t.append(tgt)
        with torch.no_grad():
            iou, _ = giou(pred, tgt)
        obj_t[i, pos] = iou.clamp(min=0.05)
        npos += int(pos.sum())
        lab_pos = lab[idx[pos]]
        known = lab_pos >= 0
        if known.any():
            cls_p.append(cls[i, pos][known])
            cls_t.append(lab_pos[known])
    npos = max(npos, 1)
    if labelled_out is not None:
        labelled_out.append(obj_t > 0)
    # quality focal loss on the face score
    sig = obj.sigmoid()
    qfl = F.binary_cross_entropy_with_logits(obj, obj_t, reduction="none") * (sig - obj_t).abs().pow(2.0)
    loss_obj = (qfl * obj_w).sum() / npos
    if box_p:
        bp, bt = torch.cat(box_p), torch.cat(box_t)
        _, g = giou(bp, bt)
        loss_box = (1 - g).sum() / npos
    else:
        loss_box = obj.sum() * 0
    if cls_p:
        cp, ct = torch.cat(cls_p), torch.cat(cls_t)
        loss_cls = F.cross_entropy(cp, ct, weight=CLASS_WEIGHTS, label_smoothing=0.05)
    else:
        loss_cls = obj.sum() * 0
    total = loss_obj + 2.0 * loss_box + 0.5 * loss_cls
    return total, {
        "obj": float(loss_obj.detach()),
        "box": float(loss_box.detach()),
        "cls": float(loss_cls.detach()),
        "npos": npos / n,
    }


DISTILL_SURE = 0.5  # the teacher's face score above which its box is a target too


def distill_loss(obj, dist, t_obj, t_dist, labelled=None):
    """Keep a fine-tuned detector near its starting network: every cell's face score toward the
    teacher's (quality-focal weighted, summed and divided by the teacher's sure cells), and on those
    sure cells the box distances toward the teacher's (L1 of the logs, i.e. relative).

    ``labelled`` (an (N, A) mask of the cells a labelled face takes, ``detection_loss``'s
    ``labelled_out``) makes the teacher's score a floor there, not a target: a labelled face that the
    teacher scores low (masked under a hood, turned, covered: what the fine-tuning is for) may rise
    above it without the teacher pulling it back down; everywhere else the pull is both ways."""
    t = torch.sigmoid(t_obj)
    sure = t > DISTILL_SURE
    n = max(int(sure.sum()), 1)
    sig = obj.sigmoid()
    score = F.binary_cross_entropy_with_logits(obj, t, reduction="none") * (sig - t).abs().pow(2.0)
    if labelled is not None:
        score = torch.where(labelled & (sig.detach() > t), torch.zeros_like(score), score)
    loss = score.sum() / n
    if sure.any():
        ld = torch.log(dist[sure].clamp(min=0.5)) - torch.log(t_dist[sure].clamp(min=0.5))
        loss = loss + ld.abs().mean()
    return loss
