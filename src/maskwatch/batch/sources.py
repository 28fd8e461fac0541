"""Expanding what a user names (files, folders, globs, videos, streams) into work items."""

from __future__ import annotations

import errno
import glob
import os
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..core.imageio import IMAGE_SUFFIXES, MAX_PIXELS, file_problem

OPEN_TIMEOUT_S = 10.0  # a stream that cannot be opened is an error within this time, not a hang
READ_TIMEOUT_S = 5.0  # a stream that gives no frame for this long has stalled

# FFmpeg's and OpenCV's own messages ("Connection refused", "can't capture by name") would repeat each
# error in another form: ours name the source in one line. ``--verbose`` (MASKWATCH_VERBOSE=1) shows them.
VERBOSE_ENV = "MASKWATCH_VERBOSE"
if not os.environ.get(VERBOSE_ENV):  # unset, FFmpeg writes its errors to stderr itself
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})
MEDIA_SUFFIXES = IMAGE_SUFFIXES | VIDEO_SUFFIXES


def is_stream(source: str) -> bool:
    return source.isdigit() or "://" in source


def expand_sources(sources: list[str]) -> list[tuple[str, str | None]]:
    """Each named source -> (path or url, error or None). Folders are walked recursively.

    Nothing is dropped silently: a name that matches nothing comes back with an error.
    """
    out: list[tuple[str, str | None]] = []
    for src in sources:
        if is_stream(src):
            out.append((src, None))
            continue
        p = Path(src)
        if p.is_symlink() and (problem := link_problem(p)):
            out.append((src, problem))
        elif p.is_dir():
            found = _walk(p)
            if not found:
                out.append((src, "folder holds no pictures or videos"))
            out.extend(found)
        elif p.is_file():
            out.append((str(p), None))
        elif p.exists():  # a FIFO, a device, a socket: named, never opened (a read would block or never end)
            out.append((src, file_problem(p) or "not a regular file"))
        elif glob.has_magic(src):
            matched = sorted(f for f in glob.glob(os.path.expanduser(src), recursive=True) if Path(f).is_file())
            if not matched:
                out.append((src, "pattern matches no file"))
            out.extend((f, None) for f in matched)
        else:
            out.append((src, "no such file or folder"))
    return out


def link_problem(path: Path) -> str | None:
    """Why a symbolic link cannot be followed (broken, a loop), or None."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
        return f"broken symbolic link to {os.readlink(path)}"
    target = path.resolve()
    if target.is_dir() and (target == path.parent.resolve() or target in path.parent.resolve().parents):
        return "symbolic link loop (points to a folder above it)"
    return None


def _walk(folder: Path) -> list[tuple[str, str | None]]:
    """Pictures and videos under ``folder``; links that cannot be followed come back as errors, never dropped."""
    out: list[tuple[str, str | None]] = []
    for f in sorted(folder.rglob("*"), key=str):
        if f.is_symlink():
            problem = link_problem(f)
            if problem is None and f.is_dir():
                problem = "symbolic link to a folder: not followed (name that folder to include it)"
            if problem:
                out.append((str(f), problem))
                continue
        if f.suffix.lower() not in MEDIA_SUFFIXES or f.is_dir():
            continue
        problem = file_problem(f)  # a FIFO or a device named *.jpg gets an error row, never a silent skip
        out.append((str(f), problem))
    return out


MAX_BAD_READS = 30  # failed reads in a row, before the declared end, after which a video file is given up


class FileFrames:
    """A video file's frames, ``(index, picture)`` in order, read past frames that cannot be decoded;
    with ``stride`` N, every N-th frame (index 0, N, 2N...), the others grabbed but not converted.

    A read that fails before the end the file declares is a decode error, not the end: reading goes
    on (a corrupt stretch in the middle loses its frames, not the rest of the video) until
    ``MAX_BAD_READS`` reads in a row fail. ``problem`` then says what was lost (None for a clean file):
    the caller reports it, as an error row or event and an exit code, instead of a quiet early end.
    """

    def __init__(self, cap: cv2.VideoCapture, stride: int = 1):
        self.cap = cap
        self.stride = max(1, int(stride))  # every stride-th frame is decoded; the others are only grabbed
        declared = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.declared = int(declared) if declared and declared > 0 else 0
        self.read = 0
        self.lost = 0  # frames that failed to decode, with frames after them
        self.first_bad: int | None = None
        self.end = 0  # the index after the last frame read
        self.problem: str | None = None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        index = 0
        bad = 0
        while True:
            keep = index % self.stride == 0
            if keep:
                ok, img = self.cap.read()
                ok = ok and img is not None
            else:  # demuxed and decoded, not converted to BGR: a skipped frame costs less
                ok, img = self.cap.grab(), None
            if ok:
                if bad:  # frames again after a corrupt stretch
                    self.lost += bad
                    bad = 0
                self.read += 1
                if keep and img is not None:
                    yield index, img
                index += 1
                self.end = index
                continue
            if not self.declared or index >= self.declared or bad >= MAX_BAD_READS:
                break
            if self.first_bad is None:
                self.first_bad = index
            bad += 1
            index += 1
        self.problem = self._problem()

    def _problem(self) -> str | None:
        short = self.declared - self.end if self.declared else 0
        if self.lost == 0 and short <= max(1, self.declared // 50):  # counts estimated from the duration
            return None
        parts = []
        if self.lost:
            parts.append(f"{self.lost} frames could not be decoded from frame {self.first_bad} on")
        if short > max(1, self.declared // 50):
            parts.append(f"the video stops at frame {self.end} of the {self.declared} it declares")
        return "decode error: " + "; ".join(parts) + " (a corrupt or truncated file)"


def frame_size_problem(cap: cv2.VideoCapture) -> str | None:
    """Why a video's declared frame size is refused (over ``MAX_PIXELS``), or None: checked before a frame is decoded."""
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
    if w * h > MAX_PIXELS:
        return f"refused: frames of {w}x{h} are {w * h / 1e6:.3g} megapixels, over the limit of {MAX_PIXELS / 1e6:g}"
    return None


def is_video(path: str) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES or is_stream(path)


def open_capture(
    source: str | int, open_timeout: float = OPEN_TIMEOUT_S, read_timeout: float = READ_TIMEOUT_S
) -> cv2.VideoCapture:
    """An OpenCV capture for a video file, a camera index or a stream URL (with open and read timeouts:
    a stream that stalls makes ``read`` fail after ``read_timeout`` seconds)."""
    if not os.environ.get(VERBOSE_ENV):
        try:
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # our errors name the source
        except AttributeError:  # an OpenCV build without the logging module
            pass
    if isinstance(source, int) or str(source).isdigit():
        return cv2.VideoCapture(int(source))
    if is_stream(str(source)):
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(open_timeout * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(read_timeout * 1000),
        ]
        return cv2.VideoCapture(str(source), cv2.CAP_FFMPEG, params)
    return cv2.VideoCapture(str(source))
