"""``maskwatch watch --stride N`` on a 1080p file: frames of the video per second, and counts against
every frame (stride 1) and against the truth.

    python benchmarks/watch_stride.py [--strides 1 2 4 6 8] [--people 12] [--json benchmarks/results/watch_stride.json]

The scene (tests/watch_scene.py's faces): ``--people`` real Kaggle faces (two thirds ``mask``, a third
``no_mask``) crossing a 1920x1080 scene at walking pace (6 s from edge to edge, 25 frames/s), a new
one every 1.6 s in one of four lanes: 16 s of video. Written once as an .mp4, then watched by
``maskwatch watch FILE --stride N --json`` in a fresh process per stride (every frame of a file is
used: no frame dropped). Reported: the video's frames per second (frames / wall time, the process's
start and model load apart: the summary's own ``fps``), people and alerts counted, and their
difference from stride 1.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import watch_scene as ws  # noqa: E402
from speed import machine, report  # noqa: E402

from maskwatch import Detector  # noqa: E402
from maskwatch.evaluation.datasets import data_root  # noqa: E402

W, H, FPS = 1920, 1080, 25.0


def write_scene(path: Path, people: list[ws.Person], tail: int = 10) -> int:
    """The scene as an .mp4, frame by frame (1080p frames are not all kept in memory)."""
    n = max(p.enter + p.frames for p in people) + tail
    bg = ws.background(W, H)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), FPS, (W, H))
    for f in range(n):
        img = bg.copy()
        for p in people:
            k = f - p.enter
            if 0 <= k < p.frames:
                x = int(round((W - ws.FACE_PX) * k / (p.frames - 1)))
                x = x if p.direction > 0 else W - ws.FACE_PX - x
                img[p.lane : p.lane + ws.FACE_PX, x : x + ws.FACE_PX] = p.crop
        vw.write(img)
    vw.release()
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--strides", type=int, nargs="+", default=[1, 2, 4, 6, 8])
    ap.add_argument("--people", type=int, default=12)
    ap.add_argument("--model", default="mobile")
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    root = data_root(args.data)
    if root is None:
        raise SystemExit("real photos not found: pass --data or set MASKWATCH_DATA")
    n_no = args.people // 3
    crops = ws.face_crops(root, Detector(args.model), {"mask": args.people - n_no, "no_mask": n_no})
    people = ws.make_people(crops, frames_on=int(6 * FPS), gap=40, h=H)
    lanes = [120, 380, 640, 880]
    for i, p in enumerate(people):
        p.lane = lanes[i % len(lanes)]
    truth = {lab: sum(p.label == lab for p in people) for lab in ("mask", "no_mask")}
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "scene1080.mp4"
        frames = write_scene(video, people)
        print(f"{len(people)} people {truth}, {frames} frames of {W}x{H} at {FPS:g} frames/s")
        runs = []
        for stride in args.strides:
            cmd = [sys.executable, "-m", "maskwatch.cli", "watch", str(video), "--model", args.model]
            cmd += ["--stride", str(stride), "--json", "--no-status"]
            p = subprocess.run(cmd, capture_output=True, text=True, check=True)
            s = json.loads(p.stdout.strip().splitlines()[-1])
            runs.append(
                {k: s[k] for k in ("stride", "people", "mask", "no_mask", "alerts", "fps", "frames", "frames_detected")}
            )
            print(json.dumps(runs[-1]))
    base = runs[0]
    for r in runs:
        r["people_vs_stride_1"] = round((r["people"] - base["people"]) / max(1, base["people"]), 3)
        r["alerts_vs_stride_1"] = r["alerts"] - base["alerts"]
    out = {
        "machine": machine(),
        "video": f"{W}x{H}, {frames} frames",
        "truth": truth,
        "model": args.model,
        "runs": runs,
    }
    report(out, args.json)


if __name__ == "__main__":
    main()
