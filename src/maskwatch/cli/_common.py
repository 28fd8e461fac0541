"""What the command modules share: the error console, usage errors, building a detector."""

from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console

from ..core.errors import MaskwatchError

err = Console(stderr=True)


def fail_usage(msg: str) -> None:
    err.print(f"[red]error:[/] {msg}")
    raise typer.Exit(2)


def make_detector(model: str, threshold: Optional[float], tile: bool = False, scales: Optional[str] = None):
    from ..core.detector import Detector

    sc = None
    if scales:
        try:
            sc = tuple(float(v) for v in scales.split(","))
        except ValueError:
            fail_usage(f"--scales takes numbers separated by commas, got {scales!r}")
    if threshold is not None and not 0 <= threshold <= 1:
        fail_usage(f"--threshold must be between 0 and 1, got {threshold}")
    try:
        return Detector(model, score_threshold=threshold, tile=tile, scales=sc)
    except (MaskwatchError, ValueError) as exc:
        fail_usage(str(exc))
