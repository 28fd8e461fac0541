"""Ray Data pipeline: sources to a dataset, detection in a pool of actors, rows streamed to a file.

Each actor builds one ``Detector`` (the model is loaded once per actor) and makes every picture's report
with ``batch.runner.detect_image``, then its rows with ``Report.rows``: the very functions the local
command uses, so the rows (error rows included) are the same. Nothing is collected on the driver: CSV
and JSON lines stream through it batch by batch; Parquet is written by the engine, one file per block.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import ray  # the Ray library (imports are absolute)
import ray.data

from ..batch.output import csv_cells
from ..batch.runner import ROW_FIELDS, ROW_TYPES, Report, Tally, common_root, detect_image
from ..batch.sources import expand_sources, is_video
from ..core.detector import Detector
from ..core.errors import MaskwatchError
from ..core.imageio import IMAGE_SUFFIXES

ROW_SCHEMA = pa.schema(
    [(name, {str: pa.string(), float: pa.float64(), int: pa.int64()}[kind]) for name, kind in ROW_TYPES.items()]
)
# one record per picture: what ``maskwatch detect --format jsonl`` writes for it, and what the summary needs
REPORT_SCHEMA = pa.schema(
    [
        ("image", pa.string()),
        ("frame", pa.int64()),
        ("error", pa.string()),
        ("labels", pa.list_(pa.string())),
        ("json", pa.string()),
    ]
)
FORMATS = ("csv", "jsonl", "parquet")
STREAM_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "rtp", "srt"})
VIDEO_ERROR = "videos and streams are not run on Ray: run them without --ray"
DEFAULT_BATCH = 8
READ_CPUS = 0  # per read or write task: storage-bound, and the detection actors may hold every CPU
CONNECT_TIMEOUT_S = 10.0
BLOCK_ROWS = 256  # pictures per input block at most (a task's work: many actor calls of batch_size)
PARQUET_ROWS = 100_000  # rows per Parquet file at least (the last one excepted)


def is_uri(source: str) -> bool:
    """A location that Ray Data / pyarrow reads (s3://, gs://, hdfs://, file://...), not a stream URL."""
    scheme = urlparse(source).scheme.lower()
    return "://" in source and scheme not in STREAM_SCHEMES


def connect(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    timeout_s: float = CONNECT_TIMEOUT_S,
    quiet: bool = False,
) -> float:
    """Join the Ray cluster at ``address`` ("auto", "ray://host:10001", "host:6379") or, with None, start
    Ray on this machine; nothing when Ray is already running in this process. Returns the seconds it took.

    An address that cannot be reached fails within ``timeout_s`` with a ``MaskwatchError`` naming it.
    ``quiet``: Ray's own notices (token, progress bars) and its workers' log lines are not printed
    (failures still come back as exceptions); the command line sets it unless ``--verbose``.
    """
    t0 = time.perf_counter()
    if ray.is_initialized():
        return 0.0
    if address and address not in ("auto", "local"):
        host, port = _host_port(address)
        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
        except OSError as exc:
            raise MaskwatchError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None
    kwargs: dict[str, Any] = {"logging_level": logging.ERROR if quiet else logging.WARNING}
    if quiet:
        kwargs["log_to_driver"] = False
    if not address or address == "local":
        kwargs.update(num_cpus=num_cpus, include_dashboard=False)
    try:
        ray.init(address=address or None, **kwargs)
    except Exception as exc:  # ConnectionError, RuntimeError, ValueError... all say the cluster is not there
        raise MaskwatchError(
            f"cannot connect to the Ray cluster at {address or 'this machine'}: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
    logging.getLogger("ray.data").setLevel(logging.ERROR if quiet else logging.WARNING)
    return time.perf_counter() - t0


def _host_port(address: str) -> tuple[str, int]:
    u = urlparse(address if "://" in address else f"ray-gcs://{address}")
    try:
        port = u.port
    except ValueError:
        port = None
    if not u.hostname:
        raise MaskwatchError(f"--ray-address {address}: give auto, ray://host:10001 or host:6379")
    return u.hostname, port or (10001 if u.scheme == "ray" else 6379)


class _DetectActor:
    """One per worker: builds the detector once, then turns batches of pictures into rows (or reports)."""

    def __init__(self, detector_state: dict[str, Any], save_dir: str | None, common: str | None, reports: bool):
        self.detector = Detector(**detector_state)
        self.save_dir = Path(save_dir) if save_dir else None
        self.common = Path(common) if common else None
        self.reports = reports

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        n = len(batch["path"])
        errors = batch["error"] if "error" in batch else [None] * n
        data: Any = batch.get("bytes", batch.get("image"))
        rows: list[dict[str, Any]] = []
        for i in range(n):
            src, err = str(batch["path"][i]), errors[i]
            if isinstance(err, str):  # a column of no errors comes as None or NaN
                rep = Report(src, error=err)
            else:
                pic = None if data is None else data[i]
                if isinstance(pic, np.ndarray) and pic.ndim == 3 and "image" in batch:
                    pic = np.ascontiguousarray(pic[..., ::-1])  # ray.data.read_images gives RGB; the detector BGR
                rep = detect_image(self.detector, src, self.save_dir, self.common, data=pic)
            if self.reports:
                rows.append(
                    {
                        "image": rep.source,
                        "frame": rep.frame,
                        "error": rep.error,
                        "labels": [f.label for f in rep.faces],
                        "json": json.dumps(rep.to_dict()),
                    }
                )
            else:
                rows.extend(rep.rows())
        return pa.Table.from_pylist(rows, schema=REPORT_SCHEMA if self.reports else ROW_SCHEMA)


@dataclass
class Sources:
    """What ``detect`` reads: a dataset, how many pictures when known, and their common folder (for --save-dir)."""

    dataset: ray.data.Dataset
    total: int | None = None
    common: Path | None = None


def sources_dataset(
    sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    batch_size: int = DEFAULT_BATCH,
    with_common: bool = False,
) -> Sources:
    """Local files, folders and globs (expanded as the local command does; names that match nothing become
    error rows) or URIs that Ray Data reads (``s3://bucket/pictures/``), as a dataset of pictures."""
    names = [os.fspath(sources)] if isinstance(sources, (str, os.PathLike)) else [os.fspath(s) for s in sources]
    if not names:
        raise MaskwatchError("no pictures named")
    uris = [s for s in names if is_uri(s)]
    if uris and len(uris) < len(names):
        raise MaskwatchError(
            f"name either local pictures or URIs, not both in one run (got {uris[0]} and "
            f"{next(s for s in names if not is_uri(s))})"
        )
    if uris:
        exts = sorted(s.lstrip(".") for s in IMAGE_SUFFIXES)
        try:
            # no CPU asked for reading (it waits on storage): a pool of detection actors holding every CPU
            # must never starve the reads that feed it
            ds = ray.data.read_binary_files(
                uris, include_paths=True, file_extensions=exts + [e.upper() for e in exts], num_cpus=READ_CPUS
            )
        except Exception as exc:
            raise MaskwatchError(f"cannot read {uris[0]}: {str(exc).splitlines()[0] if str(exc) else exc}") from None
        return Sources(ds)
    items = expand_sources(names)
    paths = [s for s, _ in items]
    errors = [e if e is not None else (VIDEO_ERROR if is_video(s) else None) for s, e in items]
    del items
    # the folder that annotated pictures mirror (``--save-dir``), as the local command finds it
    common = common_root([p for p, e in zip(paths, errors) if e is None]) if with_common else None
    # one Arrow table (a few bytes per picture beyond its name), cut into blocks: at least 64 of them for
    # small runs (every worker busy to the end), at most BLOCK_ROWS pictures each for large ones (the
    # driver keeps some bookkeeping per block and per task: fewer, larger blocks keep it small)
    table = pa.table({"path": pa.array(paths, pa.string()), "error": pa.array(errors, pa.string())})
    n = len(paths)
    del paths, errors
    rows_per_block = max(1, batch_size, min(BLOCK_ROWS, -(-n // 64)))
    blocks = [table.slice(i, rows_per_block) for i in range(0, n, rows_per_block)]
    return Sources(ray.data.from_arrow(blocks), n, common)


def detect(
    dataset_or_paths: Any,
    model: str | os.PathLike[str] | Detector = "mobile",
    *,
    threshold: float | None = None,
    tile: bool = False,
    scales: Sequence[float] | None = None,
    workers: int | None = None,
    batch_size: int = DEFAULT_BATCH,
    save_dir: str | os.PathLike[str] | None = None,
    num_cpus: float = 1.0,
    reports: bool = False,
    common: str | os.PathLike[str] | None = None,
) -> ray.data.Dataset:
    """A Ray Dataset of the rows ``maskwatch detect`` writes for these pictures, error rows included
    (columns label, x1, y1, x2, y2, confidence, image, score, frame, error; a picture without faces or with
    an error gives one row whose label is null). Lazy: it runs when the dataset is consumed or written.

    ``dataset_or_paths``: paths, folders, globs or URIs (``s3://...``), or a Ray Dataset with a ``path``
    column and the picture in ``bytes`` (``ray.data.read_binary_files(..., include_paths=True)``) or
    ``image`` (``ray.data.read_images(..., include_paths=True)``, RGB), or only ``path`` (read by the workers).
    ``model``: a model name, .onnx path or a ``Detector`` (its settings travel; each worker loads it once).
    ``workers``: actors in the pool (default: as many as the cluster's CPUs allow, each ``num_cpus``);
    ``batch_size``: pictures per call; ``save_dir``: annotated pictures (a folder every worker can write);
    ``reports``: one record per picture instead (image, frame, error, labels, and ``json``: the line
    ``--format jsonl`` writes).
    """
    if batch_size < 1:
        raise MaskwatchError(f"batch_size must be at least 1, got {batch_size}")
    if workers is not None and workers < 1:
        raise MaskwatchError(f"workers must be at least 1, got {workers}")
    det = model if isinstance(model, Detector) else Detector(model, score_threshold=threshold, tile=tile, scales=scales)
    state = det.__getstate__()
    if state["threads"] is None:  # one onnxruntime thread per CPU the actor holds: actors do not fight for cores
        state["threads"] = max(1, int(num_cpus))
    if isinstance(dataset_or_paths, ray.data.Dataset):
        ds = dataset_or_paths
        cols = ds.columns() or []
        if "path" not in cols:
            raise MaskwatchError("the dataset needs a 'path' column: read it with include_paths=True")
    else:
        src = sources_dataset(dataset_or_paths, batch_size, with_common=save_dir is not None)
        ds, common = src.dataset, common or src.common
    compute = (
        ray.data.ActorPoolStrategy(size=workers) if workers else ray.data.ActorPoolStrategy(min_size=1, max_size=None)
    )
    return ds.map_batches(
        _DetectActor,
        fn_constructor_args=(
            state,
            os.fspath(save_dir) if save_dir else None,
            os.fspath(common) if common else None,
            reports,
        ),
        batch_size=batch_size,
        batch_format="numpy",
        compute=compute,
        num_cpus=num_cpus,
    )
    # Ray Data's defaults do the rest: the pool is spread over the nodes (DataContext.scheduling_strategy
    # "SPREAD"), and a worker that dies is restarted and its batch retried (max_restarts, max_task_retries -1)


def output_format(output: str | os.PathLike[str] | None, fmt: str | None = None) -> str:
    """``fmt``, else from the output's name: .parquet (or an existing folder) Parquet, .jsonl JSON lines, else CSV."""
    if fmt is None and output is not None and Path(output).is_dir():
        fmt = "parquet"
    if fmt is None:
        suffix = Path(output).suffix.lower() if output else ""
        fmt = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix, "csv")
    if fmt not in FORMATS:
        raise MaskwatchError(f"--ray writes {', '.join(FORMATS)}; got {fmt!r}")
    return fmt


@dataclass
class RunResult:
    """What a run did: the overall summary (as ``overall_summary`` gives), where the rows went, and times."""

    summary: dict
    output: str | None
    format: str
    startup_s: float  # joining or starting Ray
    run_s: float  # from the first picture queued to the last row written


def run(
    sources: Any,
    output: str | os.PathLike[str] | None = None,
    *,
    fmt: str | None = None,
    address: str | None = None,
    summary: bool = False,
    on_total: Callable[[int | None], None] | None = None,
    on_done: Callable[[str, int | None, str | None], None] | None = None,
    stdout: Any = None,
    **options: Any,
) -> RunResult:
    """``maskwatch detect --ray``: detect over ``sources`` on Ray and write the rows to ``output``.

    CSV and JSON lines (to ``output``, or ``stdout`` when None) come in the order of the inputs, streamed
    through this process batch by batch; Parquet goes to the folder ``output``, one file per block, written
    by the workers. ``on_total(n)`` says how many pictures (None: unknown, for URIs) and ``on_done(image,
    frame, error)`` is called once per picture (progress bar, error lines). With ``summary``, JSON lines
    end with ``{"summary": ...}`` as the local command's. ``options`` go to ``detect`` (model, threshold,
    tile, scales, workers, batch_size, save_dir).
    """
    fmt = output_format(output, fmt)
    if fmt == "parquet":
        if output is None:
            raise MaskwatchError("Parquet needs --output FOLDER (or a URI: s3://bucket/rows/)")
        out_path = Path(output)
        if not is_uri(os.fspath(output)) and out_path.exists() and (not out_path.is_dir() or any(out_path.iterdir())):
            raise MaskwatchError(f"--output {output}: Parquet goes to a new or empty folder, and this one is not")
    elif output is not None and is_uri(os.fspath(output)):
        raise MaskwatchError(f"--output {output}: CSV and JSON lines go to a local file; a URI takes Parquet")
    startup = connect(address)
    t0 = time.perf_counter()
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # rows in input order, as the local command writes them
    ctx.enable_progress_bars = False  # the caller draws one bar: pictures done
    if isinstance(sources, ray.data.Dataset):
        src = Sources(sources)
    else:
        src = sources_dataset(
            sources, options.get("batch_size", DEFAULT_BATCH), with_common=options.get("save_dir") is not None
        )
    if on_total:
        on_total(src.total)
    ds = detect(src.dataset, reports=fmt == "jsonl", common=src.common, **options)
    tally = Tally()
    if fmt == "parquet":
        assert output is not None  # checked above
        ds.write_parquet(os.fspath(output), ray_remote_args={"num_cpus": READ_CPUS}, min_rows_per_file=PARQUET_ROWS)
        batches = _read_back(os.fspath(output))
        _count(batches, tally, on_done)
    else:
        out = open(output, "w", newline="") if output is not None else (stdout or sys.stdout)
        try:
            batches = ds.iter_batches(batch_format="pyarrow", batch_size=None, prefetch_batches=2)
            if fmt == "csv":
                writer = csv.DictWriter(out, fieldnames=list(ROW_FIELDS), extrasaction="ignore")
                writer.writeheader()
                _count(
                    _written(batches, lambda t: writer.writerows(csv_cells(r) for r in t.to_pylist()), out),
                    tally,
                    on_done,
                )
            else:
                _count(
                    _written(batches, lambda t: out.writelines(s + "\n" for s in t.column("json").to_pylist()), out),
                    tally,
                    on_done,
                    reports=True,
                )
                if summary:
                    out.write(json.dumps({"summary": tally.result()}) + "\n")
        finally:
            if output is not None:
                out.close()
            else:
                out.flush()
    return RunResult(
        tally.result(), os.fspath(output) if output is not None else None, fmt, startup, time.perf_counter() - t0
    )


def _written(batches: Iterable[pa.Table], write: Callable[[pa.Table], Any], out: Any) -> Iterable[pa.Table]:
    for t in batches:
        write(t)
        out.flush()
        yield t


def _read_back(folder: str) -> Iterable[pa.Table]:
    """The Parquet files just written (a folder or a URI), a batch at a time, only the columns the summary
    needs, file after file (a picture's rows are in one file)."""
    import pyarrow.dataset as pads

    for b in pads.dataset(folder, format="parquet").to_batches(
        columns=["image", "frame", "label", "error"], use_threads=False
    ):
        yield pa.Table.from_batches([b])


def _count(
    batches: Iterable[pa.Table],
    tally: Tally,
    on_done: Callable[[str, int | None, str | None], None] | None,
    reports: bool = False,
) -> None:
    """Feed the summary one picture at a time (a picture's rows come together, in one batch)."""
    for t in batches:
        if reports:
            for image, frame, error, labels in zip(
                *(t.column(c).to_pylist() for c in ("image", "frame", "error", "labels"))
            ):
                tally.add(labels, error)
                if on_done:
                    on_done(image, frame, error)
            continue
        image, frame, label, error = (t.column(c).to_pylist() for c in ("image", "frame", "label", "error"))
        i, n = 0, len(image)
        while i < n:
            j = i + 1
            while j < n and image[j] == image[i] and frame[j] == frame[i]:
                j += 1
            tally.add([lab for lab in label[i:j] if lab is not None], error[i])
            if on_done:
                on_done(image[i], frame[i], error[i])
            i = j
