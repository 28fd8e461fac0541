"""Drawing results on pictures: green mask, red no_mask, amber incorrect, with label and confidence."""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Mapping

import cv2
import numpy as np

from ..core.face import LABELS, Face

COLORS_BGR = {"mask": (60, 200, 60), "no_mask": (40, 40, 230), "incorrect": (0, 190, 255)}
FONT = cv2.FONT_HERSHEY_SIMPLEX
MIN_TEXT_SCALE = 0.35  # smaller text cannot be read: such faces get a colour-only box and the legend explains it

Rect = tuple[int, int, int, int]


def _text_scale(face_width: float, image_side: int) -> float:
    """Text as wide as about the face (never larger than a size that suits the whole picture)."""
    (tw, _), _ = cv2.getTextSize("no_mask 0.00", FONT, 1.0, 1)
    return min(max(0.5, image_side / 1400), 1.3 * face_width / tw)


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def label_layout(faces: list[Face], shape: tuple[int, ...]) -> list[tuple[Rect, float] | None]:
    """Where each face's "label 0.97" tag goes: (rectangle x1, y1, x2, y2, text scale), or None for no tag.

    Text is sized to the face; a tag goes above the box, else below it, else inside its top, wherever it
    overlaps no other tag and no other face; a face too small for readable text, or with no free place,
    gets no tag (its box colour still tells its label). Larger faces are placed first.
    """
    h, w = shape[:2]
    boxes: list[Rect] = [(round(f.box[0]), round(f.box[1]), round(f.box[2]), round(f.box[3])) for f in faces]
    placed: list[Rect] = []
    out: list[tuple[Rect, float] | None] = [None] * len(faces)
    for i in sorted(range(len(faces)), key=lambda k: -faces[k].width):
        f, (x1, y1, _, y2) = faces[i], boxes[i]
        scale = _text_scale(f.width, max(h, w))
        if scale < MIN_TEXT_SCALE:
            continue
        (tw, th), base = cv2.getTextSize(tag_text(f), FONT, scale, 1)
        tw, th = tw + 2, th + base + 2
        lx = min(max(0, x1), max(0, w - tw))
        for top in (y1 - th, y2, y1):
            r = (lx, top, lx + tw, top + th)
            if top < 0 or top + th > h:
                continue
            others = (b for k, b in enumerate(boxes) if k != i)
            if not any(_overlaps(r, p) for p in placed) and not any(_overlaps(r, b) for b in others):
                placed.append(r)
                out[i] = (r, scale)
                break
    return out


