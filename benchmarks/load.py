"""Bounded load test of ``/v1/detect`` on loopback: fixed request count and time limit.

    python benchmarks/load.py [--clients 8] [--requests 400] [--duration 60] [--model mobile] [--server-workers 2]
    python benchmarks/load.py --soak [--clients 32] [--duration 600] --json benchmarks/results/soak.json

``--soak``: good and hostile requests mixed (see ``SOAK_MIX``) against one server process with an API
key, each checked against the status it must get; reports throughput, p50/p95/p99, unexpected answers
and the server's memory (RSS) sampled over the run.

Starts ``maskwatch serve`` on a free 127.0.0.1 port (or uses --url, which must be a loopback
address), sends 640x480 JPEGs from --clients concurrent clients until --requests are done or
--duration seconds pass, and reports throughput, p50 / p99 latency and errors.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import zlib
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import machine, report, test_picture  # noqa: E402

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def start_server(model: str, workers: int, *extra: str) -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "maskwatch.cli",
            "serve",
            "--port",
            str(port),
            "--model",
            model,
            "--workers",
            str(workers),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).read()
            return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("server did not start")


def multipart(jpeg: bytes) -> tuple[bytes, str]:
    boundary = "maskwatchbench"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="images"; filename="frame.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + jpeg
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


KEY = "soak-key"


def soak_mix(jpeg: bytes) -> list[tuple[str, str, bytes, dict[str, str], int]]:
    """(kind, path, body, headers, the status it must get): good requests and the hostile ones of issue 33."""
    import base64

    import numpy as np

    b64 = base64.b64encode(jpeg).decode()
    small = cv2.imencode(".jpg", cv2.resize(cv2.imdecode(np.frombuffer(jpeg, np.uint8), 1), (160, 120)))[1]
    small_b64 = base64.b64encode(small.tobytes()).decode()
    hdr = b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 8000 +X 8000\n" + bytes(4096)
    png_bomb = bytearray(cv2.imencode(".png", np.zeros((64, 64), np.uint8))[1].tobytes())
    png_bomb[16:24] = (13000).to_bytes(4, "big") * 2  # the IHDR declares 13000x13000, its CRC made right
    png_bomb[29:33] = (zlib.crc32(bytes(png_bomb[12:29])) & 0xFFFFFFFF).to_bytes(4, "big")
    mp, mp_type = multipart(jpeg)
    key = {"X-API-Key": KEY}
    js = {**key, "Content-Type": "application/json"}
    ph = "/predict/pyramidbox_lite_mobile_mask"

    def up(data: bytes, name: str) -> bytes:
        return multipart(data)[0].replace(b"frame.jpg", name.encode())

    return [
        ("good: multipart photo", "/v1/detect", mp, {**key, "Content-Type": mp_type}, 200),
        ("good: PaddleHub base64", ph, json.dumps({"images": [b64]}).encode(), js, 200),
        (
            "good: PaddleHub confs_threshold 0",
            ph,
            json.dumps({"images": [small_b64], "confs_threshold": 0}).encode(),
            js,
            200,
        ),
        ("hostile: HDR bomb", "/v1/detect", up(hdr, "bomb.jpg"), {**key, "Content-Type": mp_type}, 400),
        (
            "hostile: PNG declaring 13000x13000",
            "/v1/detect",
            up(bytes(png_bomb), "bomb.png"),
            {**key, "Content-Type": mp_type},
            400,
        ),
        (
            "hostile: garbage bytes",
            "/v1/detect",
            up(bytes(range(256)) * 8, "x.jpg"),
            {**key, "Content-Type": mp_type},
            400,
        ),
        (
            "hostile: truncated JPEG",
            "/v1/detect",
            up(jpeg[: len(jpeg) // 3], "cut.jpg"),
            {**key, "Content-Type": mp_type},
            400,
        ),
        ("hostile: 5000-digit number", ph, b'{"images": [1' + b"9" * 5000 + b"]}", js, 400),
        (
            "hostile: 401-digit threshold",
            ph,
            json.dumps({"images": [small_b64], "confs_threshold": 10**400}).encode(),
            js,
            400,
        ),
        ("hostile: not JSON", ph, b"{images: ", js, 400),
        ("hostile: wrong key", "/v1/detect", mp, {"X-API-Key": "wrong", "Content-Type": mp_type}, 401),
    ]


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MB (from /proc, no extra package)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


WARMUP_MIN = 2  # minutes of load before the server's memory is compared


def rss_figures(rss: list[tuple[float, float]]) -> dict:
    """The server's memory by minute of load (the mean of its samples), the first ``WARMUP_MIN`` minutes
    left out (onnxruntime's arenas and the allocator's pools grow to the load's working set), and how
    far apart the highest and lowest minute are: "flat within" that share."""
    minutes: dict[int, list[float]] = {}
    for t, mb in rss:
        minutes.setdefault(int(t // 60), []).append(mb)
    means = {m: round(statistics.mean(v), 1) for m, v in sorted(minutes.items())}
    full = [m for m in means if m >= WARMUP_MIN and len(minutes[m]) >= 3]  # whole minutes after the warm-up
    loaded = [means[m] for m in full] or list(means.values())
    return {
        "rss_mb_by_minute": means,
        "rss_mb_min_max_after_warmup": [min(loaded), max(loaded)],
        "rss_flat_within": round(max(loaded) / min(loaded) - 1, 3),
    }


def soak(args: argparse.Namespace) -> None:
    """32 clients (``--clients``) for 10 minutes (``--duration``), good and hostile requests mixed."""
    import http.client

    proc, url = start_server(args.model, 1, "--api-key", KEY)
    host, port = urlparse(url).hostname, urlparse(url).port
    img, src = test_picture()
    jpeg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    mix = soak_mix(jpeg)
    lat: dict[str, list[float]] = {kind: [] for kind, *_ in mix}
    unexpected: list[str] = []
    busy = [0]
    lock = threading.Lock()
    stop_at = time.time() + args.duration
    rss: list[tuple[float, float]] = []

    def client(k: int) -> None:
        i = k
        conn = http.client.HTTPConnection(host, port, timeout=60)
        while time.time() < stop_at:
            kind, path, body, headers, want = mix[i % len(mix)]
            i += 1
            t = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                r = conn.getresponse()
                r.read()
                status = r.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=60)
                with lock:
                    unexpected.append(f"{kind}: {type(exc).__name__}: {exc}")
                continue
            with lock:
                if status == 503:
                    busy[0] += 1
                elif status != want:
                    unexpected.append(f"{kind}: {status}, expected {want}")
                else:
                    lat[kind].append(time.perf_counter() - t)
        conn.close()

    def sample() -> None:
        t0 = time.time()
        while time.time() < stop_at:
            rss.append((round(time.time() - t0, 1), round(rss_mb(proc.pid), 1)))
            time.sleep(10)

    rss_start = rss_mb(proc.pid)
    try:
        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
        threads.append(threading.Thread(target=sample))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        rss.append((round(wall, 1), round(rss_mb(proc.pid), 1)))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    every = sorted(x for v in lat.values() for x in v)

    def pct(q: float) -> float | None:
        return round(1000 * every[min(len(every) - 1, int(q * len(every)))], 1) if every else None

    out = {
        "machine": machine(),
        "model": args.model,
        "picture": f"{src}, JPEG q90 ({len(jpeg)} bytes)",
        "clients": args.clients,
        "seconds": round(wall, 1),
        "requests": len(every) + len(unexpected) + busy[0],
        "requests_per_s": round((len(every) + busy[0]) / wall, 1),
        "unexpected": len(unexpected),
        "unexpected_examples": sorted(set(unexpected))[:10],
        "busy_503": busy[0],
        "p50_ms": pct(0.5),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "by_kind": {
            kind: {"n": len(v), "p50_ms": round(1000 * statistics.median(v), 1) if v else None}
            for kind, v in lat.items()
        },
        "rss_mb_at_start": round(rss_start, 1),
        "rss_mb": rss,
        **rss_figures(rss),
        "warmup_minutes": WARMUP_MIN,
    }
    report(out, args.json)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--soak", action="store_true", help="good and hostile requests mixed, RSS over time")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--model", default="mobile")
    ap.add_argument("--server-workers", type=int, default=2)
    ap.add_argument("--url", help="an already running server on loopback")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.soak:
        return soak(args)
    if args.url and urlparse(args.url).hostname not in LOOPBACK:
        raise SystemExit("this load test only targets loopback addresses")
    proc = None
    url = args.url
    if not url:
        proc, url = start_server(args.model, args.server_workers)
    img, src = test_picture()
    ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    body, ctype = multipart(enc.tobytes())
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    remaining = [args.requests]
    stop_at = time.time() + args.duration

    def client():
        while time.time() < stop_at:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            req = urllib.request.Request(url + "/v1/detect", data=body, headers={"Content-Type": ctype})
            t = time.perf_counter()
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    json.loads(r.read())
                with lock:
                    lat.append(time.perf_counter() - t)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                with lock:
                    errors.append(str(exc))

    try:
        for _ in range(5):  # warm-up
            urllib.request.urlopen(
                urllib.request.Request(url + "/v1/detect", data=body, headers={"Content-Type": ctype}), timeout=30
            ).read()
        t0 = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=10)
    lat.sort()
    out = {
        "machine": machine(),
        "picture": f"{src}, JPEG q90 ({len(enc)} bytes)",
        "model": args.model,
        "clients": args.clients,
        "server_workers": args.server_workers,
        "requests": len(lat) + len(errors),
        "errors": len(errors),
        "seconds": round(wall, 2),
        "images_per_s": round(len(lat) / wall, 1) if wall else 0,
        "p50_ms": round(1000 * statistics.median(lat), 1) if lat else None,
        "p99_ms": round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 1) if lat else None,
    }
    report(out, args.json)


if __name__ == "__main__":
    main()
