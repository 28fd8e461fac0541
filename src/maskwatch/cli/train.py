"""``maskwatch train``: rebuild a shipped model or fine-tune one (the [train] extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.text import Text

from ..core.errors import MaskwatchError
from ._common import err, fail_usage


def train(
    recipe: str = typer.Argument(
        "mobile",
        help="Which shipped model to rebuild: mobile, server, or one part: a detector recipe, server-det ... server-det5 (maskwatch's own FaceMaskNet in stages), yunet-cls (YuNet-n with a mask-class branch: the server's detector), yunet-ft and yunet-ft2 (YuNet-n fine-tuned: the mobile model), classifier (the shipped crop classifier) or a classifier recipe by name (server_cls, server_vcls, server_fvcls, server_fvcls2, server_fvcls3).",
    ),
    data: Path = typer.Option(
        Path("../shared/data"), "--data", help="Training data: ../shared/data, or your own labelled set with --init."
    ),
    out: Path = typer.Option(Path("runs"), "--out", help="Checkpoints, logs and exported files go under here."),
    epochs: Optional[int] = typer.Option(None, "--epochs"),
    init: Optional[str] = typer.Option(
        None, "--init", help="Fine-tune: start from this model (mobile, server or a .onnx) on --data."
    ),
    lr: float = typer.Option(1e-3, "--lr", help="Learning rate for fine-tuning."),
    resume: bool = typer.Option(True, "--resume/--restart", help="Continue from the last checkpoint if there is one."),
    install: bool = typer.Option(False, "--install", help="Copy the result into the package's models folder."),
):
    """Rebuild a shipped model, or fine-tune one on your own pictures (needs the [train] extra)."""
    try:
        from ..train.finetune import finetune
        from ..train.pipeline import run_recipe
    except ImportError as exc:
        fail_usage(f"training needs PyTorch: pip install -e '.[train]' ({exc})")
    try:
        if init:
            path, report = finetune(
                init,
                data,
                out / "finetune" if out == Path("runs") else out,
                epochs=epochs or 10,
                lr=lr,
                log=lambda m: err.print(Text(m)),
            )
            _print_before_after(report)
        else:
            path = run_recipe(recipe, data, out, epochs=epochs, resume=resume, install=install)
    except MaskwatchError as exc:
        fail_usage(str(exc))
    err.print(Text(f"wrote {path}"))


def _print_before_after(report: dict) -> None:
    from rich.table import Table

    t = Table(
        title=f"fine-tuning {report['init']} on {report['train_pictures']} pictures, validated on {report['val_pictures']}"
    )
    for c in ("figure", "before", "after"):
        t.add_column(c, justify="left" if c == "figure" else "right")
    for k in ("map", "face_ap", "recall", "precision", "label_accuracy"):
        b, a = report["before"].get(k), report["after"].get(k)
        t.add_row(k, "-" if b is None else f"{b:.4f}", "-" if a is None else f"{a:.4f}")
    Console().print(t)
