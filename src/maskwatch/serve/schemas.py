"""Request and response models: what ``/docs`` and ``/openapi.json`` show.

Requests are read by hand (``inputs.py``: lenient base64 layout and flags as PaddleHub, errors that
name the input); their models here document them. Responses are checked against these models.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field


class PaddleHubRequest(BaseModel):
    """PaddleHub Serving's body for ``pyramidbox_lite_*_mask``."""

    images: list[str] = Field(description="pictures, base64 (a data URL, URL-safe alphabet or no padding too)")
    confs_threshold: float = Field(0.6, description="faces scored under it are left out (held to [0, 1])")
    visualization: bool = Field(False, description="also answer each annotated picture as base64 JPEG")
    use_gpu: bool = Field(False, description="accepted for PaddleHub's clients, not used")
    use_multi_scale: bool = Field(False, description="accepted for PaddleHub's clients, not used")
    shrink: float = Field(0.5, description="accepted for PaddleHub's clients, not used")


class PaddleHubFace(BaseModel):
    label: str = Field(description="MASK or NO MASK (an incorrectly worn mask counts as NO MASK)")
    confidence: float
    left: int
    top: int
    right: int
    bottom: int


class PaddleHubResult(BaseModel):
    path: str
    data: list[PaddleHubFace]
    base64: str | None = Field(None, description="the annotated picture, only with visualization")


class PaddleHubResponse(BaseModel):
    status: str = Field(description='"000" on success')
    msg: str
    results: list[PaddleHubResult]


class PaddleHubError(BaseModel):
    status: str = Field(description='"101" for a bad request, "111" for an unknown module')
    msg: str
    results: str


class DetectRequest(BaseModel):
    """``POST /v1/detect`` as JSON (or send the pictures as multipart form files)."""

    images: list[str] = Field(description="pictures, base64")


DETECT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": DetectRequest.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"images": {"type": "array", "items": {"type": "string", "format": "binary"}}},
                }
            },
        },
    }
}
PADDLEHUB_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": PaddleHubRequest.model_json_schema()}}}
}


class FaceOut(BaseModel):
    """One face, as ``Face.to_dict`` serialises it (every output format is built from that form)."""

    box: list[float] = Field(description="x1, y1, x2, y2 in pixels of the picture")
    label: str = Field(description="mask, no_mask or incorrect")
    confidence: float = Field(description="probability of the label")
    score: float = Field(description="face score")
    probs: dict[str, float] = Field(description="probability of each label")
    track_id: int | None = Field(None, description="only when a tracker set it")
    data: dict[str, Any] | None = Field(None, description="extra per-face data, only when set")


class Counts(BaseModel):
    mask: int
    no_mask: int
    incorrect: int
    faces: int
    mask_rate: float | None = Field(description="share of the faces wearing a mask correctly")


class PictureResult(BaseModel):
    image: str = Field(description="the file name, or images[i]")
    width: int
    height: int
    faces: list[FaceOut]
    counts: Counts


class DetectResponse(BaseModel):
    model: str
    results: list[PictureResult]
    counts: Counts = Field(description="over all the pictures")


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    paddlehub_module: str | None = None
    input_size: int
    file_bytes: int
    default: bool


class ModelList(BaseModel):
    models: list[ModelInfo]


class Health(BaseModel):
    status: str
    version: str
    model: str


class ErrorOut(BaseModel):
    error: str


ERRORS: dict[int, Any] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in (
        (400, "bad request (the error names it)"),
        (401, "missing or wrong API key"),
        (413, "body over the limit"),
        (503, "model unavailable"),
    )
}


def documented(
    response: type[BaseModel], body: dict[str, Any], errors: dict[int, Any], jpeg: str | None = None
) -> dict[str, Any]:
    """A route's OpenAPI: its answer model (fields a route leaves out stay out), its request body as read
    by hand (``inputs.py``), its error answers (status -> model), and an image/jpeg answer when it has one."""
    responses: dict[int | str, dict[str, Any]] = {
        code: (err if isinstance(err, dict) else {"model": err}) for code, err in errors.items()
    }
    if jpeg:
        responses[200] = {"content": {"image/jpeg": {}}, "description": jpeg}
    return {
        "response_model": response,
        "response_model_exclude_unset": True,
        "openapi_extra": body,
        "responses": responses,
    }


def document_400_not_422(app: FastAPI) -> None:
    """Bad parameters answer 400 with ``{"error": ...}`` here (``errors.py``), never FastAPI's 422:
    ``/docs`` says so."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            for path in schema.get("paths", {}).values():
                for op in path.values():
                    answers = op.get("responses", {})
                    if answers.pop("422", None) is not None and "400" not in answers:
                        answers["400"] = {
                            "description": ERRORS[400]["description"],
                            "content": {"application/json": {"schema": ErrorOut.model_json_schema()}},
                        }
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
