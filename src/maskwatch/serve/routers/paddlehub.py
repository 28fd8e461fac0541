"""PaddleHub Serving's contract: ``POST /predict/pyramidbox_lite_{mobile,server}_mask``."""

from __future__ import annotations

import base64
import time
from typing import Any

import cv2
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ...batch.annotate import annotate
from ...core.errors import MaskwatchError
from ...hub import MODULES, threshold_value, to_paddle
from ..dependencies import ServiceDep
from ..errors import BadRequest
from ..inputs import decode_request, flag, json_body, json_images
from ..schemas import PADDLEHUB_BODY, PaddleHubError, PaddleHubResponse, documented

router = APIRouter(tags=["PaddleHub Serving"])


@router.post(
    "/predict/{module_name}",
    **documented(PaddleHubResponse, PADDLEHUB_BODY, {400: PaddleHubError, 404: PaddleHubError}),
)
async def predict(module_name: str, request: Request, svc: ServiceDep) -> Any:
    """PaddleHub Serving: ``{"images": [base64, ...]}`` -> ``{"status": "000", "msg": "", "results": [...]}``."""
    if module_name not in MODULES:
        return JSONResponse(
            {"status": "111", "msg": f"Module {module_name} is not available.", "results": ""}, status_code=404
        )
    doc = await json_body(request)
    raws = json_images(doc, svc.settings.max_images)
    try:
        thr = threshold_value(doc.get("confs_threshold", 0.6))  # the Python module's rule
    except MaskwatchError as exc:
        raise BadRequest(str(exc)) from None
    visualization = flag(doc.get("visualization", False))
    det = await svc.infer(svc.models.get, MODULES[module_name])  # a first use loads the model: off the event loop
    settings = svc.settings

    def work() -> list[dict[str, Any]]:
        out = []
        for img in decode_request(raws, settings.max_pixels, settings.max_request_pixels):  # in the worker thread
            faces = det.detect(img, score_threshold=thr)
            svc.metrics.count_faces(faces)
            res = {
                "path": f"ndarray_time={int(time.time() * 1e6)}",
                "data": to_paddle(faces, img.shape[1], img.shape[0]),
            }
            if visualization:  # returned in the response, never written to disk
                ok, enc = cv2.imencode(".jpg", annotate(img, faces, anonymize_faces=settings.anonymize))
                res["base64"] = base64.b64encode(enc.tobytes()).decode() if ok else ""
            out.append(res)
        return out

    return {"status": "000", "msg": "", "results": await svc.infer(work)}
