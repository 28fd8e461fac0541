"""REST v1: ``POST /v1/detect``, ``GET /v1/models``, ``GET /healthz``."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from fastapi import APIRouter, Query, Request, Response

from ... import __version__
from ...batch.annotate import annotate, summarize
from ...core.face import Face
from ...core.registry import available, resolve_model
from ..dependencies import ServiceDep
from ..errors import BadRequest
from ..inputs import decode_request, json_body, json_images, multipart_images
from ..schemas import DETECT_BODY, ERRORS, DetectResponse, Health, ModelList, documented

router = APIRouter(tags=["REST v1"])


@router.post("/v1/detect", **documented(DetectResponse, DETECT_BODY, ERRORS, jpeg="faces, or the annotated picture"))
async def detect(
    request: Request,
    svc: ServiceDep,
    model: str | None = None,
    threshold: float | None = None,
    annotate_: str | None = Query(
        None, alias="annotate", description="true: answer the annotated picture (one picture) as image/jpeg"
    ),
) -> Any:
    """Pictures as multipart files or JSON ``{"images": [base64, ...]}``; faces per picture and counts.

    ``?annotate=true`` (one picture) answers the annotated picture as image/jpeg.
    """
    drawn = (annotate_ or "").lower() in ("1", "true", "yes")
    if model is not None and model not in available():
        raise BadRequest(f"model must be one of {', '.join(available())}")
    det = await svc.infer(svc.models.get, model)
    try:
        det.threshold_of(threshold)  # the Detector's own check, in the service's words
    except ValueError:
        raise BadRequest(f"threshold must be between 0 and 1, got {threshold}") from None
    settings = svc.settings
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        raws = await multipart_images(request, settings.max_images, settings.max_body)
    else:
        raws = json_images(await json_body(request), settings.max_images)
    if drawn and len(raws) != 1:
        raise BadRequest("annotate=true takes exactly one picture")

    def work() -> list[tuple[str, np.ndarray, list[Face]]]:
        out = []
        imgs = decode_request(raws, settings.max_pixels, settings.max_request_pixels)  # in the worker thread
        for (name, _), img in zip(raws, imgs):
            faces = det.detect(img, score_threshold=threshold)
            svc.metrics.count_faces(faces)
            out.append((name, img, faces))
        return out

    done = await svc.infer(work)
    if drawn:
        name, img, faces = done[0]
        drawn_img = annotate(img, faces, anonymize_faces=settings.anonymize)
        ok, enc = await svc.infer(lambda: cv2.imencode(".jpg", drawn_img, [cv2.IMWRITE_JPEG_QUALITY, 90]))
        if not ok:
            raise BadRequest(
                f"{name}: {img.shape[1]}x{img.shape[0]} is too large for an annotated JPEG (65500 px a side)"
            )
        return Response(enc.tobytes(), media_type="image/jpeg", headers={"X-Faces": str(len(faces))})
    results = [
        {
            "image": n,
            "width": img.shape[1],
            "height": img.shape[0],
            "faces": [f.to_dict() for f in faces],
            "counts": summarize(faces),
        }
        for n, img, faces in done
    ]
    return {"model": det.name, "results": results, "counts": summarize([f for _, _, fs in done for f in fs])}


@router.get("/v1/models", response_model=ModelList)
async def list_models(svc: ServiceDep) -> Any:
    """The models this service has, with the settings each runs by (input size, strides, thresholds...)."""
    default = svc.models.default

    def model_list() -> list[dict[str, Any]]:
        # the registry's metadata (read once per file, cached), never a full Detector
        return [{**resolve_model(name).summary(), "default": name == default} for name in available()]

    return {"models": await svc.infer(model_list)}  # off the event loop


@router.get("/healthz", response_model=Health)
@router.head("/healthz", include_in_schema=False)  # load balancers probe with HEAD
async def healthz(svc: ServiceDep) -> Any:
    """Open without the API key."""
    return {"status": "ok", "version": __version__, "model": svc.models.default}
