"""POSTing alerts to a URL from a background thread: bounded queue, bounded retries, never a stall.

The video loop only puts the event in a queue (dropped, and counted, if the queue is full); a thread
sends each one as JSON with a timeout and a few retries with backoff. A receiver that hangs or fails
costs the video nothing.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlparse

from ..core.errors import MaskwatchError


class Webhook:
    def __init__(self, url: str, timeout: float = 3.0, retries: int = 3, backoff: float = 0.5, max_queue: int = 256):
        if urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
            raise MaskwatchError(f"--webhook {url}: not an http:// or https:// URL")
        self.url, self.timeout, self.retries, self.backoff = url, timeout, retries, backoff
        self._q: queue.Queue[dict[str, Any] | None] = queue.Queue(max_queue)
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="maskwatch-webhook", daemon=True)
        self._thread.start()

    def __call__(self, event: dict[str, Any]) -> None:
        """Queue ``event`` for delivery (never waits)."""
        try:
            self._q.put_nowait(event)
        except queue.Full:
            self.dropped += 1

    def _post(self, body: bytes) -> None:
        req = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "maskwatch-watch"},
        )
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            resp.read(1024)

    def _run(self) -> None:
        while True:
            ev = self._q.get()
            if ev is None:
                return
            body = json.dumps(ev).encode()
            for attempt in range(self.retries + 1):
                try:
                    self._post(body)
                    self.sent += 1
                    break
                except (OSError, urllib.error.URLError, ValueError) as exc:
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    if attempt == self.retries or self._stop.wait(self.backoff * 2**attempt):
                        self.failed += 1
                        break

    def close(self, wait: float = 2.0) -> None:
        """Let queued alerts go out for up to ``wait`` seconds, then stop (what is left is counted failed)."""
        deadline = time.monotonic() + wait
        try:
            self._q.put(None, timeout=max(0.0, wait))
        except queue.Full:
            pass
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._stop.set()
        if self._thread.is_alive():
            self.failed += self._q.qsize()
