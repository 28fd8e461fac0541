"""Pure NumPy geometry: anchor points, box decoding, IoU and non-maximum suppression.

The detector is anchor-free (one point per grid cell on strides 8, 16 and 32) and predicts
distances from the cell centre to the four box sides, so decoding is a subtraction.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

STRIDES: tuple[int, ...] = (8, 16, 32)


@lru_cache(maxsize=32)
def anchor_points(height: int, width: int, strides: tuple[int, ...] = STRIDES) -> np.ndarray:
    """Cell centres (x, y) in input pixels for every level, level by level, row-major.

    The network input (height, width) must be a multiple of the largest stride.
    Returns an (A, 3) float32 array of (cx, cy, stride).
    """
    out = []
    for s in strides:
        gh, gw = -(-height // s), -(-width // s)
        ys, xs = np.mgrid[0:gh, 0:gw]
        cx = (xs.reshape(-1) + 0.5) * s
        cy = (ys.reshape(-1) + 0.5) * s
        out.append(np.stack([cx, cy, np.full_like(cx, s)], axis=1))
    pts = np.concatenate(out, axis=0).astype(np.float32)
    pts.setflags(write=False)
    return pts


def distances_to_boxes(points: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Turn (left, top, right, bottom) distances from points (cx, cy, ...) into x1y1x2y2 boxes."""
    cx, cy = points[:, 0], points[:, 1]
    return np.stack([cx - dist[:, 0], cy - dist[:, 1], cx + dist[:, 2], cy + dist[:, 3]], axis=1)


def box_area(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    area: np.ndarray = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    return area


def short_side(boxes: np.ndarray) -> np.ndarray:
    """Each box's shorter side."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    side: np.ndarray = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    return side


def intersection_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The area shared by every box of a (N, 4) and every box of b (M, 4), as an (N, M) array."""
    a = np.asarray(a, dtype=np.float32).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float32).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter: np.ndarray = wh[..., 0] * wh[..., 1]
    return inter


def containment_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The share of every box of a (N, 4) that lies inside every box of b (M, 4), as an (N, M) array."""
    inside: np.ndarray = intersection_matrix(a, b) / np.maximum(box_area(a), 1e-9)[:, None]
    return inside


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between every box of a (N, 4) and every box of b (M, 4), as an (N, M) array."""
    a = np.asarray(a, dtype=np.float32).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float32).reshape(-1, 4)
    inter = intersection_matrix(a, b)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.45, max_keep: int | None = None) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, highest score first (``max_keep`` at most:
    it stops there)."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    areas = box_area(boxes)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        if not rest.size or len(keep) == max_keep:
            break
        lt = np.maximum(boxes[i, :2], boxes[rest, :2])
        rb = np.minimum(boxes[i, 2:], boxes[rest, 2:])
        wh = np.clip(rb - lt, 0, None)
        inter = wh[:, 0] * wh[:, 1]
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def weighted_box_merge(
    boxes: np.ndarray, scores: np.ndarray, keep: np.ndarray, iou_threshold: float, *extra: np.ndarray
) -> np.ndarray | tuple[np.ndarray, ...]:
    """Replace each kept box (and any per-box ``extra`` rows, e.g. class probabilities) by the
    score-weighted mean over the boxes it suppressed.

    Used when several passes (flip, scales, tiles) vote on one face: the average is steadier
    than any single pass. Returns the merged boxes, or a tuple (boxes, *extra) when extra is given.
    """
    if not len(keep):
        return (boxes[keep], *(e[keep] for e in extra)) if extra else boxes[keep]
    parts: list[list[np.ndarray]] = [[] for _ in range(1 + len(extra))]
    for i in range(0, len(keep), 256):  # rows in blocks: thousands of candidates need no gigabyte matrix
        w = (iou_matrix(boxes[keep[i : i + 256]], boxes) > iou_threshold) * scores[None, :]
        w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-9)
        for out, rows in zip(parts, (boxes, *extra)):
            out.append(w @ rows)
    merged = [np.concatenate(m) for m in parts]
    return tuple(merged) if extra else merged[0]


def class_vote(
    boxes: np.ndarray,
    scores: np.ndarray,
    probs: np.ndarray,
    keep: np.ndarray,
    iou_threshold: float = 0.5,
    min_score: float = 0.0,
) -> np.ndarray:
    """Class probabilities of each kept box voted by the candidates around it: the score-weighted
    geometric mean of the probabilities of every box scoring at least ``min_score`` and overlapping
    it by more than ``iou_threshold`` (and always itself), normalised to sum to 1.

    One pass gives a face several candidates (neighbouring anchors); NMS keeps the highest scored,
    whose class branch alone is noisier than their vote (mobile, every candidate voting: Kaggle val
    label accuracy 0.957 -> 0.964; the arithmetic mean gave 0.963). The geometric mean lets one candidate that is sure a
    class is absent outweigh several lukewarm ones.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if not len(keep) or probs.shape[1] == 0:
        empty: np.ndarray = probs[keep].astype(np.float32)
        return empty
    logp = np.log(np.clip(probs, 1e-6, 1.0))
    voters = np.where(scores >= min_score, scores, 0.0).astype(np.float64)
    out = []
    for i in range(0, len(keep), 256):  # rows in blocks, as in weighted_box_merge
        w = (iou_matrix(boxes[keep[i : i + 256]], boxes) > iou_threshold) * voters[None, :]
        w[np.arange(len(w)), keep[i : i + 256]] = np.maximum(scores[keep[i : i + 256]], 1e-6)  # always its own vote
        w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
        p = np.exp(w @ logp)
        out.append(p / p.sum(axis=1, keepdims=True))
    return np.concatenate(out).astype(np.float32)


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    out = np.array(boxes, dtype=np.float32).reshape(-1, 4)
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height)
    return out


def expand_boxes(boxes: np.ndarray, factor: float) -> np.ndarray:
    """Grow boxes about their centre by ``factor`` and make them square (for face crops)."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) * factor
    half = side[:, None] / 2
    return np.concatenate([c - half, c + half], axis=1)
