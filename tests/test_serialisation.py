"""One serialisation (issue 16 item 1): CSV rows, the table, JSON reports, PaddleHub's data and the
REST / live answers are all built from ``Face.to_dict``; changing it changes every format."""

import base64
import io

import cv2
import numpy as np
import pytest

from maskwatch import hub
from maskwatch.batch.output import ReportWriter
from maskwatch.batch.runner import Report
from maskwatch.core.face import Face

FACE = Face(
    box=(1.234, 2.345, 30.456, 40.567), label="incorrect", confidence=0.71234, score=0.81234, probs=(0.1, 0.2, 0.7)
)
OTHER = {
    "box": [5.0, 6.0, 70.0, 80.0],
    "label": "mask",
    "confidence": 0.5,
    "score": 0.6,
    "probs": {"mask": 0.5, "no_mask": 0.3, "incorrect": 0.2},
}


@pytest.fixture
def patched(monkeypatch):
    monkeypatch.setattr(Face, "to_dict", lambda self: dict(OTHER))


def test_rows_and_paddlehub_are_converted_from_to_dict():
    d = FACE.to_dict()
    row = Report("p.jpg", [FACE]).rows()[0]
    assert [row[k] for k in ("x1", "y1", "x2", "y2")] == d["box"] and row["confidence"] == d["confidence"]
    assert row["score"] == d["score"] and row["label"] == d["label"]
    assert hub.to_paddle([FACE], 100, 100) == [hub.paddle_face(d, 100, 100)]
    assert hub.to_paddle([FACE], 100, 100)[0]["confidence"] == pytest.approx(0.9)  # no_mask + incorrect


def test_every_file_format_follows_to_dict(patched):
    rep = Report("p.jpg", [FACE], width=100, height=100)
    assert rep.rows()[0]["x1"] == 5.0 and rep.rows()[0]["label"] == "mask"
    assert rep.to_dict()["faces"] == [OTHER]
    assert hub.to_paddle([FACE], 100, 100) == [
        {"label": "MASK", "confidence": 0.5, "left": 5, "top": 6, "right": 70, "bottom": 80}
    ]
    for fmt, expect in (("csv", "mask,5.0,6.0,70.0,80.0,0.5,p.jpg,0.6"), ("table", "70")):
        out = io.StringIO()
        w = ReportWriter(out, fmt)
        w.write(rep)
        w.close()
        assert expect in out.getvalue()


def test_rest_and_live_answers_follow_to_dict(patched, monkeypatch):
    pytest.importorskip("fastapi", reason="serving needs the [serve] extra")
    from fastapi.testclient import TestClient

    from maskwatch.serve import create_app

    c = TestClient(create_app())
    monkeypatch.setattr(c.app.state.models.get(), "detect", lambda *a, **k: [FACE])
    _, enc = cv2.imencode(".jpg", np.full((100, 100, 3), 128, np.uint8))
    r = c.post("/v1/detect", json={"images": [base64.b64encode(enc.tobytes()).decode()]})
    assert r.status_code == 200 and r.json()["results"][0]["faces"] == [OTHER]
    with c.websocket_connect("/ws/live") as ws:
        ws.send_bytes(enc.tobytes())
        assert ws.receive_json()["faces"] == [OTHER]
