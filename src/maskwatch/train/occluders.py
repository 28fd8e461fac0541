"""Synthetic masks and occluders drawn on face crops, for the failures seen in the field:

- masks of any colour and pattern (black, printed, striped), not only light-blue surgical ones;
- masks worn below the nose or on the chin (``incorrect``);
- hands, fruit, phones or cups in front of the mouth, which are *not* masks (``no_mask``).

They work on the stored crops of ``classifier.py``: a square crop whose centre is the face centre
and whose side is ``store_expand`` times the face box side.
"""

from __future__ import annotations

import cv2
import numpy as np

SKIN_TONES = [(60, 90, 140), (80, 120, 175), (110, 150, 205), (140, 180, 225), (45, 65, 100), (95, 140, 195)]  # BGR


def _texture(size: int, rng: np.random.Generator) -> np.ndarray:
    kind = rng.choice(["solid", "dark", "stripes", "checks", "dots", "noise", "print"])
    base = rng.integers(0, 256, 3)
    if kind == "dark":
        base = rng.integers(0, 50, 3)
    tex = np.empty((size, size, 3), np.uint8)
    tex[:] = base
    if kind == "stripes":
        other = rng.integers(0, 256, 3)
        period = int(rng.integers(4, 14))
        ys, xs = np.mgrid[0:size, 0:size]
        angle = rng.uniform(0, np.pi)
        band = ((xs * np.cos(angle) + ys * np.sin(angle)) // period).astype(int) % 2 == 1
        tex[band] = other
    elif kind == "checks":
        other = rng.integers(0, 256, 3)
        period = int(rng.integers(4, 12))
        ys, xs = np.mgrid[0:size, 0:size]
        tex[((xs // period + ys // period) % 2) == 1] = other
    elif kind == "dots":
        for _ in range(int(rng.integers(10, 40))):
            c = tuple(int(v) for v in rng.integers(0, 256, 3))
            cv2.circle(tex, (int(rng.integers(0, size)), int(rng.integers(0, size))), int(rng.integers(2, 6)), c, -1)
    elif kind == "noise":
        tex = np.clip(tex.astype(np.int16) + rng.integers(-60, 60, (size, size, 3)), 0, 255).astype(np.uint8)
    elif kind == "print":
        for _ in range(int(rng.integers(3, 10))):
            c = tuple(int(v) for v in rng.integers(0, 256, 3))
            pts = rng.integers(0, size, (3, 2)).astype(np.int32)
            cv2.fillPoly(tex, [pts], c)
    return tex


def _face_geometry(side: int, store_expand: float, rng: np.random.Generator):
    face = side / store_expand
    cx = side / 2 + rng.uniform(-0.04, 0.04) * face
    top = side / 2 - face / 2
    width = face * rng.uniform(0.72, 0.86)
    return cx, top, face, width


def draw_mask(crop: np.ndarray, rng: np.random.Generator, store_expand: float, worn: str = "right") -> np.ndarray:
    """A mask over the lower face. ``worn``: "right" (covers the nose), "below_nose", "chin"."""
    out = crop.copy()
    side = crop.shape[0]
    cx, top, face, width = _face_geometry(side, store_expand, rng)
    start = {"right": rng.uniform(0.5, 0.58), "below_nose": rng.uniform(0.66, 0.74), "chin": rng.uniform(0.82, 0.9)}[
        worn
    ]
    y0 = top + start * face
    y1 = top + rng.uniform(0.98, 1.08) * face
    half = width / 2 * (1.0 if worn == "right" else rng.uniform(0.85, 1.0))
    pts = []
    for t in np.linspace(0, np.pi, 24):  # lower half of an ellipse from the cheeks to the chin
        pts.append((cx + half * np.cos(t), y0 + (y1 - y0) * np.sin(t) ** 0.8))
    pts += [(cx - half * 0.9, y0 - 0.02 * face), (cx, y0 - 0.06 * face), (cx + half * 0.9, y0 - 0.02 * face)]
    poly = np.array(pts, np.int32)
    alpha = np.zeros((side, side), np.uint8)
    cv2.fillPoly(alpha, [poly], 255)
    tex = _texture(side, rng)
    shade = np.linspace(1.05, 0.8, side, dtype=np.float32)[:, None, None]  # a little shading, top to bottom
    tex = np.clip(tex.astype(np.float32) * shade, 0, 255)
    a = (cv2.GaussianBlur(alpha, (3, 3), 0).astype(np.float32) / 255.0)[..., None]
    out = (out.astype(np.float32) * (1 - a) + tex * a).astype(np.uint8)
    if rng.random() < 0.6:  # ear loops
        c = tuple(int(v) for v in np.clip(tex[int(y0) % side, int(cx) % side] * 0.9, 0, 255))
        for sgn in (-1, 1):
            cv2.line(
                out,
                (int(cx + sgn * half), int(y0 + 0.05 * face)),
                (int(cx + sgn * width * 0.62), int(top + 0.45 * face)),
                c,
                1,
                cv2.LINE_AA,
            )
    return out


def draw_occluder(crop: np.ndarray, rng: np.random.Generator, store_expand: float) -> np.ndarray:
    """Something that is not a mask in front of the mouth: a hand, fruit, a phone or a cup."""
    out = crop.copy()
    side = crop.shape[0]
    cx, top, face, width = _face_geometry(side, store_expand, rng)
    my = top + rng.uniform(0.7, 0.82) * face
    kind = rng.choice(["hand", "hand", "fruit", "phone", "cup"])
    if kind == "hand":
        tone = np.array(SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]) + rng.integers(-15, 15, 3)
        tone = tuple(int(v) for v in np.clip(tone, 0, 255))
        palm = (int(cx + rng.uniform(-0.1, 0.1) * face), int(my + rng.uniform(0, 0.12) * face))
        axes = (int(width * rng.uniform(0.35, 0.5)), int(face * rng.uniform(0.18, 0.28)))
        ang = float(rng.uniform(-35, 35))
        cv2.ellipse(out, palm, axes, ang, 0, 360, tone, -1, cv2.LINE_AA)
        darker = tuple(int(v * 0.8) for v in tone)
        for k in range(4):  # fingers
            off = (k - 1.5) * axes[0] * 0.45
            p0 = (int(palm[0] + off), int(palm[1] - axes[1] * 0.5))
            p1 = (int(palm[0] + off * 1.1 + rng.uniform(-3, 3)), int(palm[1] - axes[1] * rng.uniform(1.3, 1.9)))
            cv2.line(out, p0, p1, tone, max(2, int(face * 0.07)), cv2.LINE_AA)
            cv2.line(out, p0, p1, darker, 1, cv2.LINE_AA)
    elif kind == "fruit":
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.circle(out, (int(cx), int(my)), int(face * rng.uniform(0.15, 0.25)), c, -1, cv2.LINE_AA)
    elif kind == "phone":
        w, h = face * rng.uniform(0.25, 0.35), face * rng.uniform(0.45, 0.6)
        box = cv2.boxPoints(((cx, my), (w, h), float(rng.uniform(-30, 30)))).astype(np.int32)
        cv2.fillPoly(out, [box], tuple(int(v) for v in rng.integers(0, 80, 3)))
    else:
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.rectangle(
            out, (int(cx - face * 0.15), int(my - face * 0.1)), (int(cx + face * 0.15), int(my + face * 0.35)), c, -1
        )
    return out
