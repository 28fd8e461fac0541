"""Drawing results on pictures: green mask, red no_mask, amber incorrect, with label and confidence."""

from __future__ import annotations

from collections import Counter
from typing import Iterable

import cv2
import numpy as np

from ..core.face import LABELS, Face

COLORS_BGR = {"mask": (60, 200, 60), "no_mask": (40, 40, 230), "incorrect": (0, 190, 255)}


def annotate(image: np.ndarray, faces: Iterable[Face], thickness: int | None = None) -> np.ndarray:
    """A copy of ``image`` (BGR uint8) with a box and a "label 0.97" tag per face."""
    out = image.copy()
    h, w = out.shape[:2]
    t = thickness or max(1, round(max(h, w) / 500))
    scale = max(0.35, max(h, w) / 1400)
    for f in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in f.box)
        color = COLORS_BGR.get(f.label, (200, 200, 200))
        cv2.rectangle(out, (x1, y1), (x2, y2), color, t, cv2.LINE_AA)
        text = f"{f.label} {f.confidence:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = y1 - 2 if y1 - th - base - 2 >= 0 else min(h - 1, y2 + th + base + 2)
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw + 2, ty + 1), color, -1)
        cv2.putText(out, text, (x1 + 1, ty - base + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def summarize(faces: Iterable[Face]) -> dict:
    """Faces per label and the mask rate (share of faces wearing a mask correctly)."""
    counts = Counter(f.label for f in faces)
    total = sum(counts.values())
    return {**{k: counts.get(k, 0) for k in LABELS}, "faces": total,
            "mask_rate": round(counts.get("mask", 0) / total, 4) if total else None}
