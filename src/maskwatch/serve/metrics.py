"""Prometheus metrics: requests, latency, errors, pictures and faces by label."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Iterable

from fastapi import Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from ..core.face import Face


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.requests = Counter("maskwatch_requests_total", "HTTP requests", ["endpoint", "status"], registry=reg)
        self.latency = Histogram(
            "maskwatch_request_seconds",
            "Request latency",
            ["endpoint"],
            registry=reg,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.faces = Counter("maskwatch_faces_total", "Faces found, by label", ["label"], registry=reg)
        self.images = Counter("maskwatch_images_total", "Pictures processed", registry=reg)
        self.errors = Counter("maskwatch_errors_total", "Requests answered with an error", ["endpoint"], registry=reg)

    def exposition(self) -> bytes:
        """The Prometheus text: of all worker processes when ``serve --workers N`` set PROMETHEUS_MULTIPROC_DIR."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry)

    def count_faces(self, faces: Iterable[Face]) -> None:
        self.images.inc()
        for f in faces:
            self.faces.labels(f.label).inc()

    async def observe(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """HTTP middleware: count and time each request by route."""
        t = time.perf_counter()
        response = await call_next(request)
        endpoint = getattr(request.scope.get("route"), "path", "other")
        self.requests.labels(endpoint, str(response.status_code)).inc()
        self.latency.labels(endpoint).observe(time.perf_counter() - t)
        if response.status_code >= 400:
            self.errors.labels(endpoint).inc()
        return response
