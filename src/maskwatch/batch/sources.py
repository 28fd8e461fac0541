"""Expanding what a user names (files, folders, globs, videos, streams) into work items."""

from __future__ import annotations

import errno
import glob
import os
from pathlib import Path

import cv2

from ..core.imageio import IMAGE_SUFFIXES

OPEN_TIMEOUT_S = 10.0  # a stream that cannot be opened is an error within this time, not a hang
READ_TIMEOUT_S = 5.0  # a stream that gives no frame for this long has stalled

# FFmpeg's and OpenCV's own messages ("Connection refused", "can't capture by name") would repeat each
# error in another form: ours name the source in one line
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
        if f.is_file() and f.suffix.lower() in MEDIA_SUFFIXES:
            out.append((str(f), None))
    return out


def is_video(path: str) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES or is_stream(path)


def open_capture(
    source: str | int, open_timeout: float = OPEN_TIMEOUT_S, read_timeout: float = READ_TIMEOUT_S
) -> cv2.VideoCapture:
    """An OpenCV capture for a video file, a camera index or a stream URL (with open and read timeouts:
    a stream that stalls makes ``read`` fail after ``read_timeout`` seconds)."""
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
