"""PaddleHub drop-in: same call, same result shape."""

import base64

import cv2
import numpy as np
import pytest

from conftest import kaggle_val
from maskwatch import hub
from maskwatch.core.errors import MaskwatchError


def _check_schema(res, n):
    assert isinstance(res, list) and len(res) == n
    for item in res:
        assert set(item) >= {"path", "data"}
        for face in item["data"]:
            assert set(face) == {"label", "confidence", "left", "top", "right", "bottom"}
            assert face["label"] in ("MASK", "NO MASK")
            assert isinstance(face["confidence"], float) and 0 <= face["confidence"] <= 1
            for k in ("left", "top", "right", "bottom"):
                assert isinstance(face[k], int)
            assert face["right"] > face["left"] and face["bottom"] > face["top"]


def test_module_names_and_unknown():
    assert hub.Module(name="pyramidbox_lite_mobile_mask").model == "mobile"
    assert hub.Module(name="pyramidbox_lite_server_mask").model == "server"
    with pytest.raises(Exception, match="unknown module"):
        hub.Module(name="yolov3")


def test_images_and_paths_schema(data, tmp_path):
    m = hub.Module(name="pyramidbox_lite_mobile_mask")
    samples = kaggle_val(data, 3)
    imgs = [cv2.imread(str(s.image)) for s in samples]
    res = m.face_detection(images=imgs)
    _check_schema(res, 3)
    assert all(r["path"].startswith("ndarray_time=") for r in res)
    assert sum(len(r["data"]) for r in res) > 0
    res = m.face_detection(paths=[str(s.image) for s in samples], visualization=True, output_dir=str(tmp_path / "vis"))
    _check_schema(res, 3)
    assert [r["path"] for r in res] == [str(s.image) for s in samples]
    assert len(list((tmp_path / "vis").glob("*.jpg"))) == 3


def test_positional_call_like_paddlehub(data):
    m = hub.Module(name="pyramidbox_lite_server_mask")
    s = kaggle_val(data, 1)[0]
    res = m.face_detection(None, [str(s.image)], 1, False, False, "detection_result", False, 0.5, 0.6)
    _check_schema(res, 1)


def test_confs_threshold_filters(data):
    m = hub.Module()
    s = kaggle_val(data, 2)
    lo = m.face_detection(paths=[str(x.image) for x in s], confs_threshold=0.2)
    hi = m.face_detection(paths=[str(x.image) for x in s], confs_threshold=0.9)
    assert sum(len(r["data"]) for r in hi) <= sum(len(r["data"]) for r in lo)


def test_incorrect_reports_as_no_mask():
    from maskwatch.core.face import Face

    f = Face((0, 0, 10, 10), "incorrect", 0.7, 0.9, (0.2, 0.1, 0.7))
    label, conf = hub.paddle_label(f)
    assert label == "NO MASK" and conf == pytest.approx(0.8)


def test_no_face_gives_empty_data_and_serving_method():
    m = hub.Module()
    ok, enc = cv2.imencode(".png", np.full((120, 160, 3), 200, np.uint8))
    res = m.serving_method(images=[base64.b64encode(enc.tobytes()).decode()])
    assert res[0]["data"] == []


def test_arrays_as_a_stack_or_one_gray_picture():
    m = hub.Module(name="pyramidbox_lite_mobile_mask")
    stack = np.full((3, 64, 80, 3), 128, np.uint8)
    _check_schema(m.face_detection(images=stack), 3)
    _check_schema(m.face_detection(images=np.full((64, 80), 128, np.uint8)), 1)


def test_confs_threshold_over_one_finds_nothing_and_a_non_number_is_named(data):
    m = hub.Module(name="pyramidbox_lite_mobile_mask")
    img = cv2.imread(str(kaggle_val(data, 1)[0].image))
    assert m.face_detection(images=[img], confs_threshold=1.5)[0]["data"] == []
    with pytest.raises(MaskwatchError, match="confs_threshold"):
        m.face_detection(images=[img], confs_threshold="high")


