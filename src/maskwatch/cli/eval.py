"""``maskwatch eval``: a detector's figures on a labelled set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from ..core.errors import MaskwatchError
from ._common import DEVICE, MODEL, SCALES, TILE, ZOOM, err, fail_usage, make_detector


def eval_cmd(
    data: Path = typer.Argument(..., help="A labelled set: Pascal VOC, YOLO, WIDER FACE or COCO."),
    split: Optional[str] = typer.Option(None, "--split", help="File listing the pictures to use (e.g. val.txt)."),
    model: str = MODEL,
    threshold: Optional[float] = typer.Option(
        None, "--threshold", "-t", help="Operating threshold for recall and label accuracy."
    ),
    iou: float = typer.Option(0.5, "--iou", help="IoU that counts as a match."),
    head_boxes: bool = typer.Option(
        False,
        "--head-boxes",
        help="The set boxes whole heads (hair, hats, hoods): a face box lying mostly inside a labelled box (70 %% of it, areas within 5x) also matches.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write precision-recall curves to this PNG."),
    fmt: str = typer.Option("auto", "--format", help="auto, voc, yolo, wider or coco."),
    tile: bool = TILE,
    scales: Optional[str] = SCALES,
    zoom: Optional[float] = ZOOM,
    device: Optional[str] = DEVICE,
    limit: Optional[int] = typer.Option(None, "--limit", help="Use only the first N pictures."),
):
    """AP per class, mAP, face AP, recall by face height and label accuracy."""
    from ..evaluation.datasets import load_dataset
    from ..evaluation.metrics import evaluate_results
    from ..evaluation.run import format_report, plot_curves, plot_module, run_eval

    if plot:
        plot_module()  # a missing extra is said before the work, not after it
    det = make_detector(model, None, tile, scales, zoom=zoom, device=device)
    problems: list[str] = []  # label files or pictures that could not be read: reported, not fatal
    try:
        samples = load_dataset(data, split, fmt, problems)
    except MaskwatchError as exc:
        fail_usage(str(exc))
    if limit:
        samples = samples[:limit]
    if not samples:
        fail_usage(f"{data}: no labelled pictures found" + "".join(f"\n  {p}" for p in problems[:10]))
    op = det.score_threshold if threshold is None else threshold
    results, errors = run_eval(det, samples, progress=True, console=err)
    result = evaluate_results(results, iou, op, head_boxes)
    curves = result.curves
    errors = problems + errors
    m = result.to_dict()
    m.update({"model": model, "data": str(data), "split": split, "errors": errors})
    if plot:
        plot_curves(curves, m, plot)
    if as_json:
        print(json.dumps(m, indent=2))
    else:
        format_report(m, Console())
    raise typer.Exit(1 if errors else 0)
