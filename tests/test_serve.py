"""The HTTP service: PaddleHub Serving contract, REST API, limits and errors, a real uvicorn process."""

import base64
import json
import urllib.request

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi", reason="serving needs the [serve] extra")
from fastapi.testclient import TestClient  # noqa: E402

from conftest import kaggle_val  # noqa: E402
from maskwatch.serve import create_app  # noqa: E402


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(max_body=2_000_000, max_pixels=5_000_000))


def _b64(img) -> str:
    ok, enc = cv2.imencode(".jpg", img)
    return base64.b64encode(enc.tobytes()).decode()


BLANK = np.full((120, 160, 3), 180, np.uint8)


def test_paddlehub_predict_no_face_is_empty_data(client):
    r = client.post("/predict/pyramidbox_lite_mobile_mask", json={"images": [_b64(BLANK)]})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "000" and body["msg"] == ""
    assert len(body["results"]) == 1 and body["results"][0]["data"] == []
    assert "path" in body["results"][0]


def test_paddlehub_predict_real_faces(client, data):
    imgs = [cv2.imread(str(s.image)) for s in kaggle_val(data, 2)]
    for module in ("pyramidbox_lite_mobile_mask", "pyramidbox_lite_server_mask"):
        r = client.post(
            f"/predict/{module}", json={"images": [_b64(i) for i in imgs], "confs_threshold": 0.3, "shrink": 0.5}
        )
        body = r.json()
        assert body["status"] == "000"
        faces = [f for res in body["results"] for f in res["data"]]
        assert faces
        for f in faces:
            assert set(f) == {"label", "confidence", "left", "top", "right", "bottom"}
            assert f["label"] in ("MASK", "NO MASK") and isinstance(f["left"], int)


def test_paddlehub_errors_keep_status_shape(client):
    r = client.post("/predict/pyramidbox_lite_mobile_mask", json={"images": ["@@not base64@@"]})
    assert r.status_code == 400 and r.json()["status"] == "101" and "base64" in r.json()["msg"]
    r = client.post("/predict/pyramidbox_lite_mobile_mask", json={"images": []})
    assert r.status_code == 400 and r.json()["status"] == "101"
    r = client.post("/predict/other_module", json={"images": [_b64(BLANK)]})
    assert r.status_code == 404 and r.json()["status"] == "111"


def test_v1_detect_multipart_json_and_annotate(client, data):
    s = kaggle_val(data, 1)[0]
    raw = s.image.read_bytes()
    r = client.post(
        "/v1/detect", files=[("images", ("a.jpg", raw, "image/jpeg")), ("images", ("b.jpg", raw, "image/jpeg"))]
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["image"] for x in body["results"]] == ["a.jpg", "b.jpg"]
    assert body["results"][0]["faces"] and set(body["results"][0]["faces"][0]) >= {"box", "label", "confidence"}
    assert body["counts"]["faces"] == 2 * len(body["results"][0]["faces"])
    r = client.post("/v1/detect", json={"images": [base64.b64encode(raw).decode()]})
    assert r.status_code == 200 and r.json()["results"][0]["faces"]
    r = client.post("/v1/detect?annotate=true", files={"images": ("a.jpg", raw, "image/jpeg")})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR).shape == cv2.imread(str(s.image)).shape


@pytest.mark.parametrize(
    "kwargs, status, fragment",
    [
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "JSON"),
        ({"json": {"images": []}}, 400, "non-empty"),
        ({"json": {"pictures": ["x"]}}, 400, "images"),
        ({"json": {"images": ["!!!"]}}, 400, "base64"),
        ({"json": {"images": [base64.b64encode(b"plain text, no picture").decode()]}}, 400, "images[0]"),
        ({"files": {"images": ("x.txt", b"hello", "text/plain")}}, 400, "x.txt"),
        ({"content": b"", "headers": {"content-type": "application/json"}}, 400, "empty"),
    ],
)
def test_v1_bad_requests_answer_400_with_reason(client, kwargs, status, fragment):
    r = client.post("/v1/detect", **kwargs)
    assert r.status_code == status
    assert fragment in r.json()["error"]


