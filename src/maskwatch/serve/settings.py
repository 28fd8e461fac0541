"""``ServeSettings``: every setting of the HTTP service, from ``maskwatch serve``'s flags and
``MASKWATCH_*`` environment variables (flags win), checked once, at start."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..core.detector import MAX_FACES
from ..core.errors import MaskwatchError
from ..core.registry import shipped_path

MB = 1024 * 1024
MP = 1_000_000


class SettingsError(MaskwatchError):
    """A setting that makes no sense; ``field`` names it (the CLI turns it into its flag)."""

    def __init__(self, field: str, msg: str):
        super().__init__(f"{field}: {msg}")
        self.field, self.msg = field, msg


class ServeSettings(BaseSettings):
    """The service's settings. Each field ``x`` is also read from ``MASKWATCH_X`` (``MASKWATCH_API_KEY``,
    ``MASKWATCH_MAX_MEGAPIXELS``, ``MASKWATCH_CORS_ORIGINS='["https://a.example"]'``...)."""

    model_config = SettingsConfigDict(env_prefix="MASKWATCH_", extra="forbid", frozen=True)

    model: str = Field("mobile", description="default model for /v1/detect and the pages: a name or an .onnx file")
    api_key: str | None = Field(None, description="when set, every route but /healthz needs it (X-API-Key)")
    max_body_mb: float = Field(20.0, description="largest request body (413 past it)")
    max_megapixels: float = Field(40.0, description="largest picture")
    max_request_megapixels: float = Field(100.0, description="all the pictures of one request together")
    max_images: int = Field(32, description="pictures per request")
    max_faces: int = Field(
        MAX_FACES, description="faces per picture at most, the highest scored (bounds the work of any threshold)"
    )
    cors_origins: list[str] | None = Field(None, description="browser origins allowed (CORS off unless given)")
    threads: int | None = Field(None, description="onnxruntime threads per inference (default: its own)")
    infer_threads: int | None = Field(None, description="inferences at once (default: the usable cores)")
    max_in_flight: int | None = Field(
        None,
        description="POST requests handled at once (default: 4 x infer_threads); more wait, up to max_queued",
    )
    max_queued: int = Field(64, ge=0, description="POST requests waiting for a slot; past it, 503 with Retry-After")
    queue_timeout: float = Field(30.0, description="seconds a request waits for a slot before its 503")
    header_timeout: float = Field(10.0, description="seconds a client has to send its request headers")
    anonymize: Literal["blur", "pixelate"] | None = Field(
        None,
        description="hide faces (blur or pixelate) in every picture the service draws: previews, annotated answers",
    )
    access_log: bool = Field(True, description="a line per request on stdout (time, client, request, status)")
    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8866, ge=1, le=65535, description="port (PaddleHub Serving's is 8866)")
    workers: int = Field(1, ge=1, description="server processes, each with its own model")
    watch: list[str] | None = Field(
        None, description="cameras and streams watched inside the service, each NAME=SOURCE (needs workers=1)"
    )

    @field_validator("watch")
    @classmethod
    def _watch(cls, v: list[str] | None) -> list[str] | None:
        if not v:
            return None
        names = set()
        for spec in v:
            name, sep, source = spec.partition("=")
            if not sep or not source or not name or not all(c.isalnum() or c in "-_" for c in name):
                raise ValueError(
                    f"{spec!r}: give NAME=SOURCE, NAME of letters, digits, - and _ (e.g. door=rtsp://cam/1)"
                )
            if name in names:
                raise ValueError(f"{name}: two streams with this name")
            names.add(name)
        return v

    @field_validator("api_key")
    @classmethod
    def _key(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("the API key is empty: give a key, or leave it out to serve without one")
        return v

    @field_validator("max_body_mb", "max_megapixels", "max_request_megapixels", "max_images", "max_faces")
    @classmethod
    def _positive(cls, v: float) -> float:
        if not (v > 0 and math.isfinite(v)):  # also refuses nan
            raise ValueError(f"must be a positive number, got {v}")
        return v

    @field_validator("queue_timeout", "header_timeout")
    @classmethod
    def _seconds(cls, v: float) -> float:
        if not (v > 0 and math.isfinite(v)):
            raise ValueError(f"must be a positive number of seconds, got {v}")
        return v

    @field_validator("threads", "infer_threads", "max_in_flight")
    @classmethod
    def _threads(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"must be at least 1, got {v}")
        return v

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        if shipped_path(v) is None and not Path(v).is_file():
            raise ValueError(f"{v}: not a model name nor an .onnx file")
        return v

    @property
    def max_body(self) -> int:
        """The body limit in bytes."""
        return round(self.max_body_mb * MB)

    @property
    def max_pixels(self) -> int:
        return round(self.max_megapixels * MP)

    @property
    def max_request_pixels(self) -> int:
        """Pixels per request, never under the limit of one picture."""
        return max(round(self.max_request_megapixels * MP), self.max_pixels)


# create_app's keyword arguments in bytes and pixels (its signature before the settings): name -> (field, unit)
_IN_UNITS = {
    "max_body": ("max_body_mb", MB),
    "max_pixels": ("max_megapixels", MP),
    "max_request_pixels": ("max_request_megapixels", MP),
}


def load_settings(**options: Any) -> ServeSettings:
    """``ServeSettings`` from these options (None = not given), the environment for the rest.
    ``max_body``, ``max_pixels`` and ``max_request_pixels`` are also taken in bytes and pixels.
    Nonsense raises ``SettingsError`` naming the setting, in one line."""
    given = {k: v for k, v in options.items() if v is not None}
    for old, (field, unit) in _IN_UNITS.items():
        if old in given:
            given[field] = given.pop(old) / unit
    try:
        return ServeSettings(**given)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err.get("loc") else "settings"
        msg = str(err.get("msg", exc)).removeprefix("Value error, ")
        raise SettingsError(field, msg) from None


def usable_cores() -> int:
    """The cores this process may run on (a container's share, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
