"""--anonymize blur|pixelate hides every face in what maskwatch saves or shows: annotate, detect, watch, the PaddleHub visualization and the service, boxes and labels kept."""

from __future__ import annotations
import pytest
from typer.testing import CliRunner
from maskwatch import Detector
from maskwatch.cli import app
from maskwatch.samples import SAMPLES_DIR, paths

runner = CliRunner()


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
