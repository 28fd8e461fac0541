"""Speed of ``Detector.detect`` on a 640x480 picture, detection and classification included, and
of YuNet-n (the teacher in ../shared/teachers) at the same input sizes, in one run.

    python benchmarks/speed.py [--models mobile server] [--yunet 640 800] [--runs 100] [--json benchmarks/results/speed.json]
    python benchmarks/speed.py --crowd ...   # a crowd (130 faces) at 640x480 instead: what the crowd zoom costs
    python benchmarks/speed.py --noise --models mobile server --runs 3   # the worst case: 1920x1080 noise, threshold 0
    python benchmarks/speed.py --models mobile mobile:0   # MODEL:X runs Detector(MODEL, classifier_below=X)
    python benchmarks/speed.py --models mobile --threads 1   # one onnxruntime thread (a browser's wasm runs one)
    python benchmarks/speed.py --models mobile server --yunet 640 --frames 80 --rounds 3   # issue 32's measure

``--frames N``: N photos of the validation parts (Kaggle ``val.txt``, the MacwinWin and webmask2020
held-out parts, taken in turn) each cut to 4:3 around its centre (never stretched) and resized to
640x480, instead of the one picture; every call on every frame is timed and the median per frame is
reported. ``--rounds R`` times every system R times, each round in fresh processes, systems in turn,
and gives each round's ratio to YuNet-n (the first ``--yunet`` size) and the median of those ratios:
the machine's load moves absolute times, a round's ratio compares systems that ran seconds apart.

"classified" in each result: the faces the crop classifiers were asked about in one call.

Uses a real photo from ../shared/data (or $MASKWATCH_DATA) resized to 640x480 when there is
one, so that the number of faces is realistic; a made-up picture otherwise. The picture is decoded
before timing. Each system runs in its own process (two onnxruntime sessions in one process spin
their thread pools against each other). YuNet-n is timed as a user runs it: resize, pad, run,
decode its outputs, NMS (``--yunet N``: long side N px).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from maskwatch import Detector


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}"


# the data folder every benchmark reads: $MASKWATCH_DATA, else ../shared/data beside the repository
DATA = Path(os.environ.get("MASKWATCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
CROWD = Path("wider-face-val-part/images/0--Parade/0_Parade_marchingband_1_74.jpg")  # 130 labelled faces


def test_picture(crowd: bool = False, noise: bool = False) -> tuple[np.ndarray, str]:
    if noise:  # every anchor a candidate at threshold 0: what max_faces bounds
        return np.random.default_rng(0).integers(0, 255, (1080, 1920, 3), dtype=np.uint8), "random noise 1920x1080"
    root = DATA
    p = root / CROWD if crowd else root / "kaggle-facemask" / "images" / "maksssksksss101.jpg"
    if p.is_file():
        return cv2.resize(cv2.imread(str(p)), (640, 480)), f"{p.relative_to(root)} at 640x480"
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (480, 640, 3), dtype=np.uint8), "random noise at 640x480"


def test_frames(n: int) -> tuple[list[np.ndarray], str]:
    """``n`` validation photos at 640x480, cut to 4:3 around their centre (see the module's doc)."""
    from maskwatch.evaluation.datasets import HOLDOUT, holdout, load_dataset

    sets = []
    if (DATA / "kaggle-facemask" / "val.txt").is_file():
        sets.append(load_dataset(DATA / "kaggle-facemask", DATA / "kaggle-facemask" / "val.txt"))
    sets += [holdout(load_dataset(DATA / name), frac) for name, frac in HOLDOUT.items() if (DATA / name).is_dir()]
    paths = [s.image for group in zip(*sets) for s in group][:n]
    if not paths:
        rng = np.random.default_rng(0)
        return [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(n)], f"{n} noise frames at 640x480"
    frames = []
    for path in paths:
        img = cv2.imread(str(path))
        h, w = img.shape[:2]
        cw, ch = min(w, h * 4 // 3), min(h, w * 3 // 4)
        x, y = (w - cw) // 2, (h - ch) // 2
        frames.append(cv2.resize(img[y : y + ch, x : x + cw], (640, 480), interpolation=cv2.INTER_AREA))
    return (
        frames,
        f"{len(frames)} validation photos (Kaggle val, MacwinWin and webmask2020 held-out in turn) cut to 4:3 at 640x480",
    )


def report(out: dict, path: Path | None) -> None:
    """Print a benchmark's result and write it as JSON when asked."""
    print(json.dumps(out, indent=2))
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2) + "\n")


def detector(model: str, **options) -> Detector:
    """``MODEL`` or ``MODEL:X``, X its ``classifier_below`` ("mobile:0": Detector("mobile", classifier_below=0))."""
    name, _, below = model.partition(":")
    return Detector(name, classifier_below=float(below) if below else None, **options)


