"""The one result type: a face with its box, mask label and confidences."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

LABELS: tuple[str, ...] = ("mask", "no_mask", "incorrect")


@dataclass(frozen=True)
class Face:
    """One detected face.

    box: (x1, y1, x2, y2) in pixels of the input image.
    label: "mask", "no_mask" or "incorrect".
    confidence: probability of ``label`` for this face.
    score: how sure the model is that this is a face at all (for ``server``, the detector's score
        lowered by its crop classifier's doubt that the box is a face).
    probs: probabilities of all labels, in ``LABELS`` order.
    """

    box: tuple[float, float, float, float]
    label: str
    confidence: float
    score: float
    probs: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["box"] = [round(float(v), 2) for v in self.box]
        d["confidence"] = round(float(self.confidence), 4)
        d["score"] = round(float(self.score), 4)
        d["probs"] = {k: round(float(p), 4) for k, p in zip(LABELS, self.probs)}
        return d
