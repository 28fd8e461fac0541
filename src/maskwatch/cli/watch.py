"""``maskwatch watch``: a video file, webcam or stream watched in real time; people counted, alerts."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any, Optional

import typer

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
    flag,
    make_detector,
    verbose_logs,
)


def watch(
    source: str = typer.Argument(
        ..., help="A video file, a webcam index (0, 1...) or an rtsp:// / http:// stream URL."
    ),
    model: str = MODEL,
    threshold: Optional[float] = THRESHOLD,
    tile: bool = TILE,
    scales: Optional[str] = SCALES,
    zoom: Optional[float] = ZOOM,
    input_size: Optional[int] = INPUT_SIZE,
    events: Optional[Path] = flag("--events", "Append events (JSON lines, flushed one by one) to this file."),
    save: Optional[Path] = flag("--save", "Write the annotated video (track ids, running counts) to this .mp4."),
    webhook: Optional[str] = flag("--webhook", "POST each no_mask alert as JSON to this URL (once per person)."),
    snapshots: Optional[Path] = flag("--snapshots", "Save the face crop of each alert in this folder."),
    every_frame: Optional[bool] = typer.Option(
        None,
        "--every-frame/--drop-frames",
        help="Process every frame (default for files) or only the newest, dropping old ones when behind (default for cameras and streams).",
    ),
    lost_after: float = typer.Option(
        1.5, "--lost-after", min=0.1, help="Seconds without a face before its track ends."
    ),
    min_frames: int = typer.Option(5, "--min-frames", min=1, help="Frames a track needs before its label settles."),
    max_frames: Optional[int] = flag("--max-frames", "Stop after this many processed frames.", min=1),
    name: Optional[str] = typer.Option(None, "--name", help="Stream name in events (default: the source)."),
    as_json: bool = typer.Option(False, "--json", help="Print the final summary as JSON."),
    verbose: bool = VERBOSE,
    anonymize: Optional[str] = ANONYMIZE,
    device: Optional[str] = DEVICE,
    stride: int = typer.Option(
        1,
        "--stride",
        min=1,
        help="Run the detector on every N-th frame; the tracker carries each face's box between them (faster, docs/watch.md).",
    ),
    status: Optional[bool] = typer.Option(
        None,
        "--status/--no-status",
        help="Live status line on stderr (default: on; every 5 s when stderr is not a terminal).",
    ),
):
    """Watch a video or stream: each person counted once, a label per person, an alert per person without a mask."""
    if verbose:
        verbose_logs()
    from ..watch.watcher import Watcher

    anonymize_mode(anonymize)
    if save is not None and save.suffix.lower() not in (".mp4", ".avi", ".mkv", ".mov"):
        fail_usage(f"--save {save}: name a video file (.mp4)")
    det = make_detector(model, threshold, tile, scales, input_size, zoom, device=device)
    watcher = Watcher(
        source,
        det,
        events=events,
        webhook=webhook,
        snapshots=snapshots,
        save=save,
        name=name,
        every_frame=every_frame,
        lost_after=lost_after,
        min_hits=min_frames,
        max_frames=max_frames,
        anonymize=anonymize,
        stride=stride,
    )
    _run(watcher, status if status is not None else True)
    _report(watcher.summary(), as_json, events)


def _run(watcher, show: bool) -> None:
    """The watcher's loop until the source ends or Ctrl-C / SIGTERM (a second Ctrl-C stops at once),
    with a status line on stderr: redrawn every 0.5 s on a terminal, a line every 5 s otherwise."""

    def on_signal(signum: int, _frame: Optional[FrameType]) -> None:
        if watcher.stopped and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        watcher.stop()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    tty = sys.stderr.isatty()
    every = 0.5 if tty else 5.0
    last = time.monotonic()
    try:
        for _ in watcher:
            now = time.monotonic()
            if show and now - last >= every:
                last = now
                sys.stderr.write("\r\033[K" + watcher.status_line() if tty else watcher.status_line() + "\n")
                sys.stderr.flush()
    except KeyboardInterrupt:
        watcher.stop()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if show and tty:
            sys.stderr.write("\n")


def _report(summary: dict[str, Any], as_json: bool, events: Optional[Path]) -> None:
    """The final summary on stdout (text or JSON); exit 1 when the source failed before its end."""
    sys.stdout.write(json.dumps(summary) + "\n" if as_json else summary_text(summary))
    sys.stdout.flush()
    if events is not None:
        err.print(f"events written to {events}", markup=False, highlight=False)
    if summary.get("error"):  # the source failed before its end (a corrupt file): say so, exit 1
        error(f"{summary['stream']}: {summary['error']}")
        raise typer.Exit(1)


def summary_text(s: dict[str, Any]) -> str:
    """The final summary: people (not frames) by label, compliance, alerts, then frames, speed and drops."""
    from ..watch.watcher import counts_line

    stride = ""
    if s.get("stride", 1) > 1:
        stride = f" (stride {s['stride']}: {s['frames_detected']} detected, {s['frames_skipped']} not decoded)"
    lines = [
        f"{counts_line(s)}  ({s['stream']})",
        f"frames {s['frames']} processed, {s['frames_dropped']} dropped, {s['fps']} fps{stride}; "
        f"latency p50 {s['latency_ms_p50']} ms, p95 {s['latency_ms_p95']} ms; reconnects {s['reconnects']}",
    ]
    if s.get("webhook"):
        w = s["webhook"]
        lines.append(f"webhook: {w['sent']} sent, {w['failed']} failed, {w['dropped']} dropped")
    return "\n".join(lines) + "\n"
