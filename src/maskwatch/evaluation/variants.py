"""Validation pictures changed on purpose, with their labels changed to match: turned (rotated by any
angle, the boxes rotated with them), covered (caps, hoods, hazmat hoods, goggles and sunglasses drawn
on the labelled faces) and close-ups (one face cut out and enlarged until it fills most of the picture). ``benchmarks/accuracy.py`` reports recall and precision on them beside the
pictures as they are, so that what a model loses on a turned or covered face is measured.

The drawings follow the face box alone (no landmarks): the eyes lie about 40 % down a face box, the
forehead above them. They are crude on purpose: they take away what a detector trained on bare,
uncovered faces leans on (hair, forehead, eyes), not photographs of real hats.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from ..core.geometry import short_side
from .datasets import Sample

COVERINGS = ("cap", "hood", "hazmat", "goggles", "sunglasses")
MIN_COVERED_PX = 24  # faces smaller than this are left as they are: a drawn hat on 10 pixels is noise
MIN_CLOSE_UP_PX = 64  # the smallest face a close-up is made of: enlarging fewer pixels only blurs
CLOSE_UP_PX = (400.0, 900.0)  # a close-up's face height, px: the range of phone close-ups and door cameras
CLOSE_UP_FILL = (0.35, 0.9)  # the share of the close-up's height the face takes
COLOURS = ((40, 40, 40), (30, 30, 120), (120, 60, 20), (200, 200, 200), (60, 110, 60), (20, 20, 20), (0, 140, 230))


def rotate(img: np.ndarray, boxes: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """``img`` turned ``angle`` degrees counter-clockwise on a canvas that holds all of it (padded
    with its mean colour), and each box as the upright box around its turned corners."""
    h, w = img.shape[:2]
    if angle % 360 == 0:
        return img.copy(), boxes.copy()
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(round(h * sin + w * cos)), int(round(h * cos + w * sin))
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    fill = tuple(float(v) for v in img.reshape(-1, img.shape[2]).mean(0))
    out = cv2.warpAffine(img, m, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=fill)
    if not len(boxes):
        return out, boxes.copy()
    x1, y1, x2, y2 = boxes.T
    corners = np.stack([np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x2, y2], 1), np.stack([x1, y2], 1)], 1)
    turned = corners @ m[:, :2].T + m[:, 2]
    new = np.concatenate([turned.min(1), turned.max(1)], 1).astype(np.float32)
    return out, new


def rotate_sample(sample: Sample, img: np.ndarray, angle: float) -> tuple[Sample, np.ndarray]:
    """A sample and its picture turned by ``angle`` degrees (see ``rotate``)."""
    out, boxes = rotate(img, sample.boxes, angle)
    return replace(sample, boxes=boxes), out


def cover(img: np.ndarray, box: np.ndarray, kind: str, colour: tuple[int, int, int]) -> None:
    """Draw one covering on the face in ``box`` (in place)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    cx = (x1 + x2) / 2
    eye_y = y1 + 0.4 * h

    def pt(x: float, y: float) -> tuple[int, int]:
        return int(round(x)), int(round(y))

    if kind == "cap":  # a crown over the forehead and a brim at the brows
        cv2.ellipse(img, pt(cx, y1 + 0.22 * h), pt(0.56 * w, 0.42 * h), 0, 180, 360, colour, -1)
        cv2.rectangle(img, pt(x1 - 0.12 * w, y1 + 0.16 * h), pt(x2 + 0.12 * w, y1 + 0.26 * h), colour, -1)
    elif kind in ("hood", "hazmat"):  # a band around the face: the hair, ears, forehead and chin's sides gone
        face = img.copy()
        cv2.ellipse(img, pt(cx, y1 + 0.5 * h), pt(0.64 * w, 0.64 * h), 0, 0, 360, colour, -1)
        inner = np.zeros(img.shape[:2], np.uint8)
        cv2.ellipse(inner, pt(cx, y1 + 0.58 * h), pt(0.38 * w, 0.4 * h), 0, 0, 360, 255, -1)
        img[inner > 0] = face[inner > 0]
        if kind == "hazmat":  # and a visor's frame with goggles under it
            cover(img, box, "goggles", (30, 30, 30))
    elif kind == "goggles":  # one wide lens across both eyes, with a strap
        cv2.rectangle(img, pt(x1 - 0.05 * w, eye_y - 0.09 * h), pt(x2 + 0.05 * w, eye_y + 0.09 * h), colour, -1)
        cv2.rectangle(
            img,
            pt(x1 + 0.1 * w, eye_y - 0.05 * h),
            pt(x2 - 0.1 * w, eye_y + 0.05 * h),
            (90, 90, 90),
            max(1, int(w / 40)),
        )
    elif kind == "sunglasses":  # two dark lenses and a bridge
        for ex in (x1 + 0.3 * w, x1 + 0.7 * w):
            cv2.ellipse(img, pt(ex, eye_y), pt(0.16 * w, 0.08 * h), 0, 0, 360, (15, 15, 15), -1)
        cv2.line(img, pt(x1 + 0.44 * w, eye_y), pt(x1 + 0.56 * w, eye_y), (15, 15, 15), max(1, int(w / 30)))
    else:
        raise ValueError(f"covering must be one of {', '.join(COVERINGS)}, got {kind!r}")