def test_one_session_for_any_number_of_thresholds(data, monkeypatch):
    import maskwatch.core.detector as detector_module

    made = []
    real = detector_module._session
    monkeypatch.setattr(detector_module, "_session", lambda *a, **k: made.append(a[0]) or real(*a, **k))
    m = hub.Module(name="pyramidbox_lite_mobile_mask")
    path = [str(kaggle_val(data, 1)[0].image)]
    counts = [
        sum(len(r["data"]) for r in m.face_detection(paths=path, confs_threshold=t)) for t in (0.1, 0.3, 0.6, 0.9, 0.95)
    ]
    # one onnxruntime session per model file it runs (the network, any crop classifier, the rescue's),
    # whatever the thresholds
    det = m.get_face_detector_module()
    assert det._rescue is not None and len(made) == 1 + len(det._classifiers) + 1
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]
    assert m.face_detection(paths=path, confs_threshold=0.3)[0]["data"] == hub.to_paddle(
        det.detect(path[0], score_threshold=0.3), *cv2.imread(path[0]).shape[1::-1]
    )


def test_set_and_get_face_detector_module(data):
    from maskwatch import Detector

    m = hub.Module(name="pyramidbox_lite_mobile_mask")
    assert m.get_face_detector_module().path.name == "mobile.onnx"
    server = Detector("server")
    m.set_face_detector_module(server)
    assert m.get_face_detector_module() is server
    m.set_face_detector_module(hub.Module(name="pyramidbox_lite_mobile_mask"))
    assert m.get_face_detector_module().path.name == "mobile.onnx"
    m.set_face_detector_module("server")
    path = str(kaggle_val(data, 1)[0].image)
    assert (
        m.face_detection(paths=[path])[0]["data"]
        == hub.Module(name="pyramidbox_lite_server_mask").face_detection(paths=[path])[0]["data"]
    )


def test_save_inference_model_writes_the_onnx_files_and_their_contract(tmp_path):
    import onnxruntime as ort

    from maskwatch import Detector

    written = hub.Module(name="pyramidbox_lite_server_mask").save_inference_model(str(tmp_path / "out"))
    names = sorted(p.rsplit("/", 1)[-1] for p in written)
    assert names == ["README.md", "server.onnx", "server_cvcls.onnx", "server_cvcls2.onnx"]
    readme = (tmp_path / "out" / "README.md").read_text()
    spec = Detector("server").spec
    assert f"pad right and bottom with {spec.pad_value}" in readme and "float32" in readme and "8, 16, 32" in readme
    assert f"picture's own long side x {spec.upscale:g}" in readme and "knots" in readme  # its size rule, its score map
    sess = ort.InferenceSession(str(tmp_path / "out" / "server.onnx"), providers=["CPUExecutionProvider"])
    assert len(sess.get_outputs()) == 3
    img = np.full((96, 128, 3), 90, np.uint8)
    assert Detector(tmp_path / "out" / "server.onnx").detect(img) == Detector("server").detect(img)


def test_cli_hub_run_prints_paddlehub_results(data):
    import json
    import subprocess
    import sys

    path = str(kaggle_val(data, 1)[0].image)
    out = subprocess.run(
        [sys.executable, "-m", "maskwatch.cli", "hub", "run", "pyramidbox_lite_mobile_mask", "--input_path", path],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    _check_schema(res, 1)
    assert res == hub.Module(name="pyramidbox_lite_mobile_mask").face_detection(paths=[path])
    bad = subprocess.run(
        [sys.executable, "-m", "maskwatch.cli", "hub", "run", "yolov3", "--input_path", path],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "unknown module" in bad.stderr


def test_cli_hub_serving_start_answers_paddlehub_requests():
    import json
    import urllib.request

    from conftest import LiveServer

    srv = LiveServer("-m", "pyramidbox_lite_server_mask", command=("hub", "serving", "start")).wait(60)
    try:
        ok, enc = cv2.imencode(".jpg", np.full((120, 160, 3), 200, np.uint8))
        body = json.dumps({"images": [base64.b64encode(enc.tobytes()).decode()]}).encode()
        req = urllib.request.Request(
            srv.url + "/predict/pyramidbox_lite_server_mask", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            doc = json.loads(r.read())
        assert doc["status"] == "000" and doc["results"][0]["data"] == []
    finally:
        srv.stop()
