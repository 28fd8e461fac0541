"""The web pages (``/`` drop a picture, ``/live`` the webcam), their scripts and the model files the
browser runs on-device."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from ...models import MODEL_DIR

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
router = APIRouter(include_in_schema=False)
# Cross-origin isolation: the pages may then use SharedArrayBuffer, so on-device mode runs
# onnxruntime-web's WebAssembly on several threads (its worker scripts under /static need the
# headers too). Everything a page loads is this server's own (scripts vendored under /static,
# model files, stream previews), so requiring it is free.
ISOLATION_HEADERS = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}


@router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def index() -> HTMLResponse:
    return HTMLResponse((WEB_DIR / "index.html").read_text())


@router.api_route("/live", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def live() -> HTMLResponse:
    return HTMLResponse((WEB_DIR / "live.html").read_text())


def mount_files(app: FastAPI) -> None:
    """``/static`` (scripts) and ``/models`` (the ONNX files, for on-device mode); the pages and
    ``/static`` are sent with the isolation headers."""

    @app.middleware("http")
    async def isolate(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        path = request.url.path
        if path in ("/", "/live") or path.startswith("/static/"):
            response.headers.update(ISOLATION_HEADERS)
        return response

    app.mount("/static", StaticFiles(directory=str(WEB_DIR / "static"), check_dir=False), name="static")
    app.mount("/models", StaticFiles(directory=str(MODEL_DIR), check_dir=False), name="models")