def bench(
    model: str, imgs: list[np.ndarray], runs: int, threads: int | None = None, threshold: float | None = None
) -> dict:
    det = detector(model, threads=threads)
    r = timed(lambda img: det.detect(img, threshold), imgs, runs)
    img = imgs[0]
    whole, regions = det.passes(img.shape[1], img.shape[0])
    ran: list[int] = []  # the network sizes one call runs: the first passes, then the crowd zoom's, if any
    run_views = det._run_views
    det._run_views = lambda views, size, *a, **k: ran.append(size) or run_views(views, size, *a, **k)
    crops: list[int] = []  # the faces each crop classifier labels in one call (a cascade: the unsure ones)
    det._classifiers = [lambda im, boxes, c=c: crops.append(len(boxes)) or c(im, boxes) for c in det._classifiers]
    det.detect(img, threshold)
    zoomed = ran[len(whole) + len(regions) :]  # (the first frame's)
    return {
        "model": model,
        **r,
        "input": whole[0],
        "zoom_input": zoomed[0] if zoomed else None,
        "classified": sum(crops),
        "file_mb": round(Path(det.path).stat().st_size / 1e6, 3),
    }


def bench_yunet(long_side: int, imgs: list[np.ndarray], runs: int, threads: int | None = None) -> dict:
    from maskwatch.train.teacher import YuNetTeacher, teacher_path

    yunet = YuNetTeacher(score_threshold=0.6, long_side=long_side, threads=threads or min(4, os.cpu_count() or 1))
    r = timed(yunet.detect, imgs, runs)
    return {
        "model": f"yunet-n@{long_side}",
        **r,
        "input": long_side,
        "file_mb": round(teacher_path().stat().st_size / 1e6, 3),
    }


def timed(call, imgs: list[np.ndarray], runs: int) -> dict:
    """``runs`` calls on each frame (after 10 calls of warm-up), every call timed; faces: over one pass."""
    for i in range(10):
        call(imgs[i % len(imgs)])
    times = []
    for _ in range(runs):
        for img in imgs:
            t = time.perf_counter()
            call(img)
            times.append((time.perf_counter() - t) * 1000)
    found = [call(img) for img in imgs]
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 2),
        "p90_ms": round(times[int(0.9 * len(times))], 2),
        "mean_ms": round(statistics.fmean(times), 2),
        "faces": sum(len(f) for f in found),
        "runs": runs * len(imgs),
    }


def in_own_process(
    system: str, runs: int, crowd: bool, threads: int | None = None, noise: bool = False, frames: int = 0
) -> dict:
    """One system timed in a fresh process (its own onnxruntime thread pool)."""
    cmd = [sys.executable, __file__, "--one", system, "--runs", str(runs)] + (["--crowd"] if crowd else [])
    cmd += ["--noise"] if noise else []
    cmd += ["--frames", str(frames)] if frames else []
    cmd += ["--threads", str(threads)] if threads else []
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="+", default=["mobile", "server"], help="MODEL or MODEL:X (classifier_below=X)")
    ap.add_argument("--yunet", type=int, nargs="*", default=[], help="also YuNet-n at these long sides (px)")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--crowd", action="store_true", help="time a crowd picture (WIDER FACE val) instead of one face")
    ap.add_argument("--noise", action="store_true", help="1920x1080 noise at threshold 0 instead (maskwatch models)")
    ap.add_argument("--threads", type=int, help="onnxruntime threads for every system (default: each one's own)")
    ap.add_argument("--frames", type=int, default=0, help="time N validation photos at 640x480 instead of one picture")
    ap.add_argument("--rounds", type=int, default=1, help="time every system this many times, in turn")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: time one system in this process
    args = ap.parse_args()
    if args.frames:
        imgs, src = test_frames(args.frames)
    else:
        img, src = test_picture(args.crowd, args.noise)
        imgs = [img]
    threshold = 0.0 if args.noise else None
    if args.one:
        kind, _, size = args.one.partition("@")
        r = (
            bench_yunet(int(size), imgs, args.runs, args.threads)
            if kind == "yunet-n"
            else bench(args.one, imgs, args.runs, args.threads, threshold)
        )
        print(json.dumps(r))
        return
    systems = list(args.models) + [f"yunet-n@{n}" for n in args.yunet]
    out = {
        "machine": machine(),
        "picture": src,
        "threshold": threshold if args.noise else "each system's default",
        "threads": args.threads or "each system's default",
        "runs": [],
    }
    for k in range(args.rounds):
        results = [in_own_process(s, args.runs, args.crowd, args.threads, args.noise, args.frames) for s in systems]
        base = next((r["median_ms"] for r in results if r["model"].startswith("yunet-n@")), None)
        for r in results:
            if base:
                r["vs_yunet"] = round(r["median_ms"] / base, 3)
            print(
                f"round {k + 1} {r['model']:14s} input {r.get('input')!s:5s} zoom {r.get('zoom_input')!s:5s} "
                f"median {r['median_ms']:7.2f} ms  p90 {r['p90_ms']:7.2f} ms  x{r.get('vs_yunet', '-')} YuNet-n  "
                f"({r['faces']} faces, {r.get('classified', 0)} crop-classified, {r['file_mb']} MB)",
                flush=True,
            )
        out["runs"].append({"run": k + 1, "results": results})
    if args.rounds == 1:
        out["results"] = out.pop("runs")[0]["results"]
    else:  # each system's ratio to YuNet-n, the median over the rounds
        ratios: dict[str, list[float]] = {}
        for run in out["runs"]:
            for r in run["results"]:
                if "vs_yunet" in r:
                    ratios.setdefault(r["model"], []).append(r["vs_yunet"])
        out["median_vs_yunet"] = {m: round(statistics.median(v), 3) for m, v in ratios.items()}
        for m, v in out["median_vs_yunet"].items():
            print(f"{m:14s} x{v} YuNet-n, the median over {args.rounds} rounds")
    print(out["machine"])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
