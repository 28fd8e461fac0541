"""Expanding what a user names (files, folders, globs, videos, streams) into work items."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from ..core.imageio import IMAGE_SUFFIXES

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})


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
        if p.is_dir():
            found = sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
            if not found:
                out.append((src, "folder holds no pictures or videos"))
            out.extend((f, None) for f in found)
        elif p.is_file():
            out.append((str(p), None))
        elif glob.has_magic(src):
            found = sorted(f for f in glob.glob(os.path.expanduser(src), recursive=True) if Path(f).is_file())
            if not found:
                out.append((src, "pattern matches no file"))
            out.extend((f, None) for f in found)
        else:
            out.append((src, "no such file or folder"))
    return out


def is_video(path: str) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES or is_stream(path)
