"""The web page in headless Chromium (Debian's), driven by Playwright: upload, boxes, table,
and the on-device mode against the server."""

import base64
import json
import os
import urllib.request
from pathlib import Path

import pytest

from conftest import CHROMIUM_ARGS as ARGS, kaggle_val

CHROMIUM = os.environ.get("MASKWATCH_CHROMIUM", "/usr/bin/chromium")
ORT_ASSETS = Path(__file__).resolve().parents[1] / "src" / "maskwatch" / "web" / "static" / "ort" / "ort.wasm.min.mjs"

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="browser tests need playwright (pip install playwright)"
)
if not Path(CHROMIUM).exists():
    pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def test_upload_draws_boxes_and_fills_table(browser, live_server, data, tmp_path):
    photo = kaggle_val(data, 1)[0].image
    page = browser.new_page()
    page.goto(live_server.url + "/")
    page.set_input_files("#files", str(photo))
    page.wait_for_selector("figure canvas", timeout=20000)
    n_faces = int(page.get_attribute("figure canvas", "data-faces"))
    assert n_faces > 0
    rows = page.locator("#results tbody tr")
    assert rows.count() == n_faces
    assert page.locator("#rate").inner_text().endswith("%")
    page.screenshot(path=str(tmp_path / "page.png"))
    page.close()


