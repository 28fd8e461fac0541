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
        help="Which shipped model to rebuild: mobile, server, or one part: a detector recipe, server-det ... server-det5 (maskwatch's own FaceMaskNet in stages), yunet-cls (YuNet-n with a mask-class branch only: an earlier server's detector), yunet-ft and yunet-ft2 (YuNet-n fine-tuned), yunet-masked (yunet-ft2 trained on drawn coverings and turned faces, half of its start blended back: the server's detector, docs/models.md), yunet-masked7 (the same with 30 % of its start), yunet-floor and yunet-floor2 (yunet-masked7 trained again with YuNet-n's score a floor on the labelled faces; distillation x1, x2) and yunet-floor-soup (their average: mobile's detector), yunet-floor3 (a third such training with more turned crops, not shipped), classifier (the server's crop classifiers) or a classifier recipe by name (server_cls, server_vcls, server_fvcls, server_fvcls2, server_fvcls3, server_cvcls, server_cvcls2, mobile_cls ... mobile_cls6, mobile_cls4b: server_fvcls distilled into two thirds of its width for mobile's cascade, which runs mobile_cls4).",
    ),
    data: Path = typer.Option(
        Path("../shared/data"), "--data", help="Training data: ../shared/data, or your own labelled set with --init."
    ),
    out: Path = typer.Option(Path("runs"), "--out", help="Checkpoints, logs and exported files go under here."),
    epochs: Optional[int] = typer.Option(None, "--epochs"),
    init: Optional[str] = typer.Option(
        None, "--init", help="Fine-tune: start from this model (mobile, server or a .onnx) on --data."
    ),
    lr: float = typer.Option(3e-4, "--lr", help="Learning rate for fine-tuning."),
    resume: bool = typer.Option(True, "--resume/--restart", help="Continue from the last checkpoint if there is one."),
    install: bool = typer.Option(False, "--install", help="Copy the result into the package's models folder."),
    class_map: Optional[str] = typer.Option(
        None,
        "--class-map",
        help="Fine-tuning: map your set's class names, NAME=CLASS,... (CLASS: mask, no_mask, incorrect, face or ignore).",
    ),
    unfreeze: bool = typer.Option(
        False,
        "--unfreeze",
        help="Fine-tuning: train every layer (default: the backbone stays frozen under 1000 pictures).",
    ),
    patience: int = typer.Option(
        3, "--patience", min=0, help="Fine-tuning: stop when val mAP has not risen for this many epochs (0: never)."
    ),
    val_fraction: float = typer.Option(
        0.2,
        "--val-fraction",
        min=0.01,
        max=0.9,
        help="Fine-tuning: the share held out to validate, when the set has no val.txt.",
    ),
    batch: int = typer.Option(8, "--batch", min=1, help="Fine-tuning: pictures per step."),
):
    """Rebuild a shipped model, or fine-tune one on your own pictures (needs the [train] extra)."""
    try:
        from ..train.finetune import finetune
        from ..train.pipeline import run_recipe
    except ImportError as exc:
        fail_usage(f"training needs PyTorch: pip install -e '.[train]' ({exc})")
    try:
        if init:
            from ..evaluation.datasets import parse_class_map

            data = _fine_tuning_data(data)
            path, report = finetune(
                init,
                data,
                out / "finetune" if out == Path("runs") else out,
                epochs=10 if epochs is None else epochs,
                lr=lr,
                batch=batch,
                freeze="none" if unfreeze else None,
                class_map=parse_class_map(class_map),
                val_fraction=val_fraction,
                patience=patience,
                log=lambda m: err.print(Text(m)),
            )
            _print_before_after(report)
        else:
            path = run_recipe(recipe, data, out, epochs=epochs, resume=resume, install=install)
    except MaskwatchError as exc:
        fail_usage(str(exc))
    err.print(Text(f"wrote {path}"))


def _fine_tuning_data(data: Path) -> Path:
    """``--data`` for fine-tuning: a labelled folder (or COCO .json); ``samples`` is the labelled sample
    pictures that ship inside the package (when no folder of that name is here)."""
    if data == Path("samples") and not data.exists():
        from ..samples import SAMPLES_DIR

        return SAMPLES_DIR
    if data == Path("../shared/data"):
        fail_usage(
            "--init fine-tunes on your own labelled pictures: give --data FOLDER (Pascal VOC, YOLO, COCO or "
            "WIDER layout; see README, Fine-tuning), or --data samples to try it on the bundled samples"
        )
    return data


def _print_before_after(report: dict) -> None:
    from rich.table import Table

    t = Table(
        title=f"fine-tuning {report['init']} on {report['train_pictures']} pictures, validated on {report['val_pictures']}",
        caption=f"epoch kept: {report['epoch_kept'] or 'none (the starting weights)'}; {report['stopped']}",
    )
    for c in ("figure", "before", "after"):
        t.add_column(c, justify="left" if c == "figure" else "right")
    for k in ("map", "face_ap", "recall", "precision", "label_accuracy"):
        b, a = report["before"].get(k), report["after"].get(k)
        t.add_row(k, "-" if b is None else f"{b:.4f}", "-" if a is None else f"{a:.4f}")
    Console().print(t)
