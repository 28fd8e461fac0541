"""Detection metrics: AP at an IoU threshold per class and class-agnostic, recall by face height,
and label accuracy on matched faces.

AP is the area under the all-point interpolated precision-recall curve (Pascal VOC 2010+).
Ground-truth boxes marked ``ignore`` (WIDER "invalid", VOC "difficult") are neither required nor
penalised: a detection that matches one is dropped from the ranking. One matcher, ``match_image``,
decides this for every figure, in ``maskwatch eval`` and in training validation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.face import LABELS
from ..core.geometry import box_area, containment_matrix, iou_matrix

HEIGHT_BINS = ((0, 16), (16, 32), (32, 64), (64, 300), (300, float("inf")))
HEAD_INSIDE = 0.7  # head-box matching: the share of a prediction that lies inside the labelled box
HEAD_AREA_RATIO = 5.0  # ... and the most the two areas may differ, either way


@dataclass
class ImageResult:
    """Predictions and truth for one picture, in the same pixel frame."""

    pred_boxes: np.ndarray  # (P, 4)
    pred_scores: np.ndarray  # (P,) face score
    pred_probs: np.ndarray  # (P, C) class probabilities
    gt_boxes: np.ndarray  # (G, 4)
    gt_labels: np.ndarray  # (G,) class index or -1
    gt_ignore: np.ndarray = field(default=None)  # type: ignore[arg-type]  # (G,) bool; None: none ignored

    def __post_init__(self):
        self.pred_boxes = np.asarray(self.pred_boxes, np.float32).reshape(-1, 4)
        self.pred_scores = np.asarray(self.pred_scores, np.float32).reshape(-1)
        self.pred_probs = np.asarray(self.pred_probs, np.float32).reshape(-1, len(LABELS))
        self.gt_boxes = np.asarray(self.gt_boxes, np.float32).reshape(-1, 4)
        self.gt_labels = np.asarray(self.gt_labels, np.int64).reshape(-1)
        if self.gt_ignore is None:
            self.gt_ignore = np.zeros(len(self.gt_boxes), bool)
        self.gt_ignore = np.asarray(self.gt_ignore, bool).reshape(-1)


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point interpolated AP from a PR curve ordered by falling score."""
    if len(recall) == 0:
        return 0.0
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[1.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    idx = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


TRUE, FALSE, IGNORED = 1, 0, -1  # what a detection is, for every figure


def similarity(boxes: np.ndarray, gt_boxes: np.ndarray, head: bool = False) -> np.ndarray:
    """How well each prediction (rows) fits each truth box (columns): their IoU. ``head``: for sets that
    box whole heads (hair, hat, hood): a prediction lying mostly inside a labelled box (at least
    ``HEAD_INSIDE`` of its area) with areas within ``HEAD_AREA_RATIO`` of each other fits it as well
    as any match does (similarity 1); an IoU match still fits it as before."""
    iou = iou_matrix(boxes, gt_boxes)
    if not head or not iou.size:
        return iou
    area_b, area_g = np.maximum(box_area(boxes), 1e-9)[:, None], np.maximum(box_area(gt_boxes), 1e-9)[None, :]
    ratio = np.maximum(area_b / area_g, area_g / area_b)
    inside = (containment_matrix(boxes, gt_boxes) >= HEAD_INSIDE) & (ratio <= HEAD_AREA_RATIO)
    return np.where(inside, 1.0, iou)


def match_image(
    boxes: np.ndarray,
    scores: np.ndarray,
    gt_boxes: np.ndarray,
    gt_ignore: np.ndarray,
    iou_thr: float,
    head: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The one matching rule behind every figure (AP curves and the operating point, in ``maskwatch
    eval`` and in training validation alike).

    Detections, highest score first, each take the unused truth they overlap most (IoU >= ``iou_thr``),
    a truth that counts before an ignored one: a true detection. A detection left with only an ignored
    truth to overlap (an ignored truth may be overlapped by any number) is neither true nor false; any
    other is false. Returns, per detection, TRUE / FALSE / IGNORED and the index of its truth (or -1).
    ``head``: whole-head truth boxes also take the predictions inside them (``similarity``).
    """
    hit = np.full(len(boxes), FALSE, np.int8)
    truth = np.full(len(boxes), -1, np.int64)
    if not len(boxes) or not len(gt_boxes):
        return hit, truth
    iou = similarity(np.asarray(boxes, np.float32), np.asarray(gt_boxes, np.float32), head)
    used = np.zeros(len(gt_boxes), bool)
    for j in np.argsort(-np.asarray(scores), kind="stable"):
        cand = np.where(~used & ~gt_ignore, iou[j], -1.0)
        k = int(np.argmax(cand))
        if cand[k] >= iou_thr:
            used[k] = True
            hit[j], truth[j] = TRUE, k
        elif gt_ignore.any() and iou[j][gt_ignore].max() >= iou_thr:
            hit[j] = IGNORED
    return hit, truth


def _ranked(
    entries: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], n_gt: int, iou_thr: float, head: bool = False
):
    """Precision and recall down the ranking of all detections; entries are per image (boxes, scores, gt, ignore)."""
    hits = [match_image(b, s, g, ign, iou_thr, head)[0] for b, s, g, ign in entries]
    hit = np.concatenate(hits) if hits else np.zeros(0, np.int8)
    scores = np.concatenate([np.asarray(e[1], np.float32) for e in entries]) if entries else np.zeros(0, np.float32)
    order = np.argsort(-scores, kind="stable")
    hit, scores = hit[order], scores[order]
    counted = hit != IGNORED  # a detection of an ignored face is left out of the ranking
    hit, scores = hit[counted], scores[counted]
    tp = np.cumsum(hit == TRUE)
    fp = np.cumsum(hit == FALSE)
    recall = tp / max(n_gt, 1)
    precision = tp / np.maximum(tp + fp, 1e-9)
    return recall, precision, scores


def pr_curve(results: list[ImageResult], iou_thr: float = 0.5, class_index: int | None = None, head: bool = False):
    """Precision-recall for one class (score x class probability) or class-agnostic faces."""
    entries, n_gt = [], 0
    for r in results:
        if class_index is None:
            gt, ign, scores = r.gt_boxes, r.gt_ignore, r.pred_scores
        else:
            is_c = r.gt_labels == class_index
            # faces of unknown class neither count nor penalise a class ranking
            keep = is_c | (r.gt_labels < 0) | r.gt_ignore
            gt = r.gt_boxes[keep]
            ign = (r.gt_ignore | (r.gt_labels < 0))[keep]
            scores = r.pred_scores * r.pred_probs[:, class_index]
        entries.append((r.pred_boxes, scores, gt, ign))
        n_gt += int((~ign).sum())
    recall, precision, scores = _ranked(entries, n_gt, iou_thr, head)
    return recall, precision, scores, n_gt


@dataclass
class EvalResult:
    """All figures of ``maskwatch eval`` (and of training validation) for one set of pictures.

    ``ap``: AP per class with truth (no entry for a class without any); ``map``: their mean, None when the
    set has no mask labels; ``face_ap``: class-agnostic AP; ``recall_by_height``, ``recall``, ``precision``,
    ``label_accuracy`` and ``confusion`` at ``score_threshold``; ``curves``: precision-recall curves
    (recall, precision) per class and for ``face``, for plots (not in ``to_dict``).
    """

    images: int
    iou: float
    score_threshold: float
    ap: dict[str, float]
    gt_faces: dict[str, int]
    map: float | None
    face_ap: float
    recall_by_height: dict[str, dict[str, Any]]
    recall: float | None
    precision: float | None
    label_accuracy: float | None
    labelled_matches: int
    confusion: dict[str, Any]
    has_labels: bool = True
    recall_by_label: dict[str, dict[str, Any]] = field(default_factory=dict)
    head_boxes: bool = False
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready values (what ``maskwatch eval --json`` prints)."""
        d: dict[str, Any] = {
            "images": self.images,
            "iou": self.iou,
            "score_threshold": self.score_threshold,
            "ap": dict(self.ap),
            "gt_faces": dict(self.gt_faces),
        }
        if self.has_labels:
            d["map"] = self.map
        d.update(
            {
                "face_ap": self.face_ap,
                "recall_by_height": self.recall_by_height,
                "recall_by_label": self.recall_by_label,
                "recall": self.recall,
                "precision": self.precision,
                "label_accuracy": self.label_accuracy,
                "labelled_matches": self.labelled_matches,
                "confusion": self.confusion,
                "head_boxes": self.head_boxes,
            }
        )
        return d


def evaluate_results(
    results: list[ImageResult], iou_thr: float = 0.5, score_threshold: float = 0.5, head_boxes: bool = False
) -> EvalResult:
    """All figures of ``maskwatch eval`` from per-picture results (``head_boxes``: see ``similarity``)."""
    ap: dict[str, float] = {}
    gt_faces: dict[str, int] = {}
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    mean_ap = None
    has_labels = any((r.gt_labels >= 0).any() for r in results)
    if has_labels:
        for c, name in enumerate(LABELS):
            rec, prec, _, n = pr_curve(results, iou_thr, c, head_boxes)
            gt_faces[name] = n
            if n:
                ap[name] = average_precision(rec, prec)
                curves[name] = (rec, prec)
        mean_ap = float(np.mean(list(ap.values()))) if ap else None
    rec, prec, _, n = pr_curve(results, iou_thr, None, head_boxes)
    gt_faces["face"] = n
    curves["face"] = (rec, prec)
    return EvalResult(
        images=len(results),
        iou=iou_thr,
        score_threshold=score_threshold,
        ap=ap,
        gt_faces=gt_faces,
        map=mean_ap,
        face_ap=average_precision(rec, prec),
        has_labels=has_labels,
        curves=curves,
        head_boxes=head_boxes,
        **_operating_point(results, iou_thr, score_threshold, head_boxes),
    )


def _operating_point(results: list[ImageResult], iou_thr: float, thr: float, head: bool = False) -> dict:
    """Recall by face height and by labelled class, precision and label accuracy, with the detections
    at the operating threshold."""
    found = np.zeros(len(HEIGHT_BINS))
    total = np.zeros(len(HEIGHT_BINS))
    by_label = np.zeros((len(LABELS), 2))  # found, total
    correct = labelled = 0
    tp = fp = 0
    confusion = np.zeros((len(LABELS), len(LABELS)), int)
    for r in results:
        keep = r.pred_scores >= thr
        pb, pp, ps = r.pred_boxes[keep], r.pred_probs[keep], r.pred_scores[keep]
        valid = ~r.gt_ignore
        heights = r.gt_boxes[:, 3] - r.gt_boxes[:, 1]
        hit, truth = match_image(pb, ps, r.gt_boxes, r.gt_ignore, iou_thr, head)
        tp += int((hit == TRUE).sum())
        fp += int((hit == FALSE).sum())
        matched = np.full(len(r.gt_boxes), -1)
        matched[truth[hit == TRUE]] = np.nonzero(hit == TRUE)[0]
        for b, (lo, hi) in enumerate(HEIGHT_BINS):
            m = valid & (heights >= lo) & (heights < hi)
            total[b] += m.sum()
            found[b] += (m & (matched >= 0)).sum()
        for c in range(len(LABELS)):
            m = valid & (r.gt_labels == c)
            by_label[c] += ((m & (matched >= 0)).sum(), m.sum())
        for k in np.nonzero(valid & (matched >= 0) & (r.gt_labels >= 0))[0]:
            pred = int(np.argmax(pp[matched[k]]))
            labelled += 1
            correct += pred == r.gt_labels[k]
            confusion[r.gt_labels[k], pred] += 1
    names = [
        f"<{hi:g}" if lo == 0 else (f">={lo:g}" if hi == float("inf") else f"{lo:g}-{hi:g}") for lo, hi in HEIGHT_BINS
    ]
    n_valid = total.sum()
    return {
        "recall_by_height": {
            n: {"recall": (float(f / t) if t else None), "faces": int(t)} for n, f, t in zip(names, found, total)
        },
        "recall_by_label": {
            name: {"recall": (float(f / t) if t else None), "faces": int(t)}
            for name, (f, t) in zip(LABELS, by_label)
            if t
        },
        "recall": float(found.sum() / n_valid) if n_valid else None,
        "precision": float(tp / (tp + fp)) if tp + fp else None,
        "label_accuracy": float(correct / labelled) if labelled else None,
        "labelled_matches": int(labelled),
        "confusion": {"labels": list(LABELS), "rows_truth_cols_pred": confusion.tolist()},
    }


def best_f1_threshold(results: list[ImageResult], iou_thr: float = 0.5) -> tuple[float, float]:
    """The face-score threshold with the best class-agnostic F1 (for the model card default)."""
    rec, prec, scores, _ = pr_curve(results, iou_thr, None)
    if not len(scores):
        return 0.5, 0.0
    f1 = 2 * rec * prec / np.maximum(rec + prec, 1e-9)
    i = int(np.argmax(f1))
    return float(scores[i]), float(f1[i])
