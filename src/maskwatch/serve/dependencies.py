"""What the routes depend on: the service (settings, models, metrics, the inference limit), the API
key check and the request body limit."""

from __future__ import annotations

import asyncio
import ctypes
import hmac
import json
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, unquote

import anyio
import anyio.to_thread
from fastapi import Depends, Request, Response
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.detector import MAX_FACES, Detector
from .errors import error_body, error_response
from .metrics import Metrics
from .settings import ServeSettings, usable_cores

OPEN_PATHS = ("/healthz",)  # answered without the API key; every other route needs it
KEY_COOKIE = "maskwatch_key"
T = TypeVar("T")


class Models:
    """One shared ``Detector`` per model name, created on first use."""

    def __init__(self, default: str, threads: int | None = None, max_faces: int = MAX_FACES):
        self.default = default
        self.threads, self.max_faces = threads, max_faces
        self._dets: dict[str, Detector] = {}
        self._lock = threading.Lock()

    def get(self, name: str | None = None) -> Detector:
        name = name or self.default
        with self._lock:
            det = self._dets.get(name)
            if det is None:
                det = Detector(name, threads=self.threads, max_faces=self.max_faces)
                self._dets[name] = det
            return det


class Service:
    """The state routes share: settings, models, metrics, and at most ``infer_threads`` inferences at
    once, in worker threads (more would only share the same cores, and each worker thread keeps a
    network input buffer of tens of megabytes)."""

    def __init__(self, settings: ServeSettings):
        self.settings = settings
        self.models = Models(settings.model, settings.threads, settings.max_faces)
        self.metrics = Metrics()
        # one limiter per event loop (a limiter is bound to its loop)
        self._limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
            weakref.WeakKeyDictionary()
        )

    async def infer(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread, under the inference limit."""
        loop = asyncio.get_running_loop()
        if loop not in self._limiters:
            self._limiters[loop] = anyio.CapacityLimiter(self.settings.infer_threads or usable_cores())
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiters[loop])

    def key_given(self, conn: HTTPConnection) -> bool:
        """The key as X-API-Key header, ``?key=`` query parameter or the cookie the pages set."""
        key = self.settings.api_key
        if key is None:
            return True
        header = conn.headers.get("x-api-key")
        if header:  # HTTP headers are bytes, decoded as Latin-1: the UTF-8 bytes of a non-ASCII key come back
            given = header.encode("latin-1", errors="replace")
        else:
            cookie = unquote(conn.cookies.get(KEY_COOKIE) or "")  # set percent-encoded: see require_key
            given = (conn.query_params.get("key") or cookie).encode("utf-8", "replace")
        return hmac.compare_digest(given, key.encode("utf-8"))

    async def require_key(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """HTTP middleware: every route but OPEN_PATHS needs the key (pages and files too)."""
        key = self.settings.api_key
        if request.url.path in OPEN_PATHS or request.method == "OPTIONS" or self.key_given(request):
            response = await call_next(request)
            if key is not None and request.query_params.get("key") and response.status_code < 400:
                # a page opened with ?key=...: its scripts, model files and socket then pass with the cookie
                response.set_cookie(KEY_COOKIE, quote(key, safe=""), httponly=True, samesite="strict")
            return response
        return error_response(request, "missing or wrong API key: send the X-API-Key header (pages: ?key=...)", 401)


def get_service(conn: HTTPConnection) -> Service:
    service: Service = conn.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._too_large(scope, send)
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return msg

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._too_large(scope, send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        msg = f"request body over the limit of {self.limit} bytes"
        body = json.dumps(error_body(scope.get("path", ""), msg)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


TRIM_EVERY_S = 2.0  # how often, at most, freed memory is handed back (see release_memory)


def release_memory() -> None:
    """Hand the memory that requests freed back to the system (glibc's ``malloc_trim``; nothing elsewhere):
    pictures of many sizes, decoded in many threads, otherwise leave the process's size up where the
    busiest moment put it."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL("libc.so.6")
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.malloc_trim(0)


_libc: Any = None


class ConcurrencyLimit:
    """ASGI middleware: at most ``limit`` POST requests (the ones that carry pictures) are handled at once;
    up to ``max_queued`` more wait for a slot (at most ``timeout`` seconds), and the rest get 503 with
    ``Retry-After`` at once, before their bodies are read. Memory stays bounded however many clients come."""

    def __init__(self, app: ASGIApp, limit: int, max_queued: int, timeout: float):
        self.app, self.limit, self.max_queued, self.timeout = app, limit, max_queued, timeout
        self.active = 0
        self.waiting = 0
        self._trimmed = 0.0
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(self.limit)
        if slots.locked():
            if self.waiting >= self.max_queued:
                return await self._busy(scope, send)
            self.waiting += 1
            try:
                await asyncio.wait_for(slots.acquire(), self.timeout)
            except asyncio.TimeoutError:
                return await self._busy(scope, send)
            finally:
                self.waiting -= 1
        else:
            await slots.acquire()
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
            slots.release()
            now = time.monotonic()
            if now - self._trimmed >= TRIM_EVERY_S:  # memory the request freed goes back to the system
                self._trimmed = now
                await anyio.to_thread.run_sync(release_memory)

    async def _busy(self, scope: Scope, send: Send) -> None:
        msg = f"busy: {self.limit} requests in progress and {self.waiting} waiting; retry shortly"
        body = json.dumps(error_body(scope.get("path", ""), msg)).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", b"1"),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
