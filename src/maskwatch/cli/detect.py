"""``maskwatch detect``: pictures, folders, videos and streams to rows, tables and annotated copies."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from ._common import err, fail_usage, make_detector


def detect(
    sources: List[str] = typer.Argument(..., help="Pictures, folders (recursive), globs, videos, camera indexes or stream URLs."),
    model: str = typer.Option("mobile", "--model", "-m", help="mobile, server, or a maskwatch .onnx file."),
    threshold: Optional[float] = typer.Option(None, "--threshold", "-t", help="Face score threshold (default: the model's)."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="table, csv, json or jsonl (default: table on a terminal, csv otherwise)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write results to this file instead of stdout."),
    save_dir: Optional[Path] = typer.Option(None, "--save-dir", help="Write annotated pictures (and videos) here."),
    summary: bool = typer.Option(False, "--summary", help="Faces per label and mask rate, per picture and overall."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Pictures processed at once."),
    tile: bool = typer.Option(False, "--tile", help="Also scan large pictures in full-resolution tiles (small faces)."),
    scales: Optional[str] = typer.Option(None, "--scales", help="Input-size multipliers, e.g. 1,2 (small faces)."),
    vid_stride: int = typer.Option(1, "--vid-stride", min=1, help="Use every N-th video frame."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="Progress bar on stderr (default: when more than one input)."),
):
    """Detect faces and mask labels; rows of label, x1, y1, x2, y2, confidence, image."""
    from ..batch import runner as batch
    from ..batch.output import FORMATS, ReportWriter, summary_text
    from ..batch.sources import expand_sources

    fmt = fmt or ("table" if (output is None and sys.stdout.isatty()) else "csv")
    if fmt not in FORMATS:
        fail_usage(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    det = make_detector(model, threshold, tile, scales)
    items = expand_sources(sources)
    if save_dir is not None:
        try:
            save_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail_usage(f"--save-dir {save_dir}: cannot create it ({exc.strerror or exc})")
    try:
        out = open(output, "w", newline="") if output else sys.stdout
    except OSError as exc:
        fail_usage(f"--output {output}: cannot write it ({exc.strerror or exc})")
    writer = ReportWriter(out, fmt, summary)
    show = progress if progress is not None else len(items) > 1
    failed = 0
    try:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("detect"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err,
                      disable=not show, transient=False) as bar:
            task = bar.add_task("detect", total=len(items))
            for rep in batch.run(det, items, workers=workers, save_dir=save_dir, vid_stride=vid_stride,
                                 on_done=lambda r: bar.advance(task)):
                if rep.error:
                    failed += 1
                    err.print(f"[red]error:[/] {rep.source}: {rep.error}", highlight=False)
                writer.write(rep)
        writer.close()
    finally:
        if output:
            out.close()
    if summary and fmt == "csv":  # CSV stays machine-readable; the summary goes to stderr
        err.print(summary_text(writer.reports), end="")
    raise typer.Exit(1 if failed else 0)
