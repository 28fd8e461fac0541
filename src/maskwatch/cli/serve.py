"""``maskwatch serve``: the HTTP service (the [serve] extra)."""

from __future__ import annotations

import os
import tempfile
from typing import List, Optional

import typer

from ..core.errors import MaskwatchError
from ..core.registry import paddlehub_modules
from ._common import fail_usage, flag

FLAGS = {"cors_origins": "--cors", "model": "--model"}  # settings whose flag is not --the-field-name


def serve(
    host: Optional[str] = flag("--host", "Address to listen on (0.0.0.0 for every interface) [default: 127.0.0.1]."),
    port: Optional[int] = flag("--port", "Port [default: 8866, PaddleHub Serving's].", "-p"),
    model: Optional[str] = flag("--model", "Default model for /v1/detect and the pages [default: mobile].", "-m"),
    workers: Optional[int] = flag("--workers", "Server processes, each loads its own model [default: 1]."),
    api_key: Optional[str] = flag("--api-key", "Require this X-API-Key header on every route but /healthz."),
    max_body_mb: Optional[float] = flag("--max-body-mb", "Largest request body, MB (413 past it) [default: 20]."),
    max_megapixels: Optional[float] = flag("--max-megapixels", "Largest picture accepted [default: 40]."),
    max_faces: Optional[int] = flag("--max-faces", "Most faces one picture gives, the highest scored [default: 1000]."),
    cors: Optional[List[str]] = flag("--cors", "Allow these browser origins (off unless given)."),
    anonymize: Optional[str] = flag(
        "--anonymize", "Hide faces (blur or pixelate) in every picture the service draws: previews, annotated answers."
    ),
    watch: Optional[List[str]] = flag(
        "--watch",
        "Watch a camera or stream inside the service, NAME=SOURCE (repeat for more): GET /v1/streams, "
        "/v1/streams/NAME/preview, counts on the web page.",
    ),
):
    """HTTP service: PaddleHub Serving endpoints, REST API /v1/detect, metrics, web pages.

    A setting not given as a flag is read from its MASKWATCH_* environment variable (MASKWATCH_PORT,
    MASKWATCH_API_KEY, MASKWATCH_MAX_MEGAPIXELS, ...; see the README), else its default.
    """
    try:
        import uvicorn

        from ..serve import SETTINGS_ENV, SettingsError, create_app, load_settings, usable_cores
        from ..serve.protocol import HeaderTimeoutProtocol
    except ImportError as exc:
        fail_usage(f"serving needs its extra: pip install 'maskwatch[serve]' ({exc})")
    try:
        settings = load_settings(
            host=host,
            port=port,
            model=model,
            workers=workers,
            api_key=api_key,
            max_body_mb=max_body_mb,
            max_megapixels=max_megapixels,
            max_faces=max_faces,
            cors_origins=cors or None,
            watch=watch or None,
            anonymize=anonymize,
        )
        if settings.watch and settings.workers > 1:
            raise SettingsError("watch", "streams are watched in one process: use --workers 1 with --watch")
        if settings.threads is None and settings.infer_threads is None:
            cores = max(1, usable_cores() // settings.workers)  # the worker processes share the cores
            settings = settings.model_copy(update={"threads": cores, "infer_threads": cores})
    except SettingsError as exc:
        given = locals().get(exc.field if exc.field != "cors_origins" else "cors")
        env = "MASKWATCH_" + exc.field.upper()
        # name what the user set: the flag, or the environment variable when the flag was not given
        flag_name = FLAGS.get(exc.field, "--" + exc.field.replace("_", "-"))
        where = (
            f"{env} (the environment variable behind {flag_name})" if given is None and env in os.environ else flag_name
        )
        fail_usage(f"{where}: {exc.msg}")
    if problem := _port_problem(settings.host, settings.port):
        fail_usage(problem)
    try:
        app_ = create_app(settings)  # fail early, with a clear message, on a model that cannot load
    except MaskwatchError as exc:  # a model file that cannot load
        fail_usage(str(exc))
    # plain text, one line (a model path is data, not markup)
    predict = " or ".join(f"/predict/{m}" for m in paddlehub_modules())
    watching = f"; watching {', '.join(w.partition('=')[0] for w in settings.watch)}" if settings.watch else ""
    typer.echo(
        f"maskwatch serving {settings.model} on http://{settings.host}:{settings.port} (PaddleHub: POST {predict})"
        + watching,
        err=True,
    )
    if settings.workers == 1:  # this process serves: the app made above, its model already loaded
        uvicorn.run(
            app_,
            host=settings.host,
            port=settings.port,
            log_level=None,
            log_config=log_config(settings.access_log),
            http=HeaderTimeoutProtocol,
        )
        return
    os.environ[SETTINGS_ENV] = settings.model_dump_json()  # each worker process makes its own app
    # /metrics reports all workers: prometheus_client's multiprocess mode, in a folder removed at exit
    with tempfile.TemporaryDirectory(prefix="maskwatch-metrics-") as metrics_dir:
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_dir)
        uvicorn.run(
            "maskwatch.serve:app_from_env",
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            factory=True,
            log_level=None,
            log_config=log_config(settings.access_log),
            http=HeaderTimeoutProtocol,
        )


def _port_problem(host: str, port: int) -> str | None:
    """Why ``serve`` cannot listen on host:port (another server has it...), found before it says it serves."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"--host {host}: cannot resolve it ({exc.strerror or exc})"
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            s.bind(addr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"--port {port}: {host}:{port} is in use (another server?); choose another port"
            return f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc})"
    return None


def log_config(access_log: bool) -> dict:
    """uvicorn's logging: its own messages from warnings up on stderr, and with ``access_log`` a line per
    request on stdout (time, client, request line, status)."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    cfg = copy.deepcopy(LOGGING_CONFIG)
    cfg["loggers"]["uvicorn.error"]["level"] = "WARNING"
    cfg["loggers"]["uvicorn"]["level"] = "WARNING"
    cfg["loggers"]["uvicorn.access"]["level"] = "INFO" if access_log else "WARNING"
    cfg["formatters"]["access"]["fmt"] = '%(asctime)s %(client_addr)s "%(request_line)s" %(status_code)s'
    return cfg
