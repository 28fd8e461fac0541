"""Watchers inside the service (``maskwatch serve --watch NAME=SOURCE``): one thread per stream.

Each stream runs a ``Watcher`` on the service's default model (one shared session) and keeps its last
annotated frame for the MJPEG preview. A source that cannot be opened, or a watch that fails, is
tried again with backoff (a camera that is off when the service starts is picked up later); its
state and last error show in ``GET /v1/streams``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ..core.detector import Detector
from ..core.errors import MaskwatchError
from ..watch.reader import is_live, public_source
from ..watch.watcher import Watcher

RETRY_S = (2.0, 5.0, 10.0, 30.0)  # waits before watching a failed stream again (the last repeats)


class Stream:
    """One named source watched in a thread, started again after failures."""

    def __init__(
        self,
        name: str,
        source: str,
        detector: Detector,
        anonymize: str | None = None,
        retry: tuple[float, ...] = RETRY_S,
    ):
        self.name, self.source, self.detector, self.retry = name, source, detector, retry
        self.anonymize = anonymize  # faces hidden in the preview
        self.state = "starting"
        self.error: str | None = None
        self.restarts = 0
        self.watcher: Watcher | None = None
        self.history: list[dict[str, Any]] = []  # per-minute figures of the watchers before this one
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"maskwatch-watch-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait: float = 10.0) -> None:
        self._stop.set()
        if self.watcher is not None:
            self.watcher.stop()
        self._thread.join(wait)

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            src: str | int = int(self.source) if self.source.isdigit() else self.source
            w = Watcher(src, self.detector, name=self.name, anonymize=self.anonymize)
            w.keep_preview = True
            self.watcher = w
            try:
                self.state = "opening"
                for _ in w:
                    if self._stop.is_set():
                        w.stop()
                    self.state, attempt = "running", 0
                self.state = "ended"  # a file that ended, or a live source given up
                if not is_live(src):
                    break  # a video file is watched once
            except Exception as exc:  # a source that cannot be opened, a failing model: try again later
                msg = str(exc) if isinstance(exc, MaskwatchError) else f"{type(exc).__name__}: {exc}"
                self.error = msg.replace(self.source, public_source(self.source))  # no password shown
                self.state = "retrying"
            if self._stop.is_set():
                break
            self.history.extend(w.per_minute())
            del self.history[: max(0, len(self.history) - 24 * 60)]
            self.restarts += 1
            if self._stop.wait(self.retry[min(attempt, len(self.retry) - 1)]):
                break
            attempt += 1
        if self.state != "ended":
            self.state = "stopped"

    def status(self, minutes: int = 180) -> dict[str, Any]:
        w = self.watcher
        s = w.summary() if w is not None and w.reader is not None else None
        counts = w.counts() if w is not None else {}
        per_minute = self.history + (w.per_minute() if w is not None else [])
        return {
            "name": self.name,
            "source": public_source(self.source),
            "state": self.state,
            "error": self.error,
            "restarts": self.restarts,
            "counts": counts,
            "fps": round(w.fps, 2) if w is not None else 0.0,
            "frames": s["frames"] if s else 0,
            "frames_dropped": s["frames_dropped"] if s else 0,
            "reconnects": s["reconnects"] if s else 0,
            "latency_ms_p50": s["latency_ms_p50"] if s else None,
            "per_minute": per_minute[-minutes:] if minutes > 0 else [],
        }

    def preview(self) -> bytes | None:
        w = self.watcher
        return w.preview if w is not None else None


class StreamHub:
    """The service's streams, by name; started and stopped with the application."""

    def __init__(self, specs: list[str] | None, detector: Detector | None, anonymize: str | None = None):
        self.streams: dict[str, Stream] = {}
        for spec in specs or []:
            name, _, source = spec.partition("=")
            assert detector is not None
            self.streams[name] = Stream(name, source, detector, anonymize)
        self._started = False
        self.started_at = time.time()

    def start(self) -> None:
        if not self._started:
            self._started = True
            for s in self.streams.values():
                s.start()

    def stop(self) -> None:
        for s in self.streams.values():
            if s.watcher is not None:
                s.watcher.stop()
        for s in self.streams.values():
            s.stop()
