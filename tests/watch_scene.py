"""A test video made of real faces: Kaggle face crops moving across a plain scene, labels known.

Used by tests/test_watch.py and benchmarks/watch.py. Faces are chosen among the largest labelled
``mask`` / ``no_mask`` faces of the Kaggle set whose label the detector gives on the still picture (the
video tests tracking and counting, not the classifier).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

FACE_PX = 84  # side of a pasted face crop


@dataclass
class Person:
    label: str
    crop: np.ndarray  # FACE_PX x FACE_PX BGR
    enter: int  # first frame
    frames: int  # frames on screen
    lane: int  # y of the crop's top
    direction: int  # +1 left to right, -1 right to left


def background(w: int, h: int) -> np.ndarray:
    """A street-like plain scene: a vertical gradient and a few soft stripes (no face in it)."""
    y = np.linspace(150, 90, h, dtype=np.float32)[:, None]
    x = 12 * np.sin(np.linspace(0, 6 * np.pi, w, dtype=np.float32))[None, :]
    g = np.clip(y + x, 0, 255).astype(np.uint8)
    return cv2.merge([g, (g * 0.95).astype(np.uint8), (g * 0.9).astype(np.uint8)])


def face_crops(data: Path, detector, want: dict[str, int], min_side: int = 50) -> dict[str, list[np.ndarray]]:
    """``want[label]`` square crops (face and some margin) of Kaggle faces the detector labels right."""
    from maskwatch.evaluation.datasets import load_dataset

    names = {0: "mask", 1: "no_mask"}
    samples = load_dataset(data / "kaggle-facemask")
    cands = []
    for s in samples:
        for box, lab in zip(s.boxes, s.labels):
            side = min(box[2] - box[0], box[3] - box[1])
            if int(lab) in names and side >= min_side:
                cands.append((-side, str(s.image), box, names[int(lab)]))
    cands.sort(key=lambda c: c[0])
    bg = background(3 * FACE_PX, 3 * FACE_PX)
    out: dict[str, list[np.ndarray]] = {k: [] for k in want}
    for _, path, box, label in cands:
        if label not in out or len(out[label]) >= want[label]:
            continue
        img = cv2.imread(path)
        x1, y1, x2, y2 = box
        cx, cy, half = (x1 + x2) / 2, (y1 + y2) / 2, 0.75 * max(x2 - x1, y2 - y1)
        a, b = int(max(0, cx - half)), int(max(0, cy - half))
        c, d = int(min(img.shape[1], cx + half)), int(min(img.shape[0], cy + half))
        if c - a < 0.8 * 2 * half or d - b < 0.8 * 2 * half:
            continue  # face at the picture's edge: the crop would not be square enough
        crop = cv2.resize(img[b:d, a:c], (FACE_PX, FACE_PX), interpolation=cv2.INTER_AREA)
        still = bg.copy()
        still[FACE_PX : 2 * FACE_PX, FACE_PX : 2 * FACE_PX] = crop
        found = detector.detections(still)
        if len(found) == 1 and found.label_names[0] == label and float(found.confidence[0]) >= 0.8:
            out[label].append(crop)
        if all(len(out[k]) >= n for k, n in want.items()):
            break
    return out


def make_people(crops: dict[str, list[np.ndarray]], frames_on: int = 40, gap: int = 18, h: int = 240) -> list[Person]:
    """People entering one after the other (two on screen at times, in different lanes)."""
    people = []
    order = [(lab, c) for lab in crops for c in crops[lab]]
    rng = np.random.default_rng(7)
    rng.shuffle(order)  # type: ignore[arg-type]
    lanes = (12, h - FACE_PX - 12)
    for i, (lab, crop) in enumerate(order):
        people.append(
            Person(lab, crop, enter=8 + i * gap, frames=frames_on, lane=lanes[i % 2], direction=1 if i % 2 == 0 else -1)
        )
    return people


def render(people: list[Person], w: int = 320, h: int = 240, tail: int = 10) -> list[np.ndarray]:
    """Frames of the scene: each person slides across the width while on screen."""
    n = max(p.enter + p.frames for p in people) + tail
    bg = background(w, h)
    frames = []
    for f in range(n):
        img = bg.copy()
        for p in people:
            k = f - p.enter
            if not 0 <= k < p.frames:
                continue
            span = w - FACE_PX
            x = int(round(span * k / (p.frames - 1)))
            x = x if p.direction > 0 else span - x
            img[p.lane : p.lane + FACE_PX, x : x + FACE_PX] = p.crop
        frames.append(img)
    return frames


def write_video(frames: list[np.ndarray], path: Path, fps: float = 25.0) -> Path:
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        vw.write(f)
    vw.release()
    return path


def scene(data: Path | None, detector, n_mask: int, n_no_mask: int, w: int = 640, h: int = 480):
    """(people, frames): ``n_mask`` + ``n_no_mask`` people crossing a ``w`` x ``h`` scene, 60 frames each,
    a new one every 25 frames (the benchmarks' scene). ``data``: the data folder (default: data_root())."""
    from maskwatch.evaluation.datasets import data_root

    root = data_root(data)
    if root is None:
        raise SystemExit("real photos not found: pass --data or set MASKWATCH_DATA")
    crops = face_crops(root, detector, {"mask": n_mask, "no_mask": n_no_mask})
    people = make_people(crops, frames_on=60, gap=25, h=h)
    return people, render(people, w, h)


class MjpegServer:
    """An MJPEG camera over HTTP on 127.0.0.1 (multipart/x-mixed-replace), serving ``frames`` at ``fps``.

    ``cut_at``: the first connection is closed after that frame (a stream cut in the middle); the next
    connection goes on from there. ``stall_at``: the first connection stays open but sends nothing more
    after that frame (a stalled camera). ``loop``: start again at the end (a camera that never ends);
    otherwise the connection closes after the last frame.
    """

    def __init__(
        self,
        frames: list[np.ndarray],
        fps: float = 25.0,
        cut_at: int | None = None,
        loop: bool = False,
        stall_at: int | None = None,
    ):
        import http.server
        import threading

        self.jpegs = [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes() for f in frames]
        self.fps, self.cut_at, self.loop, self.stall_at = fps, cut_at, loop, stall_at
        self.position = 0
        self.connections = 0
        self.sent = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                owner.connections += 1
                first = owner.connections == 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while owner.position < len(owner.jpegs) and not owner.closed:
                        jpg = owner.jpegs[owner.position]
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                            + str(len(jpg)).encode()
                            + b"\r\n\r\n"
                            + jpg
                            + b"\r\n"
                        )
                        self.wfile.flush()
                        owner.sent += 1
                        owner.position += 1
                        if owner.loop and owner.position == len(owner.jpegs):
                            owner.position = 0
                        if first and owner.cut_at is not None and owner.position == owner.cut_at:
                            return  # the cut: the connection closes mid-stream
                        if first and owner.stall_at is not None and owner.position == owner.stall_at:
                            while not owner.closed:  # the stall: the connection stays open, no frame comes
                                time.sleep(0.1)
                            return
                        time.sleep(1 / owner.fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.closed = False
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream.mjpg"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> MjpegServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.closed = True
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def finished(self) -> bool:
        return self.position >= len(self.jpegs)
