"""``Detections``: the public, array-backed result of a detector run on one picture (or frame).

In the spirit of supervision's ``Detections``: one row per face, columns as NumPy arrays. ``Face``
is a view of one row (``to_faces``); ``to_dicts`` is the one place a face is serialised, and every
output format (CSV, JSON, PaddleHub, REST) is built from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

from .face import LABELS, Face


@dataclass(frozen=True, eq=False)
class Detections:
    """Faces found in one picture, as arrays (N rows, highest score first as the detector gives them).

    boxes: (N, 4) float32 x1, y1, x2, y2 in pixels of the input picture.
    scores: (N,) how sure the model is that each box is a face.
    probs: (N, C) probabilities of the labels (``labels`` order); ``class_id`` and ``confidence``
        are their argmax and max.
    tracker_id: (N,) int track ids, or None (a tracker fills them).
    data: extra per-row arrays (each of length N), kept through indexing.
    """

    boxes: np.ndarray
    scores: np.ndarray
    probs: np.ndarray
    labels: tuple[str, ...] = LABELS
    tracker_id: np.ndarray | None = None
    data: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.scores)
        if self.boxes.shape != (n, 4) or self.probs.shape[0] != n:
            raise ValueError(
                f"Detections: boxes {self.boxes.shape}, scores {self.scores.shape} and probs "
                f"{self.probs.shape} disagree on the number of rows"
            )
        if self.tracker_id is not None and len(self.tracker_id) != n:
            raise ValueError(f"Detections: tracker_id has {len(self.tracker_id)} rows, not {n}")
        for k, v in self.data.items():
            if len(v) != n:
                raise ValueError(f"Detections: data[{k!r}] has {len(v)} rows, not {n}")

    # -- construction -----------------------------------------------------------------------------

    @staticmethod
    def empty(labels: Sequence[str] = LABELS) -> Detections:
        return Detections(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, len(labels)), np.float32), tuple(labels)
        )

    @staticmethod
    def merge(parts: Sequence[Detections]) -> Detections:
        """All rows of ``parts``, in order (labels, tracker ids and data keys must agree)."""
        if not parts:
            return Detections.empty()
        labels = parts[0].labels
        if any(p.labels != labels for p in parts):
            raise ValueError("Detections.merge: the parts have different labels")
        full = [p for p in parts if len(p)]
        if not full:
            return Detections.empty(labels)
        if len(full) == 1:
            return full[0]
        tids = [p.tracker_id for p in full]
        keys = set(full[0].data)
        if any(set(p.data) != keys for p in full):
            raise ValueError("Detections.merge: the parts have different data keys")
        return Detections(
            np.concatenate([p.boxes for p in full]),
            np.concatenate([p.scores for p in full]),
            np.concatenate([p.probs for p in full]),
            labels,
            None if any(t is None for t in tids) else np.concatenate(tids),  # type: ignore[arg-type]
            {k: np.concatenate([p.data[k] for p in full]) for k in keys},
        )

    @staticmethod
    def from_faces(faces: Sequence[Face], labels: Sequence[str] | None = None) -> Detections:
        """The rows of ``faces``; ``labels``: their names (default: the faces' own, else ``LABELS``)."""
        labels = labels or (faces[0].labels if faces else LABELS)
        if not faces:
            return Detections.empty(labels)
        tids = [f.track_id for f in faces]
        keys = set(faces[0].data)
        return Detections(
            np.array([f.box for f in faces], np.float32).reshape(-1, 4),
            np.array([f.score for f in faces], np.float32),
            np.array([f.probs for f in faces], np.float32).reshape(len(faces), -1),
            tuple(labels),
            None if any(t is None for t in tids) else np.array(tids, np.int64),
            {k: np.array([f.data[k] for f in faces]) for k in keys if all(k in f.data for f in faces)},
        )

    # -- columns ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def class_id(self) -> np.ndarray:
        """(N,) index of each face's label in ``labels``."""
        return np.argmax(self.probs, axis=1) if len(self) else np.zeros(0, np.int64)

    @property
    def confidence(self) -> np.ndarray:
        """(N,) probability of each face's label."""
        return self.probs[np.arange(len(self)), self.class_id] if len(self) else np.zeros(0, np.float32)

    @property
    def label_names(self) -> list[str]:
        return [self.labels[int(k)] for k in self.class_id]

    # -- selection --------------------------------------------------------------------------------

    def __getitem__(self, idx: int | slice | np.ndarray | Sequence[int]) -> Detections:
        """Rows by index, slice, index array or boolean mask, as ``Detections`` (an int gives one row)."""
        if isinstance(idx, (int, np.integer)):
            i = int(idx)
            if not -len(self) <= i < len(self):
                raise IndexError(f"Detections index {i} out of range for {len(self)} rows")
            idx = [i]
        sel = np.asarray(idx) if not isinstance(idx, slice) else idx
        if isinstance(sel, np.ndarray) and sel.dtype == bool and sel.shape != (len(self),):
            raise IndexError(f"boolean mask of shape {sel.shape} for {len(self)} rows")
        return Detections(
            self.boxes[sel],
            self.scores[sel],
            self.probs[sel],
            self.labels,
            None if self.tracker_id is None else self.tracker_id[sel],
            {k: v[sel] for k, v in self.data.items()},
        )

    # -- conversion -------------------------------------------------------------------------------

    def face(self, i: int) -> Face:
        """Row ``i`` as a ``Face``."""
        p = self.probs[i]
        k = int(np.argmax(p))
        return Face(
            box=(float(self.boxes[i, 0]), float(self.boxes[i, 1]), float(self.boxes[i, 2]), float(self.boxes[i, 3])),
            label=self.labels[k],
            confidence=float(p[k]),
            score=float(self.scores[i]),
            probs=tuple(float(v) for v in p),
            track_id=None if self.tracker_id is None else int(self.tracker_id[i]),
            data={k2: v[i] for k2, v in self.data.items()},
            labels=tuple(self.labels),
        )

    def to_faces(self) -> list[Face]:
        return [self.face(i) for i in range(len(self))]

    def __iter__(self) -> Iterator[Face]:
        return iter(self.to_faces())

    def to_dicts(self) -> list[dict[str, Any]]:
        """Each face serialised (rounded): the form every output format is built from."""
        return [f.to_dict() for f in self.to_faces()]

    def __repr__(self) -> str:
        return f"Detections({len(self)} faces, labels={self.labels})"
