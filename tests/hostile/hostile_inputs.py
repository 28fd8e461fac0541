"""Hostile inputs the tests make: decompression bombs, pictures in refused formats, corrupt videos."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np


def png_declaring(width: int, height: int) -> bytes:
    """A small, valid PNG whose header declares ``width`` x ``height`` (a bomb: the pixels are never there)."""
    raw = bytearray(cv2.imencode(".png", np.zeros((8, 8), np.uint8))[1].tobytes())
    ihdr = raw[12:29]  # b"IHDR" + 13 bytes of data
    ihdr[4:12] = struct.pack(">II", width, height)
    raw[12:29] = ihdr
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)) & 0xFFFFFFFF)
    return bytes(raw)


def hdr_bomb(width: int = 8000, height: int = 8000) -> bytes:
    """A Radiance HDR header declaring a huge picture, with a few KB of run-length data."""
    return f"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y {height} +X {width}\n".encode() + bytes(4096)


REFUSED_FORMATS = {
    "Radiance HDR": hdr_bomb(),
    "PFM": b"PF\n8000 8000\n-1\n" + bytes(4096),
    "PAM": b"P7\nWIDTH 8000\nHEIGHT 8000\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n" + bytes(4096),
    "Sun raster": b"\x59\xa6\x6a\x95" + struct.pack(">7I", 8000, 8000, 24, 0, 1, 0, 0) + bytes(4096),
    "OpenEXR": b"v/1\x01\x02\x00\x00\x00" + bytes(4096),
}


def jpeg(width: int = 160, height: int = 120) -> bytes:
    img = np.tile(np.linspace(30, 220, width, dtype=np.uint8)[None, :, None], (height, 1, 3))
    return cv2.imencode(".jpg", img)[1].tobytes()


def _video(path: Path, fourcc: str, frames: int) -> Path:
    rng = np.random.default_rng(0)
    base = np.tile(np.linspace(30, 220, 320, dtype=np.uint8)[None, :, None], (240, 1, 3))
    w = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), 25, (320, 240))
    for _ in range(frames):  # rows of noise: large frames, so that a quarter of the file lies inside them
        f = base.copy()
        f[::9] = rng.integers(0, 255, (27, 320, 3), dtype=np.uint8)
        w.write(f)
    w.release()
    return path


def corrupt_video(folder: Path, frames: int = 75) -> Path:
    """An MPEG-4 file of ``frames`` frames with 20 KB of garbage written over it a quarter in: its
    container still declares every frame; one cannot be decoded."""
    data = bytearray(_video(folder / "clean.mp4", "mp4v", frames).read_bytes())
    q = len(data) // 4
    data[q : q + 20_000] = np.random.default_rng(1).integers(0, 255, 20_000, dtype=np.uint8).tobytes()
    bad = folder / "corrupt.mp4"
    bad.write_bytes(bytes(data))
    return bad


def truncated_video(folder: Path, frames: int = 75) -> Path:
    """A Motion-JPEG AVI cut at half its length: its header still declares ``frames`` frames."""
    data = _video(folder / "whole.avi", "MJPG", frames).read_bytes()
    cut = folder / "truncated.avi"
    cut.write_bytes(data[: len(data) // 2])
    return cut


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0
