"""Property-based tests (Hypothesis) of the decoder and the HTTP routes on random and mutated input
(issue 33): an ``ImageError`` or a 4xx, never another exception, a 500 or a crash, and memory bounded."""

from __future__ import annotations

import base64
import json

import cv2
import numpy as np
import pytest
from hostile_inputs import png_declaring, rss_mb

hypothesis = pytest.importorskip("hypothesis", reason="the fuzz tests need hypothesis (the [dev] extra)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from maskwatch.core.errors import ImageError  # noqa: E402
from maskwatch.core.imageio import MAX_PIXELS, decode_bytes  # noqa: E402

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
PEAK_GROWTH_MB = 600  # a 100-megapixel picture decodes to 300 MB: nothing fuzzed may cost twice that


def _seeds() -> list[bytes]:
    img = np.tile(np.linspace(20, 230, 64, dtype=np.uint8)[None, :, None], (48, 1, 3))
    out = [cv2.imencode(ext, img)[1].tobytes() for ext in (".jpg", ".png", ".bmp", ".webp", ".tiff", ".ppm")]
    from PIL import Image
    import io

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "GIF")
    return [*out, buf.getvalue(), png_declaring(13000, 13000)]


SEEDS = _seeds()


@st.composite
def mutated(draw) -> bytes:
    """A valid picture with bytes overwritten, inserted, cut or its size fields set to extremes."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        op = draw(st.sampled_from(["flip", "insert", "cut", "big"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip":
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            data[i:i] = draw(st.binary(max_size=64))
        elif op == "cut":
            del data[i : i + draw(st.integers(1, 256))]
        else:  # a width or height field set huge (PNG IHDR, BMP, JPEG SOF all keep them in the first bytes)
            j = draw(st.integers(0, min(200, max(0, len(data) - 4))))
            data[j : j + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\xff\xff", b"\x7f\xff\x7f\xff"]))
    return bytes(data)


def _reset_peak() -> None:
    try:  # Linux: clears VmHWM, so that the peak measured is this test's
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


@pytest.fixture(scope="module")
def memory_bound():
    _reset_peak()
    start = rss_mb()
    yield
    assert _peak_mb() - start < PEAK_GROWTH_MB


def _decodes_or_refuses(data: bytes) -> None:
    try:
        img = decode_bytes(data, "fuzz")
    except ImageError as exc:
        assert str(exc).startswith("fuzz: ") and "\n" not in str(exc)
        return
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert img.shape[0] * img.shape[1] <= MAX_PIXELS


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_decode_or_raise_image_error(memory_bound, data):
    _decodes_or_refuses(data)


@FUZZ
@given(mutated())
def test_mutated_pictures_decode_or_raise_image_error(memory_bound, data):
    _decodes_or_refuses(data)


# -- the HTTP routes --------------------------------------------------------------------------------

pytest.importorskip("fastapi", reason="serving needs the [serve] extra")
from fastapi.testclient import TestClient  # noqa: E402

from maskwatch.serve import create_app  # noqa: E402

ROUTES = ["/predict/pyramidbox_lite_mobile_mask", "/v1/detect"]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(max_body=2_000_000), raise_server_exceptions=False)


def _answered_not_500(r) -> None:
    assert r.status_code < 500, r.text[:300]
    assert r.status_code in (200, 400, 404, 413, 415, 422) or r.status_code < 300
    r.json()  # every answer is JSON


@FUZZ
@given(
    route=st.sampled_from(ROUTES),
    doc=st.one_of(
        JSON_VALUES,
        st.fixed_dictionaries({"images": JSON_VALUES}),
        st.fixed_dictionaries(
            {
                "images": st.lists(
                    st.one_of(st.text(max_size=50), mutated().map(lambda b: base64.b64encode(b).decode())), max_size=3
                )
            },
            optional={"confs_threshold": JSON_VALUES, "visualization": JSON_VALUES},
        ),
    ),
)
def test_random_json_bodies_get_an_answer_not_a_500(memory_bound, client, route, doc):
    r = client.post(route, content=json.dumps(doc, allow_nan=True), headers={"Content-Type": "application/json"})
    _answered_not_500(r)


@FUZZ
@given(
    route=st.sampled_from(ROUTES),
    body=st.binary(max_size=2048),
    ctype=st.sampled_from(
        ["application/json", "multipart/form-data; boundary=x", "multipart/form-data", "text/plain", "", "image/jpeg"]
    ),
)
def test_random_bodies_and_content_types_get_an_answer_not_a_500(memory_bound, client, route, body, ctype):
    r = client.post(route, content=body, headers={"Content-Type": ctype} if ctype else {})
    _answered_not_500(r)


@FUZZ
@given(data=mutated(), name=st.text(max_size=40))
def test_mutated_uploads_get_an_answer_not_a_500(memory_bound, client, data, name):
    r = client.post("/v1/detect", files={"images": (name or "x.jpg", data, "image/jpeg")})
    _answered_not_500(r)