def _caption(out: np.ndarray, text: str) -> int:
    """One line of white text on a dark band in the top-left corner (a watcher's running counts);
    returns the height it takes."""
    h, w = out.shape[:2]
    scale = max(0.4, max(h, w) / 1600)
    (tw, th), base = cv2.getTextSize(text, FONT, scale, 1)
    cv2.rectangle(out, (0, 0), (tw + 8, th + base + 8), (32, 32, 32), -1)
    cv2.putText(out, text, (4, th + 4), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return th + base + 8


def _legend(out: np.ndarray, labels: list[str], top: int = 0) -> None:
    """Colour key in the top-left corner (below ``top``), for pictures where some faces have no tag."""
    h, w = out.shape[:2]
    scale = max(0.45, max(h, w) / 1600)
    (_, th), base = cv2.getTextSize("no_mask", FONT, scale, 1)
    y = top + 4
    for lab in labels:
        (tw, _), _ = cv2.getTextSize(lab, FONT, scale, 1)
        cv2.rectangle(out, (4, y), (4 + th + 6 + tw + 4, y + th + base + 4), (32, 32, 32), -1)
        cv2.rectangle(out, (6, y + 2), (6 + th, y + 2 + th), COLORS_BGR[lab], -1)
        cv2.putText(out, lab, (6 + th + 6, y + th + 2), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
        y += th + base + 6


ANONYMIZE_MODES = ("blur", "pixelate")
ANONYMIZE_MARGIN = 0.15  # share of the box added on each side: hair line, ears and chin are hidden too


def check_anonymize(mode: str | None) -> str | None:
    """``mode`` if it is None or one of ``ANONYMIZE_MODES``, else ``ValueError`` naming them."""
    if mode is not None and mode not in ANONYMIZE_MODES:
        raise ValueError(f"anonymize must be one of {', '.join(ANONYMIZE_MODES)}, got {mode!r}")
    return mode


def anonymize(image: np.ndarray, boxes: Iterable[Iterable[float]], mode: str = "blur") -> np.ndarray:
    """A copy of ``image`` with each box (x1, y1, x2, y2, grown by ``ANONYMIZE_MARGIN``) blurred or pixelated
    past recognition: a Gaussian blur whose kernel is half the face, or blocks of a sixth of it."""
    check_anonymize(mode)
    out: np.ndarray = image.copy()
    h, w = out.shape[:2]
    for box in boxes:
        x1, y1, x2, y2 = (float(v) for v in box)
        mx, my = (x2 - x1) * ANONYMIZE_MARGIN, (y2 - y1) * ANONYMIZE_MARGIN
        a, b = max(0, int(x1 - mx)), max(0, int(y1 - my))
        c, d = min(w, int(np.ceil(x2 + mx))), min(h, int(np.ceil(y2 + my)))
        if c - a < 2 or d - b < 2:
            continue
        region = out[b:d, a:c]
        if mode == "pixelate":
            blocks = (max(1, (c - a) // max(2, (c - a) // 6)), max(1, (d - b) // max(2, (d - b) // 6)))
            small = cv2.resize(region, blocks, interpolation=cv2.INTER_AREA)
            out[b:d, a:c] = cv2.resize(small, (c - a, d - b), interpolation=cv2.INTER_NEAREST)
        else:
            k = max(3, (max(c - a, d - b) // 2) | 1)
            out[b:d, a:c] = cv2.GaussianBlur(region, (k, k), 0)
    return out


def annotate(
    image: np.ndarray,
    faces: Iterable[Face],
    thickness: int | None = None,
    anonymize_faces: str | None = None,
    caption: str | None = None,
) -> np.ndarray:
    """A copy of ``image`` (BGR uint8) with a box per face, coloured by label, and a "label 0.97" tag where
    it can be read (see ``label_layout``; "#7 label 0.97" for a face a tracker gave id 7); when some faces
    have no tag, a colour legend in the corner. ``anonymize_faces`` ("blur" or "pixelate"): each face is
    hidden first, its box and label kept. ``caption``: a line in the top-left corner (running counts)."""
    faces = list(faces)
    out: np.ndarray = anonymize(image, (f.box for f in faces), anonymize_faces) if anonymize_faces else image.copy()
    h, w = out.shape[:2]
    t = thickness or max(1, round(max(h, w) / 500))
    for f in faces:
        x1, y1, x2, y2 = (round(v) for v in f.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), COLORS_BGR.get(f.label, (200, 200, 200)), t, cv2.LINE_AA)
    layout = label_layout(faces, out.shape)
    for f, spot in zip(faces, layout):
        if spot is None:
            continue
        (x1, y1, x2, y2), scale = spot
        _, base = cv2.getTextSize(f.label, FONT, scale, 1)
        cv2.rectangle(out, (x1, y1), (x2, y2), COLORS_BGR.get(f.label, (200, 200, 200)), -1)
        cv2.putText(out, tag_text(f), (x1 + 1, y2 - base - 1), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    top = _caption(out, caption) if caption else 0
    untagged = sorted({f.label for f, spot in zip(faces, layout) if spot is None}, key=LABELS.index)
    if untagged:
        _legend(out, untagged, top)
    return out


def tag_text(f: Face) -> str:
    """A face's tag: "label 0.97", or "#7 label 0.97" when a tracker gave it an id."""
    return (f"#{f.track_id} " if f.track_id is not None else "") + f"{f.label} {f.confidence:.2f}"


def summarize(faces: Iterable[Face]) -> dict[str, Any]:
    """Faces per label and the mask rate (share of faces wearing a mask correctly)."""
    return summarize_counts(Counter(f.label for f in faces))


def summarize_counts(counts: Mapping[str, int]) -> dict:
    """``summarize`` from faces counted per label."""
    total = sum(counts.values())
    return {
        **{k: counts.get(k, 0) for k in LABELS},
        "faces": total,
        "mask_rate": round(counts.get("mask", 0) / total, 4) if total else None,
    }
