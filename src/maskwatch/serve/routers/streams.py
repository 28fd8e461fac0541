"""Streams watched by the service: ``GET /v1/streams`` (live counts), ``GET /v1/streams/NAME``,
``GET /v1/streams/NAME/preview`` (MJPEG of the annotated frames)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import StreamingResponse

from ..errors import BadRequest
from ..watchers import StreamHub

router = APIRouter(tags=["Streams"])
BOUNDARY = "maskwatchframe"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the watchers with the application, stop them (summaries closed) when it stops."""
    hub: StreamHub | None = getattr(app.state, "streams", None)
    if hub is not None:
        hub.start()
    try:
        yield
    finally:
        if hub is not None:
            await asyncio.to_thread(hub.stop)


def _hub(request: Request) -> StreamHub:
    hub: StreamHub = request.app.state.streams
    return hub


def _stream(request: Request, name: str) -> Any:
    s = _hub(request).streams.get(name)
    if s is None:
        raise BadRequest(f"no stream named {name!r}: GET /v1/streams lists them", status=404)
    return s


@router.get("/v1/streams")
async def streams(
    request: Request, minutes: int = Query(180, ge=0, le=24 * 60, description="per-minute history to include")
) -> dict[str, Any]:
    """Each watched stream: state, people counted by label, compliance, alerts, fps, and people seen
    and compliance per minute over the last ``minutes``."""
    return {"streams": [s.status(minutes) for s in _hub(request).streams.values()]}


@router.get("/v1/streams/{name}")
async def stream(request: Request, name: str, minutes: int = Query(180, ge=0, le=24 * 60)) -> dict[str, Any]:
    status: dict[str, Any] = _stream(request, name).status(minutes)
    return status


@router.get("/v1/streams/{name}/preview", response_class=StreamingResponse)
async def preview(
    request: Request,
    name: str,
    frames: int = Query(0, ge=0, description="stop after this many frames (0: until the client leaves)"),
    fps: float = Query(5.0, gt=0, le=30),
) -> StreamingResponse:
    """The annotated frames as MJPEG (``<img src=...>`` shows it), at most ``fps`` a second."""
    s = _stream(request, name)

    async def gen() -> AsyncIterator[bytes]:
        sent, last = 0, None
        waited = 0.0
        while frames == 0 or sent < frames:
            if await request.is_disconnected():
                return
            jpg = s.preview()
            if jpg is not None and jpg is not last:
                last = jpg
                sent += 1
                yield (
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpg)}\r\n\r\n".encode()
                    + jpg
                    + b"\r\n"
                )
            elif jpg is None and waited > 30:
                return  # no frame for 30 s: the client may come back later
            waited = 0.0 if jpg is not None else waited + 1 / fps
            await asyncio.sleep(1 / fps)

    return StreamingResponse(gen(), media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}")
