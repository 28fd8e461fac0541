"""The ``maskwatch`` command line: parses, calls the library, prints."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from .errors import MaskwatchError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Find every face in pictures and videos and tell whether it wears a mask.")
err = Console(stderr=True)


def _fail_usage(msg: str) -> None:
    err.print(f"[red]error:[/] {msg}")
    raise typer.Exit(2)


def _detector(model: str, threshold: Optional[float], tile: bool = False, scales: Optional[str] = None):
    from .detector import Detector

    sc = None
    if scales:
        try:
            sc = tuple(float(v) for v in scales.split(","))
        except ValueError:
            _fail_usage(f"--scales takes numbers separated by commas, got {scales!r}")
    if threshold is not None and not 0 <= threshold <= 1:
        _fail_usage(f"--threshold must be between 0 and 1, got {threshold}")
    try:
        return Detector(model, score_threshold=threshold, tile=tile, scales=sc)
    except (MaskwatchError, ValueError) as exc:
        _fail_usage(str(exc))


@app.command()
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
    from . import batch
    from .output import FORMATS, ReportWriter, summary_text
    from .sources import expand_sources

    fmt = fmt or ("table" if (output is None and sys.stdout.isatty()) else "csv")
    if fmt not in FORMATS:
        _fail_usage(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    det = _detector(model, threshold, tile, scales)
    items = expand_sources(sources)
    if save_dir is not None:
        try:
            save_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            _fail_usage(f"--save-dir {save_dir}: cannot create it ({exc.strerror or exc})")
    try:
        out = open(output, "w", newline="") if output else sys.stdout
    except OSError as exc:
        _fail_usage(f"--output {output}: cannot write it ({exc.strerror or exc})")
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


@app.command("eval")
def eval_cmd(
    data: Path = typer.Argument(..., help="A labelled set: Pascal VOC, YOLO, WIDER FACE or COCO."),
    split: Optional[str] = typer.Option(None, "--split", help="File listing the pictures to use (e.g. val.txt)."),
    model: str = typer.Option("mobile", "--model", "-m"),
    threshold: Optional[float] = typer.Option(None, "--threshold", "-t", help="Operating threshold for recall and label accuracy."),
    iou: float = typer.Option(0.5, "--iou", help="IoU that counts as a match."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write precision-recall curves to this PNG."),
    fmt: str = typer.Option("auto", "--format", help="auto, voc, yolo, wider or coco."),
    tile: bool = typer.Option(False, "--tile"),
    scales: Optional[str] = typer.Option(None, "--scales"),
    limit: Optional[int] = typer.Option(None, "--limit", help="Use only the first N pictures."),
):
    """AP per class, mAP, face AP, recall by face height and label accuracy."""
    from .datasets import load_dataset
    from .evaluation import evaluate_results
    from .evaluation_run import format_report, plot_curves, run_eval

    det = _detector(model, None, tile, scales)
    problems: list[str] = []  # label files or pictures that could not be read: reported, not fatal
    try:
        samples = load_dataset(data, split, fmt, problems)
    except MaskwatchError as exc:
        _fail_usage(str(exc))
    if limit:
        samples = samples[:limit]
    if not samples:
        _fail_usage(f"{data}: no labelled pictures found" + "".join(f"\n  {p}" for p in problems[:10]))
    op = det.score_threshold if threshold is None else threshold
    results, errors = run_eval(det, samples, progress=True, console=err)
    m = evaluate_results(results, iou, op)
    curves = m.pop("_curves")
    errors = problems + errors
    m.update({"model": model, "data": str(data), "split": split, "errors": errors})
    if plot:
        plot_curves(curves, m, plot)
    if as_json:
        print(json.dumps(m, indent=2))
    else:
        format_report(m, Console())
    raise typer.Exit(1 if errors else 0)


@app.command()
def models():
    """List the shipped models."""
    from . import models as registry
    from .detector import classifier_files, read_metadata

    for name in registry.available():
        meta = read_metadata(registry.resolve(name))
        size = registry.resolve(name).stat().st_size / 1e6
        cls = ", ".join(classifier_files(meta)) or "-"
        print(f"{name:8s} {size:5.2f} MB  input {meta.get('input_size')}  threshold {meta.get('score_threshold')}"
              f"  flip {meta.get('flip', False)}  classifier {cls}")


@app.command()
def train(
    recipe: str = typer.Argument("mobile", help="Which shipped model to rebuild: mobile, server, or one part: server-det ... server-det5 (the detector's later training stages; mobile runs the last, server server-det4), classifier (the shipped crop classifier) or a classifier recipe by name (server_cls, server_vcls, server_fvcls, server_fvcls2, server_fvcls3)."),
    data: Path = typer.Option(Path("../shared/data"), "--data", help="Training data: ../shared/data, or your own labelled set with --init."),
    out: Path = typer.Option(Path("runs"), "--out", help="Checkpoints, logs and exported files go under here."),
    epochs: Optional[int] = typer.Option(None, "--epochs"),
    init: Optional[str] = typer.Option(None, "--init", help="Fine-tune: start from this model (mobile, server or a .onnx) on --data."),
    lr: float = typer.Option(1e-3, "--lr", help="Learning rate for fine-tuning."),
    resume: bool = typer.Option(True, "--resume/--restart", help="Continue from the last checkpoint if there is one."),
    install: bool = typer.Option(False, "--install", help="Copy the result into the package's models folder."),
):
    """Rebuild a shipped model, or fine-tune one on your own pictures (needs the [train] extra)."""
    try:
        from .train.finetune import finetune
        from .train.pipeline import run_recipe
    except ImportError as exc:
        _fail_usage(f"training needs PyTorch: pip install -e '.[train]' ({exc})")
    try:
        if init:
            path, report = finetune(init, data, out / "finetune" if out == Path("runs") else out, epochs=epochs or 10, lr=lr,
                                    log=lambda m: err.print(m, highlight=False))
            _print_before_after(report)
        else:
            path = run_recipe(recipe, data, out, epochs=epochs, resume=resume, install=install)
    except MaskwatchError as exc:
        _fail_usage(str(exc))
    err.print(f"wrote {path}")


def _print_before_after(report: dict) -> None:
    from rich.table import Table

    t = Table(title=f"fine-tuning {report['init']} on {report['train_pictures']} pictures, validated on {report['val_pictures']}")
    for c in ("figure", "before", "after"):
        t.add_column(c, justify="left" if c == "figure" else "right")
    for k in ("map", "face_ap", "recall", "precision", "label_accuracy"):
        b, a = report["before"].get(k), report["after"].get(k)
        t.add_row(k, "-" if b is None else f"{b:.4f}", "-" if a is None else f"{a:.4f}")
    Console().print(t)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8866, "--port", "-p", help="Port (PaddleHub Serving's is 8866)."),
    model: str = typer.Option("mobile", "--model", "-m", help="Default model for /v1/detect and the pages."),
    workers: int = typer.Option(1, "--workers", min=1, help="Server processes (each loads its own model)."),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="MASKWATCH_API_KEY", help="Require this X-API-Key header."),
    max_body_mb: float = typer.Option(20.0, "--max-body-mb", help="Largest request body (413 past it)."),
    max_megapixels: float = typer.Option(40.0, "--max-megapixels", help="Largest picture accepted."),
    cors: Optional[List[str]] = typer.Option(None, "--cors", help="Allow these browser origins (off unless given)."),
):
    """HTTP service: PaddleHub Serving endpoints, REST API /v1/detect, metrics, web pages."""
    import os

    try:
        import uvicorn

        from .serve import create_app, usable_cores
    except ImportError as exc:
        _fail_usage(f"serving needs its extra: pip install 'maskwatch[serve]' ({exc})")
    cores = max(1, usable_cores() // workers)  # the worker processes share the cores
    settings = {"model": model, "api_key": api_key, "max_body": int(max_body_mb * 1024 * 1024),
                "max_pixels": int(max_megapixels * 1e6), "cors_origins": cors or None,
                "threads": cores, "infer_threads": cores}
    try:
        app_ = create_app(**settings)  # fail early, with a clear message, on a bad model
    except MaskwatchError as exc:
        _fail_usage(str(exc))
    err.print(f"maskwatch serving {model} on http://{host}:{port} (PaddleHub: POST /predict/pyramidbox_lite_mobile_mask)")
    if workers == 1:  # this process serves: the app made above, its model already loaded
        uvicorn.run(app_, host=host, port=port, log_level="warning")
        return
    os.environ["MASKWATCH_SERVE_SETTINGS"] = json.dumps(settings)  # each worker process makes its own
    uvicorn.run("maskwatch.serve:app_from_env", host=host, port=port, workers=workers, factory=True, log_level="warning")


@app.command()
def export(
    model: str = typer.Option("mobile", "--model", "-m", help="The model to export (single-file models)."),
    fmt: str = typer.Option("onnx", "--format", "-f", help="onnx, or ort for ONNX Runtime Mobile."),
    int8: bool = typer.Option(False, "--int8", help="Static int8 quantisation (smaller, faster on phones)."),
    calib: Optional[Path] = typer.Option(None, "--calib", help="Pictures to calibrate --int8 on (default: Kaggle train pictures in ../shared/data)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Where to write (default: ./NAME.FORMAT)."),
):
    """Export a model for phones and browsers (ONNX Runtime Mobile / Web)."""
    try:
        import onnx  # noqa: F401  (needed to write metadata and to quantise)

        from .export import export_model
    except ImportError as exc:
        _fail_usage(f"export needs the onnx package: pip install 'maskwatch[export]' ({exc})")
    if int8 and calib is None:
        default = Path("../shared/data/kaggle-facemask/images")
        calib = default if default.is_dir() else None
    try:
        path = export_model(model, fmt, int8, output, calib)
    except MaskwatchError as exc:
        _fail_usage(str(exc))
    err.print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
