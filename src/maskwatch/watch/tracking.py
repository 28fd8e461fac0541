"""Faces followed across frames (ByteTrack, here in NumPy) and a label decided per person.

The tracker gives each face a track id. Each track keeps a confidence-weighted vote over its frames:
every frame adds the face score times its label probabilities, and older votes fade with a half-life of
``half_life`` seconds (so a mask taken off mid-way changes the label within seconds). A track's label
*settles* once the track has ``min_hits`` frames and one label holds at least ``settle_share`` of the
votes; after that it changes only when another label holds that share. A one-frame flicker therefore
neither settles a label nor raises an alert. A track that is not seen for ``lost_after`` seconds has ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.detections import Detections
from ..core.face import LABELS
from ..core.geometry import iou_matrix

MIN_DIOU = -0.2  # association threshold on DIoU (in [-1, 1]); see ByteTrack
YOUNG_BUFFER = 0.2  # a new track's box widens by this share of its size per frame it was not seen (_Tracklet.gate_box)
YOUNG_BUFFER_MAX = 2.0  # ... by at most this share, on each side


def diou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance-IoU of every box in ``a`` (n, 4) with every box in ``b`` (m, 4): IoU less the squared
    distance of the centres over the squared diagonal of the box enclosing both; in [-1, 1]."""
    iou = iou_matrix(a, b).astype(np.float64)
    a, b = a[:, None, :], b[None, :, :]
    centre = ((a[..., 0] + a[..., 2]) - (b[..., 0] + b[..., 2])) ** 2 + (
        (a[..., 1] + a[..., 3]) - (b[..., 1] + b[..., 3])
    ) ** 2
    cw = np.maximum(a[..., 2], b[..., 2]) - np.minimum(a[..., 0], b[..., 0])
    ch = np.maximum(a[..., 3], b[..., 3]) - np.minimum(a[..., 1], b[..., 1])
    return iou - (centre / 4) / np.maximum(cw**2 + ch**2, 1e-9)


def match(similarity: np.ndarray, minimum: float) -> list[tuple[int, int]]:
    """Pairs (row, column) of a similarity matrix, the most similar first, each row and column used
    once, none under ``minimum``. Greedy: for faces, which rarely overlap, it pairs as the optimal
    assignment does."""
    if not similarity.size:
        return []
    order = np.argsort(-similarity, axis=None, kind="stable")
    rows, cols = np.unravel_index(order, similarity.shape)
    used_r, used_c, out = set(), set(), []
    for r, c in zip(rows.tolist(), cols.tolist()):
        if similarity[r, c] < minimum:
            break
        if r not in used_r and c not in used_c:
            used_r.add(r)
            used_c.add(c)
            out.append((r, c))
    return out


class BoxFilter:
    """A constant-velocity Kalman filter on a box's corners: state (x1, y1, x2, y2) and their
    velocities in pixels per frame; a box measured each update. The noise of ByteTrack's corner filter
    (process 0.01, measurement 0.1, both per unit of the identity)."""

    Q, R = 0.01, 0.1

    def __init__(self, box: np.ndarray):
        self.x = np.concatenate([np.asarray(box, np.float64), np.zeros(4)])
        self.P = np.eye(8)

    @property
    def box(self) -> np.ndarray:
        return self.x[:4]

    def predict(self, frames: float) -> None:
        """Move the box ``frames`` frames ahead (a fraction or several when frames were dropped)."""
        F = np.eye(8)
        F[:4, 4:] = np.eye(4) * frames
        self.x = F @ self.x
        self.P = F @ self.P @ F.T + np.eye(8) * (self.Q * max(frames, 1e-3))

    def update(self, box: np.ndarray) -> None:
        S = self.P[:4, :4] + np.eye(4) * self.R
        K = self.P[:, :4] @ np.linalg.inv(S)
        self.x = self.x + K @ (np.asarray(box, np.float64) - self.x[:4])
        self.P = self.P - K @ self.P[:4, :]


@dataclass
class _Tracklet:
    kf: BoxFilter
    id: int = -1  # -1 until confirmed (updated in ``confirm_after`` frames in a row)
    streak: int = 1  # updates in a row
    unseen: float = 0.0  # seconds since the last update
    seen: int = 1  # updates in all

    def gate_box(self, frames: float) -> np.ndarray:
        """The box a face is paired with. A track seen once has no speed yet: its box is widened by
        ``YOUNG_BUFFER`` of its size per frame since (at most ``YOUNG_BUFFER_MAX``, on each side), so that a face that
        moved up to about three times its width while the detector skipped frames (``watch --stride``) is still
        found; the nearest face is paired first (``match``). Later its motion model predicts it."""
        box = self.kf.box
        if self.seen > 1:
            return box
        b = min(YOUNG_BUFFER_MAX, YOUNG_BUFFER * max(0.0, frames - 1))
        w, h = box[2] - box[0], box[3] - box[1]
        return box + np.array([-b * w, -b * h, b * w, b * h])


