"""The public result type ``Detections``, per-call thresholds, batched runs and pickling a Detector."""

from __future__ import annotations

import pickle

import cv2
import numpy as np
import pytest

from conftest import kaggle_val
from maskwatch import LABELS, Detector, Face
from maskwatch.core.detections import Detections


def _made(n: int = 4) -> Detections:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (n, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + 20], 1)
    probs = rng.dirichlet(np.ones(3), n).astype(np.float32)
    scores = np.linspace(0.9, 0.3, n).astype(np.float32)
    return Detections(boxes, scores, probs, data={"frame": np.arange(n)})


def test_columns_filtering_and_indexing():
    d = _made(5)
    assert len(d) == 5
    assert list(d.class_id) == [int(np.argmax(p)) for p in d.probs]
    assert np.allclose(d.confidence, d.probs.max(1))
    kept = d[d.scores >= 0.5]
    assert isinstance(kept, Detections) and np.all(kept.scores >= 0.5) and len(kept) == int((d.scores >= 0.5).sum())
    assert list(kept.data["frame"]) == [i for i in range(5) if d.scores[i] >= 0.5]
    masked = d[d.class_id == d.class_id[0]]
    assert isinstance(masked, Detections) and np.all(masked.class_id == d.class_id[0])
    one = d[2]
    assert isinstance(one, Detections) and len(one) == 1 and np.array_equal(one.boxes[0], d.boxes[2])
    assert len(d[1:3]) == 2 and len(d[np.zeros(5, bool)]) == 0
    with pytest.raises(IndexError):
        d[5]
    with pytest.raises(ValueError, match="rows"):
        Detections(np.zeros((2, 4)), np.zeros(3), np.zeros((3, 3)))


def test_faces_are_rows_and_dicts_are_the_one_serialisation():
    d = _made(3)
    faces = d.to_faces()
    assert [type(f) for f in faces] == [Face] * 3
    for i, f in enumerate(faces):
        assert f.box == tuple(float(v) for v in d.boxes[i])
        assert f.label == LABELS[int(d.class_id[i])] and f.confidence == pytest.approx(float(d.confidence[i]))
        assert f.score == pytest.approx(float(d.scores[i])) and f.data["frame"] == i and f.track_id is None
    dicts = d.to_dicts()
    assert dicts == [f.to_dict() for f in faces]
    assert set(dicts[0]) == {"box", "label", "confidence", "score", "probs", "data"}
    assert dicts[0]["box"] == [round(float(v), 2) for v in d.boxes[0]] and dicts[0]["data"] == {"frame": 0}
    plain = Face((1.0, 2.0, 3.0, 4.0), "mask", 0.9, 0.8, (0.9, 0.05, 0.05))
    assert set(plain.to_dict()) == {"box", "label", "confidence", "score", "probs"}  # the old JSON keys only
    tracked = Detections(d.boxes, d.scores, d.probs, tracker_id=np.array([7, 8, 9]))
    assert [f.track_id for f in tracked.to_faces()] == [7, 8, 9] and tracked.to_dicts()[1]["track_id"] == 8
    back = Detections.from_faces(faces)
    assert np.allclose(back.boxes, d.boxes) and np.allclose(back.probs, d.probs)


def test_empty_and_merge():
    e = Detections.empty()
    assert len(e) == 0 and e.to_faces() == [] and e.to_dicts() == [] and len(e.class_id) == 0
    a, b = _made(2), _made(3)
    m = Detections.merge([a, e.__class__(a.boxes[:0], a.scores[:0], a.probs[:0], data={"frame": np.zeros(0)}), b])
    assert len(m) == 5 and np.array_equal(m.scores, np.concatenate([a.scores, b.scores]))
    assert list(m.data["frame"]) == [0, 1, 0, 1, 2]
    assert len(Detections.merge([])) == 0


def _same_size_pictures(data, n=4):
    return [cv2.resize(cv2.imread(str(s.image)), (640, 480)) for s in kaggle_val(data, n)]


def test_per_call_threshold_and_detections(data, mobile):
    img = _same_size_pictures(data, 1)[0]
    low = mobile.detections(img, score_threshold=0.1)
    assert isinstance(low, Detections) and np.all(low.scores >= 0.1)
    default = mobile.detect(img)
    assert default == low[low.scores >= mobile.score_threshold].to_faces()
    assert mobile.detect(img, score_threshold=0.1) == low.to_faces()
    with pytest.raises(ValueError, match="score_threshold"):
        mobile.detect(img, score_threshold=1.5)


@pytest.mark.parametrize("model", ["mobile", "server"])
def test_batched_run_equals_single_runs(data, model):
    det = Detector(model)
    imgs = _same_size_pictures(data, 4) + [cv2.imread(str(kaggle_val(data, 5)[4].image))]  # one of another size
    batched = det.detections_batch(imgs)
    assert sum(len(b) for b in batched) > 0
    for img, b in zip(imgs, batched):
        one = det.detections(img)
        assert len(one) == len(b)
        assert np.allclose(one.boxes, b.boxes, atol=1e-2) and np.allclose(one.scores, b.scores, atol=1e-4)
        assert list(one.class_id) == list(b.class_id)
    assert [len(f) for f in det.detect_batch(imgs)] == [len(b) for b in batched]


def test_pickled_detector_gives_the_same_faces(data):
    det = Detector("server", score_threshold=0.3, scales=(1.0,), threads=1)
    copy = pickle.loads(pickle.dumps(det))
    assert copy is not det and copy.score_threshold == 0.3 and copy.path == det.path
    for img in _same_size_pictures(data, 3):
        assert copy.detect(img) == det.detect(img)


def test_providers_are_passed_to_onnxruntime(mobile):
    det = Detector("mobile", providers=["CPUExecutionProvider"])
    assert det.session.get_providers() == ["CPUExecutionProvider"]
    img = np.full((64, 64, 3), 128, np.uint8)
    assert det.detect(img) == mobile.detect(img)
