"""``maskwatch demo``: the main job on the sample pictures in the package, into ./maskwatch-demo/."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from ._common import MODEL, err


def demo(
    folder: Path = typer.Option(Path("maskwatch-demo"), "--dir", help="Where the results go."),
    model: str = MODEL,
):
    """Detect faces and masks on the bundled sample pictures: a CSV, annotated pictures and the summary."""
    from ..batch.demo import run_demo

    res = run_demo(folder, model)
    typer.echo(res.summary_text, nl=False)
    err.print(
        Text(
            f"faces (one row each):   {res.csv}\n"
            f"annotated pictures:     {res.annotated}/\n"
            f"summary:                {res.summary_file}\n"
            f'samples: Kaggle "Face Mask Detection" (andrewmvd, 2020, CC0 1.0)'
        )
    )
