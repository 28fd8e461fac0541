"""``maskwatch serve``: the HTTP service (the [serve] extra)."""

from __future__ import annotations

import json
import tempfile
from typing import List, Optional

import typer

from ..core.errors import MaskwatchError
from ._common import fail_usage


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8866, "--port", "-p", help="Port (PaddleHub Serving's is 8866)."),
    model: str = typer.Option("mobile", "--model", "-m", help="Default model for /v1/detect and the pages."),
    workers: int = typer.Option(1, "--workers", min=1, help="Server processes (each loads its own model)."),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="MASKWATCH_API_KEY", help="Require this X-API-Key header."),
    max_body_mb: float = typer.Option(20.0, "--max-body-mb", help="Largest request body (413 past it)."),
    max_megapixels: float = typer.Option(40.0, "--max-megapixels", help="Largest picture accepted."),
    cors: Optional[List[str]] = typer.Option(None, "--cors", help="Allow these browser origins (off unless given)."),
):
    """HTTP service: PaddleHub Serving endpoints, REST API /v1/detect, metrics, web pages."""
    import os

    try:
        import uvicorn

        from ..serve import create_app, usable_cores
    except ImportError as exc:
        fail_usage(f"serving needs its extra: pip install 'maskwatch[serve]' ({exc})")
    if api_key is not None and not api_key.strip():
        fail_usage("--api-key is empty: give a key, or leave the option out to serve without one")
    for flag, value in (("--max-body-mb", max_body_mb), ("--max-megapixels", max_megapixels)):
        if not value > 0:  # also refuses nan
            fail_usage(f"{flag} must be a positive number, got {value}")
    cores = max(1, usable_cores() // workers)  # the worker processes share the cores
    settings = {"model": model, "api_key": api_key, "max_body": int(max_body_mb * 1024 * 1024),
                "max_pixels": int(max_megapixels * 1e6), "cors_origins": cors or None,
                "threads": cores, "infer_threads": cores}
    try:
        app_ = create_app(**settings)  # fail early, with a clear message, on a bad model
    except MaskwatchError as exc:
        fail_usage(str(exc))
    # plain text, one line (a model path is data, not markup)
    typer.echo(f"maskwatch serving {model} on http://{host}:{port} (PaddleHub: POST /predict/pyramidbox_lite_mobile_mask)",
               err=True)
    if workers == 1:  # this process serves: the app made above, its model already loaded
        uvicorn.run(app_, host=host, port=port, log_level="warning")
        return
    os.environ["MASKWATCH_SERVE_SETTINGS"] = json.dumps(settings)  # each worker process makes its own
    # /metrics reports all workers: prometheus_client's multiprocess mode, in a folder removed at exit
    with tempfile.TemporaryDirectory(prefix="maskwatch-metrics-") as metrics_dir:
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_dir)
        uvicorn.run("maskwatch.serve:app_from_env", host=host, port=port, workers=workers, factory=True,
                    log_level="warning")
