"""Which tracker for ``maskwatch watch``: the candidates on the same detections of a test video.

    python benchmarks/watch_trackers.py [--people 8] [--json benchmarks/results/watch_trackers.json]

The test video of tests/watch_scene.py (real Kaggle faces crossing a 640x480 scene, labels known) is
run once through the ``mobile`` detector; the same detections then go to each tracker, in four
conditions: every frame; every 3rd frame (what dropping frames does when inference falls behind);
gaps of 1 to 8 frames at random (a detector that falls behind by varying amounts, as on a busy
machine); every frame with 25% of the detections missed at random (a face turned away, a weak frame). For each:
track ids made per person (1.0 = each person one id; more = fragments, double counts), people with
two ids, tracks on no person, and the tracker's own time per frame. maskwatch's own ByteTrack runs
always; the others when their library can be imported (``pip install trackers``: not a dependency). ``norfair`` is run when it can be
imported (it pins numpy<2, so it is tried from a separate folder: PYTHONPATH=/path/to/norfair).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import watch_scene as ws  # noqa: E402

from maskwatch import Detector  # noqa: E402


def person_boxes(people: list[ws.Person], n: int, w: int) -> list[dict[int, tuple[float, float, float, float]]]:
    """Where each person is in each frame (the ground truth of render)."""
    out = []
    for f in range(n):
        d = {}
        for i, p in enumerate(people):
            k = f - p.enter
            if 0 <= k < p.frames:
                span = w - ws.FACE_PX
                x = round(span * k / (p.frames - 1))
                x = x if p.direction > 0 else span - x
                d[i] = (x, p.lane, x + ws.FACE_PX, p.lane + ws.FACE_PX)
        out.append(d)
    return out


def inside(box, region) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return region[0] <= cx <= region[2] and region[1] <= cy <= region[3]


class ByteTrack:
    name = "trackers ByteTrack"

    def __init__(self, fps: float):
        from trackers import ByteTrackTracker

        self.t = ByteTrackTracker(
            lost_track_buffer=45, frame_rate=fps, track_activation_threshold=0.43, high_conf_det_threshold=0.43
        )

    def update(self, boxes, scores, ts):
        import supervision as sv

        out = self.t.update(sv.Detections(xyxy=boxes, confidence=scores), timestamp=ts)
        return [(tuple(b), int(i)) for b, i in zip(out.xyxy, out.tracker_id) if i >= 0]


class ByteTrackDIoU(ByteTrack):
    name = "trackers ByteTrack, DIoU >= -0.2 (maskwatch's)"

    def __init__(self, fps: float):
        from trackers import ByteTrackTracker, DIoU

        from maskwatch.watch.tracking import MIN_DIOU

        self.t = ByteTrackTracker(
            lost_track_buffer=45,
            frame_rate=fps,
            track_activation_threshold=0.43,
            high_conf_det_threshold=0.43,
            minimum_iou_threshold=MIN_DIOU,
            iou=DIoU(),
        )


class Ours:
    name = "maskwatch ByteTrack (NumPy, DIoU >= -0.2)"

    def __init__(self, fps: float):
        from maskwatch.watch.tracking import ByteTrack as MaskwatchByteTrack

        self.t = MaskwatchByteTrack(fps, lost_after=1.5, high=0.43, activation=0.43)

    def update(self, boxes, scores, ts):
        ids = self.t.update(boxes.astype(np.float64), scores.astype(np.float64), ts)
        return [(tuple(b), int(i)) for b, i in zip(boxes, ids) if i >= 0]


class Sort(ByteTrack):
    name = "trackers SORT"

    def __init__(self, fps: float):
        from trackers import SORTTracker

        self.t = SORTTracker(lost_track_buffer=45, frame_rate=fps, track_activation_threshold=0.43)


class OcSort(ByteTrack):
    name = "trackers OC-SORT"

    def __init__(self, fps: float):
        from trackers import OCSORTTracker

        self.t = OCSORTTracker(lost_track_buffer=45, frame_rate=fps)


class Norfair:
    name = "norfair (IoU)"

    def __init__(self, fps: float):
        import norfair

        self.nf = norfair
        self.t = norfair.Tracker(
            distance_function="iou", distance_threshold=0.9, hit_counter_max=int(1.5 * fps), initialization_delay=1
        )

    def update(self, boxes, scores, ts):
        dets = [self.nf.Detection(points=b.reshape(2, 2), scores=np.array([s, s])) for b, s in zip(boxes, scores)]
        objs = self.t.update(dets)
        return [(tuple(o.estimate.reshape(-1)), int(o.id)) for o in objs if o.live_points.any()]


def evaluate(tracker, dets, truth, fps, stride, miss, seed=0):
    rng = np.random.default_rng(seed)
    ids_of: dict[int, set[int]] = {}
    stray: set[int] = set()
    spent = 0.0
    steps = 0
    if stride > 0:
        order = list(range(0, len(dets), stride))
    else:  # gaps of 1 to -stride frames at random: a detector that falls behind by varying amounts
        order = [0]
        while order[-1] + 1 < len(dets):
            order.append(min(len(dets) - 1, order[-1] + int(rng.integers(1, 1 - stride))))
    for f in order:
        boxes, scores = dets[f]
        if miss and len(boxes):
            keep = rng.random(len(boxes)) >= miss
            boxes, scores = boxes[keep], scores[keep]
        t0 = time.perf_counter()
        out = tracker.update(boxes.reshape(-1, 4), scores, f / fps)
        spent += time.perf_counter() - t0
        steps += 1
        for box, tid in out:
            who = [i for i, r in truth[f].items() if inside(box, r)]
            if who:
                ids_of.setdefault(who[0], set()).add(tid)
            else:
                stray.add(tid)
    n_people = len({i for d in truth for i in d})
    ids = sum(len(v) for v in ids_of.values())
    return {
        "ids_per_person": round(ids / n_people, 3),
        "people_with_2_ids": sum(len(v) > 1 for v in ids_of.values()),
        "people_missed": n_people - len(ids_of),
        "stray_tracks": len(stray - set().union(*ids_of.values())),
        "ms_per_frame": round(1000 * spent / steps, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--people", type=int, default=8)
    ap.add_argument("--data", type=Path, default=None, help="data folder (default: $MASKWATCH_DATA, ../shared/data)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    det = Detector("mobile")
    half = args.people // 2
    people, frames = ws.scene(args.data, det, args.people - half, half)
    fps = 25.0
    truth = person_boxes(people, len(frames), 640)
    low = det.score_threshold * 0.6
    dets = []
    for f in frames:
        d = det.detections(f, score_threshold=low)
        dets.append((d.boxes.astype(np.float32), d.scores.astype(np.float32)))
    print(f"{len(people)} people, {len(frames)} frames of 640x480, {sum(len(b) for b, _ in dets)} detections")
    cands = [Ours, ByteTrack, ByteTrackDIoU, Sort, OcSort, Norfair]
    results = {}
    for cls in cands:
        conds = (
            ("every frame", 1, 0.0),
            ("every 3rd frame", 3, 0.0),
            ("gaps of 1-8 frames", -8, 0.0),
            ("25% missed", 1, 0.25),
        )
        for cond, stride, miss in conds:
            try:
                r = evaluate(cls(fps), dets, truth, fps, stride, miss)
            except ImportError as exc:
                print(f"{cls.name}: not importable ({exc})")
                break
            results.setdefault(cls.name, {})[cond] = r
            print(f"{cls.name:20s} {cond:16s} " + "  ".join(f"{k} {v}" for k, v in r.items()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"people": len(people), "frames": len(frames), "results": results}, indent=2))


if __name__ == "__main__":
    main()
