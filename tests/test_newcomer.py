"""What a newcomer met on a fresh clone (issue 31's list), each now a test."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from maskwatch import Detector, __version__
from maskwatch.cli import app
from maskwatch.samples import SAMPLES_DIR, paths

runner = CliRunner()


@pytest.mark.parametrize(
    "name, check", [("faces.json", json.loads), ("faces.jsonl", lambda t: [json.loads(x) for x in t.splitlines()])]
)
def test_output_format_follows_the_file_suffix(tmp_path, name, check):
    out = tmp_path / name
    r = runner.invoke(app, ["detect", str(paths()[0]), "-o", str(out)])
    assert r.exit_code == 0, r.output
    check(out.read_text())


def test_version_flag():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.stdout.strip() == f"maskwatch {__version__}"


def test_conf_is_an_alias_of_the_threshold(tmp_path):
    a = runner.invoke(app, ["detect", str(paths()[0]), "-f", "csv", "--conf", "0.9"])
    b = runner.invoke(app, ["detect", str(paths()[0]), "-f", "csv", "--threshold", "0.9"])
    assert a.exit_code == b.exit_code == 0 and a.stdout == b.stdout


def test_zoom_sizes_takes_what_detect_returns():
    det = Detector("mobile")
    crowd = SAMPLES_DIR / "maksssksksss603.jpg"
    faces = det.detect(crowd)
    sizes = det.zoom_sizes(400, 226, faces)
    assert isinstance(sizes, list) and all(isinstance(s, int) for s in sizes)
    assert det.zoom_sizes(400, 226, []) == []


def test_watch_without_its_extra_is_a_usage_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "trackers", None)
    r = runner.invoke(app, ["watch", str(paths()[0])])
    assert r.exit_code == 2 and "pip install 'maskwatch[watch]'" in r.stderr


def test_head_on_the_pages_and_health():
    pytest.importorskip("fastapi", reason="serving needs the [serve] extra")
    from fastapi.testclient import TestClient

    from maskwatch.serve import create_app

    c = TestClient(create_app())
    assert c.head("/").status_code == 200 and c.head("/healthz").status_code == 200


# -- privacy: --anonymize hides faces in everything maskwatch saves or shows --------------------------


def _face_diff(a, b, faces) -> float:
    """Mean absolute difference of two pictures inside the face boxes."""
    import numpy as np

    vals = []
    for f in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in f.box)
        vals.append(np.abs(a[y1:y2, x1:x2].astype(float) - b[y1:y2, x1:x2].astype(float)).mean())
    return float(np.mean(vals))


def _is_anonymized(drawn, img, faces, mode) -> bool:
    """``drawn`` (decoded from a JPEG) is ``annotate(img, faces, anonymize_faces=mode)``, not the plain drawing."""
    from maskwatch.batch.annotate import annotate

    hidden, plain = annotate(img, faces, anonymize_faces=mode), annotate(img, faces)
    return _face_diff(drawn, hidden, faces) < 4 and _face_diff(drawn, plain, faces) > 10


SRC = SAMPLES_DIR / "maksssksksss307.jpg"


@pytest.mark.parametrize("mode", ["blur", "pixelate"])
def test_anonymize_hides_every_undrawn_face_pixel(mode):
    import cv2
    import numpy as np

    from maskwatch.batch.annotate import annotate

    img = cv2.imread(str(SRC))
    faces = Detector("mobile").detect(img)
    plain, hidden = annotate(img, faces), annotate(img, faces, anonymize_faces=mode)
    undrawn = (plain == img).all(axis=2)  # pixels no box or tag covers
    for f in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in f.box)
        face, keep = img[y1:y2, x1:x2], undrawn[y1:y2, x1:x2]
        gone = np.abs(hidden[y1:y2, x1:x2].astype(int) - face.astype(int)).max(axis=2)[keep]
        assert np.median(gone) > 3  # most of the face changed
        if mode == "blur":  # the fine detail is gone
            lap = lambda im: cv2.Laplacian(cv2.cvtColor(im, cv2.COLOR_BGR2GRAY), cv2.CV_64F)  # noqa: E731
            assert np.abs(lap(hidden[y1:y2, x1:x2]))[keep].mean() < 0.5 * np.abs(lap(face))[keep].mean()
        else:  # a few flat blocks are left
            colours = [len(np.unique(im[keep].reshape(-1, 3), axis=0)) for im in (hidden[y1:y2, x1:x2], face)]
            assert colours[0] < 0.15 * colours[1]
    from maskwatch.batch.annotate import COLORS_BGR

    solid = np.zeros(undrawn.shape, bool)  # the boxes' and tags' own colour (anti-aliased edges blend)
    for colour in COLORS_BGR.values():
        solid |= (plain == np.array(colour, np.uint8)).all(axis=2)
    assert solid.sum() > 100 and (hidden[solid] == plain[solid]).all()  # boxes and tags kept


@pytest.mark.parametrize("mode", ["blur", "pixelate"])
def test_detect_anonymize_writes_hidden_faces(tmp_path, mode):
    import cv2

    r = runner.invoke(app, ["detect", str(SRC), "--save-dir", str(tmp_path / "o"), "-f", "csv", "--anonymize", mode])
    assert r.exit_code == 0, r.output
    img = cv2.imread(str(SRC))
    assert _is_anonymized(cv2.imread(str(tmp_path / "o" / SRC.name)), img, Detector("mobile").detect(img), mode)


def test_anonymize_takes_only_its_modes():
    r = runner.invoke(app, ["detect", str(paths()[0]), "--anonymize", "smudge"])
    assert r.exit_code == 2 and "blur or pixelate" in r.stderr


def test_paddlehub_visualization_and_service_answers_are_anonymized(tmp_path):
    import base64

    import cv2
    import numpy as np

    from maskwatch.hub import Module

    img = cv2.imread(str(SRC))
    faces = Detector("mobile").detect(img)
    res = Module("pyramidbox_lite_mobile_mask").face_detection(
        paths=[str(SRC)], visualization=True, output_dir=str(tmp_path), anonymize="pixelate"
    )
    assert _is_anonymized(cv2.imread(res[0]["save_path"]), img, faces, "pixelate")
    pytest.importorskip("fastapi", reason="serving needs the [serve] extra")
    from fastapi.testclient import TestClient

    from maskwatch.serve import create_app

    c = TestClient(create_app(anonymize="blur"))
    body = {"images": [base64.b64encode(SRC.read_bytes()).decode()], "visualization": True}
    drawn = c.post("/predict/pyramidbox_lite_mobile_mask", json=body).json()["results"][0]["base64"]
    assert _is_anonymized(cv2.imdecode(np.frombuffer(base64.b64decode(drawn), np.uint8), 1), img, faces, "blur")
    r = c.post("/v1/detect?annotate=true", files={"images": ("a.jpg", SRC.read_bytes(), "image/jpeg")})
    assert _is_anonymized(cv2.imdecode(np.frombuffer(r.content, np.uint8), 1), img, faces, "blur")


def test_watch_anonymize_hides_faces_in_the_saved_video_and_snapshots(tmp_path):
    pytest.importorskip("trackers", reason="watch needs the [watch] extra")
    import cv2
    import numpy as np

    from maskwatch.batch.annotate import anonymize
    from maskwatch.watch.events import Snapshots

    img = cv2.imread(str(SRC))
    faces = Detector("mobile").detect(img)
    ev = {"box": faces[0].box, "stream": "door", "track_id": 1, "frame": 3}
    hidden = cv2.imread(Snapshots(tmp_path / "snaps", anonymize="blur").save(img, ev))
    plain = cv2.imread(Snapshots(tmp_path / "plain").save(img, ev))
    x1, y1, x2, y2 = faces[0].box
    a, b = max(0, int(x1 - (x2 - x1) * 0.3)), max(0, int(y1 - (y2 - y1) * 0.3))
    expected = anonymize(plain, [(x1 - a, y1 - b, x2 - a, y2 - b)], "blur")
    assert np.abs(hidden.astype(int) - expected.astype(int)).mean() < 4
    assert np.abs(hidden.astype(int) - plain.astype(int)).mean() > 5
    video = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 10, (img.shape[1], img.shape[0]))
    for _ in range(12):
        w.write(img)
    w.release()
    saved = tmp_path / "out.mp4"
    r = runner.invoke(app, ["watch", str(video), "--save", str(saved), "--anonymize", "pixelate", "--no-status"])
    assert r.exit_code == 0, r.output
    cap = cv2.VideoCapture(str(saved))
    frames = [cap.read()[1] for _ in range(12)]
    last = [f for f in frames if f is not None][-1]
    assert _face_diff(last, anonymize(img, [f.box for f in faces], "pixelate"), faces) < _face_diff(last, img, faces)


# -- serve: what a newcomer met at start -----------------------------------------------------------


def test_a_bad_environment_variable_is_named_not_a_flag(monkeypatch):
    pytest.importorskip("fastapi", reason="serving needs the [serve] extra")
    monkeypatch.setenv("MASKWATCH_PORT", "abc")
    r = runner.invoke(app, ["serve"])
    assert r.exit_code == 2 and r.stderr.startswith("error: MASKWATCH_PORT (the environment variable behind --port):")


def test_serve_on_a_busy_port_says_so_before_serving():
    pytest.importorskip("fastapi", reason="serving needs the [serve] extra")
    import socket
    import subprocess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run(
            [sys.executable, "-m", "maskwatch.cli", "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert r.returncode == 2 and "is in use" in r.stderr and "serving" not in r.stderr


def test_each_request_gets_an_access_log_line():
    pytest.importorskip("fastapi", reason="serving needs the [serve] extra")
    import subprocess
    import time
    import urllib.request

    from conftest import free_port

    port = free_port()
    p = subprocess.Popen(
        [sys.executable, "-m", "maskwatch.cli", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.3)
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=10).read()
    finally:
        p.terminate()
        out, _ = p.communicate(timeout=20)
    assert '"GET /v1/models HTTP/1.1" 200' in out


def test_api_docs_need_no_network():
    pytest.importorskip("fastapi", reason="serving needs the [serve] extra")
    from fastapi.testclient import TestClient

    from maskwatch.serve import create_app

    c = TestClient(create_app())
    for page in ("/docs", "/redoc"):
        html = c.get(page).text
        assert "cdn." not in html and "fonts.googleapis" not in html and "/docs-static/" in html
    assert c.get("/docs-static/swagger-ui-bundle.js").status_code == 200


def test_a_video_gets_a_per_frame_bar_and_its_summary_says_frames(tmp_path):
    import cv2
    import numpy as np

    video = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 10, (160, 120))
    for _ in range(20):
        w.write(np.full((120, 160, 3), 90, np.uint8))
    w.release()
    r = runner.invoke(app, ["detect", str(video), "-f", "csv", "--progress", "--summary"])
    assert r.exit_code == 0, r.output
    assert "20/20" in r.stderr and "0/1" not in r.stderr
    assert "all (1 video: 20 frames)" in r.stderr
    r = runner.invoke(app, ["detect", str(video), "-f", "csv", "--progress", "--vid-stride", "3"])
    assert "7/7" in r.stderr


def test_import_maskwatch_loads_no_video_code_and_sets_no_variable():
    import subprocess

    code = (
        "import os, sys; os.environ.pop('OPENCV_FFMPEG_LOGLEVEL', None); import maskwatch; "
        "print('maskwatch.watch' in sys.modules, 'OPENCV_FFMPEG_LOGLEVEL' in os.environ, maskwatch.Watcher.__name__)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["False", "False", "Watcher"], r.stderr


def test_classes_keeps_only_the_labels_asked_for(tmp_path):
    import csv as csv_mod

    src = SAMPLES_DIR / "maksssksksss307.jpg"  # one of each label
    r = runner.invoke(app, ["detect", str(src), "-f", "csv", "--classes", "no_mask,incorrect"])
    labels = {row["label"] for row in csv_mod.DictReader(r.stdout.splitlines())}
    assert r.exit_code == 0 and labels and labels <= {"no_mask", "incorrect"}
    r = runner.invoke(app, ["detect", str(src), "--classes", "hat"])
    assert r.exit_code == 2 and "--classes" in r.stderr


def test_save_txt_and_save_crop_write_yolo_labels_and_crops(tmp_path):
    from maskwatch.core.face import LABELS
    from maskwatch.evaluation.datasets import load_dataset

    src = SAMPLES_DIR / "maksssksksss307.jpg"
    out = tmp_path / "o"
    r = runner.invoke(app, ["detect", str(src), "-f", "csv", "--save-dir", str(out), "--save-txt", "--save-crop"])
    assert r.exit_code == 0, r.output
    faces = Detector("mobile").detect(src)
    lines = (out / "labels" / "maksssksksss307.txt").read_text().splitlines()
    assert len(lines) == len(faces)
    cls, cx, cy, w, h, conf = lines[0].split()
    assert LABELS[int(cls)] == faces[0].label and 0 < float(cx) < 1 and abs(float(conf) - faces[0].confidence) < 1e-3
    crops = sorted((out / "crops").rglob("*.jpg"))
    assert len(crops) == len(faces) and {c.parent.name for c in crops} == {f.label for f in faces}
    # the labels read back as a YOLO set (the picture beside them) with the boxes detect gave
    (out / "images").mkdir()
    (out / "images" / src.name).write_bytes(src.read_bytes())
    sample = load_dataset(out, fmt="yolo")[0]
    assert np_close(sample.boxes[0], faces[0].box)


def np_close(a, b, tol: float = 1.0) -> bool:
    return all(abs(float(x) - float(y)) <= tol for x, y in zip(a, b))


def test_a_python_call_draws_a_result():
    import cv2

    import maskwatch

    img = cv2.imread(str(SAMPLES_DIR / "maksssksksss307.jpg"))
    faces = Detector("mobile").detect(img)
    drawn = maskwatch.annotate(img, faces)
    assert (
        drawn.shape == img.shape
        and (drawn != img).any()
        and (img == cv2.imread(str(SAMPLES_DIR / "maksssksksss307.jpg"))).all()
    )


def test_detect_takes_input_size_as_watch_does(tmp_path):
    a = runner.invoke(app, ["detect", str(paths()[0]), "-f", "csv", "--input-size", "320"])
    assert a.exit_code == 0, a.output
    small = Detector("mobile", input_size=320).detect(paths()[0])
    assert len(a.stdout.strip().splitlines()) - 1 == max(1, len(small))


def test_a_faces_probabilities_are_keyed_by_its_models_labels():
    import numpy as np

    from maskwatch import Detections

    d = Detections(
        np.array([[0, 0, 10, 10]], np.float32),
        np.array([0.9], np.float32),
        np.array([[0.2, 0.8]], np.float32),
        labels=("hat", "no_hat"),
    )
    face = d.to_faces()[0]
    assert face.label == "no_hat" and face.to_dict()["probs"] == {"hat": 0.2, "no_hat": 0.8}
    assert Detections.from_faces([face]).labels == ("hat", "no_hat")


def test_annotate_draws_track_ids_and_a_caption():
    import numpy as np

    from maskwatch.batch.annotate import annotate, tag_text
    from maskwatch.core.face import Face

    f = Face((40.0, 50.0, 120.0, 150.0), "mask", 0.97, 0.9, (0.97, 0.02, 0.01), track_id=7)
    assert tag_text(f) == "#7 mask 0.97"
    assert tag_text(Face((0.0, 0.0, 1.0, 1.0), "no_mask", 0.5, 0.9)) == "no_mask 0.50"
    img = np.full((240, 320, 3), 200, np.uint8)
    out = annotate(img, [f], caption="people 1  mask 1")
    assert tuple(out[2, 2]) == (32, 32, 32) and tuple(annotate(img, [f])[2, 2]) == (200, 200, 200)


def test_one_letterbox_for_the_runtime_and_the_int8_calibration(tmp_path):
    import cv2
    import numpy as np

    from maskwatch.core.detector import Letterbox
    from maskwatch.export import calibration_blobs
    from maskwatch.models import MODEL_DIR

    det = Detector("mobile")
    img = cv2.imread(str(SAMPLES_DIR / "maksssksksss307.jpg"))  # 400x226
    blob = det.input_blob(img)
    size = det.passes(img.shape[1], img.shape[0])[0][0]
    box = Letterbox.of(img.shape[:2], size, max(det.spec.strides))
    assert blob.shape == (1, 3, box.ph, box.pw) and max(box.nw, box.nh) == size == 640
    assert (blob[0, :, box.nh :, :] == det.spec.pad_value).all() and det.spec.pad_value == 0
    (tmp_path / "calib").mkdir()
    cv2.imwrite(str(tmp_path / "calib" / "a.jpg"), img)
    got = calibration_blobs(tmp_path / "calib", MODEL_DIR / "mobile.onnx")
    again = det.input_blob(cv2.imread(str(tmp_path / "calib" / "a.jpg")))
    assert len(got) == 1 and got[0].shape == again.shape and np.array_equal(got[0], again)
