"""The HTTP service guards itself: install hint, options checked at start, the API key on every route, pixels bounded, decoding off the event loop, uploads in memory, metrics of all workers."""

import base64
import builtins
import io
import tempfile
import threading

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

pytest.importorskip("fastapi", reason="serving needs the [serve] extra")
from fastapi.testclient import TestClient

from maskwatch.serve import inputs as serve_inputs
from maskwatch.cli import app as cli_app
from maskwatch.serve import create_app

BLANK = np.full((120, 160, 3), 180, np.uint8)


def _b64(img, ext: str = ".jpg") -> str:
    _, enc = cv2.imencode(ext, img)
    return base64.b64encode(enc.tobytes()).decode()


@pytest.fixture(scope="module")
def keyed():
    return TestClient(create_app(api_key="s3cret"))


def test_install_hint_keeps_the_extra_and_is_one_line(monkeypatch):
    real_import = builtins.__import__

    def no_uvicorn(name, *a, **k):
        if name == "uvicorn":
            raise ImportError("No module named 'uvicorn'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_uvicorn)
    r = CliRunner().invoke(cli_app, ["serve"])
    assert r.exit_code == 2
    assert "pip install 'maskwatch[serve]'" in r.output
    assert len(r.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--max-megapixels", "0"], "--max-megapixels"),
        (["--max-body-mb", "-1"], "--max-body-mb"),
        (["--max-megapixels", "nan"], "--max-megapixels"),
        (["--api-key", ""], "--api-key"),
    ],
)
def test_nonsense_options_are_refused_at_start(args, flag):
    r = CliRunner().invoke(cli_app, ["serve", *args])
    assert r.exit_code == 2 and flag in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("kwargs", [{"api_key": ""}, {"max_pixels": 0}, {"max_body": -1}, {"max_images": 0}])
def test_create_app_refuses_nonsense_limits(kwargs):
    from maskwatch import MaskwatchError

    with pytest.raises(MaskwatchError):
        create_app(**kwargs)


@pytest.mark.parametrize(
    "path", ["/v1/models", "/metrics", "/docs", "/openapi.json", "/", "/live", "/models/mobile.onnx"]
)
def test_api_key_protects_every_route_but_health(keyed, path):
    assert keyed.get(path).status_code == 401
    assert "API key" in keyed.get(path).json()["error"]
    assert keyed.get(path, headers={"X-API-Key": "s3cret"}).status_code == 200
    assert keyed.get("/healthz").status_code == 200


def test_page_opened_with_key_sets_a_cookie_for_its_requests():
    c = TestClient(create_app(api_key="s3cret"))
    assert c.get("/live?key=s3cret").status_code == 200
    assert c.get("/v1/models").status_code == 200  # the cookie the page got
    assert c.get("/metrics", cookies={"maskwatch_key": "wrong"}).status_code == 401


def test_websocket_needs_the_key(keyed):
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect), keyed.websocket_connect("/ws/live") as ws:
        ws.receive_json()
    _, enc = cv2.imencode(".jpg", BLANK)
    with keyed.websocket_connect("/ws/live", headers={"X-API-Key": "s3cret"}) as ws:
        ws.send_bytes(enc.tobytes())
        assert ws.receive_json()["faces"] == []


def test_decompression_bomb_names_maskwatch_limit():
    buf = io.BytesIO()
    Image.new("1", (20000, 10000)).save(buf, "PNG")  # 200 MP, past Pillow's own bomb limit
    c = TestClient(create_app())
    r = c.post("/v1/detect", files={"images": ("bomb.png", buf.getvalue(), "image/png")})
    assert r.status_code == 400
    msg = r.json()["error"]
    assert "40 megapixels" in msg and "178956970" not in msg and "178,956,970" not in msg


