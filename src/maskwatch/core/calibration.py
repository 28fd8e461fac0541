"""What a face score means: the map from a network's raw score to the score maskwatch reports.

A shipped model's face score is scaled on its validation pictures (Kaggle ``val.txt`` and WIDER
FACE ``val.txt``) so that the same number means the same operating point for every model: at 0.6
(PaddleHub's customary ``confs_threshold``) a model keeps all but at most 1 point of the recall it
has at its own default threshold (its best F1, which falls between 0.5 and 0.6), and below 0.6 it
keeps more. So a PaddleHub script that passes 0.6 keeps its faces, whatever the model.

The map is a scale up to 0.95 (so the ranking of score x class probability, hence every AP, hardly
moves: 0.002 of Kaggle mAP for the models it was fitted to) and a straight line from there to 1, stored in the model file as knots
(``score_calibration``: [raw scores], [face scores]); ``Detector`` applies it after the last stage.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Knots = tuple[Sequence[float], Sequence[float]]
KNEE = 0.95  # the face score up to which the map is a pure scale


def calibrate(scores: np.ndarray, knots: Knots) -> np.ndarray:
    """Raw network scores -> face scores."""
    raw, cal = knots
    out: np.ndarray = np.interp(np.asarray(scores, np.float64), raw, cal).astype(np.float32)
    return out


def raw_threshold(threshold: float, knots: Knots) -> float:
    """The raw network score that maps to face score ``threshold`` (the map's inverse)."""
    raw, cal = knots
    return float(np.interp(threshold, cal, raw))


def fit_calibration(default_raw: float, keep_raw: float, anchor: float = 0.6) -> tuple[list[float], list[float]]:
    """Knots that scale a model's raw score so that ``anchor`` (PaddleHub's customary 0.6) falls on
    ``keep_raw``, a raw threshold that keeps nearly all the faces the model's default keeps.

    The map is a pure scale (x k) up to a face score of 0.95 and then a straight line to (1, 1): a
    scale keeps the ranking of score x class probability, so the per-class AP hardly moves; only
    the surest faces (over 0.95) are drawn closer together. ``default_raw`` (the best-F1 threshold)
    must not lie above ``keep_raw``.
    """
    if not 0.0 < keep_raw <= 1.0 or default_raw > keep_raw:
        raise ValueError(f"fit_calibration: need 0 <= default {default_raw} <= keep {keep_raw} <= 1")
    k = anchor / keep_raw
    knee = KNEE / k
    if knee >= 1.0:
        return [0.0, 1.0], [0.0, round(min(k, 1.0), 6)]
    return [0.0, round(knee, 6), 1.0], [0.0, KNEE, 1.0]


def keep_threshold(scores: np.ndarray, recall: np.ndarray, default_raw: float, points: float = 0.01) -> float:
    """The highest raw threshold whose recall is at most ``points`` below the recall at ``default_raw``
    (``scores`` falling, ``recall`` of everything down to each detection, as a PR curve gives them)."""
    scores = np.asarray(scores, np.float64)
    recall = np.asarray(recall, np.float64)
    if not len(scores):
        return default_raw
    kept = scores >= default_raw
    base = recall[kept][-1] if kept.any() else 0.0
    ok = recall >= base - points  # recall rises down the ranking: the first such detection is the highest score
    return float(max(scores[np.argmax(ok)], default_raw)) if ok.any() else default_raw
