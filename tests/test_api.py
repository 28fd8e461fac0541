"""The Python API's contracts: zoom_sizes on what detect returns, a lazy import, probabilities keyed by the model's labels, annotate with track ids, one letterbox for runtime and int8 calibration."""

from __future__ import annotations
import sys
from typer.testing import CliRunner
from maskwatch import Detector
from maskwatch.samples import SAMPLES_DIR

runner = CliRunner()


def test_zoom_sizes_takes_what_detect_returns():
    det = Detector("mobile")
    crowd = SAMPLES_DIR / "maksssksksss603.jpg"
    faces = det.detect(crowd)
    sizes = det.zoom_sizes(400, 226, faces)
    assert isinstance(sizes, list) and all(isinstance(s, int) for s in sizes)
    assert det.zoom_sizes(400, 226, []) == []


def test_import_maskwatch_loads_no_video_code_and_sets_no_variable():
    import subprocess

    code = (
        "import os, sys; os.environ.pop('OPENCV_FFMPEG_LOGLEVEL', None); import maskwatch; "
        "print('maskwatch.watch' in sys.modules, 'OPENCV_FFMPEG_LOGLEVEL' in os.environ, maskwatch.Watcher.__name__)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["False", "False", "Watcher"], r.stderr


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
    # a small picture is enlarged to the model's floor (min_input)
    assert blob.shape == (1, 3, box.ph, box.pw) and max(box.nw, box.nh) == size == det.settings.min_input > 400
    assert (blob[0, :, box.nh :, :] == det.spec.pad_value).all() and det.spec.pad_value == 0
    (tmp_path / "calib").mkdir()
    cv2.imwrite(str(tmp_path / "calib" / "a.jpg"), img)
    got = calibration_blobs(tmp_path / "calib", MODEL_DIR / "mobile.onnx")
    again = det.input_blob(cv2.imread(str(tmp_path / "calib" / "a.jpg")))
    assert len(got) == 1 and got[0].shape == again.shape and np.array_equal(got[0], again)
