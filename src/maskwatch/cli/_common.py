"""What the command modules share: the error console, usage errors, building a detector."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from ..core.errors import MaskwatchError, printable

# soft_wrap: one message, one line (no wrapping at 80 columns when stderr is a file or a pipe)
err = Console(stderr=True, soft_wrap=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])


def flag(name: str, help: str, *aliases: str, **kw: Any) -> Any:
    """An option with no default of its own (None: the command, a setting or the model decides)."""
    return typer.Option(None, name, *aliases, help=help, **kw)


def error(msg: str) -> None:
    """Print ``error: msg`` on stderr; ``msg`` is plain text (file names are data, never rich markup)."""
    err.print(Text("error: ", style="red") + Text(printable(msg)))  # one line, whatever a file name holds


def verbose_logs() -> None:
    """``--verbose``: FFmpeg's and OpenCV's own messages (decode errors, stream trouble) on stderr.
    Called before any video is opened (FFmpeg reads its log level when it first starts)."""
    import os

    os.environ["MASKWATCH_VERBOSE"] = "1"
    os.environ.pop("OPENCV_FFMPEG_LOGLEVEL", None)  # unset, FFmpeg writes its errors to stderr (set, to stdout)
    import cv2

    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_WARNING)
    except AttributeError:  # an OpenCV build without the logging module
        pass


def fail_usage(msg: str) -> None:
    error(msg)
    raise typer.Exit(2)


def clean_errors(fn: F) -> F:
    """A command that ends any MaskwatchError with a one-line message and exit code 1, never a traceback."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MaskwatchError as exc:
            error(str(exc))
            raise typer.Exit(1) from None

    return run  # type: ignore[return-value]


def make_detector(
    model: str,
    threshold: Optional[float],
    tile: bool = False,
    scales: Optional[str] = None,
    input_size: Optional[int] = None,
    zoom: Optional[float] = None,
):
    from ..core.detector import MAX_ZOOM, Detector, valid_zoom

    sc = None
    if scales:
        try:
            sc = tuple(float(v) for v in scales.split(","))
        except ValueError:
            sc = ()
        if not sc or not all(math.isfinite(v) and v > 0 for v in sc):
            fail_usage(f"--scales takes positive numbers separated by commas, e.g. 1,2; got {scales!r}")
    if zoom is not None and not valid_zoom(zoom):
        fail_usage(f"--zoom takes 0 (off) or a factor above 1 and at most {MAX_ZOOM:g}, e.g. 1.75; got {zoom!r}")
    if threshold is not None and not 0 <= threshold <= 1:
        fail_usage(f"--threshold must be between 0 and 1, got {threshold}")
    try:
        return Detector(model, score_threshold=threshold, tile=tile, scales=sc, input_size=input_size, zoom=zoom)
    except (MaskwatchError, ValueError) as exc:
        fail_usage(str(exc))
