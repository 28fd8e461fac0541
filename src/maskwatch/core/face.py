"""The one result type: a face with its box, mask label and confidences."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

LABELS: tuple[str, ...] = ("mask", "no_mask", "incorrect")


def face_dict(
    box: Sequence[float],
    label: str,
    confidence: float,
    score: float,
    probs: Sequence[float],
    labels: Sequence[str] = LABELS,
    track_id: int | None = None,
    data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The serialised form of one face (rounded): box, label, confidence, score, probs by label;
    ``track_id`` and ``data`` only when set."""
    d: dict[str, Any] = {
        "box": [round(float(v), 2) for v in box],
        "label": label,
        "confidence": round(float(confidence), 4),
        "score": round(float(score), 4),
        "probs": {k: round(float(p), 4) for k, p in zip(labels, probs)},
    }
    if track_id is not None:
        d["track_id"] = int(track_id)
    if data:
        d["data"] = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in data.items()}
    return d


@dataclass(frozen=True)
class Face:
    """One detected face.

    box: (x1, y1, x2, y2) in pixels of the input image.
    label: "mask", "no_mask" or "incorrect".
    confidence: probability of ``label`` for this face.
    score: how sure the model is that this is a face at all (for ``server``, the detector's score
        lowered by its crop classifier's doubt that the box is a face).
    probs: probabilities of all labels, in ``labels`` order.
    track_id: the track this face belongs to (a tracker sets it), or None.
    data: extra values for this face (the row of ``Detections.data``).
    labels: the model's labels, the names of ``probs`` (``LABELS`` for the shipped models).

    A ``Face`` is a view of one row of ``Detections`` (``Detections.to_faces``).
    """

    box: tuple[float, float, float, float]
    label: str
    confidence: float
    score: float
    probs: tuple[float, ...] = (0.0, 0.0, 0.0)
    track_id: int | None = None
    data: Mapping[str, Any] = field(default_factory=dict, hash=False)
    labels: tuple[str, ...] = LABELS

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    def to_dict(self) -> dict[str, Any]:
        return face_dict(
            self.box, self.label, self.confidence, self.score, self.probs, self.labels, self.track_id, self.data
        )
