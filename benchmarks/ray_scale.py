"""``maskwatch detect --ray`` against the plain command: throughput, driver memory, same rows.

    python benchmarks/ray_scale.py [--data ../shared/data] [--workers 2] [--json benchmarks/results/ray_scale.json]

1. Throughput over the 853 Kaggle pictures: the plain ``maskwatch detect FOLDER -o plain.csv`` (one
   process, its default settings) against a local Ray with ``--workers`` actors (Ray's start-up, ``ray.init``,
   reported apart; the actors' start and model loading count in the Ray time). Target: Ray at least 80 %
   of the plain throughput. Also the CPU time each spent (plain: the process; Ray: the driver and every
   process of its Ray, start-up excepted), which other work on the machine does not change as it changes
   wall time: the overhead of Ray itself.
2. Driver memory (peak resident set of the process that runs ``maskwatch.ray.run``) for 1,000 and
   20,000 pictures (the Kaggle list repeated). The model runs at ``--memory-input-size`` px there so that
   20,000 pictures take minutes: the driver never runs the model, so its memory does not depend on it.
   Target: flat within 100 MB.
3. Same rows: every row of the Ray run equals the plain run's (labels exact, boxes to 1e-3 px).

Each run is a fresh process (``--child`` runs one).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker_rss_mb() -> list[float]:
    """Resident memory of each detection actor running on this machine now."""
    out = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and b"_DetectActor" in (d / "cmdline").read_bytes():
                rss = next(ln for ln in (d / "status").read_text().splitlines() if ln.startswith("VmRSS:"))
                out.append(int(rss.split()[1]) / 1024)
        except (OSError, StopIteration):
            continue
    return out


def descendants_cpu_s(root: int) -> dict[int, float]:
    """CPU seconds (user + system) of every process under ``root`` (its Ray: GCS, raylet, actors), by pid."""
    tick = os.sysconf("SC_CLK_TCK")
    parent, cpu = {}, {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            f = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(d.name)] = int(f[1])
        cpu[int(d.name)] = (int(f[11]) + int(f[12])) / tick
    out = {}
    for pid in cpu:
        p = parent.get(pid)
        while p and p != root:
            p = parent.get(p)
        if p == root:
            out[pid] = cpu[pid]
    return out


def own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def child(args: argparse.Namespace) -> None:
    """One Ray run in this process; prints its figures as JSON."""
    import threading

    from maskwatch import Detector
    from maskwatch.ray import connect, run

    paths = Path(args.list).read_text().split()
    startup = connect(None)
    det = Detector("mobile", input_size=args.input_size) if args.input_size else "mobile"
    worker_peak = [0.0]
    done = threading.Event()
    me = os.getpid()
    cpu_before, own_before = descendants_cpu_s(me), own_cpu_s()  # Ray started: its start-up CPU is not counted
    cpu_last = dict(cpu_before)

    def sample() -> None:
        while not done.wait(0.5):
            worker_peak[0] = max([worker_peak[0], *worker_rss_mb()])
            cpu_last.update(descendants_cpu_s(me))

    threading.Thread(target=sample, daemon=True).start()
    res = run(paths, args.out, model=det, workers=args.workers, batch_size=args.batch_size)
    done.set()
    cpu_last.update(descendants_cpu_s(me))
    run_cpu = sum(cpu_last.values()) - sum(cpu_before.values()) + own_cpu_s() - own_before
    print(
        json.dumps(
            {
                "pictures": res.summary["images"],  # pictures done (the list may name a folder)
                "startup_s": startup,
                "run_s": res.run_s,
                "peak_rss_mb": peak_rss_mb(),
                "worker_peak_rss_mb": worker_peak[0],
                "cpu_s": run_cpu,
                "summary": res.summary,
            }
        )
    )


def ray_run(paths: list[str], out: Path, workers: int, batch_size: int, input_size: int | None = None) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(paths))
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--list",
        f.name,
        "--out",
        str(out),
        "--workers",
        str(workers),
        "--batch-size",
        str(batch_size),
    ] + (["--input-size", str(input_size)] if input_size else [])
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    os.unlink(f.name)
    if r.returncode != 0:
        raise SystemExit(f"Ray run failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def same_rows(a: list[dict], b: list[dict]) -> tuple[bool, int]:
    """Whether every row agrees (labels, images, errors exact; boxes to 1e-3 px), and how many differ."""
    bad = abs(len(a) - len(b))
    for x, y in zip(a, b):
        if (x["image"], x["label"], x["error"]) != (y["image"], y["label"], y["error"]) or any(
            x[k] != y[k] and abs(float(x[k] or 0) - float(y[k] or 0)) > 1e-3 for k in ("x1", "y1", "x2", "y2")
        ):
            bad += 1
    return bad == 0, bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data", type=Path, default=Path(os.environ.get("MASKWATCH_DATA", REPO.parent / "shared" / "data"))
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--memory-sizes", type=int, nargs="+", default=[1000, 20000])
    ap.add_argument("--memory-input-size", type=int, default=160)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--list", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--input-size", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)

    folder = args.data / "kaggle-facemask" / "images"
    pictures = sorted(str(p) for p in folder.iterdir())
    tmp = Path(tempfile.mkdtemp(prefix="ray_scale_"))
    out: dict = {
        "machine": f"{os.cpu_count()} CPUs",
        "pictures": len(pictures),
        "workers": args.workers,
        "batch_size": args.batch_size,
    }

    # 1. throughput: the plain command, then Ray
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "maskwatch.cli", "detect", str(folder), "-o", str(tmp / "plain.csv"), "--no-progress"],
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, _, usage = os.wait4(proc.pid, 0)
    plain_s = time.perf_counter() - t0
    plain_cpu = usage.ru_utime + usage.ru_stime
    plain_ps = len(pictures) / plain_s
    print(
        f"plain maskwatch detect: {len(pictures)} pictures in {plain_s:.1f} s = {plain_ps:.1f} pictures/s "
        f"(process start and model load included); {plain_cpu:.1f} CPU s = {1000 * plain_cpu / len(pictures):.0f} "
        f"CPU ms per picture"
    )
    r = ray_run([str(folder)], tmp / "ray.csv", args.workers, args.batch_size)
    ray_ps = len(pictures) / r["run_s"]
    print(
        f"ray, {args.workers} workers: Ray start-up {r['startup_s']:.1f} s, then {len(pictures)} pictures in "
        f"{r['run_s']:.1f} s = {ray_ps:.1f} pictures/s ({ray_ps / args.workers:.1f} per worker), "
        f"{100 * ray_ps / plain_ps:.0f} % of plain (target >= 80 %); driver peak {r['peak_rss_mb']:.0f} MB, "
        f"each worker peak {r['worker_peak_rss_mb']:.0f} MB"
    )
    print(
        f"ray CPU: {r['cpu_s']:.1f} CPU s (actors, Ray's processes and the driver) = "
        f"{1000 * r['cpu_s'] / len(pictures):.0f} CPU ms per picture, {100 * (r['cpu_s'] / plain_cpu - 1):+.0f} % "
        f"against plain (the cost of Ray itself, whatever else the machine runs)"
    )
    ok, bad = same_rows(rows(tmp / "ray.csv"), rows(tmp / "plain.csv"))
    print(f"same rows: {'yes' if ok else 'NO'} ({len(rows(tmp / 'plain.csv'))} rows, {bad} differ)")
    out.update(
        plain_cpu_s=plain_cpu,
        plain_s=plain_s,
        plain_pictures_per_s=plain_ps,
        ray=r,
        ray_pictures_per_s=ray_ps,
        ray_vs_plain=ray_ps / plain_ps,
        same_rows=ok,
        rows_differing=bad,
    )

    # 2. driver memory, the Kaggle list repeated
    mem = {}
    for n in args.memory_sizes:
        paths = (pictures * (n // len(pictures) + 1))[:n]
        m = ray_run(paths, tmp / f"mem{n}.csv", args.workers, args.batch_size, args.memory_input_size)
        mem[n] = m
        print(
            f"driver memory, {n} pictures (input {args.memory_input_size} px): peak {m['peak_rss_mb']:.0f} MB, "
            f"{n / m['run_s']:.1f} pictures/s, {len(rows(tmp / f'mem{n}.csv'))} rows"
        )
    if len(mem) > 1:
        sizes = sorted(mem)
        growth = mem[sizes[-1]]["peak_rss_mb"] - mem[sizes[0]]["peak_rss_mb"]
        print(f"driver memory growth {sizes[0]} -> {sizes[-1]} pictures: {growth:+.0f} MB (target within 100 MB)")
        out["driver_growth_mb"] = growth
    out["memory"] = mem
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
