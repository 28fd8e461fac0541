"""benchmarks/accuracy.py's contact sheets: which faces are misses, which detections are false, and the
score captioned on each miss."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cv2")
# loaded from its file; the script puts benchmarks/ first on sys.path (for its ``speed``), which would
# shadow the standard library's ``profile`` (benchmarks/profile.py) for every later test: put it back
_PATH = list(sys.path)
_SPEC = importlib.util.spec_from_file_location(
    "maskwatch_bench_accuracy", Path(__file__).resolve().parents[1] / "benchmarks" / "accuracy.py"
)
assert _SPEC is not None and _SPEC.loader is not None
accuracy = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(accuracy)
sys.path[:] = _PATH

from maskwatch.evaluation.metrics import ImageResult  # noqa: E402


def _result() -> ImageResult:
    """A whole-head label (100x120) with a face box inside it scored 0.4, a bare face labelled and
    found at 0.9, and a detection on nothing at 0.8."""
    probs = np.array([[0.9, 0.05, 0.05], [0.1, 0.85, 0.05], [0.5, 0.4, 0.1]], np.float32)
    return ImageResult(
        pred_boxes=np.array([[30, 50, 80, 100], [200, 20, 260, 90], [400, 300, 440, 340]], np.float32),
        pred_scores=np.array([0.4, 0.9, 0.8], np.float32),
        pred_probs=probs,
        gt_boxes=np.array([[10, 10, 110, 130], [200, 20, 260, 90]], np.float32),
        gt_labels=np.array([0, 1]),
    )


def test_a_miss_is_captioned_with_the_face_inside_its_head_box():
    img = np.zeros((480, 640, 3), np.uint8)
    found = list(accuracy.misses([_result()], [(None, img)], thr=0.5, head=True, iou=0.3))
    assert len(found) == 1  # the bare face is found; the masked head's face is under the threshold
    _, box, score = found[0]
    assert box.tolist() == [10, 10, 110, 130]
    assert score == pytest.approx(0.4)  # the face box lies inside the head box: its score, not 0
    # whole-face labels (no head rule): the small box is no match and its IoU is under 0.3
    (_, _, plain), *_ = accuracy.misses([_result()], [(None, img)], thr=0.5, head=False, iou=0.3)
    assert plain == 0.0


def test_false_detections_are_those_on_no_labelled_face():
    img = np.zeros((480, 640, 3), np.uint8)
    wrong = list(accuracy.false_detections([_result()], [(None, img)], thr=0.5, head=True, iou=0.3))
    assert [(b.tolist(), round(s, 2)) for _, b, s in wrong] == [([400, 300, 440, 340], 0.8)]
    tiles = accuracy.tiles(iter(wrong))
    assert len(tiles) == 1 and tiles[0].shape == (130, 112, 3)
