"""Shared fixtures: the real-photo folder (skipped without it) and pictures the tests make."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path | None:
    env = os.environ.get("MASKWATCH_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if (cand / "kaggle-facemask").is_dir():
            return cand
    return None


@pytest.fixture(scope="session")
def data() -> Path:
    d = data_dir()
    if d is None:
        pytest.skip("real photos not available: set MASKWATCH_DATA or provide ../shared/data")
    return d


@pytest.fixture(scope="session")
def mobile():
    from maskwatch import Detector

    return Detector("mobile")


@pytest.fixture
def blank_jpeg(tmp_path) -> Path:
    """A picture with no face in it (a smooth gradient)."""
    img = np.tile(np.linspace(40, 200, 320, dtype=np.uint8)[None, :, None], (240, 1, 3))
    p = tmp_path / "blank.jpg"
    cv2.imwrite(str(p), img)
    return p


def kaggle_val(data: Path, n: int):
    from maskwatch.evaluation.datasets import load_dataset

    return load_dataset(data / "kaggle-facemask", data / "kaggle-facemask" / "val.txt")[:n]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``maskwatch serve`` (or another ``command`` that serves) in a real process on a free loopback port."""

    def __init__(self, *args: str, command: tuple[str, ...] = ("serve",)):
        import subprocess
        import sys

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "maskwatch.cli", *command, "--port", str(self.port), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def wait(self, timeout: float = 30) -> "LiveServer":
        import json
        import time
        import urllib.request

        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: " + self.proc.stderr.read().decode(errors="replace"))
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if json.loads(r.read())["status"] == "ok":
                        return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("server did not start in time")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()


@pytest.fixture(scope="module")
def live_server():
    srv = LiveServer().wait()
    yield srv
    srv.stop()


# Chromium's flags for the browser tests and benchmarks/browser_fps.py (headless, nothing fetched)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