def test_body_and_pixel_limits(client):
    r = client.post("/v1/detect", content=b"x" * 2_100_000, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["error"]
    big = np.zeros((2500, 2500, 3), np.uint8)  # 6.25 MP, over the 5 MP limit of this app
    ok, enc = cv2.imencode(".png", big)
    r = client.post("/v1/detect", files={"images": ("big.png", enc.tobytes(), "image/png")})
    assert r.status_code == 400 and "refused" in r.json()["error"]


def test_models_health_metrics_docs_and_pages(client):
    assert client.get("/healthz").json()["status"] == "ok"
    models = client.get("/v1/models").json()["models"]
    assert {m["name"] for m in models} == {"mobile", "server"}
    client.post("/v1/detect", json={"images": [_b64(BLANK)]})
    text = client.get("/metrics").text
    assert "maskwatch_requests_total" in text and "maskwatch_request_seconds_bucket" in text
    assert "maskwatch_errors_total" in text
    assert client.get("/docs").status_code == 200
    assert "/v1/detect" in client.get("/openapi.json").json()["paths"]
    assert "<canvas" in client.get("/live").text and "drop" in client.get("/").text.lower()


def test_models_list_gives_what_a_browser_needs_to_run_the_crop_classifier(client):
    """mobile's cascade runs in the page too: the classifier's file and crop rule come from /v1/models."""
    mobile = next(m for m in client.get("/v1/models").json()["models"] if m["name"] == "mobile")
    assert 0 < mobile["classifier_below"] <= 1 and mobile["verify_weight"] == 0  # a cascade, no veto
    (cls,) = mobile["classifier_settings"]
    assert cls["file"] == mobile["classifiers"][0] and client.get("/models/" + cls["file"]).status_code == 200
    assert cls["input_size"] > 0 and cls["crop_expand"] >= 1 and cls["labels"][:3] == ["mask", "no_mask", "incorrect"]


def test_pages_and_their_scripts_are_cross_origin_isolated(client):
    """COOP/COEP on the pages and /static (onnxruntime-web's worker scripts): the browser then
    allows SharedArrayBuffer and on-device mode runs on several threads."""
    for path in ("/", "/live", "/static/ondevice.js", "/static/draw.js"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["cross-origin-opener-policy"] == "same-origin", path
        assert r.headers["cross-origin-embedder-policy"] == "require-corp", path
    assert "cross-origin-embedder-policy" not in client.get("/v1/models").headers  # the API is left alone


def test_api_key_required_when_set():
    c = TestClient(create_app(api_key="s3cret"))
    assert c.post("/v1/detect", json={"images": [_b64(BLANK)]}).status_code == 401
    assert c.post("/predict/pyramidbox_lite_mobile_mask", json={"images": [_b64(BLANK)]}).json()["status"] == "101"
    assert c.post("/v1/detect", json={"images": [_b64(BLANK)]}, headers={"X-API-Key": "s3cret"}).status_code == 200
    assert c.get("/healthz").status_code == 200


def test_cors_off_unless_asked():
    c = TestClient(create_app())
    r = c.options("/v1/detect", headers={"Origin": "http://example.test", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in r.headers
    c = TestClient(create_app(cors_origins=["http://example.test"]))
    r = c.options("/v1/detect", headers={"Origin": "http://example.test", "Access-Control-Request-Method": "POST"})
    assert r.headers.get("access-control-allow-origin") == "http://example.test"


def test_websocket_live(client):
    ok, enc = cv2.imencode(".jpg", BLANK)
    with client.websocket_connect("/ws/live") as ws:
        ws.send_bytes(enc.tobytes())
        res = ws.receive_json()
        assert res["faces"] == [] and res["width"] == 160
        ws.send_bytes(b"garbage")
        assert "error" in ws.receive_json()


def test_real_uvicorn_process(live_server):
    req = urllib.request.Request(
        f"{live_server.url}/predict/pyramidbox_lite_mobile_mask",
        data=json.dumps({"images": [_b64(BLANK)]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        body = json.loads(r.read())
    assert body == {"status": "000", "msg": "", "results": [{"path": body["results"][0]["path"], "data": []}]}


def test_every_error_is_json_with_a_reason(client):
    deep = b"[" * 100_000 + b"]" * 100_000  # json.loads recursion
    for path in ("/predict/pyramidbox_lite_mobile_mask", "/v1/detect"):
        r = client.post(path, content=deep, headers={"content-type": "application/json"})
        assert r.status_code == 400 and "JSON" in json.dumps(r.json())
    r = client.post("/v1/detect?threshold=abc", json={"images": [_b64(BLANK)]})
    assert r.status_code == 400 and "threshold" in r.json()["error"]
    r = client.post("/v1/detect", content=b"--x\r\n", headers={"content-type": "multipart/form-data"})  # no boundary
    assert r.status_code == 400 and "multipart" in r.json()["error"]
    assert "error" in client.get("/no/such/page").json()


def test_body_limit_on_paddlehub_endpoint_keeps_its_shape():
    c = TestClient(create_app(max_body=1000))
    r = c.post("/predict/pyramidbox_lite_mobile_mask", json={"images": [_b64(BLANK), _b64(BLANK)]})
    assert r.status_code == 413 and r.json()["status"] == "101" and "limit" in r.json()["msg"]


def test_annotate_too_wide_for_jpeg_is_a_400(client):
    ok, enc = cv2.imencode(".png", np.full((2, 70_000, 3), 200, np.uint8))
    r = client.post("/v1/detect?annotate=true", files={"images": ("wide.png", enc.tobytes(), "image/png")})
    assert r.status_code == 400 and "wide.png" in r.json()["error"] and "JPEG" in r.json()["error"]


def test_base64_layout_is_read_leniently_and_flags_as_strings(client):
    ok, enc = cv2.imencode(".jpg", BLANK)
    for text in (
        base64.encodebytes(enc.tobytes()).decode(),  # line breaks every 76 characters
        base64.urlsafe_b64encode(enc.tobytes()).decode().rstrip("="),
    ):  # URL-safe, unpadded
        r = client.post("/predict/pyramidbox_lite_mobile_mask", json={"images": [text], "visualization": "false"})
        assert r.status_code == 200 and r.json()["status"] == "000", r.text
        assert "base64" not in r.json()["results"][0]  # "false" is false
    r = client.post("/predict/pyramidbox_lite_mobile_mask", json={"images": [_b64(BLANK)], "visualization": "true"})
    assert r.json()["results"][0]["base64"]


def test_bad_model_file_fails_at_start(tmp_path):
    from maskwatch.core.errors import MaskwatchError

    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(MaskwatchError, match="broken.onnx"):
        create_app(model=str(bad))


def test_websocket_text_message_gets_an_error_and_the_socket_lives(client):
    ok, enc = cv2.imencode(".jpg", BLANK)
    with client.websocket_connect("/ws/live") as ws:
        ws.send_text("hello")
        assert "binary" in ws.receive_json()["error"]
        ws.send_bytes(enc.tobytes())
        assert ws.receive_json()["faces"] == []


def test_inference_runs_at_most_infer_threads_at_once():
    import threading
    import time as _time
    from concurrent.futures import ThreadPoolExecutor

    app = create_app(infer_threads=1)
    det = app.state.models.get()
    lock, now, most = threading.Lock(), [0], [0]
    real = det.detect

    def counted(*a, **k):
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
        _time.sleep(0.05)
        try:
            return real(*a, **k)
        finally:
            with lock:
                now[0] -= 1

    det.detect = counted
    with TestClient(app) as c, ThreadPoolExecutor(4) as pool:  # one event loop, as in uvicorn
        codes = list(pool.map(lambda _: c.post("/v1/detect", json={"images": [_b64(BLANK)]}).status_code, range(4)))
    assert codes == [200] * 4 and most[0] == 1


def test_unexpected_failures_and_unloadable_models_still_answer_json(tmp_path, monkeypatch):
    from maskwatch.core.errors import ModelError

    c = TestClient(create_app(), raise_server_exceptions=False)
    det = c.app.state.models.get()
    monkeypatch.setattr(det, "detect", lambda *a, **k: 1 / 0)
    r = c.post("/v1/detect", json={"images": [_b64(BLANK)]})
    assert r.status_code == 500 and "internal error" in r.json()["error"]
    r = c.post("/predict/pyramidbox_lite_mobile_mask", json={"images": [_b64(BLANK)]})
    assert r.status_code == 500 and r.json()["status"] == "101"

    def broken(name, **settings):
        raise ModelError(f"{name}: cannot load")

    monkeypatch.setattr(
        "maskwatch.serve.dependencies.Detector", broken
    )  # the server model, loaded on first use, is broken
    r = c.post("/v1/detect?model=server", json={"images": [_b64(BLANK)]})
    assert r.status_code == 503 and "model unavailable" in r.json()["error"]


def test_paddlehub_confs_threshold_is_clamped_like_the_module(client):
    r = client.post("/predict/pyramidbox_lite_mobile_mask", json={"images": [_b64(BLANK)], "confs_threshold": 1.5})
    assert r.status_code == 200 and r.json()["results"][0]["data"] == []
    for bad in ("high", True, None):
        r = client.post("/predict/pyramidbox_lite_mobile_mask", json={"images": [_b64(BLANK)], "confs_threshold": bad})
        assert r.status_code == 400 and "confs_threshold" in r.json()["msg"]