@pytest.mark.skipif(not ORT_ASSETS.exists(), reason="on-device mode needs the web assets: run scripts/vendor_web.sh")
def test_on_device_mode_finds_the_same_faces_as_the_server(browser, live_server, data):
    photo = kaggle_val(data, 2)[1].image
    raw = photo.read_bytes()
    req = urllib.request.Request(
        live_server.url + "/v1/detect",
        data=json.dumps({"images": [base64.b64encode(raw).decode()]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        server_faces = json.loads(r.read())["results"][0]["faces"]
    page = browser.new_page()
    page.goto(live_server.url + "/")
    device_faces = page.evaluate(
        """async (b64) => {
            const blob = await (await fetch('data:image/jpeg;base64,' + b64)).blob();
            const bmp = await createImageBitmap(blob);
            return await window.maskwatchOnDevice.detect(bmp);
        }""",
        base64.b64encode(raw).decode(),
    )
    # the page is cross-origin isolated, so onnxruntime-web runs on up to 4 of the machine's cores
    isolated, threads, cores = page.evaluate(
        """async () => [self.crossOriginIsolated, (await import('/static/ort/ort.wasm.min.mjs')).env.wasm.numThreads,
                        navigator.hardwareConcurrency]"""
    )
    page.close()
    assert isolated and threads == min(4, cores)
    # confident faces must agree; faces near the threshold may fall either side of it
    with urllib.request.urlopen(live_server.url + "/v1/models", timeout=10) as r:
        thr = next(m["score_threshold"] for m in json.loads(r.read())["models"] if m["name"] == "mobile")
    sure = [f for f in server_faces if f["score"] >= thr + 0.05]
    assert sure, "expected confident faces on this photo"
    for f in sure:
        best = min(device_faces, key=lambda d: max(abs(a - b) for a, b in zip(d["box"], f["box"])))
        assert max(abs(a - b) for a, b in zip(best["box"], f["box"])) <= 4.0
        assert best["label"] == f["label"]


@pytest.mark.skipif(not ORT_ASSETS.exists(), reason="on-device mode needs the web assets: run scripts/vendor_web.sh")
def test_on_device_mode_runs_mobiles_cascade_and_labels_as_python_does(browser, live_server, data):
    """The page asks the crop classifier about the faces whose voted class is under classifier_below
    (classifier_below_bare for the faces voted no_mask), as Detector does: on Kaggle val pictures its labels are the Python runtime's with the same first
    pass (the model's size rule; no zoom, no close-up pass: the page runs one pass), not those of the
    vote alone."""
    import cv2
    import numpy as np

    from maskwatch import Detector

    cascade = Detector("mobile", zoom=0, shrink_input=0)
    vote_only = Detector("mobile", zoom=0, shrink_input=0, classifier_below=0)
    page = browser.new_page()
    page.goto(live_server.url + "/")
    matched, same, differs_from_vote, classified = 0, 0, 0, 0
    for sample in kaggle_val(data, 12):
        raw = sample.image.read_bytes()
        faces = page.evaluate(
            """async (b64) => {
                const blob = await (await fetch('data:image/jpeg;base64,' + b64)).blob();
                return await window.maskwatchOnDevice.detect(await createImageBitmap(blob));
            }""",
            base64.b64encode(raw).decode(),
        )
        img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
        py, py0 = cascade.detections(img), vote_only.detections(img)
        for f in faces:
            gap = np.abs(py.boxes - np.array(f["box"])).max(1) if len(py) else np.array([np.inf])
            if gap.min() > 4.0:
                continue  # a face near the threshold found by one side only
            j = int(gap.argmin())
            k = int(np.abs(py0.boxes - np.array(f["box"])).max(1).argmin())
            matched += 1
            same += cascade.labels[int(py.probs[j].argmax())] == f["label"]
            differs_from_vote += py0.labels[int(py0.probs[k].argmax())] != f["label"]
            classified += f["classified"]
            top = float(py0.probs[k].max())  # the vote's top class: asked about when under the cut-off
            voted = py0.labels[int(py0.probs[k].argmax())]  # (faces voted no_mask have a line of their own)
            line = cascade._cls_below_bare if voted == "no_mask" else cascade._cls_below
            if abs(top - line) > 0.02:  # (the page's vote may differ in the last digits)
                assert f["classified"] == (top < line), (top, voted, f)
    page.close()
    assert matched >= 30 and classified >= 5, (matched, classified)
    assert same >= 0.95 * matched, (same, matched)  # crops are drawn by the browser, not by OpenCV
    assert differs_from_vote >= 1  # the classifier did change labels, as it does in Python


@pytest.mark.skipif(not ORT_ASSETS.exists(), reason="on-device mode needs the web assets: run scripts/vendor_web.sh")
def test_on_device_mode_rescues_the_masked_faces_python_rescues(browser, live_server, data):
    """The page's rescue: a masked face under a drawn covering that the network scores just under the
    threshold, and that Python's rescue lifts over it, is lifted by the page too (same band, same
    classifier file, same formula; the browser draws its own crops)."""
    import cv2
    import numpy as np

    from maskwatch import Detector
    from maskwatch.evaluation.variants import cover_sample

    det = Detector("mobile", zoom=0, shrink_input=0)  # the page's one pass
    plain = Detector("mobile", zoom=0, shrink_input=0, classifier_below=0)  # the network alone
    lifted = []  # (picture, box): faces Python lifts over the threshold with a margin
    for sample in kaggle_val(data, 120):  # the network finds most covered faces itself: look further
        if len(lifted) >= 3:
            break
        _, img, _ = cover_sample(sample, cv2.imread(str(sample.image)))
        faces, net = det.detections(img), plain.detections(img, det._rescue_band[0])
        for box, score in zip(faces.boxes, faces.scores):
            j = int(np.abs(net.boxes - box).max(1).argmin()) if len(net) else -1
            inside = det._rescue_band[0] + 0.02 <= net.scores[j] < det.score_threshold - 0.02 if j >= 0 else False
            side = float(min(box[2] - box[0], box[3] - box[1]))
            # margins from the band's edges, the threshold and the rescue's 24 px (the page's own resize
            # and crops move a score or a box a little)
            if inside and np.abs(net.boxes[j] - box).max() < 1 and det.score_threshold <= score - 0.02 and side >= 30:
                lifted.append((img, box))
    assert lifted, "expected a rescued face among these covered pictures"
    page = browser.new_page()
    page.goto(live_server.url + "/")
    for img, box in lifted:
        png = base64.b64encode(cv2.imencode(".png", img)[1].tobytes()).decode()
        faces = page.evaluate(
            """async (b64) => {
                const blob = await (await fetch('data:image/png;base64,' + b64)).blob();
                return await window.maskwatchOnDevice.detect(await createImageBitmap(blob));
            }""",
            png,
        )
        assert all(f["score"] >= det.score_threshold - 1e-6 for f in faces)  # the file's threshold, with its rescue
        near = [f for f in faces if max(abs(a - b) for a, b in zip(f["box"], box)) <= 4.0]
        assert near and near[0]["rescued"] and near[0]["score"] >= det.score_threshold, (box.tolist(), faces)
    page.close()


def test_cameras_section_shows_each_stream_with_counts_preview_and_chart(browser, data):
    """serve --watch: the page's Cameras section fills from /v1/streams (counts, preview, per-minute bars)."""
    import watch_scene as ws

    from conftest import LiveServer
    from maskwatch import Detector

    crops = ws.face_crops(data, Detector("mobile", input_size=320), {"mask": 1, "no_mask": 1})
    frames = ws.render(ws.make_people(crops, frames_on=30, gap=40))
    with ws.MjpegServer(frames, fps=25, loop=True) as cam:
        srv = LiveServer("--watch", f"door={cam.url}").wait()
        try:
            page = browser.new_page()
            page.goto(srv.url + "/")
            page.wait_for_selector("#streams .stream canvas", timeout=20000)
            page.wait_for_function(
                "/people [1-9]/.test(document.querySelector('#streams .figs').textContent)", timeout=40000
            )
            page.wait_for_timeout(2500)  # the next poll draws the minute's bar
            text = page.inner_text("#streams")
            bars = page.evaluate("""() => {
                const c = document.querySelector('#streams canvas');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 0; i < d.length; i += 4) if (d[i] === 156 && d[i + 1] === 180 && d[i + 2] === 216) n++;
                return n;
            }""")
            preview = page.evaluate("document.querySelector('#streams img').naturalWidth")
            page.close()
        finally:
            srv.stop()
    assert "door (running)" in text and "compliance" in text and "alerts" in text
    assert bars > 20  # a bar of people per minute
    assert preview == 320  # the annotated frames of the stream


def test_cameras_section_is_hidden_without_streams(browser, live_server):
    page = browser.new_page()
    page.goto(live_server.url + "/")
    page.wait_for_timeout(1000)
    assert not page.is_visible("#streams")
    page.close()
