"""Error answers: always JSON, in PaddleHub's ``status`` / ``msg`` shape on its ``/predict/`` endpoints."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..core.errors import ModelError

log = logging.getLogger("maskwatch.serve")


class BadRequest(Exception):
    """A request the service refuses: 400 (or ``status``) with ``msg`` as the JSON error."""

    def __init__(self, msg: str, status: int = 400):
        super().__init__(msg)
        self.msg, self.status = msg, status


def error_body(path: str, msg: str) -> dict[str, Any]:
    """An error answer: PaddleHub's shape on its ``/predict/`` endpoints, ``{"error": ...}`` elsewhere."""
    if path.startswith("/predict/"):
        return {"status": "101", "msg": msg, "results": ""}
    return {"error": msg}


def error_response(request: Request, msg: str, status: int, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(request.url.path, msg), status_code=status, headers=headers)


async def _bad_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BadRequest)
    return error_response(request, exc.msg, exc.status)


async def _bad_parameter(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    where = "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ())[1:])}: {e.get('msg')}" for e in exc.errors())
    return error_response(request, f"bad request parameter: {where}", 400)


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    # still JSON: a model that cannot load is 503; anything else is a bug, logged with its trace, 500
    if isinstance(exc, ModelError):
        return error_response(request, f"model unavailable: {exc}", 503)
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request, f"internal error: {type(exc).__name__}", 500)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(request, str(exc.detail), exc.status_code, exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BadRequest, _bad_request)
    app.add_exception_handler(RequestValidationError, _bad_parameter)
    app.add_exception_handler(Exception, _server_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
