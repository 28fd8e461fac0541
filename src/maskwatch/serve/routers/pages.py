"""The web pages (``/`` drop a picture, ``/live`` the webcam), their scripts and the model files the
browser runs on-device."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from ...models import MODEL_DIR

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def index() -> HTMLResponse:
    return HTMLResponse((WEB_DIR / "index.html").read_text())


@router.get("/live", response_class=HTMLResponse)
async def live() -> HTMLResponse:
    return HTMLResponse((WEB_DIR / "live.html").read_text())


def mount_files(app: FastAPI) -> None:
    """``/static`` (scripts) and ``/models`` (the ONNX files, for on-device mode)."""
    app.mount("/static", StaticFiles(directory=str(WEB_DIR / "static"), check_dir=False), name="static")
    app.mount("/models", StaticFiles(directory=str(MODEL_DIR), check_dir=False), name="models")
