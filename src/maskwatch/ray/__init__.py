"""Batch detection on Ray Data (the ``ray`` extra: ``pip install 'maskwatch[ray]'``).

``detect(dataset_or_paths, model="mobile", ...)`` returns a Ray Dataset of the rows that ``maskwatch detect``
writes (label, x1, y1, x2, y2, confidence, image, score, frame, error), error rows included, so that it
chains with the rest of a Ray pipeline; ``run`` is what ``maskwatch detect --ray`` does with it.

Importing this package needs no Ray; calling it without Ray raises a ``MaskwatchError`` that says what
to install. (The package is named ``maskwatch.ray``; inside it ``import ray`` is the Ray library, since
imports are absolute.)
"""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

from ..core.errors import MaskwatchError

if TYPE_CHECKING:
    from .pipeline import RunResult

INSTALL_HINT = "Ray is not installed: pip install 'maskwatch[ray]' (or pip install 'ray[data]')"


@contextmanager
def native_logs_held() -> Iterator[None]:
    """Hold what Ray's C++ parts write straight to file descriptor 2 (the driver's core worker notes
    an actor whose arguments sit in the object store, on every clean run) in a temporary file for the
    block. Python's ``sys.stderr`` keeps the terminal, so progress bars and errors still show. When the
    block raises, the held lines are written out before the exception goes on."""
    held = tempfile.TemporaryFile()
    sys.stderr.flush()
    saved = os.dup(2)
    swap = False
    try:
        swap = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # a captured stderr (tests): only fd 2 moves
        pass
    py_stderr = sys.stderr
    if swap:
        sys.stderr = open(os.dup(saved), "w", buffering=1, encoding=py_stderr.encoding, errors="backslashreplace")
    os.dup2(held.fileno(), 2)
    try:
        yield
    except BaseException:
        held.seek(0)
        os.write(saved, held.read()[-20000:])
        raise
    finally:
        if swap:
            sys.stderr.close()
            sys.stderr = py_stderr
        os.dup2(saved, 2)
        os.close(saved)
        held.close()


def _pipeline() -> Any:
    try:
        import ray.data  # noqa: F401  (the Ray library: absolute import)
    except ImportError as exc:
        raise MaskwatchError(f"{INSTALL_HINT} ({exc})") from None
    from . import pipeline

    return pipeline


def detect(dataset_or_paths: Any, model: Any = "mobile", **kwargs: Any) -> Any:
    """A Ray Dataset of detection rows; see ``maskwatch.ray.pipeline.detect``."""
    return _pipeline().detect(dataset_or_paths, model, **kwargs)


def run(sources: Any, output: Any = None, **kwargs: Any) -> "RunResult":
    """Detect over ``sources`` on Ray and stream the rows to ``output``; see ``maskwatch.ray.pipeline.run``."""
    return _pipeline().run(sources, output, **kwargs)  # type: ignore[no-any-return]


def connect(address: str | None = None, **kwargs: Any) -> float:
    """Join the Ray cluster at ``address`` (or start Ray on this machine); the seconds it took. See
    ``maskwatch.ray.pipeline.connect``."""
    return float(_pipeline().connect(address, **kwargs))


__all__ = ["INSTALL_HINT", "connect", "detect", "native_logs_held", "run"]
