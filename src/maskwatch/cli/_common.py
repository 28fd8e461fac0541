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


# Options that several commands share, declared once (typer reads them as each parameter's default).
MODEL = typer.Option("mobile", "--model", "-m", help="mobile, server, or a maskwatch .onnx file.")
THRESHOLD = typer.Option(
    None,
    "--threshold",
    "--score-threshold",
    "--conf",
    "-t",
    help="Face score threshold (default: the model's); --conf as in Ultralytics.",
)
TILE = typer.Option(False, "--tile", help="Also scan large pictures in full-resolution tiles (small faces).")
SCALES = typer.Option(None, "--scales", help="Input-size multipliers, e.g. 1,2 (small faces).")
ZOOM = typer.Option(
    None,
    "--zoom",
    help="Crowds: run pictures with faces too small for one pass again this much larger (0: off; default: the model's).",
)
INPUT_SIZE = typer.Option(
    None,
    "--input-size",
    min=64,
    max=4096,
    help="Fixed network input: the picture's long side becomes this many pixels (default: the model's rule).",
)
ANONYMIZE = typer.Option(
    None,
    "--anonymize",
    help="Hide faces in what is saved or shown: blur or pixelate (boxes and labels kept).",
)
DEVICE = typer.Option(
    None,
    "--device",
    help="Where the model runs: cpu (default), cuda, cuda:N, tensorrt[:N] or auto; a GPU needs pip install 'maskwatch[gpu]'.",
)
VERBOSE = typer.Option(False, "--verbose", help="Also show FFmpeg's and OpenCV's own messages on stderr.")


def flag(name: str, help: str, *aliases: str, **kw: Any) -> Any:
    """An option with no default of its own (None: the command, a setting or the model decides)."""
    return typer.Option(None, name, *aliases, help=help, **kw)


def error(msg: str) -> None:
    """Print ``error: msg`` on stderr; ``msg`` is plain text (file names are data, never rich markup)."""
    err.print(Text("error: ", style="red") + Text(printable(msg)))  # one line, whatever a file name holds


def anonymize_mode(value: Optional[str]) -> Optional[str]:
    """``--anonymize``'s value, or a usage error naming its modes (``batch.annotate.ANONYMIZE_MODES``)."""
    from ..batch.annotate import ANONYMIZE_MODES

    if value is not None and value not in ANONYMIZE_MODES:
        fail_usage(f"--anonymize takes {' or '.join(ANONYMIZE_MODES)}, got {value!r}")
    return value


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
    device: Optional[str] = None,
    threads: Optional[int] = None,
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
    try:
        return Detector(
            model,
            score_threshold=threshold,
            tile=tile,
            scales=sc,
            input_size=input_size,
            zoom=zoom,
            device=device,
            threads=threads,
        )
    except ValueError as exc:  # the Detector checks the threshold (Detector.threshold_of) and the device
        msg = str(exc)
        fail_usage(
            f"--threshold: {msg}" if "score_threshold" in msg else f"--{msg}" if msg.startswith("device") else msg
        )
    except MaskwatchError as exc:
        fail_usage(str(exc))