def cover_sample(sample: Sample, img: np.ndarray, seed: int = 0) -> tuple[Sample, np.ndarray, np.ndarray]:
    """The picture with a covering drawn on each labelled face of at least ``MIN_COVERED_PX``: the kind
    and colour chosen per face from ``seed`` and the picture's name (the same on every run). Returns
    the sample, the picture, and which faces were covered (faces left bare are marked ignored in the
    sample, so that the figures are those of covered faces alone)."""
    rng = np.random.default_rng([seed, int.from_bytes(str(sample.image.name).encode("utf-8")[-8:], "little")])
    out = img.copy()
    heights = sample.boxes[:, 3] - sample.boxes[:, 1]
    covered = ~sample.ignore & (np.minimum(heights, sample.boxes[:, 2] - sample.boxes[:, 0]) >= MIN_COVERED_PX)
    for k in np.flatnonzero(covered):
        kind = COVERINGS[int(rng.integers(len(COVERINGS)))]
        colour = COLOURS[int(rng.integers(len(COLOURS)))]
        cover(out, sample.boxes[k], kind, colour)
    return replace(sample, ignore=sample.ignore | ~covered), out, covered


def close_up(sample: Sample, img: np.ndarray, seed: int = 0) -> tuple[Sample, np.ndarray] | None:
    """A close-up of the picture's largest labelled face (at least ``MIN_CLOSE_UP_PX``): a cut of the
    picture's shape around it, in which the face takes a share ``CLOSE_UP_FILL`` of the height,
    enlarged so that the face is ``CLOSE_UP_PX`` high (both drawn per picture from ``seed`` and its
    name; the part past the picture's edge filled with its mean colour). The other faces are marked
    ignored, so the figures are those of the close-up face alone. ``None`` for a picture without such
    a face."""
    boxes = sample.boxes
    if not len(boxes):
        return None
    sides = short_side(boxes)
    ok = ~sample.ignore & (sides >= MIN_CLOSE_UP_PX)
    if not ok.any():
        return None
    k = int(np.flatnonzero(ok)[np.argmax(sides[ok])])
    rng = np.random.default_rng([seed, int.from_bytes(str(sample.image.name).encode("utf-8")[-8:], "little")])
    x1, y1, x2, y2 = (float(v) for v in boxes[k])
    fh = y2 - y1
    ch = fh / rng.uniform(*CLOSE_UP_FILL)  # the cut's height, picture px
    cw = ch * img.shape[1] / img.shape[0]
    cw = max(cw, (x2 - x1) * 1.1)
    # the face anywhere in the cut that keeps it whole
    cx0 = x1 - rng.uniform(0.0, max(cw - (x2 - x1), 0.0))
    cy0 = y1 - rng.uniform(0.0, max(ch - fh, 0.0))
    scale = rng.uniform(*CLOSE_UP_PX) / fh
    ow, oh = int(round(cw * scale)), int(round(ch * scale))
    m = np.array([[scale, 0.0, -cx0 * scale], [0.0, scale, -cy0 * scale]])
    fill = tuple(float(v) for v in img.reshape(-1, img.shape[2]).mean(0))
    out = cv2.warpAffine(img, m, (ow, oh), flags=cv2.INTER_LINEAR, borderValue=fill)
    new = (boxes.reshape(-1, 2, 2) * scale - np.array([cx0, cy0]) * scale).reshape(-1, 4)
    new = np.clip(new, 0, [ow, oh, ow, oh]).astype(np.float32)
    ignore = np.ones(len(boxes), bool)
    ignore[k] = False
    return replace(sample, boxes=new, ignore=ignore), out
