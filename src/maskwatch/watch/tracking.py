"""Faces followed across frames (ByteTrack from the ``trackers`` library) and a label decided per person.

The tracker gives each face a track id. Each track keeps a confidence-weighted vote over its frames:
every frame adds the face score times its label probabilities, and older votes fade with a half-life of
``half_life`` seconds (so a mask taken off mid-way changes the label within seconds). A track's label
*settles* once the track has ``min_hits`` frames and one label holds at least ``settle_share`` of the
votes; after that it changes only when another label holds that share. A one-frame flicker therefore
neither settles a label nor raises an alert. A track that is not seen for ``lost_after`` seconds has ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.detections import Detections
from ..core.errors import MaskwatchError
from ..core.face import LABELS

INSTALL_HINT = "the tracker needs the watch extra: pip install 'maskwatch[watch]'"
MIN_DIOU = -0.2  # ByteTrack's association threshold on DIoU (in [-1, 1]); see _bytetrack


def require() -> None:
    """Import the tracker library now (a second or two), or say how to install it."""
    try:
        import supervision  # noqa: F401
        import trackers  # noqa: F401
    except ImportError as exc:
        raise MaskwatchError(f"{INSTALL_HINT} ({exc})") from None


def _bytetrack(fps: float, lost_after: float, high: float, activation: float) -> Any:
    require()
    from trackers import ByteTrackTracker, DIoU

    # lost_track_buffer is counted in 30 fps frames; timestamps (seconds) are passed to each update.
    # DIoU (IoU less the squared distance of the centres over the squared diagonal of the enclosing box)
    # down to MIN_DIOU still matches a face that moved beyond its own box since the last processed frame
    # (frames dropped, a slow frame), where plain IoU sees no overlap and starts a second track.
    return ByteTrackTracker(
        lost_track_buffer=max(1, round(lost_after * 30)),
        frame_rate=fps,
        track_activation_threshold=activation,
        minimum_consecutive_frames=2,
        minimum_iou_threshold=MIN_DIOU,
        high_conf_det_threshold=high,
        iou=DIoU(),
    )


@dataclass
class Track:
    """One person followed across frames."""

    id: int
    first_frame: int
    first_time: float
    last_frame: int
    last_time: float
    box: tuple[float, float, float, float]
    votes: np.ndarray  # summed score x probabilities, by label
    hits: int = 0
    label: str | None = None  # the settled label (None until it settles)
    confidence: float = 0.0  # the settled label's share of the votes
    alerted: bool = False
    counted: bool = False  # a person: the label settled, or the track lasted min_hits frames
    settled_at_end: bool = False  # counted when it ended, with its leading label (no clear majority before)

    @property
    def leader(self) -> tuple[str, float]:
        """The label with most votes and its share of them."""
        total = float(self.votes.sum())
        k = int(np.argmax(self.votes))
        return LABELS[k], (float(self.votes[k]) / total if total > 0 else 0.0)


@dataclass
class TrackUpdate:
    """What one frame changed: tracks started, labels settled or changed, tracks ended."""

    started: list[Track] = field(default_factory=list)
    settled: list[Track] = field(default_factory=list)
    changed: list[tuple[Track, str]] = field(default_factory=list)  # (track, previous label)
    ended: list[Track] = field(default_factory=list)


class FaceTracker:
    """Track ids for faces and a settled label per track.

    ``threshold``: the detector's face score threshold: faces above it start tracks; faces down to
    ``low_ratio`` x threshold only continue tracks (ByteTrack's second association).
    """

    def __init__(
        self,
        threshold: float,
        fps: float = 25.0,
        lost_after: float = 1.5,
        min_hits: int = 5,
        settle_share: float = 0.6,
        half_life: float = 3.0,
    ):
        self.threshold = threshold
        self.low_threshold = threshold * 0.6
        self.lost_after = lost_after
        self.min_hits = min_hits
        self.settle_share = settle_share
        self.half_life = half_life
        self._tracker = _bytetrack(fps, lost_after, high=threshold, activation=threshold)
        self.tracks: dict[int, Track] = {}

    def update(self, dets: Detections, frame: int, t: float) -> tuple[Detections, TrackUpdate]:
        """Faces of one frame (found down to ``low_threshold``) -> the tracked ones with ``tracker_id``,
        and what changed. ``t`` is the frame's time in seconds (frames may have been dropped)."""
        import supervision as sv

        up = TrackUpdate()
        sv_dets = sv.Detections(
            xyxy=dets.boxes.astype(np.float32).reshape(-1, 4),
            confidence=dets.scores.astype(np.float32),
            data={"row": np.arange(len(dets))},
        )
        out = self._tracker.update(sv_dets, timestamp=t)
        tids = np.asarray(out.tracker_id if out.tracker_id is not None else [], dtype=np.int64)
        rows = np.asarray(out.data.get("row", []), dtype=np.int64) if len(out) else np.zeros(0, np.int64)
        keep = tids >= 0
        rows, tids = rows[keep], tids[keep]
        order = np.argsort(rows)
        rows, tids = rows[order], tids[order]
        tracked = Detections(
            dets.boxes[rows],
            dets.scores[rows],
            dets.probs[rows],
            dets.labels,
            tids,
            {k: v[rows] for k, v in dets.data.items()},
        )
        for i, tid in enumerate(tids.tolist()):
            box = tuple(float(v) for v in tracked.boxes[i])
            tr = self.tracks.get(tid)
            if tr is None:
                tr = self.tracks[tid] = Track(tid, frame, t, frame, t, box, np.zeros(len(LABELS)))  # type: ignore[arg-type]
                up.started.append(tr)
            if self.half_life > 0:
                tr.votes *= 0.5 ** (max(0.0, t - tr.last_time) / self.half_life)
            tr.last_frame, tr.last_time, tr.box = frame, t, box  # type: ignore[assignment]
            tr.hits += 1
            tr.votes += float(tracked.scores[i]) * tracked.probs[i, : len(LABELS)]
            self._settle(tr, up)
        for tid in [k for k, tr in self.tracks.items() if t - tr.last_time > self.lost_after]:
            up.ended.append(self._end(tid))
        return tracked, up

    def _settle(self, tr: Track, up: TrackUpdate) -> None:
        if tr.hits < self.min_hits:
            return
        lead, share = tr.leader
        if tr.label is None:
            if share >= self.settle_share:
                tr.label, tr.confidence, tr.counted = lead, share, True
                up.settled.append(tr)
        elif lead != tr.label and share >= self.settle_share:
            before = tr.label
            tr.label, tr.confidence = lead, share
            up.changed.append((tr, before))
        elif lead == tr.label:
            tr.confidence = share

    def _end(self, tid: int) -> Track:
        tr = self.tracks.pop(tid)
        if tr.label is None and tr.hits >= self.min_hits:  # seen long enough, never a clear majority
            tr.label, tr.confidence = tr.leader
            tr.counted = tr.settled_at_end = True
        return tr

    def finish(self) -> list[Track]:
        """End every open track (the source has ended)."""
        return [self._end(tid) for tid in list(self.tracks)]
