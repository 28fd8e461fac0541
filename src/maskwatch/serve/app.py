"""The app factory: settings in, a FastAPI application out (``maskwatch serve`` runs it with uvicorn)."""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from .. import __version__
from .dependencies import BodyLimit, ConcurrencyLimit, Service
from .errors import install_error_handlers
from .routers import live, metrics, paddlehub, pages, rest, streams
from .schemas import document_400_not_422
from .protocol import HeaderTimeoutProtocol
from .settings import ServeSettings, load_settings, usable_cores
from .watchers import StreamHub

SETTINGS_ENV = "MASKWATCH_SERVE_SETTINGS"  # how `serve --workers N` hands its settings to each worker process


def create_app(settings: ServeSettings | str | None = None, /, **options: Any) -> FastAPI:
    """The FastAPI application.

    ``settings``: a ``ServeSettings``, or the model name (then ``options`` are the other settings:
    ``api_key``, ``max_body`` (bytes), ``max_pixels``, ``max_images``, ``cors_origins``, ``threads``,
    ``infer_threads``, ``max_request_pixels``, or any ``ServeSettings`` field); unset settings come from
    ``MASKWATCH_*`` environment variables. Nonsense raises ``MaskwatchError`` naming the setting; so
    does a model that cannot load (it is loaded here).
    """
    if isinstance(settings, str):
        options["model"] = settings
    if not isinstance(settings, ServeSettings):
        settings = load_settings(**options)
    elif options:
        settings = settings.model_copy(update=load_settings(**options).model_dump(exclude_unset=True))
    app = FastAPI(
        title="maskwatch",
        version=__version__,
        description="Face and mask detection: PaddleHub Serving compatible endpoints and a REST API.",
        lifespan=streams.lifespan,  # the watchers of --watch start and stop with the app
        docs_url=None,  # /docs and /redoc are served with their assets from a pip package: pages.mount_docs
        redoc_url=None,
    )
    service = Service(settings)
    service.models.get()  # fail early, with a clear message (ModelError names the file), on a bad model
    app.state.service, app.state.settings = service, settings
    app.state.models, app.state.metrics = service.models, service.metrics
    app.state.streams = StreamHub(
        settings.watch, service.models.get() if settings.watch else None, anonymize=settings.anonymize
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"], allow_headers=["*"]
        )
    app.add_middleware(BodyLimit, limit=settings.max_body)
    in_flight = settings.max_in_flight or 4 * (settings.infer_threads or usable_cores())
    app.add_middleware(
        ConcurrencyLimit, limit=in_flight, max_queued=settings.max_queued, timeout=settings.queue_timeout
    )
    HeaderTimeoutProtocol.header_timeout = settings.header_timeout  # the connections of this process
    app.middleware("http")(service.require_key)
    app.middleware("http")(service.metrics.observe)  # outermost: refused requests are counted too
    install_error_handlers(app)
    for router in (paddlehub.router, rest.router, metrics.router, pages.router, live.router, streams.router):
        app.include_router(router)
    pages.mount_files(app)
    pages.mount_docs(app)
    document_400_not_422(app)
    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers: settings come from ``maskwatch serve`` through the environment."""
    raw = os.environ.get(SETTINGS_ENV)
    return create_app(ServeSettings.model_validate_json(raw) if raw else None)
