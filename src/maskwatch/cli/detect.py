"""``maskwatch detect``: pictures, folders, videos and streams to rows, tables and annotated copies."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer
from rich.text import Text

from ._common import (
    ANONYMIZE,
    DEVICE,
    INPUT_SIZE,
    MODEL,
    SCALES,
    THRESHOLD,
    TILE,
    VERBOSE,
    ZOOM,
    anonymize_mode,
    err,
    error,
    fail_usage,
    make_detector,
    verbose_logs,
)

if TYPE_CHECKING:
    from ..batch.output import OutputError, ReportWriter

DEFAULT_SAVE_DIR = Path("runs/detect/predict")  # as Ultralytics: runs/ is where results go unless told otherwise


def detect(
    sources: List[str] = typer.Argument(
        ..., help="Pictures, folders (recursive), globs, videos, camera indexes or stream URLs."
    ),
    model: str = MODEL,
    threshold: Optional[float] = THRESHOLD,
    fmt: Optional[str] = typer.Option(
        None,
        "--format",
        "-f",
        help="table, csv, json or jsonl (default: from the --output file's suffix, else table on a terminal, csv otherwise).",
    ),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write results to this file instead of stdout."),
    save_dir: Optional[Path] = typer.Option(
        None,
        "--save-dir",
        help="Write annotated pictures (and videos) here; a folder that is not empty gets a new one beside it (DIR2, DIR3...).",
    ),
    save: bool = typer.Option(
        False, "--save", help="Write annotated pictures under runs/detect/predict (predict2... on later runs)."
    ),
    summary: bool = typer.Option(False, "--summary", help="Faces per label and mask rate over all inputs."),
    per_image: bool = typer.Option(False, "--summary-per-image", help="The summary, and a line for each picture."),
    workers: Optional[int] = typer.Option(
        None,
        "--workers",
        "-w",
        min=1,
        help="Pictures processed at once (default: one per core, at most 4, for more than one picture; with --ray: actors in the pool, default as many as the cluster's CPUs).",
    ),
    tile: bool = TILE,
    scales: Optional[str] = SCALES,
    zoom: Optional[float] = ZOOM,
    input_size: Optional[int] = INPUT_SIZE,
    vid_stride: int = typer.Option(1, "--vid-stride", min=1, help="Use every N-th video frame."),
    progress: Optional[bool] = typer.Option(
        None, "--progress/--no-progress", help="Progress bar on stderr (default: when more than one input)."
    ),
    anonymize: Optional[str] = ANONYMIZE,
    classes: Optional[str] = typer.Option(
        None, "--classes", help="Keep only faces with these labels, e.g. no_mask,incorrect (rows, pictures, summary)."
    ),
    save_txt: bool = typer.Option(
        False, "--save-txt", help="Also write YOLO labels (class cx cy w h confidence) under SAVE_DIR/labels/."
    ),
    save_crop: bool = typer.Option(
        False, "--save-crop", help="Also write each face's crop under SAVE_DIR/crops/LABEL/."
    ),
    device: Optional[str] = DEVICE,
    verbose: bool = VERBOSE,
    use_ray: bool = typer.Option(
        False,
        "--ray",
        help="Run on Ray Data (pip install 'maskwatch[ray]'): a local Ray, or the cluster of --ray-address; SOURCES may also be URIs (s3://...). Writes csv, jsonl or parquet (a folder).",
    ),
    ray_address: Optional[str] = typer.Option(
        None,
        "--ray-address",
        help="With --ray: auto (the running cluster) or ray://host:10001 (default: start Ray on this machine).",
    ),
    batch_size: Optional[int] = typer.Option(
        None, "--batch-size", min=1, help="With --ray: pictures per actor call (default 8)."
    ),
):
    """Detect faces and mask labels; rows of label, x1, y1, x2, y2, confidence, image."""
    if verbose:
        verbose_logs()
    if use_ray or ray_address or batch_size:
        if not use_ray:
            fail_usage("--ray-address and --batch-size go with --ray")
        if anonymize or classes or save_txt or save_crop:
            fail_usage("--anonymize, --classes, --save-txt and --save-crop are not available with --ray yet")
        save_dir = save_dir or (DEFAULT_SAVE_DIR if save else None)
        det = make_detector(model, threshold, tile, scales, zoom=zoom, device=device)
        _detect_ray(sources, det, fmt, output, save_dir, summary, per_image, workers, progress, ray_address, batch_size)
    from ..batch.runner import worker_plan
    from ..batch.sources import expand_sources

    fmt = _format(fmt, output)
    options = _options(anonymize, classes, save_txt, save_crop)
    if (save or save_txt or save_crop) and save_dir is None:  # as Ultralytics: labels and crops beside the pictures
        save_dir = DEFAULT_SAVE_DIR
    items = expand_sources(sources)
    workers, threads = worker_plan(workers, items)
    det = make_detector(model, threshold, tile, scales, input_size, zoom=zoom, device=device, threads=threads)
    _check_output(output, items)
    save_dir = _prepare_save_dir(save_dir)
    out = _open_output(output)
    show = progress if progress is not None else len(items) > 1
    run = _Run(fmt, summary or per_image, per_image, output)
    run.go(det, items, out, show, workers, save_dir, vid_stride, options)
    run.report()


def _format(fmt: Optional[str], output: Optional[Path]) -> str:
    """The output format: asked for, else the --output file's suffix, else a table on a terminal and CSV otherwise."""
    from ..batch.output import FORMATS

    fmt = fmt or format_of(output) or ("table" if (output is None and sys.stdout.isatty()) else "csv")
    if fmt not in FORMATS:
        fail_usage(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return fmt


def _open_output(output: Optional[Path]):
    """The file the rows go to (whole pictures at a time: batch.output.OutputFile), or stdout."""
    from ..batch.output import OutputFile

    try:
        return OutputFile(output) if output else sys.stdout
    except OSError as exc:
        fail_usage(f"--output {output}: cannot write it ({exc.strerror or exc})")


class _Run:
    """One local ``detect`` run: the reports written as they come, then the ending (summary, exit code)."""

    def __init__(self, fmt: str, summary: bool, per_image: bool, output: Optional[Path]):
        self.fmt, self.summary, self.per_image, self.output = fmt, summary, per_image, output
        self.failed = 0
        self.interrupted = False
        self.refused: Optional[OutputError] = None
        self.writer: Optional[ReportWriter] = None

    def go(self, det, items, out, show: bool, workers: int, save_dir, vid_stride: int, options) -> None:
        """Every input through the detector, each report written and flushed as it comes (a camera or a
        stream never ends); on Ctrl-C or a full disk, what was finished stays a valid file."""
        from ..batch import runner as batch
        from ..batch.output import OutputError, ReportWriter

        try:
            writer = self.writer = ReportWriter(out, self.fmt, self.summary, self.per_image)
        except OutputError as exc:
            _output_failed(exc, self.output, 0)
        try:
            with _progress("detect", disable=not show) as bar:
                # pictures count one each, videos their frames (a per-frame bar); a stream: no total
                task = bar.add_task("detect", total=batch.work_units(items, vid_stride) if show else len(items))
                for rep in batch.run(
                    det,
                    items,
                    workers=workers,
                    save_dir=save_dir,
                    vid_stride=vid_stride,
                    on_done=lambda r: bar.advance(task),
                    options=options,
                ):
                    if rep.error:
                        self.failed += 1
                        error(f"{rep.source}: {rep.error}")
                    writer.write(rep)
        except KeyboardInterrupt:  # Ctrl-C: the usual way to stop a camera; keep what was done
            self.interrupted = True
        except OutputError as exc:  # a full disk: stop, keep the whole rows written so far
            self.refused = exc
        finally:
            try:
                writer.close()
            except OutputError as exc:
                self.refused = self.refused or exc
            if self.output:
                out.close()

    def report(self) -> None:
        """The ending: a refused write, the summary, Ctrl-C; exits 0, 1 (an input failed), 130 (Ctrl-C)."""
        from ..batch.output import summary_text

        done: list = self.writer.reports if self.writer is not None else []
        if self.refused is not None:
            _output_failed(self.refused, self.output, len(done) if self.fmt != "table" else 0)
        if self.summary and self.fmt == "csv":  # CSV stays machine-readable; the summary goes to stderr
            sys.stderr.write(summary_text(done, self.per_image))
        if self.interrupted:
            where = f"; results so far are in {self.output}" if self.output else ""
            err.print(Text(f"stopped (Ctrl-C) after {len(done)} pictures or frames{where}"))
            raise typer.Exit(130)
        raise typer.Exit(1 if self.failed else 0)


def _options(anonymize: Optional[str], classes: Optional[str], save_txt: bool, save_crop: bool):
    """``batch.runner.Options`` from the flags, or a usage error naming the flag."""
    from ..batch.runner import Options
    from ..core.face import LABELS

    anonymize_mode(anonymize)
    kept = None
    if classes is not None:
        kept = frozenset(c.strip() for c in classes.split(",") if c.strip())
        if not kept or not kept <= set(LABELS):
            fail_usage(f"--classes takes labels among {', '.join(LABELS)}, separated by commas; got {classes!r}")
    return Options(classes=kept, anonymize=anonymize, save_txt=save_txt, save_crop=save_crop)


def format_of(output: Optional[Path]) -> Optional[str]:
    """The format an ``--output`` name asks for by its suffix (faces.json -> json), or None."""
    suffix = output.suffix.lower().lstrip(".") if output is not None else ""
    return {"csv": "csv", "json": "json", "jsonl": "jsonl", "ndjson": "jsonl", "txt": "table"}.get(suffix)


def _output_failed(exc: OutputError, output: Optional[Path], written: int) -> None:
    """The output refused a write (a full disk): one line naming it, exit 1."""
    if output is None:  # stdout: nothing more can go there, not even Python's last flush at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    kept = f"; {output} keeps the whole rows of the {written} inputs before it" if output and written else ""
    error(f"{exc}{kept}")
    raise typer.Exit(1)


def _check_output(output: Optional[Path], items: list[tuple[str, Optional[str]]]) -> None:
    if output is not None and any(_same_file(output, src) for src, _ in items):
        fail_usage(f"--output {output} is one of the inputs: name another file")


def _prepare_save_dir(save_dir: Optional[Path]) -> Optional[Path]:
    """A new folder for annotated pictures (see ``_new_folder``), made now so that a bad one fails early."""
    if save_dir is None:
        return None
    save_dir = _new_folder(save_dir)
    try:
        save_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail_usage(f"--save-dir {save_dir}: cannot create it ({exc.strerror or exc})")
    err.print(Text(f"annotated pictures go to {save_dir}"))
    return save_dir


def _detect_ray(
    sources: List[str],
    det,
    fmt: Optional[str],
    output: Optional[Path],
    save_dir: Optional[Path],
    summary: bool,
    per_image: bool,
    workers: Optional[int],
    progress: Optional[bool],
    address: Optional[str],
    batch_size: Optional[int],
):
    """``detect --ray``: the same rows, error rows and summary, computed on Ray Data (maskwatch.ray)."""

    from .. import ray as mray
    from ..batch.sources import VERBOSE_ENV, expand_sources

    if per_image:
        fail_usage("--summary-per-image keeps every picture in memory: with --ray use --summary")
    if fmt in ("table", "json"):
        fail_usage(f"--ray writes csv, jsonl or parquet (--output FOLDER or a .parquet name), not {fmt}")
    local = [s for s in sources if "://" not in s]
    _check_output(output, expand_sources(local) if output is not None and local else [])
    save_dir = _prepare_save_dir(save_dir)
    quiet = not os.environ.get(VERBOSE_ENV)  # Ray's own lines only with --verbose (or when it fails)
    with mray.native_logs_held() if quiet else contextlib.nullcontext():
        mray.connect(address, quiet=quiet)  # a cluster that is not there fails here, before any progress bar
        failed = _ray_run(mray, sources, output, fmt, det, workers, batch_size, save_dir, address, summary, progress)
    raise typer.Exit(1 if failed else 0)


def _ray_run(mray, sources, output, fmt, det, workers, batch_size, save_dir, address, summary, progress) -> int:
    """The Ray run under a progress bar; its summary printed. Returns the count of failed inputs."""
    from ..batch.output import summary_text

    failed = 0
    with _progress("detect (ray)", disable=progress is False) as bar:
        task = bar.add_task("detect", total=None)

        def total(n):
            bar.update(task, total=n)
            if progress is None and (n or 0) <= 1:
                bar.disable = True

        def done(image, frame, error_msg):
            nonlocal failed
            bar.advance(task)
            if error_msg:
                failed += 1
                error(f"{image}: {error_msg}")

        res = mray.run(
            sources,
            output,
            fmt=fmt,
            model=det,
            workers=workers,
            batch_size=batch_size or 8,
            save_dir=save_dir,
            address=address,
            summary=summary,
            on_total=total,
            on_done=done,
        )
    if summary and res.format != "jsonl":
        sys.stderr.write(summary_text([], overall=res.summary))
    if res.format == "parquet":
        err.print(Text(f"rows written to {res.output} (Parquet, one file per block)"))
    return failed


def _same_file(a: Path, b: str) -> bool:
    try:
        return a.exists() and Path(b).exists() and a.samefile(b)
    except OSError:
        return False


def _new_folder(path: Path) -> Path:
    """``path`` if it does not exist or is empty, else ``path2``, ``path3``... (as Ultralytics' predict, predict2).

    A new folder each run: annotated pictures never replace earlier results, nor the inputs themselves.
    """
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return path
    path = path.resolve()  # "." and ".." have no name to number
    n = 2
    while path.with_name(f"{path.name}{n}").exists():
        n += 1
    return path.with_name(f"{path.name}{n}")


def _progress(label: str, disable: bool):
    """The progress bar of a batch: pictures done of all, time left, on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err, disable=disable
    )
