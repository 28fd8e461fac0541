"""HTTP service: PaddleHub Serving's endpoints, a REST API, metrics and the web pages.

    maskwatch serve --port 8866 --model mobile

- ``app.py``: ``create_app`` (the factory), ``app_from_env`` (uvicorn workers)
- ``settings.py``: ``ServeSettings``, from flags and ``MASKWATCH_*`` environment variables
- ``dependencies.py``: the shared service (models, metrics, inference limit), API key, body limit
- ``routers/``: ``paddlehub`` (``/predict/...``), ``rest`` (``/v1/...``, ``/healthz``), ``pages``,
  ``live`` (``/ws/live``), ``metrics``, ``streams`` (``/v1/streams``: the ``--watch`` cameras)
- ``watchers.py``: the ``--watch NAME=SOURCE`` streams, a ``Watcher`` thread each
- ``inputs.py``: reading and decoding request pictures; ``schemas.py``: request and response models;
  ``errors.py``: JSON error answers

One shared model session per model name; decoding, inference and drawing run in worker threads, off
the event loop, at most ``infer_threads`` at once. Nothing is written to disk. Bad requests answer 400
(413 past the body limit) with a JSON error that says what is wrong, as do failures (500; 503 for a
model that cannot load); the PaddleHub endpoints keep PaddleHub's ``status`` / ``msg`` shape.
"""

from __future__ import annotations

from .app import SETTINGS_ENV, app_from_env, create_app
from .dependencies import Models, Service
from .errors import BadRequest, error_body
from .settings import ServeSettings, SettingsError, load_settings, usable_cores

__all__ = [
    "create_app",
    "SETTINGS_ENV",
    "app_from_env",
    "ServeSettings",
    "SettingsError",
    "load_settings",
    "usable_cores",
    "Models",
    "Service",
    "BadRequest",
    "error_body",
]
