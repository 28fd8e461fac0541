"""Bounded load test of ``/v1/detect`` on loopback: fixed request count and time limit.

    python benchmarks/load.py [--clients 8] [--requests 400] [--duration 60] [--model mobile] [--server-workers 2]

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
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import machine, report, test_picture  # noqa: E402

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def start_server(model: str, workers: int) -> tuple[subprocess.Popen, str]:
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--model", default="mobile")
    ap.add_argument("--server-workers", type=int, default=2)
    ap.add_argument("--url", help="an already running server on loopback")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
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
