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
