"""``Watcher``: a video source watched in real time, each person counted once, alerts once per person.

Frames come from a ``FrameReader`` thread; the detector runs on the newest frame kept, ByteTrack
follows the faces, each track's label is a confidence-weighted vote, and events go to the sinks
(JSON-lines file, webhook, snapshots, callbacks). The command line (``maskwatch watch``) and the
service (``serve --watch``) are thin layers over this class.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..batch.annotate import annotate, check_anonymize
from ..core.detections import Detections
from ..core.detector import Detector
from ..core.errors import MaskwatchError
from ..core.face import LABELS
from .events import EventLog, Snapshots, make_event
from .reader import Frame, FrameReader, is_live, public_source
from .tracking import FaceTracker, Track, TrackUpdate
from .webhook import Webhook

MINUTES_KEPT = 24 * 60  # the per-minute history kept for charts (bounded: memory stays flat)

EventSink = Callable[[dict[str, Any]], None]


@dataclass
class FrameResult:
    """One processed frame: its tracked faces (``detections.tracker_id``) and the events it caused."""

    frame: int
    video_time: float
    wall_time: float
    image: np.ndarray
    detections: Detections
    events: list[dict[str, Any]]
    latency: float  # seconds from the frame's arrival to the end of its processing (events written)
    counts: dict[str, Any]


@dataclass
class _Minute:
    start: float  # epoch seconds of the minute
    people: int = 0
    by_label: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LABELS, 0))


def counts_line(c: dict[str, Any], alerts: bool = True) -> str:
    """People by label, compliance (and alerts): the one line the status, the drawn video and the
    final summary all show."""
    rate = "-" if c.get("compliance") is None else f"{100 * c['compliance']:.1f}%"
    line = (
        f"people {c['people']}  mask {c['mask']}  no_mask {c['no_mask']}  incorrect {c['incorrect']}  compliance {rate}"
    )
    return line + (f"  alerts {c['alerts']}" if alerts else "")


class Watcher:
    """Watch ``source`` (a video file, a webcam index, an ``rtsp://`` or ``http://`` stream).

    ``detector``: a ``Detector``, or a model name or path (default ``mobile``); ``score_threshold``
    overrides the detector's. Iterate to get a ``FrameResult`` per processed frame, or call ``run()``
    to go to the end and get the summary. Events go to ``on_event`` (one callable or a list), and
    with ``events`` (a .jsonl path), ``webhook`` (URL or ``Webhook``, alerts only), ``snapshots`` (folder, alert
    crops) and ``save`` (annotated video path) to those outputs. ``stop()`` (any thread) ends the
    watch cleanly: open tracks end, outputs close, the summary is complete.

    ``every_frame``: process every frame (default for files) or only the newest (default for live
    sources, older frames dropped). ``lost_after`` (s), ``min_hits`` and ``settle_share`` tune tracks
    and label settling (see ``tracking``). ``max_frames`` stops after that many processed frames.
    ``stride`` N: the detector runs on every N-th frame and the tracker carries each face between
    them. Without a saved video or previews, the frames between are not even decoded; with them, they
    are drawn with the tracks' predicted boxes. ``min_hits`` counts frames of the source: a track
    settles after ``ceil(min_hits / N)`` detected frames (at least 2).
    """

    def __init__(
        self,
        source: str | int,
        detector: Detector | str | None = None,
        *,
        score_threshold: float | None = None,
        name: str | None = None,
        events: str | Path | None = None,
        webhook: str | Webhook | None = None,
        snapshots: str | Path | None = None,
        save: str | Path | None = None,
        on_event: EventSink | list[EventSink] | None = None,
        every_frame: bool | None = None,
        buffer: int = 2,
        reconnect: bool | None = None,
        lost_after: float = 1.5,
        min_hits: int = 5,
        settle_share: float = 0.6,
        max_frames: int | None = None,
        open_timeout: float = 10.0,
        anonymize: str | None = None,
        stride: int = 1,
    ):
        self.source = source
        self.anonymize = check_anonymize(anonymize)  # faces hidden in the saved video, previews and snapshots
        self.name = name or public_source(str(source))  # events and summaries never show a camera's password
        if detector is None or isinstance(detector, (str, Path)):
            detector = Detector(detector or "mobile")
        self.detector = detector
        try:
            self.threshold = detector.threshold_of(score_threshold)
        except ValueError as exc:
            raise MaskwatchError(str(exc)) from None
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
            raise MaskwatchError(f"stride must be a whole number >= 1, got {stride!r}")
        self.stride = stride
        self.every_frame, self.buffer, self.reconnect = every_frame, buffer, reconnect
        self.lost_after, self.min_hits, self.settle_share = lost_after, min_hits, settle_share
        self.max_frames = max_frames
        self.open_timeout = open_timeout
        self.sinks: list[EventSink] = (
            [] if on_event is None else (list(on_event) if isinstance(on_event, list) else [on_event])
        )
        self._events_path, self._webhook_url, self._snap_dir, self._save_path = events, webhook, snapshots, save
        self.event_log: EventLog | None = None
        self.webhook: Webhook | None = None
        self.snapshots: Snapshots | None = None
        self._writer: cv2.VideoWriter | None = None
        self.reader: FrameReader | None = None
        self.tracker: FaceTracker | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []  # events from the reader thread, emitted with the next frame
        self._finished = False
        self._last: Frame | None = None
        # running figures
        self.frames = 0  # frames handed out: detected, or carried by the tracker (stride)
        self.frames_detected = 0
        self.people: dict[str, int] = dict.fromkeys(LABELS, 0)
        self.alerts = 0
        self.tracks_started = 0
        self.started_at: float | None = None
        self._times: deque[float] = deque(maxlen=64)
        self.latencies: deque[float] = deque(maxlen=2048)
        self.minutes: deque[_Minute] = deque(maxlen=MINUTES_KEPT)
        self.preview: bytes | None = None  # last annotated frame as JPEG (service preview), when asked for
        self.keep_preview = False

    # -- control -----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the watch to end (from any thread or a signal handler): the loop ends after this frame."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def run(self) -> dict[str, Any]:
        """Watch to the end of the source (or ``stop()``/Ctrl-C) and return the summary."""
        try:
            for _ in self:
                pass
        except KeyboardInterrupt:
            self.stop()
        finally:
            self._finish()
        return self.summary()

    def __iter__(self) -> Iterator[FrameResult]:
        self._open()
        try:
            while not self._stop.is_set():
                assert self.reader is not None
                frame = self.reader.get(timeout=0.5)
                if frame is None:
                    if self.reader.done:
                        break
                    self._flush_pending()
                    continue
                yield self._process(frame)
                if self.max_frames and self.frames >= self.max_frames:
                    break
        finally:
            self._finish()

    # -- the work ----------------------------------------------------------------------------------

    def _open(self) -> None:
        if self.reader is not None:
            raise MaskwatchError("a Watcher runs once; make a new one to watch again")
        # the model's first run before the first frame (else a camera's first seconds are dropped while
        # it loads); outputs next: a bad --events path fails before a camera opens
        self.detector.detections(np.zeros((480, 640, 3), np.uint8))
        try:
            if isinstance(self._webhook_url, Webhook):
                self.webhook = self._webhook_url
            elif self._webhook_url is not None:
                self.webhook = Webhook(self._webhook_url)
            if self._snap_dir is not None:
                self.snapshots = Snapshots(self._snap_dir, anonymize=self.anonymize)
            if self._events_path is not None:
                self.event_log = EventLog(self._events_path)
                self.sinks.append(self.event_log)
        except MaskwatchError:
            self._close_outputs()
            raise
        drawn = self._save_path is not None or self.keep_preview  # every frame drawn: every frame decoded
        self.reader = FrameReader(
            self.source,
            every_frame=self.every_frame,
            buffer=self.buffer,
            reconnect=self.reconnect,
            on_status=self._on_status,
            open_timeout=self.open_timeout,
            stride=1 if drawn else self.stride,
        )
        try:
            self.reader.start()
        except MaskwatchError:
            self._close_outputs()
            raise
        hits = max(2, -(-self.min_hits // self.stride)) if self.stride > 1 else self.min_hits
        self.tracker = FaceTracker(self.threshold, self.reader.fps, self.lost_after, hits, self.settle_share)
        self.started_at = time.time()
        self._emit(
            make_event("stream_started", self.name, self.started_at, 0.0, 0, detail=public_source(str(self.source)))
        )

    def _on_status(self, kind: str, detail: str) -> None:
        if kind == "stream_ended":
            return  # said once by _finish, with the frame count
        last = self._last
        ev = make_event(
            kind, self.name, time.time(), last.video_time if last else 0.0, last.index if last else 0, detail=detail
        )
        with self._lock:
            self._pending.append(ev)

    def _flush_pending(self) -> list[dict[str, Any]]:
        with self._lock:
            evs, self._pending = self._pending, []
        for ev in evs:
            self._emit(ev)
        return evs

    def _emit(self, ev: dict[str, Any]) -> None:
        for sink in self.sinks:
            try:
                sink(ev)
            except MaskwatchError:
                raise
            except Exception:  # a failing listener never stops the watch
                pass

    def _process(self, frame: Frame) -> FrameResult:
        assert self.tracker is not None
        self._last = frame
        events = self._flush_pending()
        if frame.index % self.stride:  # between the detector's frames: the tracks carried on
            tracked = self.tracker.carry(self._track_time(frame), self.detector.labels)
        else:
            dets = self.detector.detections(frame.image, score_threshold=self.tracker.low_threshold)
            tracked, up = self.tracker.update(dets, frame.index, self._track_time(frame))
            events += self._track_events(up, frame)
            self.frames_detected += 1
        self.frames += 1
        now = time.monotonic()
        self._times.append(now)
        latency = now - frame.arrival
        self.latencies.append(latency)
        if self._save_path is not None or self.keep_preview:
            self._draw(frame, tracked)
        return FrameResult(
            frame.index, frame.video_time, frame.wall_time, frame.image, tracked, events, latency, self.counts()
        )

    def _track_time(self, frame: Frame) -> float:
        """The clock the tracker runs on: a file's own timestamps; for a live source the frame count over
        its frame rate, not the arrival times, which come in bursts when the network or the machine is
        busy (two frames a millisecond apart that moved 8 px would tell the motion model 8000 px/s)."""
        assert self.reader is not None
        return frame.index / self.reader.fps if is_live(self.source) else frame.video_time

    def _track_events(self, up: TrackUpdate, frame: Frame) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []

        def ev(kind: str, tr: Track, **extra: Any) -> dict[str, Any]:
            e = make_event(
                kind,
                self.name,
                frame.wall_time,
                frame.video_time,
                frame.index,
                tr.id,
                tr.box,
                tr.label or tr.leader[0],
                tr.confidence if tr.label else tr.leader[1],
                **extra,
            )
            if kind == "alert":
                self._alert(tr, e, frame)
            self._emit(e)
            out.append(e)
            return e

        for tr in up.started:
            self.tracks_started += 1
            ev("track_started", tr)
        for tr in up.settled:
            self._count(tr.label, +1, frame.wall_time)
            ev("label_settled", tr)
            if tr.label == "no_mask" and not tr.alerted:
                ev("alert", tr)
        for tr, before in up.changed:
            self._count(before, -1, None)
            self._count(tr.label, +1, None)
            ev("label_changed", tr, previous=before)
            if tr.label == "no_mask" and not tr.alerted:
                ev("alert", tr)
        for tr in up.ended:
            self._ended(tr, ev)
        return out

    def _ended(self, tr: Track, ev: Callable[..., dict[str, Any]]) -> None:
        if tr.settled_at_end:  # seen long enough, never a clear majority: counted with its leading label
            self._count(tr.label, +1, time.time())
        ev("track_ended", tr, frames=tr.hits, duration=round(tr.last_time - tr.first_time, 3), counted=tr.counted)

    def _count(self, label: str | None, delta: int, wall: float | None) -> None:
        if label is None:
            return
        with self._lock:
            self.people[label] += delta
            if wall is not None and delta > 0:
                start = wall - wall % 60
                if not self.minutes or self.minutes[-1].start != start:
                    self.minutes.append(_Minute(start))
                m = self.minutes[-1]
                m.people += 1
                m.by_label[label] += 1

    def _alert(self, tr: Track, event: dict[str, Any], frame: Frame) -> None:
        """Once per track: snapshot (its path goes in the event), then the webhook queue."""
        tr.alerted = True
        self.alerts += 1
        if self.snapshots is not None:
            path = self.snapshots.save(frame.image, event)
            if path:
                event["snapshot"] = path
        if self.webhook is not None:
            self.webhook(event)

    def _draw(self, frame: Frame, tracked: Detections) -> None:
        assert self.tracker is not None
        faces = []  # each face under its track's settled label: what the person is counted as
        for face in tracked.to_faces():
            tr = self.tracker.tracks.get(face.track_id if face.track_id is not None else -1)
            label = tr.label if tr is not None and tr.label else face.label
            faces.append(replace(face, label=label, confidence=face.probs[face.labels.index(label)]))
        img = annotate(
            frame.image, faces, anonymize_faces=self.anonymize, caption=counts_line(self.counts(), alerts=False)
        )
        h, w = img.shape[:2]
        if self._save_path is not None:
            if self._writer is None:
                Path(self._save_path).parent.mkdir(parents=True, exist_ok=True)
                assert self.reader is not None
                fps = self.reader.fps if not is_live(self.source) else max(1.0, min(30.0, self.fps or 10.0))
                self._writer = cv2.VideoWriter(str(self._save_path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
                if not self._writer.isOpened():
                    self._writer = None
                    raise MaskwatchError(f"--save {self._save_path}: cannot write a video there")
            self._writer.write(img)
        if self.keep_preview:
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 70])
            if ok:
                self.preview = buf.tobytes()

    def _finish(self) -> None:
        if self._finished or self.reader is None:
            return
        self._finished = True
        if self.tracker is None:  # the source never opened: _open closed the outputs, nothing to end
            return
        self.reader.stop()
        last = self._last
        try:  # the open tracks end, the stream ends; the outputs close whatever happens
            self._flush_pending()
            frame = last or Frame(np.zeros((1, 1, 3), np.uint8), 0, 0.0, time.monotonic(), time.time())
            frame = Frame(frame.image, frame.index, frame.video_time, frame.arrival, time.time())
            self._track_events(TrackUpdate(ended=self.tracker.finish()), frame)
            detail = "stopped" if self._stop.is_set() else (self.reader.error or "end of the source")
            vt, n = (last.video_time, last.index) if last else (0.0, 0)
            self._emit(make_event("stream_ended", self.name, time.time(), vt, n, detail=detail, frames=self.frames))
        finally:
            self._close_outputs()

    def _close_outputs(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self.webhook is not None:
            self.webhook.close()
        if self.event_log is not None:
            self.event_log.close()

    # -- figures -----------------------------------------------------------------------------------

    @property
    def fps(self) -> float:
        """Frames of the source gone through per second, over the last 64 handed out (with a stride
        whose frames between are not decoded, each stands for ``stride`` frames)."""
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        per = self.reader.stride if self.reader is not None else 1
        return per * (len(self._times) - 1) / span if span > 0 else 0.0

    def counts(self) -> dict[str, Any]:
        """People counted so far, by label, and the compliance rate (mask / people)."""
        with self._lock:
            people = sum(self.people.values())
            return {
                "people": people,
                **self.people,
                "compliance": round(self.people["mask"] / people, 4) if people else None,
                "alerts": self.alerts,
            }

    def status_line(self) -> str:
        return f"{counts_line(self.counts())}  {self.fps:.1f} fps"

    def per_minute(self) -> list[dict[str, Any]]:
        """People counted per minute (when their label settled) and the compliance rate in that minute."""
        with self._lock:
            return [
                {
                    "minute": m.start,
                    "people": m.people,
                    **m.by_label,
                    "compliance": round(m.by_label["mask"] / m.people, 4) if m.people else None,
                }
                for m in self.minutes
            ]

    def summary(self) -> dict[str, Any]:
        """Counts of people (not frames), frames processed and dropped, fps, latency, reconnections."""
        lat = sorted(self.latencies)
        r = self.reader
        elapsed = (time.time() - self.started_at) if self.started_at else 0.0
        return {
            "stream": self.name,
            **self.counts(),
            "tracks": self.tracks_started,
            "frames": self.frames,
            "frames_detected": self.frames_detected,
            "frames_skipped": r.skipped if r else 0,
            "stride": self.stride,
            "frames_read": r.read if r else 0,
            "frames_dropped": r.dropped if r else 0,
            "reconnects": r.reconnects if r else 0,
            "error": r.error if r else None,
            "seconds": round(elapsed, 2),
            "fps": round((self.frames + (r.skipped if r else 0)) / elapsed, 2) if elapsed > 0 else 0.0,
            "latency_ms_p50": round(1000 * lat[len(lat) // 2], 1) if lat else None,
            "latency_ms_p95": round(1000 * lat[int(len(lat) * 0.95)], 1) if lat else None,
            "webhook": None
            if self.webhook is None
            else {"sent": self.webhook.sent, "failed": self.webhook.failed, "dropped": self.webhook.dropped},
        }
