"""The decode gate (issue 33): every way a picture enters is checked on its header, before a pixel is decoded."""

from __future__ import annotations

import base64

import cv2
import numpy as np
import pytest
from hostile_inputs import REFUSED_FORMATS, hdr_bomb, jpeg, png_declaring

import maskwatch.core.imageio as imageio
from maskwatch import Detector
from maskwatch.core.errors import ImageError


@pytest.fixture
def no_decoding(monkeypatch):
    """Any pixel decoding fails the test: what the gate refuses must never reach the decoder."""

    def refuse(*a, **k):
        raise AssertionError("cv2.imdecode was called on a picture the gate should have refused")

    monkeypatch.setattr(imageio.cv2, "imdecode", refuse)


def test_hdr_bomb_is_refused_by_name_before_decoding(no_decoding):
    with pytest.raises(ImageError, match="Radiance HDR pictures are not accepted"):
        imageio.decode_bytes(hdr_bomb(11000, 11000), "bomb.jpg")


def test_hdr_bomb_named_jpg_is_refused_through_the_python_api(tmp_path, no_decoding):
    p = tmp_path / "bomb.jpg"
    p.write_bytes(hdr_bomb(11000, 11000))
    with pytest.raises(ImageError) as e:
        Detector("mobile").detect(p)
    assert str(p) in str(e.value) and "Radiance HDR" in str(e.value)


@pytest.mark.parametrize("fmt", sorted(REFUSED_FORMATS))
def test_formats_nobody_sends_are_refused_by_name(fmt, no_decoding):
    with pytest.raises(ImageError, match=f"{fmt} pictures are not accepted"):
        imageio.decode_bytes(REFUSED_FORMATS[fmt], "x")


def test_png_over_the_limit_is_refused_before_its_exif_is_read(monkeypatch, no_decoding):
    from PIL import Image

    read: list[int] = []

    def exif_read(self):  # recorded, not raised: a failing EXIF read is forgiven by design
        read.append(1)
        return Image.Exif()

    from PIL import PngImagePlugin

    monkeypatch.setattr(Image.Image, "getexif", exif_read)
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "getexif", exif_read)  # PNG has its own
    with pytest.raises(ImageError, match="13000x13000 is 169 megapixels, over the limit of 100"):
        imageio.decode_bytes(png_declaring(13000, 13000), "bomb.png")
    assert read == []  # the size was compared first


@pytest.mark.parametrize(
    "data, why",
    [
        (b"hello, not a picture", "not a picture"),
        (b"BM" + bytes(64), "cannot read the BMP header"),
        (b"\x89PNG\r\n\x1a\n" + bytes(8), "cannot read the PNG header"),
        (b"\x00\x00\x00 ftypavif" + bytes(64), "AVIF pictures are not accepted"),
    ],
)
def test_unreadable_headers_name_the_input(data, why, no_decoding):
    with pytest.raises(ImageError, match=why) as e:
        imageio.decode_bytes(data, "upload-7")
    assert str(e.value).startswith("upload-7: ")


def test_accepted_formats_still_decode():
    img = np.tile(np.linspace(30, 220, 64, dtype=np.uint8)[None, :, None], (48, 1, 3))
    for ext in (".jpg", ".png", ".bmp", ".webp", ".tiff", ".ppm", ".pgm"):
        ok, enc = cv2.imencode(ext, img if ext != ".pgm" else img[:, :, 0])
        assert ok
        out = imageio.decode_bytes(enc.tobytes(), f"x{ext}")
        assert out.shape == (48, 64, 3), ext


def test_declared_pixels_count_every_format_the_gate_accepts():
    assert imageio.declared_pixels(png_declaring(13000, 13000)) == 169_000_000
    assert imageio.declared_pixels(jpeg(160, 120)) == 19_200
    with pytest.raises(ImageError, match="Radiance HDR"):
        imageio.declared_pixels(hdr_bomb())


def test_video_frames_over_the_limit_are_refused_before_reading(tmp_path, monkeypatch):
    from maskwatch.batch import runner, sources

    p = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(p), cv2.VideoWriter.fourcc(*"MJPG"), 10, (320, 240))
    for _ in range(3):
        w.write(np.full((240, 320, 3), 90, np.uint8))
    w.release()
    monkeypatch.setattr(sources, "MAX_PIXELS", 50_000)
    reps = list(runner.detect_video(Detector("mobile"), str(p)))
    assert len(reps) == 1 and "320x240" in reps[0].error and "over the limit" in reps[0].error


# -- the service: uploads, base64 and WebSocket frames go through the same gate --------------------

fastapi = pytest.importorskip("fastapi", reason="serving needs the [serve] extra")
from fastapi.testclient import TestClient  # noqa: E402

from maskwatch.serve import create_app  # noqa: E402


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app())


def test_hdr_upload_is_a_400_naming_it(client, no_decoding):
    r = client.post("/v1/detect", files={"images": ("bomb.jpg", hdr_bomb(), "image/jpeg")})
    assert r.status_code == 400
    assert r.json()["error"].startswith("bomb.jpg: Radiance HDR pictures are not accepted")


def test_hdr_in_paddlehub_base64_is_a_400(client, no_decoding):
    body = {"images": [base64.b64encode(hdr_bomb()).decode()]}
    r = client.post("/predict/pyramidbox_lite_mobile_mask", json=body)
    assert r.status_code == 400 and r.json()["status"] == "101" and "Radiance HDR" in r.json()["msg"]


def test_declared_pixels_of_every_picture_count_towards_the_request(no_decoding):
    c = TestClient(create_app(max_pixels=40_000_000, max_request_pixels=50_000_000))
    files = [("images", (f"p{i}.png", png_declaring(5000, 6000), "image/png")) for i in range(2)]  # 30 MP each
    r = c.post("/v1/detect", files=files)
    assert r.status_code == 400 and "per request" in r.json()["error"]


def test_hdr_websocket_frame_gets_an_error_and_the_socket_lives(client):
    with client.websocket_connect("/ws/live") as ws:
        ws.send_bytes(hdr_bomb())
        assert "Radiance HDR" in ws.receive_json()["error"]
        ws.send_bytes(jpeg())
        assert ws.receive_json()["faces"] == []
