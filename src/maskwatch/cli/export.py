"""``maskwatch export``: a model for phones and browsers."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.text import Text

from ..core.errors import MaskwatchError
from ._common import err, fail_usage


def export(
    model: str = typer.Option("mobile", "--model", "-m", help="The model to export (single-file models)."),
    fmt: str = typer.Option("onnx", "--format", "-f", help="onnx, or ort for ONNX Runtime Mobile."),
    int8: bool = typer.Option(False, "--int8", help="Static int8 quantisation (smaller, faster on phones)."),
    calib: Optional[Path] = typer.Option(
        None,
        "--calib",
        help="Pictures to calibrate --int8 on (default: Kaggle's train.txt pictures in the data folder).",
    ),
    data: Optional[Path] = typer.Option(
        None, "--data", help="Data folder holding kaggle-facemask/ (default: $MASKWATCH_DATA, else ../shared/data)."
    ),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Where to write (default: ./NAME.FORMAT)."),
    with_classifier: bool = typer.Option(
        False,
        "--with-classifier",
        help="Also write mobile's crop classifier beside it, the file asked about unsure faces (docs/mobile.md).",
    ),
):
    """Export a model for phones and browsers (ONNX Runtime Mobile / Web)."""
    try:
        import onnx  # noqa: F401  (needed to write metadata and to quantise)

        from ..export import export_model
    except ImportError as exc:
        fail_usage(f"export needs the onnx package: pip install 'maskwatch[export]' ({exc})")
    if int8 and calib is None:
        from ..evaluation.datasets import data_root

        calib = data_root(data)
    try:
        path = export_model(model, fmt, int8, output, calib, with_classifier)
    except MaskwatchError as exc:
        fail_usage(str(exc))
    err.print(Text(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)"))
    if with_classifier:
        from ..core.registry import classifier_files, read_metadata

        for name in classifier_files(read_metadata(path)):
            err.print(Text(f"wrote {path.parent / name} ({(path.parent / name).stat().st_size / 1e6:.2f} MB)"))
