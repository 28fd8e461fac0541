"""The model registry: names, aliases, files and the settings read from each model file."""

from __future__ import annotations

import subprocess
import sys

import pytest

from maskwatch import Detector, ModelError
from maskwatch.core.registry import ModelSpec, available, paddlehub_modules, read_metadata, resolve_model
from maskwatch.models import MODEL_DIR


def test_names_aliases_and_paths_resolve_to_one_spec():
    mobile = resolve_model("mobile")
    assert isinstance(mobile, ModelSpec) and mobile.path.name == "mobile.onnx"
    assert resolve_model("pyramidbox_lite_mobile_mask").path == mobile.path
    assert resolve_model("MOBILE").path == mobile.path
    assert resolve_model(mobile.path).path == mobile.path and resolve_model(str(mobile.path)).path == mobile.path
    assert mobile.paddlehub_module == "pyramidbox_lite_mobile_mask"
    assert paddlehub_modules() == {"pyramidbox_lite_mobile_mask": "mobile", "pyramidbox_lite_server_mask": "server"}
    assert available() == ["mobile", "server"]
    with pytest.raises(ModelError, match="not a model name"):
        resolve_model("tiny-yolo")


def test_settings_come_from_the_file_metadata():
    for name in ("mobile", "server"):
        spec = resolve_model(name)
        meta = read_metadata(spec.path)
        assert spec.input_size == meta["input_size"] and spec.score_threshold == meta["score_threshold"]
        assert spec.flip == bool(meta.get("flip", False)) and spec.strides == (8, 16, 32)
        assert spec.pad_value == int(meta.get("pad_value", 114))
        det = Detector(name)
        assert (det.input_size, det.score_threshold, det.flip, det.scales) == (
            spec.input_size,
            spec.score_threshold,
            spec.flip,
            spec.scales,
        )


def test_server_size_counts_its_classifier():
    server = resolve_model("server")
    assert server.classifiers == ("server_cvcls.onnx", "server_cvcls2.onnx")
    assert [f.name for f in server.files] == ["server.onnx", "server_cvcls.onnx", "server_cvcls2.onnx"]
    assert server.size_bytes == sum(f.stat().st_size for f in server.files) > server.path.stat().st_size
    out = subprocess.run([sys.executable, "-m", "maskwatch.cli", "models"], capture_output=True, text=True, timeout=120)
    line = next(x for x in out.stdout.splitlines() if x.startswith("server"))
    assert f"{server.size_bytes / 1e6:.2f} MB" in line


def test_a_file_that_is_no_model_is_named(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(ModelError, match="broken.onnx"):
        resolve_model(bad)


def test_model_settings_are_kept_once():
    """Strides, pad value and multiple, thresholds: the registry has them, /v1/models serves them, and
    the web page's JavaScript keeps no copy of them (it once had its own strides, 32, 114 and 0.45)."""
    import re

    from maskwatch.core.detector import Letterbox
    from maskwatch.core.registry import DEFAULTS, STRIDES

    spec = resolve_model("mobile")
    s = spec.summary()
    assert s["strides"] == list(STRIDES) == DEFAULTS["strides"] and s["pad_multiple"] == max(STRIDES)
    # the file's own pad value (YuNet-n pads with 0), else the default
    assert s["pad_value"] == spec.meta.get("pad_value", DEFAULTS["pad_value"]) == 0 and 0 < s["nms_threshold"] < 1
    assert Letterbox.of((100, 70), 100, 64).pw == 128  # padded to the model's largest stride, not a fixed 32
    js = (MODEL_DIR.parent / "web" / "static" / "ondevice.js").read_text()
    code = "\n".join(line.split("//")[0] for line in js.splitlines())
    assert not re.search(r"\b(8, 16, 32|114|0\.45|640|32)\b", code), "a model setting written into ondevice.js"
    for key in ("input_size", "score_threshold", "nms_threshold", "labels", "strides", "pad_multiple", "pad_value"):
        assert f"m.{key}" in code


def test_the_first_pass_size_rule_is_one_function(tmp_path):
    """The first pass's input size comes from one rule (``registry.first_input``) that ``Detector``,
    ``ModelSettings`` and the PaddleHub module's docs all use: the picture's long side x ``upscale``
    kept between ``min_input`` and ``max_input``, or a fixed ``input_size``."""
    from maskwatch.core.registry import ModelSettings, first_input

    small = ModelSettings(upscale=0.8, min_input=512, max_input=1280)
    assert small.first_input(640, 480) == 512 and small.first_input(480, 640) == 512  # 0.8 x 640
    assert small.first_input(400, 300) == 512  # never under min_input
    assert small.first_input(1024, 768) == 819 and small.first_input(4000, 3000) == 1280
    assert ModelSettings(upscale=None, input_size=416).first_input(4000, 3000) == 416
    assert first_input(1000, 1.0, 640, 640, 1280) == 1000
    for name in ("mobile", "server"):
        det = Detector(name)
        for w, h in ((640, 480), (400, 300), (1024, 683), (1280, 720)):
            assert det.passes(w, h)[0][0] == det.settings.first_input(w, h), (name, w, h)
    # the shipped mobile runs a 640x480 frame smaller than the picture (issue 32); server at its own size
    assert Detector("mobile").passes(640, 480)[0] == [512] and Detector("server").passes(640, 480)[0] == [640]


def test_a_picture_is_shrunk_bilinearly_unless_it_shrinks_a_lot():
    """Bilinear resizing from 0.7x up (a fifth of INTER_AREA's time), area averaging below (no aliasing)."""
    import cv2
    import numpy as np

    from maskwatch.core.detector import AREA_BELOW, Letterbox

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (480, 640, 3), np.uint8)
    for size in (512, 320):
        box = Letterbox.of(img.shape[:2], size, 32)
        got = box.blob(img, 0)[0, :, : box.nh, : box.nw].transpose(1, 2, 0)
        interp = cv2.INTER_AREA if size / 640 < AREA_BELOW else cv2.INTER_LINEAR
        want = cv2.resize(img, (box.nw, box.nh), interpolation=interp).astype(np.float32)
        assert np.array_equal(got, want), size
        assert box.blob(img, 0)[0, :, box.nh :, :].sum() == 0  # the padding
