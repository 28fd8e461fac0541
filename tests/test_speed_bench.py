"""benchmarks/speed.py's frames (issue 32's measure): photos cut to 4:3, never stretched."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

# loaded from its file: benchmarks/ on sys.path would shadow the standard library's ``profile``
# (benchmarks/profile.py), which cProfile, and so torch, import
_SPEC = importlib.util.spec_from_file_location(
    "maskwatch_bench_speed", Path(__file__).resolve().parents[1] / "benchmarks" / "speed.py"
)
assert _SPEC is not None and _SPEC.loader is not None
speed = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(speed)


def test_frames_without_data_are_noise_at_640x480(monkeypatch, tmp_path):
    monkeypatch.setattr(speed, "DATA", tmp_path)
    frames, src = speed.test_frames(3)
    assert len(frames) == 3 and "noise" in src
    assert all(f.shape == (480, 640, 3) and f.dtype == np.uint8 for f in frames)


def test_frames_are_photos_cut_to_4_3_around_their_centre():
    if not (speed.DATA / "kaggle-facemask" / "val.txt").is_file():
        pytest.skip(f"no Kaggle face-mask set under {speed.DATA} (set MASKWATCH_DATA)")
    frames, src = speed.test_frames(4)
    assert len(frames) == 4 and "validation photos" in src
    assert all(f.shape == (480, 640, 3) for f in frames)
    from maskwatch.evaluation.datasets import load_dataset

    first = load_dataset(speed.DATA / "kaggle-facemask", speed.DATA / "kaggle-facemask" / "val.txt")[0]
    img = cv2.imread(str(first.image))
    h, w = img.shape[:2]
    cw, ch = min(w, h * 4 // 3), min(h, w * 3 // 4)
    x, y = (w - cw) // 2, (h - ch) // 2
    want = cv2.resize(img[y : y + ch, x : x + cw], (640, 480), interpolation=cv2.INTER_AREA)
    assert np.array_equal(frames[0], want)
    # the cut has the frame's shape, so nothing is squeezed
    assert abs(cw / ch - 4 / 3) < 0.02


def test_timed_covers_every_frame_and_counts_faces():
    calls = []
    r = speed.timed(
        lambda img: calls.append(img.shape) or [1] * int(img[0, 0, 0]),
        [np.full((2, 2, 3), k, np.uint8) for k in (1, 2)],
        3,
    )
    assert r["runs"] == 6 and r["faces"] == 3  # 1 + 2 faces over one pass of the two frames
    assert len(calls) == 10 + 6 + 2  # warm-up, timed calls, the counting pass
    assert r["median_ms"] >= 0