def test_pixels_are_bounded_per_request_before_decoding(monkeypatch):
    decoded = []
    real = serve_inputs.decode_bytes
    monkeypatch.setattr(serve_inputs, "decode_bytes", lambda *a, **k: decoded.append(1) or real(*a, **k))
    c = TestClient(create_app(max_pixels=5_000_000, max_request_pixels=10_000_000))
    pic = _b64(np.zeros((2000, 2000, 3), np.uint8), ".png")  # 4 MP each: under the per-picture limit
    r = c.post("/v1/detect", json={"images": [pic, pic, pic]})
    assert r.status_code == 400 and "per request" in r.json()["error"] and decoded == []
    r = c.post("/predict/pyramidbox_lite_mobile_mask", json={"images": [pic, pic, pic]})
    assert r.status_code == 400 and "per request" in r.json()["msg"]
    assert c.post("/v1/detect", json={"images": [pic, pic]}).status_code == 200


def test_decoding_runs_off_the_event_loop(monkeypatch):
    """While a picture is being decoded, /healthz answers (on the same event loop, as in uvicorn)."""
    started, health_done, seen = threading.Event(), threading.Event(), []
    real = serve_inputs.decode_bytes

    def slow_decode(*a, **k):
        started.set()
        seen.append(health_done.wait(20))  # True only if /healthz answered while this decode was running
        return real(*a, **k)

    monkeypatch.setattr(serve_inputs, "decode_bytes", slow_decode)
    with TestClient(create_app()) as c:
        result = {}
        t = threading.Thread(
            target=lambda: result.setdefault("r", c.post("/v1/detect", json={"images": [_b64(BLANK)]}))
        )
        t.start()
        assert started.wait(20)
        assert c.get("/healthz").status_code == 200
        health_done.set()
        t.join(30)
    assert seen == [True] and result["r"].status_code == 200


def test_uploads_are_not_spooled_to_disk(monkeypatch):
    import starlette.formparsers as fp

    rolled = []

    class Recording(tempfile.SpooledTemporaryFile):
        def rollover(self):
            rolled.append(1)
            super().rollover()

    monkeypatch.setattr(fp, "SpooledTemporaryFile", Recording)
    noise = np.random.default_rng(0).integers(0, 255, (700, 700, 3), dtype=np.uint8)
    _, enc = cv2.imencode(".png", noise)
    assert len(enc) > 1024 * 1024  # over starlette's 1 MB spool size
    c = TestClient(create_app())
    r = c.post("/v1/detect", files={"images": ("noise.png", enc.tobytes(), "image/png")})
    assert r.status_code == 200 and rolled == []


def test_live_websocket_through_a_real_uvicorn_server(live_server):
    from websockets.sync.client import connect

    _, enc = cv2.imencode(".jpg", BLANK)
    with connect(live_server.url.replace("http://", "ws://") + "/ws/live", open_timeout=10) as ws:
        ws.send(enc.tobytes())
        import json

        res = json.loads(ws.recv(timeout=30))
    assert res["faces"] == [] and res["width"] == 160


def test_models_listing_loads_no_model():
    c = TestClient(create_app())
    models = c.get("/v1/models").json()["models"]
    assert {m["name"] for m in models} == {"mobile", "server"} and sum(m["default"] for m in models) == 1
    assert all(m["file_bytes"] > 0 and m["input_size"] > 0 for m in models)
    assert set(c.app.state.models._dets) == {"mobile"}  # the default, loaded at start; server stays unloaded


def test_metrics_report_all_workers():
    import json
    import urllib.request

    from conftest import LiveServer

    srv = LiveServer("--workers", "2").wait(60)
    try:
        body = json.dumps({"images": [_b64(BLANK)]}).encode()
        for _ in range(12):  # new connections: spread over both workers
            req = urllib.request.Request(
                f"{srv.url}/v1/detect", data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=30) as r:
                assert r.status == 200
        for _ in range(4):  # whichever worker answers, it reports the 12 pictures of both
            with urllib.request.urlopen(f"{srv.url}/metrics", timeout=30) as r:
                text = r.read().decode()
            images = [ln for ln in text.splitlines() if ln.startswith("maskwatch_images_total")]
            assert images and float(images[0].split()[-1]) == 12
    finally:
        srv.stop()


def test_confs_threshold_zero_gives_at_most_max_faces():
    from maskwatch.core.detector import MAX_FACES

    busy = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    c = TestClient(create_app())
    r = c.post("/predict/pyramidbox_lite_mobile_mask", json={"images": [_b64(busy, ".png")], "confs_threshold": 0})
    assert r.status_code == 200 and len(r.json()["results"][0]["data"]) == MAX_FACES
