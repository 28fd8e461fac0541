"""ByteTrack (watch/tracking.py): one id per face across frames, through dropped frames and weak
detections; new faces wait a frame for their id; lost faces end; no tracker library needed."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from maskwatch.core.detections import Detections
from maskwatch.watch.tracking import ByteTrack, FaceTracker, diou, match


def _box(x: float, y: float = 100.0, s: float = 60.0) -> list[float]:
    return [x, y, x + s, y + s]


def test_diou_is_iou_less_the_centre_distance_term():
    a = np.array([_box(0)])
    assert diou(a, a)[0, 0] == 1.0
    apart = diou(a, np.array([_box(120)]))[0, 0]  # no overlap: negative, by how far apart
    assert -1.0 < apart < 0.0
    assert diou(a, np.array([_box(70)]))[0, 0] > apart


def test_match_pairs_the_most_similar_once_each():
    sim = np.array([[0.9, 0.8], [0.85, 0.1]])
    assert sorted(match(sim, 0.0)) == [(0, 0), (1, 1)]  # greedy: 0.9 first, then the rest
    assert match(sim, 0.95) == []
    assert match(np.zeros((0, 3)), 0.0) == []


def test_a_moving_face_keeps_one_id_and_waits_a_frame_for_it():
    bt = ByteTrack(fps=25, lost_after=1.0, high=0.5, activation=0.5)
    ids = [bt.update(np.array([_box(10 + 8 * f)]), np.array([0.9]), f / 25)[0] for f in range(30)]
    assert ids[0] == -1  # confirmed on its second frame in a row
    assert set(ids[1:]) == {0}


def test_two_faces_crossing_paths_keep_their_ids():
    bt = ByteTrack(fps=25, lost_after=1.0, high=0.5, activation=0.5)
    seen: dict[int, set[int]] = {0: set(), 1: set()}
    for f in range(40):  # one moves right in the top lane, one left in a lane below
        boxes = np.array([_box(10 + 12 * f, 50), _box(490 - 12 * f, 130)])
        ids = bt.update(boxes, np.array([0.9, 0.8]), f / 25)
        for person, tid in enumerate(ids.tolist()):
            if tid >= 0:
                seen[person].add(tid)
    assert seen[0] and seen[1] and len(seen[0]) == len(seen[1]) == 1 and seen[0] != seen[1]


def test_dropped_frames_and_weak_detections_keep_the_id():
    bt = ByteTrack(fps=25, lost_after=1.0, high=0.5, activation=0.5)
    ids = []
    for f in list(range(0, 10)) + list(range(16, 30, 3)):  # a gap of 6 frames, then every 3rd frame
        score = 0.3 if f in (20, 25) else 0.9  # below `high`: only the second association takes them
        got = bt.update(np.array([_box(10 + 6 * f)]), np.array([score]), f / 25)
        ids.append(int(got[0]))
    assert set(ids[1:]) == {0}, ids


def test_a_weak_face_starts_no_track_and_a_lost_face_ends():
    bt = ByteTrack(fps=25, lost_after=0.5, high=0.5, activation=0.5)
    for f in range(5):
        assert bt.update(np.array([_box(10)]), np.array([0.3]), f / 25).tolist() == [-1]
    assert not bt.tracks
    for f in range(5, 10):
        bt.update(np.array([_box(10)]), np.array([0.9]), f / 25)
    assert [tr.id for tr in bt.tracks] == [0]
    bt.update(np.zeros((0, 4)), np.zeros(0), 10 / 25)
    assert bt.tracks  # missed one frame: kept
    bt.update(np.zeros((0, 4)), np.zeros(0), 30 / 25)
    assert not bt.tracks  # unseen for longer than lost_after: ended
    assert bt.update(np.array([_box(10)]), np.array([0.9]), 31 / 25).tolist() == [-1]  # a new face, a new track


def test_face_tracker_needs_no_tracker_library(monkeypatch):
    for name in ("trackers", "supervision", "scipy"):
        monkeypatch.setitem(sys.modules, name, None)
    ft = FaceTracker(threshold=0.5, fps=25, min_hits=3)
    probs = np.array([[0.9, 0.05, 0.05]], np.float32)
    for f in range(6):
        tracked, up = ft.update(
            Detections(np.array([_box(10 + 5 * f)], np.float32), np.array([0.9], np.float32), probs), f, f / 25
        )
    assert tracked.tracker_id.tolist() == [0]
    assert ft.tracks[0].label == "mask"


def test_faces_that_move_beyond_their_width_between_detections_keep_their_ids():
    """watch --stride: a new track has no speed yet, so its gate widens with the frames skipped; two
    faces in lanes 1.7 widths apart, each moving 1.5-2 widths between detections, are not swapped."""
    for step in (6, 8, 10):
        bt = ByteTrack(fps=25, lost_after=1.5, high=0.5, activation=0.5)
        got = []
        for k in range(12):
            x = 10 + 12.3 * step * k
            boxes = np.array([[x, 100, x + 60, 160], [x, 202, x + 60, 262]], float)
            got.append(bt.update(boxes, np.array([0.9, 0.8]), k * step / 25).tolist())
        assert got[0] == [-1, -1] and all(ids == [0, 1] for ids in got[1:]), (step, got)


def test_one_opencv_is_installed_and_no_extra_brings_another():
    """Every extra depends on opencv-python-headless alone: opencv-python beside it would provide a
    second cv2, the one installed last winning (the tracker library used to bring it)."""
    from importlib import metadata

    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + [d for deps in project["optional-dependencies"].values() for d in deps]
    assert not any(d.split(">")[0].split("=")[0].strip() in ("opencv-python", "trackers") for d in wanted)
    installed = {d.metadata["Name"].lower() for d in metadata.distributions()}
    assert "opencv-python-headless" in installed and "opencv-python" not in installed
