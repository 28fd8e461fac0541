"""HTTP service: PaddleHub Serving's endpoints, a REST API, metrics and the web pages.

    maskwatch serve --port 8866 --model mobile

One shared model session per model name; inference runs in worker threads, off the event loop,
at most ``infer_threads`` at once (more would only share the same cores and each thread keeps a
network input buffer of tens of megabytes).
Nothing is written to disk. Bad requests answer 400 (413 past the body limit) with a JSON error
that says what is wrong, as do failures (500; 503 for a model that cannot load); the PaddleHub
endpoints keep PaddleHub's ``status`` / ``msg`` shape.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import io
import json
import os
import threading
import time
import warnings
import weakref
from pathlib import Path
from typing import Any

import anyio.to_thread
import cv2
import numpy as np
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from . import __version__
from . import models as registry
from .batch.annotate import annotate, summarize
from .core.detector import Detector
from .core.errors import ImageError, MaskwatchError, ModelError
from .core.face import Face
from .core.imageio import decode_bytes
from .core.registry import resolve_model
from .hub import MODULES, threshold_value, to_paddle

WEB_DIR = Path(__file__).resolve().parent / "web"
DEFAULT_MAX_BODY = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_IMAGES = 32
DEFAULT_MAX_REQUEST_PIXELS = 100_000_000  # all the pictures of one request together
OPEN_PATHS = ("/healthz",)  # answered without the API key; every other route needs it
KEY_COOKIE = "maskwatch_key"


class BadRequest(Exception):
    def __init__(self, msg: str, status: int = 400):
        super().__init__(msg)
        self.msg, self.status = msg, status


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes with 413, declared or streamed."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._too_large(scope, send)
        seen = 0

        async def limited_receive():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return msg

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._too_large(scope, send)

    async def _too_large(self, scope, send):
        body = json.dumps(error_body(scope.get("path", ""), f"request body over the limit of {self.limit} bytes")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def usable_cores() -> int:
    """The cores this process may run on (a container's share, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def error_body(path: str, msg: str) -> dict:
    """An error answer: PaddleHub's shape on its ``/predict/`` endpoints, ``{"error": ...}`` elsewhere."""
    if path.startswith("/predict/"):
        return {"status": "101", "msg": msg, "results": ""}
    return {"error": msg}


class Models:
    """One shared ``Detector`` per model name, created on first use."""

    def __init__(self, default: str, threads: int | None = None):
        self.default = default
        self.threads = threads
        self._dets: dict[str, Detector] = {}
        self._lock = threading.Lock()

    def get(self, name: str | None = None) -> Detector:
        name = name or self.default
        with self._lock:
            det = self._dets.get(name)
            if det is None:
                det = Detector(name, threads=self.threads)
                self._dets[name] = det
            return det


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("maskwatch_requests_total", "HTTP requests", ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("maskwatch_request_seconds", "Request latency", ["endpoint"], registry=self.registry,
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.faces = Counter("maskwatch_faces_total", "Faces found, by label", ["label"], registry=self.registry)
        self.images = Counter("maskwatch_images_total", "Pictures processed", registry=self.registry)
        self.errors = Counter("maskwatch_errors_total", "Requests answered with an error", ["endpoint"], registry=self.registry)

    def exposition(self) -> bytes:
        """The Prometheus text: of all worker processes when ``serve --workers N`` set PROMETHEUS_MULTIPROC_DIR."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            return generate_latest(merged)
        return generate_latest(self.registry)

    def count_faces(self, faces: list[Face]) -> None:
        self.images.inc()
        for f in faces:
            self.faces.labels(f.label).inc()


_URLSAFE = str.maketrans("-_", "+/")


def _flag(v: Any) -> bool:
    """A JSON flag: true / false, or the strings and numbers clients send for them."""
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "on")
    return bool(v)


def _b64_bytes(s: Any, i: int) -> tuple[str, bytes]:
    name = f"images[{i}]"
    if not isinstance(s, str) or not s:
        raise BadRequest(f"{name}: expected a base64 string")
    if s.startswith("data:") and "," in s:  # a data URL from a browser
        s = s.split(",", 1)[1]
    # as lenient as PaddleHub's decoder on layout (line breaks, URL-safe alphabet, missing padding),
    # strict on anything else
    s = "".join(s.split()).translate(_URLSAFE)
    s += "=" * (-len(s) % 4)
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{name}: not valid base64") from None
    return name, raw


def _decode(raw: bytes, name: str, max_pixels: int) -> np.ndarray:
    try:
        return decode_bytes(raw, name, max_pixels=max_pixels)
    except ImageError as exc:
        raise BadRequest(str(exc)) from None


def declared_pixels(raw: bytes) -> int:
    """Width x height as the picture's header declares it (0 when Pillow cannot read the header)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as im:
                w, h = im.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):  # not for Pillow, or a bomb: decode_bytes names it
        return 0
    return int(w) * int(h)


def decode_request(raws: list[tuple[str, bytes]], max_pixels: int, max_request_pixels: int) -> list[np.ndarray]:
    """Check the sizes the headers declare, for each picture and for the request, then decode (in a worker thread)."""
    total = sum(declared_pixels(raw) for _, raw in raws)
    if total > max_request_pixels:
        raise BadRequest(f"refused: the {len(raws)} pictures of this request hold {total / 1e6:.3g} megapixels, "
                         f"over the limit of {max_request_pixels / 1e6:g} megapixels per request")
    return [_decode(raw, name, max_pixels) for name, raw in raws]


def _face_json(f: Face) -> dict:
    return {"box": [round(v, 2) for v in f.box], "label": f.label, "confidence": round(f.confidence, 4), "score": round(f.score, 4)}


def create_app(model: str = "mobile", api_key: str | None = None, max_body: int = DEFAULT_MAX_BODY,
               max_pixels: int = DEFAULT_MAX_PIXELS, max_images: int = DEFAULT_MAX_IMAGES,
               cors_origins: list[str] | None = None, threads: int | None = None,
               infer_threads: int | None = None, max_request_pixels: int | None = None) -> FastAPI:
    """The FastAPI application (``maskwatch serve`` runs it with uvicorn)."""
    check_limits(api_key=api_key, max_body=max_body, max_pixels=max_pixels, max_images=max_images)
    request_pixels = max(max_request_pixels or DEFAULT_MAX_REQUEST_PIXELS, max_pixels)
    if registry.resolve(model) is None and not Path(model).is_file():
        raise MaskwatchError(f"{model}: not a model name nor an .onnx file")
    app = FastAPI(title="maskwatch", version=__version__,
                  description="Face and mask detection: PaddleHub Serving compatible endpoints and a REST API.")
    models = Models(model, threads)
    limiters: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # one per event loop (a limiter is bound to its loop)

    async def infer(fn, *args):
        loop = asyncio.get_running_loop()
        if loop not in limiters:
            limiters[loop] = anyio.CapacityLimiter(infer_threads or usable_cores())
        return await anyio.to_thread.run_sync(fn, *args, limiter=limiters[loop])

    models.get()  # fail early, with a clear message (ModelError names the file), on a bad model
    metrics = Metrics()
    app.state.models, app.state.metrics = models, metrics
    if cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=cors_origins, allow_methods=["*"], allow_headers=["*"])
    app.add_middleware(BodyLimit, limit=max_body)

    def key_given(conn: Request | WebSocket) -> bool:
        """The key as X-API-Key header, ``?key=`` query parameter or the cookie the pages set."""
        if api_key is None:
            return True
        given = conn.headers.get("x-api-key") or conn.query_params.get("key") or conn.cookies.get(KEY_COOKIE) or ""
        return hmac.compare_digest(given.encode(), api_key.encode())

    @app.middleware("http")
    async def require_key(request: Request, call_next):
        if request.url.path in OPEN_PATHS or request.method == "OPTIONS" or key_given(request):
            response = await call_next(request)
            if api_key is not None and request.query_params.get("key") and response.status_code < 400:
                # a page opened with ?key=...: its scripts, model files and socket then pass with the cookie
                response.set_cookie(KEY_COOKIE, api_key, httponly=True, samesite="strict")
            return response
        return JSONResponse(error_body(request.url.path, "missing or wrong API key: send the X-API-Key header "
                                       "(pages: ?key=...)"), status_code=401)

    @app.middleware("http")
    async def observe(request: Request, call_next):
        t = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        endpoint = getattr(route, "path", "other")
        metrics.requests.labels(endpoint, str(response.status_code)).inc()
        metrics.latency.labels(endpoint).observe(time.perf_counter() - t)
        if response.status_code >= 400:
            metrics.errors.labels(endpoint).inc()
        return response

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest):
        return JSONResponse(error_body(request.url.path, exc.msg), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: RequestValidationError):
        where = "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ())[1:])}: {e.get('msg')}" for e in exc.errors())
        return JSONResponse(error_body(request.url.path, f"bad request parameter: {where}"), status_code=400)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception):
        # still JSON (and still logged by the server): a model that cannot load is 503, anything else 500
        if isinstance(exc, ModelError):
            return JSONResponse(error_body(request.url.path, f"model unavailable: {exc}"), status_code=503)
        return JSONResponse(error_body(request.url.path, f"internal error: {type(exc).__name__}"), status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse(error_body(request.url.path, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    async def json_body(request: Request) -> Any:
        raw = await request.body()
        if not raw:
            raise BadRequest("empty request body: send JSON")
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise BadRequest("request body is not valid JSON") from None

    def image_list(doc: Any) -> list:
        if not isinstance(doc, dict) or "images" not in doc:
            raise BadRequest('expected a JSON object with "images": [base64 picture, ...]')
        imgs = doc["images"]
        if not isinstance(imgs, list) or not imgs:
            raise BadRequest('"images" must be a non-empty list of base64 pictures')
        if len(imgs) > max_images:
            raise BadRequest(f"too many pictures in one request: {len(imgs)} (limit {max_images})")
        return imgs

    # -- PaddleHub Serving ------------------------------------------------------------------------

    @app.post("/predict/{module_name}")
    async def predict(module_name: str, request: Request):
        """PaddleHub Serving: ``{"images": [base64, ...]}`` -> ``{"status": "000", "msg": "", "results": [...]}``."""
        if module_name not in MODULES:
            return JSONResponse({"status": "111", "msg": f"Module {module_name} is not available.", "results": ""}, status_code=404)
        doc = await json_body(request)
        raws = [_b64_bytes(s, i) for i, s in enumerate(image_list(doc))]
        try:
            thr = threshold_value(doc.get("confs_threshold", 0.6))  # the Python module's rule
        except MaskwatchError as exc:
            raise BadRequest(str(exc)) from None
        visualization = _flag(doc.get("visualization", False))
        det = await infer(models.get, MODULES[module_name])  # a first use loads the model: off the event loop

        def work():
            out = []
            for img in decode_request(raws, max_pixels, request_pixels):  # decoded here, in the worker thread
                faces = det.detect(img, score_threshold=thr)
                metrics.count_faces(faces)
                res = {"path": f"ndarray_time={int(time.time() * 1e6)}", "data": to_paddle(faces, img.shape[1], img.shape[0])}
                if visualization:  # returned in the response, never written to disk
                    ok, enc = cv2.imencode(".jpg", annotate(img, faces))
                    res["base64"] = base64.b64encode(enc.tobytes()).decode() if ok else ""
                out.append(res)
            return out

        results = await infer(work)
        return {"status": "000", "msg": "", "results": results}

    # -- REST API --------------------------------------------------------------------------------

    @app.post("/v1/detect")
    async def detect(request: Request, model: str | None = None, threshold: float | None = None):
        """Pictures as multipart files or JSON ``{"images": [base64, ...]}``; faces per picture and counts.

        ``?annotate=true`` (one picture) answers the annotated picture as image/jpeg.
        """
        annotate_ = request.query_params.get("annotate", "").lower() in ("1", "true", "yes")
        if model is not None and model not in ("mobile", "server"):
            raise BadRequest("model must be mobile or server")
        if threshold is not None and not 0 <= threshold <= 1:
            raise BadRequest("threshold must be between 0 and 1")
        ctype = request.headers.get("content-type", "")
        raws: list[tuple[str, bytes]] = []
        if ctype.startswith("multipart/form-data"):
            parser = MultiPartParser(request.headers, request.stream(), max_files=max_images + 1, max_part_size=max_body)
            parser.spool_max_size = max_body + 1  # uploads stay in memory (the body limit bounds them), never in /tmp
            try:
                form = await parser.parse()
            except (MultiPartException, StarletteHTTPException, ValueError, KeyError) as exc:
                raise BadRequest(f"cannot read the multipart upload: {getattr(exc, 'detail', exc)}") from None
            files = [(k, v) for k, v in form.multi_items() if hasattr(v, "read")]
            if not files:
                raise BadRequest("no file in the upload: send pictures as multipart form files")
            if len(files) > max_images:
                raise BadRequest(f"too many pictures in one request: {len(files)} (limit {max_images})")
            for _, f in files:
                raws.append((f.filename or "upload", await f.read()))
        else:
            doc = await json_body(request)
            raws = [_b64_bytes(s, i) for i, s in enumerate(image_list(doc))]
        if annotate_ and len(raws) != 1:
            raise BadRequest("annotate=true takes exactly one picture")
        det = await infer(models.get, model)

        def work():
            out = []
            imgs = decode_request(raws, max_pixels, request_pixels)  # decoded here, in the worker thread
            for (name, _), img in zip(raws, imgs):
                faces = det.detect(img, score_threshold=threshold)
                metrics.count_faces(faces)
                out.append((name, img, faces))
            return out

        done = await infer(work)
        if annotate_:
            name, img, faces = done[0]
            ok, enc = await infer(lambda: cv2.imencode(".jpg", annotate(img, faces), [cv2.IMWRITE_JPEG_QUALITY, 90]))
            if not ok:
                raise BadRequest(f"{name}: {img.shape[1]}x{img.shape[0]} is too large for an annotated JPEG (65500 px a side)")
            return Response(enc.tobytes(), media_type="image/jpeg", headers={"X-Faces": str(len(faces))})
        results = [{"image": n, "width": img.shape[1], "height": img.shape[0], "faces": [_face_json(f) for f in faces],
                    "counts": summarize(faces)} for n, img, faces in done]
        return {"model": det.name, "results": results, "counts": summarize([f for _, _, fs in done for f in fs])}

    @app.get("/v1/models")
    async def list_models():
        # the registry's metadata (read once per file, cached), never a full Detector; off the event loop
        return {"models": await infer(model_list)}

    def model_list() -> list[dict]:
        return [{**resolve_model(name).summary(), "default": name == models.default} for name in registry.available()]

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "version": __version__, "model": models.default}

    @app.get("/metrics")
    async def prometheus():
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    # -- web pages ----------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return HTMLResponse((WEB_DIR / "index.html").read_text())

    @app.get("/live", response_class=HTMLResponse, include_in_schema=False)
    async def live():
        return HTMLResponse((WEB_DIR / "live.html").read_text())

    @app.websocket("/ws/live")
    async def live_ws(ws: WebSocket):
        """Webcam frames in (JPEG bytes), faces out (JSON), one answer per frame."""
        if not key_given(ws):
            await ws.close(code=1008)
            return
        await ws.accept()
        det = models.get()
        try:
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    return
                data = msg.get("bytes")
                if data is None:
                    await ws.send_json({"error": "send each frame as a binary message holding a JPEG or PNG"})
                    continue
                try:
                    img = await infer(decode_bytes, data, "frame", max_pixels)
                except ImageError as exc:
                    await ws.send_json({"error": str(exc)})
                    continue
                faces = await infer(det.detect, img)
                metrics.count_faces(faces)
                await ws.send_json({"width": img.shape[1], "height": img.shape[0], "faces": [_face_json(f) for f in faces],
                                    "counts": summarize(faces)})
        except WebSocketDisconnect:
            return

    app.mount("/static", StaticFiles(directory=str(WEB_DIR / "static"), check_dir=False), name="static")
    app.mount("/models", StaticFiles(directory=str(registry.MODEL_DIR), check_dir=False), name="models")
    return app


def check_limits(api_key: str | None, max_body: float, max_pixels: float, max_images: int) -> None:
    """Refuse settings that make no sense, at start, with a message naming the setting."""
    if api_key is not None and not api_key.strip():
        raise MaskwatchError("the API key is empty: give a key, or leave it out to serve without one")
    for name, value in (("body limit (bytes)", max_body), ("picture limit (pixels)", max_pixels),
                        ("pictures per request", max_images)):
        if not value > 0:
            raise MaskwatchError(f"the {name} must be positive, got {value}")


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers: settings come from ``maskwatch serve`` through the environment."""
    settings = json.loads(os.environ.get("MASKWATCH_SERVE_SETTINGS", "{}"))
    return create_app(**settings)
