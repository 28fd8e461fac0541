"""Reading frames in their own thread: files, webcams and network streams.

The reader never waits on the model. For a live source (camera, ``rtsp://``, ``http://``) it keeps only
the newest frames (``buffer`` of them): when inference falls behind, the oldest are dropped and counted.
A video file is read frame by frame instead (``every_frame``): results do not depend on how fast the
machine is, and the queue is still bounded. A live source that drops or stalls is reopened with
backoff; the reader says so through ``on_status``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from ..batch.sources import OPEN_TIMEOUT_S, READ_TIMEOUT_S, FileFrames, frame_size_problem, is_stream
from ..batch.sources import open_capture as _open
from ..core.errors import MaskwatchError

BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)  # waits between reconnection attempts (the last one repeats)


class SourceError(MaskwatchError):
    """A video source that cannot be opened or read: ``source: reason``."""

    def __init__(self, source: str | int, reason: str):
        super().__init__(f"{public_source(str(source))}: {reason}")
        self.reason = reason


@dataclass
class Frame:
    """One frame as read: the picture, its number in the source, its time in the video and when it came."""

    image: np.ndarray
    index: int  # frame number since the watch started (counts on across reconnections)
    video_time: float  # seconds: position in a file, time since the start for a live source
    arrival: float  # time.monotonic() when the reader got it
    wall_time: float  # time.time() when the reader got it


def is_live(source: str | int) -> bool:
    """A camera index or a URL: frames come in real time and may be dropped."""
    return isinstance(source, int) or is_stream(str(source))


def public_source(source: str) -> str:
    """The source without the user name and password a camera URL may carry."""
    if "://" not in source:
        return source
    parts = urlsplit(source)
    if parts.username is None and parts.password is None:
        return source
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class FrameReader:
    """A thread that reads ``source`` into a bounded buffer; ``get`` hands out the oldest frame kept.

    ``every_frame``: True for files by default (each frame is processed; the reader waits for room),
    False for live sources (the newest ``buffer`` frames are kept, older ones dropped and counted in
    ``dropped``). ``reconnect``: reopen a live source that ends or stalls (default for live sources).
    ``stride`` N: only every N-th frame is decoded and handed out (index 0, N, 2N...; the others are
    grabbed and counted in ``skipped``); ``Frame.index`` counts every frame of the source.
    ``on_status(kind, detail)`` is called from the reader thread with ``stream_lost``,
    ``stream_reconnected`` and ``stream_ended``.
    """

    def __init__(
        self,
        source: str | int,
        every_frame: bool | None = None,
        buffer: int = 2,
        reconnect: bool | None = None,
        on_status: Callable[[str, str], None] | None = None,
        open_timeout: float = OPEN_TIMEOUT_S,
        read_timeout: float = READ_TIMEOUT_S,
        backoff: tuple[float, ...] = BACKOFF_S,
        stride: int = 1,
    ):
        self.source = source
        self.stride = max(1, int(stride))
        live = is_live(source)
        self.every_frame = (not live) if every_frame is None else every_frame
        self.reconnect = live if reconnect is None else reconnect
        self.buffer = max(1, buffer)
        self.on_status = on_status
        self.open_timeout, self.read_timeout = open_timeout, read_timeout
        self.backoff = backoff
        self.fps = 0.0
        self.dropped = 0
        self.read = 0
        self.reconnects = 0
        self.skipped = 0  # frames passed over by the stride
        self.end = 0  # the index after the last frame read
        self._frames: deque[Frame] = deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._done = False
        self._error: str | None = None
        self._thread: threading.Thread | None = None
        self._cap: cv2.VideoCapture | None = None

    # -- life cycle --------------------------------------------------------------------------------

    def start(self) -> FrameReader:
        """Open the source (SourceError within ``open_timeout`` if it cannot be) and start reading."""
        if not is_live(self.source) and not Path(str(self.source)).is_file():
            raise SourceError(self.source, "no such video file")
        opened: list[cv2.VideoCapture] = []
        failure: list[str] = []

        def try_open() -> None:
            try:
                cap = _open(self.source, self.open_timeout, self.read_timeout)
            except cv2.error as exc:
                failure.append(str(exc).strip().splitlines()[-1])
                return
            opened.append(cap)

        t = threading.Thread(target=try_open, name="maskwatch-open", daemon=True)
        t.start()
        t.join(self.open_timeout)
        if t.is_alive():
            raise SourceError(
                self.source, f"no answer within {self.open_timeout:.0f} s (cannot open the video or stream)"
            )
        if failure or not opened or not opened[0].isOpened():
            kind = "camera" if str(self.source).isdigit() else "video or stream"
            raise SourceError(self.source, f"cannot open the {kind}" + (f" ({failure[0]})" if failure else ""))
        self._cap = opened[0]
        if problem := frame_size_problem(self._cap):
            self._cap.release()
            self._cap = None
            raise SourceError(self.source, problem)
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not 1.0 <= self.fps <= 240.0:
            self.fps = 25.0
        self._thread = threading.Thread(target=self._run, name="maskwatch-reader", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.read_timeout + 1)

    @property
    def error(self) -> str | None:
        """Why the source ended before its end (a decode error in a file, a failure), or None."""
        return self._error

    @property
    def done(self) -> bool:
        with self._cond:
            return self._done and not self._frames

    def get(self, timeout: float | None = None) -> Frame | None:
        """The next frame, or None when the source has ended (or ``timeout`` passed with no frame)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._frames:
                if self._done or self._stop.is_set():
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left if left is not None else 0.5)
            frame = self._frames.popleft()
            self._cond.notify_all()
            return frame

    # -- the thread --------------------------------------------------------------------------------

    def _status(self, kind: str, detail: str) -> None:
        if self.on_status is not None:
            try:
                self.on_status(kind, detail)
            except Exception:  # a failing listener must not stop the reading
                pass

    def _put(self, frame: Frame) -> None:
        with self._cond:
            if self.every_frame:
                while len(self._frames) >= self.buffer and not self._stop.is_set():
                    self._cond.wait(0.5)
            elif len(self._frames) >= self.buffer:
                self._frames.popleft()
                self.dropped += 1
            self._frames.append(frame)
            self._cond.notify_all()

    def _run(self) -> None:
        cap = self._cap
        index = 0
        start = time.monotonic()
        live = is_live(self.source)
        file_frames = FileFrames(cap, self.stride) if cap is not None and not live else None
        reads = iter(file_frames if file_frames is not None else ())
        try:
            while not self._stop.is_set():
                if file_frames is not None:  # a file: read past corrupt stretches, the stride's frames only
                    got = next(reads, None)
                    ok, img = (False, None) if got is None else (True, got[1])
                    last = file_frames.end if got is None else got[0]  # the frames before it were grabbed
                    self.skipped += sum(1 for k in range(index, last) if k % self.stride)
                    index = last
                elif cap is not None and index % self.stride:  # a live source: frames off the stride are grabbed only
                    if cap.grab():
                        self.skipped += 1
                        index += 1
                        continue
                    ok, img = False, None
                else:
                    ok, img = cap.read() if cap is not None else (False, None)
                if ok and img is not None:
                    now = time.monotonic()
                    if live:
                        vt = now - start
                    else:
                        pos = cap.get(cv2.CAP_PROP_POS_MSEC) if cap is not None else 0.0
                        vt = pos / 1000.0 if pos and pos > 0 else index / self.fps
                        if not self.every_frame and self._stop.wait(max(0.0, start + vt - now)):
                            break  # a file watched as live (--drop-frames) comes at its own pace, as a camera
                    self.read += 1
                    self._put(Frame(img, index, vt, now, time.time()))
                    index += 1
                    self.end = index
                    continue
                if not self.reconnect:
                    break
                self._status("stream_lost", "no frame from the source; reconnecting")
                if cap is not None:
                    cap.release()
                cap = self._reconnect()
                if cap is None:
                    break
                self.reconnects += 1
                self._status("stream_reconnected", f"reconnected after {self.reconnects} drop(s)")
            if file_frames is not None and file_frames.problem and not self._stop.is_set():
                self._error = file_frames.problem
        except Exception as exc:  # keep what was read; say why it stopped
            self._error = f"{type(exc).__name__}: {exc}"
        finally:
            if cap is not None:
                cap.release()
            with self._cond:
                self._done = True
                self._cond.notify_all()
            self._status("stream_ended", self._error or "end of the source")

    def _reconnect(self) -> cv2.VideoCapture | None:
        attempt = 0
        while not self._stop.is_set():
            wait = self.backoff[min(attempt, len(self.backoff) - 1)]
            if self._stop.wait(wait):
                return None
            attempt += 1
            try:
                cap = _open(self.source, self.open_timeout, self.read_timeout)
            except cv2.error:
                continue
            if cap.isOpened():
                return cap
            cap.release()
        return None
