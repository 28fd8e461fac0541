"""``/ws/live``: webcam frames in (JPEG or PNG bytes), faces out (JSON), one answer per frame."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from ...batch.annotate import summarize
from ..dependencies import get_service
from ..errors import BadRequest
from ..inputs import decode

router = APIRouter()


@router.websocket("/ws/live")
async def live_ws(ws: WebSocket) -> None:
    """Each binary message a frame; each answer ``{width, height, faces, counts}`` or ``{"error": ...}``."""
    svc = get_service(ws)
    await ws.accept()  # accepted first, so that a refusal is the documented close code, not an HTTP 403
    if not svc.key_given(ws):
        await ws.close(code=1008, reason="missing or wrong API key")
        return
    det = svc.models.get()
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
                img = await svc.infer(decode, data, "frame", svc.settings.max_pixels)
            except BadRequest as exc:
                await ws.send_json({"error": exc.msg})
                continue
            faces = await svc.infer(det.detect, img)
            svc.metrics.count_faces(faces)
            await ws.send_json(
                {
                    "width": img.shape[1],
                    "height": img.shape[0],
                    "faces": [f.to_dict() for f in faces],
                    "counts": summarize(faces),
                }
            )
    except WebSocketDisconnect:
        return
