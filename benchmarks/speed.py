"""Speed of ``Detector.detect`` on a 640x480 picture, detection and classification included.

    python benchmarks/speed.py [--models mobile server] [--runs 100] [--json benchmarks/results/speed.json]

Uses a real photo from ../shared/data (or $MASKWATCH_DATA) resized to 640x480 when there is
one, so that the number of faces is realistic; a made-up picture otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
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


def test_picture() -> tuple[np.ndarray, str]:
    root = Path(os.environ.get("MASKWATCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    p = root / "kaggle-facemask" / "images" / "maksssksksss101.jpg"
    if p.is_file():
        return cv2.resize(cv2.imread(str(p)), (640, 480)), str(p.relative_to(root))
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (480, 640, 3), dtype=np.uint8), "random noise"


def report(out: dict, path: Path | None) -> None:
    """Print a benchmark's result and write it as JSON when asked."""
    print(json.dumps(out, indent=2))
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2) + "\n")


def bench(model: str, img: np.ndarray, runs: int) -> dict:
    det = Detector(model)
    for _ in range(10):
        det.detect(img)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        faces = det.detect(img)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"model": model, "median_ms": round(statistics.median(times), 2), "p90_ms": round(times[int(0.9 * len(times))], 2),
            "mean_ms": round(statistics.fmean(times), 2), "faces": len(faces), "runs": runs,
            "file_mb": round(Path(det.path).stat().st_size / 1e6, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="+", default=["mobile", "server"])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    img, src = test_picture()
    out = {"machine": machine(), "picture": f"{src} at 640x480", "results": [bench(m, img, args.runs) for m in args.models]}
    for r in out["results"]:
        print(f"{r['model']:8s} median {r['median_ms']:7.2f} ms  p90 {r['p90_ms']:7.2f} ms  ({r['faces']} faces, {r['file_mb']} MB)")
    print(out["machine"])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
