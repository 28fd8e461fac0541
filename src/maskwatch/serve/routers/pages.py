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


DOCS_ASSETS = "/docs-static"


def mount_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` with their scripts and styles from the ``fastapi-offline``
    package (the serve extra), so they work with no network: FastAPI's own pages load them from a CDN."""
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html

    try:
        import fastapi_offline
    except ImportError:  # without it, the pages as FastAPI makes them (their assets from a CDN)
        assets = None
    else:
        assets = Path(fastapi_offline.__file__).parent / "static"
        app.mount(DOCS_ASSETS, StaticFiles(directory=str(assets)), name="docs-static")
    title, openapi = f"{app.title} - API", app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        if assets is None:
            return get_swagger_ui_html(openapi_url=openapi, title=title)
        return get_swagger_ui_html(
            openapi_url=openapi,
            title=title,
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        if assets is None:
            return get_redoc_html(openapi_url=openapi, title=title)
        return get_redoc_html(
            openapi_url=openapi,
            title=title,
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )


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
