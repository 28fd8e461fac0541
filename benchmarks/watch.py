"""``maskwatch watch`` end to end: frames per second, frame-to-event latency, memory over a long stream.

    python benchmarks/watch.py [--model mobile] [--minutes 10] [--json benchmarks/results/watch.json]

1. fps: a 640x480 video file (real Kaggle faces crossing a scene, tests/watch_scene.py), every frame
   processed: decode, detect, track, events written to a JSON-lines file. Frames / wall time, and the
   process's CPU time per frame (all threads): cores / that is the rate the machine's cores would give
   when nothing else runs on them (the machines here are shared).
2. latency: the same scene as a live MJPEG stream on 127.0.0.1 at 25 frames/s (newest frame kept):
   time from a frame's arrival (the reader got it) to the end of its processing, its events written.
3. memory: that stream looped for ``--minutes`` (10 for the target; shorter for a quick run), the
   process's resident memory sampled every 10 s after a 30 s warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import watch_scene as ws  # noqa: E402

from maskwatch import Detector, Watcher  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds() -> float:
    """CPU time of this process, all threads (user + system)."""
    t = os.times()
    return t.user + t.system


def pct(v: list[float], q: float) -> float:
    return round(1000 * float(np.percentile(v, q)), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="mobile")
    ap.add_argument("--input-size", type=int, default=None)
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the memory run (stream looped; 0: skip it)")
    ap.add_argument("--data", type=Path, default=None, help="data folder (default: $MASKWATCH_DATA, ../shared/data)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    det = Detector(args.model, input_size=args.input_size)
    people, frames = ws.scene(args.data, det, 5, 3)
    out: dict = {
        "model": args.model,
        "input_size": det.input_size,
        "frame": "640x480",
        "people": len(people),
        "machine": f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}",
        "load_average_at_start": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory() as tmp:
        video = ws.write_video(frames * 3, Path(tmp) / "scene.mp4")
        # 1. fps on a file, every frame
        w = Watcher(str(video), detector=det, events=Path(tmp) / "ev.jsonl")
        t, cpu = time.perf_counter(), cpu_seconds()
        s = w.run()
        el, cpu = time.perf_counter() - t, cpu_seconds() - cpu
        cores = len(os.sched_getaffinity(0))
        out["file"] = {
            "frames": s["frames"],
            "seconds": round(el, 2),
            "fps": round(s["frames"] / el, 1),
            "cpu_ms_per_frame": round(1000 * cpu / s["frames"], 1),
            "fps_if_cores_free": round(cores * s["frames"] / cpu, 1),
            "people": s["people"],
            "people_put_in": 3 * len(people),
            "alerts": s["alerts"],
        }
        f = out["file"]
        print(
            f"file: {s['frames']} frames of 640x480 in {el:.1f} s = {f['fps']} frames/s end to end; "
            f"people {s['people']} (put in {3 * len(people)}), alerts {s['alerts']}; CPU time "
            f"{f['cpu_ms_per_frame']} ms per frame, so at most {f['fps_if_cores_free']} frames/s on {cores} free cores"
        )
        if args.minutes <= 0:
            args.json and args.json.write_text(json.dumps(out, indent=2))
            return
        # 2 and 3. a live stream at 25 fps, looped
        lat: list[float] = []
        mem: list[tuple[float, float]] = []
        with ws.MjpegServer(frames, fps=25, loop=True) as srv:
            w = Watcher(srv.url, detector=det, events=Path(tmp) / "ev2.jsonl")
            start = time.monotonic()
            stop_at = start + 60 * args.minutes

            def sample():
                while not w.stopped:
                    el = time.monotonic() - start
                    if el >= 30:
                        mem.append((round(el), round(rss_mb(), 1)))
                    if time.monotonic() >= stop_at:
                        w.stop()
                        return
                    time.sleep(10 if el >= 30 else 30 - el)

            threading.Thread(target=sample, daemon=True).start()
            for r in w:
                lat.append(r.latency)
            s = w.summary()
        out["stream"] = {
            "minutes": args.minutes,
            "frames": s["frames"],
            "dropped": s["frames_dropped"],
            "fps": s["fps"],
            "people": s["people"],
            "latency_ms_p50": pct(lat, 50),
            "latency_ms_p95": pct(lat, 95),
            "latency_ms_max": round(1000 * max(lat), 1),
            "rss_mb_first": mem[0][1] if mem else None,
            "rss_mb_last": mem[-1][1] if mem else None,
            "rss_mb_max": max(m for _, m in mem) if mem else None,
            "rss_samples": mem,
        }
        st = out["stream"]
        print(
            f"stream: {args.minutes} min at 25 fps: {s['frames']} frames processed, {s['frames_dropped']} dropped; "
            f"latency p50 {st['latency_ms_p50']} ms, p95 {st['latency_ms_p95']} ms, max {st['latency_ms_max']} ms; "
            f"memory {st['rss_mb_first']} MB after 30 s, {st['rss_mb_last']} MB at the end (max {st['rss_mb_max']})"
        )
    out["load_average_at_end"] = os.getloadavg()[0]
    print(
        f"machine: {out['machine']}; load average {out['load_average_at_start']:.1f} -> {out['load_average_at_end']:.1f}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
