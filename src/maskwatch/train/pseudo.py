"""Mask labels for faces that have none, from the project's own crop classifier (pseudo-labels).

WIDER's crowds and the faces that the teacher adds to the mask sets teach the detector only where
faces are (class ``UNKNOWN``). The crop classifier, trained on every labelled face crop, labels the
ones it is sure of, so that the detector's class head also learns from crowd faces: the small,
turned and blurred ones that the mobile model, which has no second stage, must label alone.
Labels are given in place and cached per picture, keyed by the classifier file's contents.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np

from ..evaluation.datasets import UNKNOWN, Sample
from ..core.detector import CropModel
from .data import distinct

PSEUDO_MIN_FACE = 16.0  # px (long side): smaller faces are left face-only, too small to label surely
PSEUDO_MIN_PROB = 0.9  # the classifier's top mask class must be at least this sure
PSEUDO_MIN_FACE_PROB = 0.5  # and, for a classifier with a background class, P(face) at least this


def _file_key(path: Path) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()[:12]


def sure_labels(
    probs: np.ndarray,
    face: np.ndarray | None,
    min_prob: float = PSEUDO_MIN_PROB,
    min_face_prob: float = PSEUDO_MIN_FACE_PROB,
) -> np.ndarray:
    """The top class of each row where the classifier is sure of it, else ``UNKNOWN``."""
    top = np.argmax(probs, 1) if len(probs) else np.zeros(0, np.int64)
    sure = probs.max(1) >= min_prob if len(probs) else np.zeros(0, bool)
    if face is not None:
        sure &= face >= min_face_prob
    return np.where(sure, top, UNKNOWN).astype(np.int64)


def pseudo_label(samples: list[Sample], classifier: Path, cache_dir: Path, log=print) -> int:
    """Label the unlabelled, not-ignored faces (``PSEUDO_MIN_FACE`` px and up) of ``samples`` in
    place with ``classifier``'s sure answers; returns how many faces got a label."""
    classifier = Path(classifier)
    cache_file = Path(cache_dir) / f"pseudo-{classifier.stem}-{_file_key(classifier)}.json"
    cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    model = CropModel.load(classifier, flip=True)
    done, fresh = 0, False
    for s in distinct(samples):
        side = np.maximum(s.boxes[:, 2] - s.boxes[:, 0], s.boxes[:, 3] - s.boxes[:, 1]) if len(s.boxes) else np.zeros(0)
        todo = np.nonzero((s.labels == UNKNOWN) & ~s.ignore & (side >= PSEUDO_MIN_FACE))[0]
        if not len(todo):
            continue
        key = f"{s.image}|{','.join(str(int(i)) for i in todo)}"
        if key not in cache:
            img = cv2.imread(str(s.image), cv2.IMREAD_COLOR)
            if img is None:
                continue
            cache[key] = sure_labels(*model(img, s.boxes[todo])).tolist()
            fresh = True
        new = np.asarray(cache[key], np.int64)
        s.labels[todo] = new
        done += int((new != UNKNOWN).sum())
    if fresh:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_text(json.dumps(cache))
    log(f"pseudo-labels from {classifier.name}: {done} faces labelled")
    return done
