"""Watch events and where they go: a JSON-lines file written line by line, face snapshots.

An event is a plain dict (``make_event``): ``event`` (stream_started, track_started, label_settled,
label_changed, alert, track_ended, stream_lost, stream_reconnected, stream_ended), ``stream``,
``wall_time`` (ISO 8601, UTC), ``video_time`` (seconds), ``frame``, ``track_id``, ``box``, ``label``,
``confidence``, and for some kinds ``detail`` or ``previous``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..core.errors import MaskwatchError


def iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_event(
    kind: str,
    stream: str,
    wall_time: float,
    video_time: float,
    frame: int,
    track_id: int | None = None,
    box: tuple[float, ...] | None = None,
    label: str | None = None,
    confidence: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "event": kind,
        "stream": stream,
        "wall_time": iso(wall_time),
        "video_time": round(video_time, 3),
        "frame": frame,
        "track_id": track_id,
        "box": None if box is None else [round(float(v), 1) for v in box],
        "label": label,
        "confidence": None if confidence is None else round(float(confidence), 4),
    }
    ev.update(extra)
    return ev


class EventLog:
    """Appends events to a JSON-lines file: each line in one ``write`` of the whole line, at once.

    Nothing is held in a buffer, so a crash (even ``kill -9``) loses no event already emitted and leaves
    only whole lines.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise MaskwatchError(f"--events {path}: cannot write it ({exc.strerror or exc})") from None
        self._lock = threading.Lock()
        self.written = 0

    def __call__(self, event: dict[str, Any]) -> None:
        line = (json.dumps(event, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._fd < 0:
                return
            view = memoryview(line)
            try:
                while view:  # a regular file takes it in one write; loop only if the system splits it
                    n = os.write(self._fd, view)
                    view = view[n:]
            except OSError as exc:  # a full disk: stop the watch, saying so, rather than lose events quietly
                os.close(self._fd)
                self._fd = -1  # said once
                raise MaskwatchError(f"--events {self.path}: cannot write ({exc.strerror or exc})") from None
            self.written += 1

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


class Snapshots:
    """Saves the face crop (with a margin) of each alert as ``DIR/<stream>_track<id>_frame<n>.jpg``."""

    def __init__(self, folder: str | os.PathLike[str], margin: float = 0.3, anonymize: str | None = None):
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MaskwatchError(f"--snapshots {folder}: cannot create it ({exc.strerror or exc})") from None
        self.margin = margin
        self.anonymize = anonymize  # "blur" or "pixelate": the face is hidden in the crop too
        self.saved = 0

    def save(self, image: np.ndarray, event: dict[str, Any]) -> str | None:
        x1, y1, x2, y2 = event["box"]
        mw, mh = (x2 - x1) * self.margin, (y2 - y1) * self.margin
        h, w = image.shape[:2]
        a, b = max(0, int(x1 - mw)), max(0, int(y1 - mh))
        c, d = min(w, int(x2 + mw + 1)), min(h, int(y2 + mh + 1))
        if c <= a or d <= b:
            return None
        stream = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(event["stream"]))[-40:]
        out = self.folder / f"{stream}_track{event['track_id']}_frame{event['frame']}.jpg"
        crop = image[b:d, a:c]
        if self.anonymize:
            from ..batch.annotate import anonymize

            crop = anonymize(crop, [(x1 - a, y1 - b, x2 - a, y2 - b)], self.anonymize)
        if not cv2.imwrite(str(out), crop):
            return None
        self.saved += 1
        return str(out)
