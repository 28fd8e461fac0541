"""Reading requests: JSON bodies, base64 pictures, multipart uploads, and decoding them under the
pixel limits (called in worker threads, never on the event loop)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import numpy as np
from fastapi import Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from ..core.errors import ImageError
from ..core.imageio import declared_pixels, decode_bytes
from .errors import BadRequest

_URLSAFE = str.maketrans("-_", "+/")


def flag(v: Any) -> bool:
    """A JSON flag: true / false, or the strings and numbers clients send for them."""
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "on")
    return bool(v)


def b64_bytes(s: Any, i: int) -> tuple[str, bytes]:
    """``images[i]`` of a JSON request: (its name, its bytes)."""
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


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        raise BadRequest("empty request body: send JSON")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, a number of 5000 digits
        raise BadRequest("request body is not valid JSON") from None


def json_images(doc: Any, max_images: int) -> list[tuple[str, bytes]]:
    """The pictures of ``{"images": [base64, ...]}``: (name, bytes) each."""
    if not isinstance(doc, dict) or "images" not in doc:
        raise BadRequest('expected a JSON object with "images": [base64 picture, ...]')
    imgs = doc["images"]
    if not isinstance(imgs, list) or not imgs:
        raise BadRequest('"images" must be a non-empty list of base64 pictures')
    _check_count(len(imgs), max_images)
    return [b64_bytes(s, i) for i, s in enumerate(imgs)]


async def multipart_images(request: Request, max_images: int, max_body: int) -> list[tuple[str, bytes]]:
    """The files of a multipart upload: (file name, bytes) each, held in memory."""
    parser = MultiPartParser(request.headers, request.stream(), max_files=max_images + 1, max_part_size=max_body)
    parser.spool_max_size = max_body + 1  # uploads stay in memory (the body limit bounds them), never in /tmp
    try:
        form = await parser.parse()
    except (MultiPartException, StarletteHTTPException, ValueError, KeyError) as exc:
        raise BadRequest(f"cannot read the multipart upload: {getattr(exc, 'detail', exc)}") from None
    files = [v for _, v in form.multi_items() if not isinstance(v, str)]
    if not files:
        raise BadRequest("no file in the upload: send pictures as multipart form files")
    _check_count(len(files), max_images)
    return [(f.filename or "upload", await f.read()) for f in files]


def _check_count(n: int, max_images: int) -> None:
    if n > max_images:
        raise BadRequest(f"too many pictures in one request: {n} (limit {max_images})")


def decode(raw: bytes, name: str, max_pixels: int) -> np.ndarray:
    """One picture, or ``BadRequest`` naming it."""
    try:
        return decode_bytes(raw, name, max_pixels=max_pixels)
    except ImageError as exc:
        raise BadRequest(str(exc)) from None


def decode_request(raws: list[tuple[str, bytes]], max_pixels: int, max_request_pixels: int) -> list[np.ndarray]:
    """Check the sizes the headers declare, for each picture and for the request, then decode (in a worker thread)."""
    try:  # the decode gate reads every header first: a refused format or an unreadable header is named here
        total = sum(declared_pixels(raw, name, max_pixels) for name, raw in raws)
    except ImageError as exc:
        raise BadRequest(str(exc)) from None
    if total > max_request_pixels:
        raise BadRequest(
            f"refused: the {len(raws)} pictures of this request hold {total / 1e6:.3g} megapixels, "
            f"over the limit of {max_request_pixels / 1e6:g} megapixels per request"
        )
    return [decode(raw, name, max_pixels) for name, raw in raws]