class ByteTrack:
    """ByteTrack (Zhang et al., 2022) in NumPy, after the ``trackers`` library's (Apache-2.0; see the
    package's NOTICE), with frame times.

    Each update: every track's box is predicted to the frame's time; faces scored at least ``high``
    are paired with all tracks on DIoU (down to ``min_similarity``), then the faces below ``high``
    with the tracks left (ByteTrack's second association, which keeps a face through a weak frame).
    A face left over that scores at least ``activation`` starts a track; a track gets its id once it
    was updated in ``confirm_after`` frames in a row, and ends when not seen for ``lost_after`` seconds
    (an unconfirmed one at its first miss). Ids count from 0.
    """

    def __init__(
        self,
        fps: float,
        lost_after: float,
        high: float,
        activation: float,
        confirm_after: int = 2,
        min_similarity: float = MIN_DIOU,
    ):
        self.fps, self.lost_after, self.high, self.activation = fps, lost_after, high, activation
        self.confirm_after, self.min_similarity = confirm_after, min_similarity
        self.tracks: list[_Tracklet] = []
        self._next_id = 0
        self._last_t: float | None = None

    def predicted(self, t: float) -> dict[int, np.ndarray]:
        """The confirmed tracks' boxes moved on to time ``t`` by their motion model, by id; the tracks
        are not changed (what ``watch --stride`` draws on the frames the detector skips)."""
        ahead = 0.0 if self._last_t is None else max(0.0, t - self._last_t) * self.fps
        return {tr.id: tr.kf.box + tr.kf.x[4:] * ahead for tr in self.tracks if tr.id >= 0 and tr.unseen == 0}

    def update(self, boxes: np.ndarray, scores: np.ndarray, t: float) -> np.ndarray:
        """One frame's faces (boxes (n, 4), scores (n,)) at time ``t`` s -> each face's track id (-1: none)."""
        dt = 1.0 / self.fps if self._last_t is None else max(0.0, t - self._last_t)
        self._last_t = t
        for tr in self.tracks:
            tr.kf.predict(dt * self.fps)
            if tr.unseen > 0:  # missed the frame before: the streak starts again
                tr.streak = 0
            tr.unseen += dt
        self.tracks = [tr for tr in self.tracks if tr.unseen <= self.lost_after]
        ids = np.full(len(boxes), -1, np.int64)
        left = list(range(len(self.tracks)))  # tracks not yet paired this frame
        new = []
        for round_, faces in enumerate((np.flatnonzero(scores >= self.high), np.flatnonzero(scores < self.high))):
            gates = [self.tracks[i].gate_box(self.tracks[i].unseen * self.fps) for i in left]
            pairs = match(diou(np.array(gates).reshape(-1, 4), boxes[faces]), self.min_similarity)
            for r, c in pairs:
                tr = self.tracks[left[r]]
                tr.kf.update(boxes[faces[c]])
                tr.unseen, tr.streak, tr.seen = 0.0, tr.streak + 1, tr.seen + 1
                if tr.id < 0 and tr.streak >= self.confirm_after:
                    tr.id, self._next_id = self._next_id, self._next_id + 1
                ids[faces[c]] = tr.id
            paired_r, paired_c = {r for r, _ in pairs}, {c for _, c in pairs}
            left = [i for k, i in enumerate(left) if k not in paired_r]
            if round_ == 0:  # high faces left over may start tracks
                new = [int(f) for k, f in enumerate(faces) if k not in paired_c and scores[f] >= self.activation]
        self.tracks += [_Tracklet(BoxFilter(boxes[k])) for k in new]
        self.tracks = [tr for tr in self.tracks if tr.id >= 0 or tr.unseen == 0]
        return ids


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
    score: float = 0.0  # the face score of its last frame
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
        self._tracker = ByteTrack(fps, lost_after, high=threshold, activation=threshold)
        self.tracks: dict[int, Track] = {}

    def update(self, dets: Detections, frame: int, t: float) -> tuple[Detections, TrackUpdate]:
        """Faces of one frame (found down to ``low_threshold``) -> the tracked ones with ``tracker_id``,
        and what changed. ``t`` is the frame's time in seconds (frames may have been dropped)."""
        up = TrackUpdate()
        boxes = dets.boxes.astype(np.float64).reshape(-1, 4)
        ids = self._tracker.update(boxes, dets.scores.astype(np.float64), t)
        rows = np.flatnonzero(ids >= 0)
        tids = ids[rows]
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
            tr.score = float(tracked.scores[i])
            tr.votes += float(tracked.scores[i]) * tracked.probs[i, : len(LABELS)]
            self._settle(tr, up)
        for tid in [k for k, tr in self.tracks.items() if t - tr.last_time > self.lost_after]:
            up.ended.append(self._end(tid))
        return tracked, up

    def carry(self, t: float, labels: tuple[str, ...] = LABELS) -> Detections:
        """The faces of a frame the detector skipped (``watch --stride``): each track seen on the last
        detected frame, its box moved on to time ``t``, its last score, its votes as probabilities. No
        vote is added and nothing settles or ends: only detected frames change the tracks."""
        moved = self._tracker.predicted(t)
        ids = [i for i in moved if i in self.tracks]
        if not ids:
            return Detections.empty(labels)
        trs = [self.tracks[i] for i in ids]
        probs = np.zeros((len(trs), len(labels)), np.float32)
        for k, tr in enumerate(trs):
            total = float(tr.votes.sum())
            probs[k, : len(LABELS)] = tr.votes / total if total > 0 else 1.0 / len(LABELS)
        return Detections(
            np.array([moved[i] for i in ids], np.float32).reshape(-1, 4),
            np.array([tr.score for tr in trs], np.float32),
            probs,
            labels,
            np.array(ids, np.int64),
        )

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
