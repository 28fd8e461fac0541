"""The command line and the Python API against careless and hostile inputs (issue 33): no lost row, no
quiet success on a corrupt video, one line per error."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hostile_inputs import corrupt_video, jpeg, truncated_video
from typer.testing import CliRunner

from maskwatch import Detector
from maskwatch.cli import app
from maskwatch.core.errors import ImageError


def _cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "maskwatch.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(text.splitlines()))


@pytest.fixture
def odd_folder(tmp_path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    (d / "ok.jpg").write_bytes(jpeg())
    os.mkfifo(d / "pipe.jpg")
    (d / "zero.jpg").symlink_to("/dev/zero")
    return d


def test_fifos_and_devices_in_a_folder_get_error_rows(odd_folder):
    r = _cli("detect", str(odd_folder), "-f", "csv", "--no-progress", timeout=60)
    rows = {Path(row["image"]).name: row for row in _rows(r.stdout)}
    assert set(rows) == {"ok.jpg", "pipe.jpg", "zero.jpg"}
    assert "FIFO" in rows["pipe.jpg"]["error"] and "character device" in rows["zero.jpg"]["error"]
    assert rows["ok.jpg"]["error"] == ""
    assert r.returncode == 1


def test_a_fifo_named_directly_is_called_a_fifo(odd_folder):
    r = _cli("detect", str(odd_folder / "pipe.jpg"), "-f", "csv", timeout=60)
    assert r.returncode == 1 and "is a FIFO (named pipe)" in r.stderr and "no such file" not in r.stderr


def test_the_python_api_never_blocks_on_a_fifo_or_reads_a_device(odd_folder):
    det = Detector("mobile")
    for name, what in (("pipe.jpg", "FIFO"), ("zero.jpg", "character device")):
        with pytest.raises(ImageError, match=what):
            det.detect(odd_folder / name)


def test_an_empty_path_is_not_called_a_folder():
    with pytest.raises(ImageError, match="empty path") as e:
        Detector("mobile").detect("")
    assert "folder" not in str(e.value)


def test_a_file_name_with_a_newline_gives_a_one_line_error(tmp_path):
    p = tmp_path / "bad\nname.jpg"
    p.write_bytes(b"not a picture")
    r = _cli("detect", str(p), "-f", "csv", timeout=60)
    errors = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 1 and len(errors) == 1 and "bad\\nname.jpg" in errors[0]


def test_detect_batch_gives_errors_in_place(tmp_path):
    det = Detector("mobile")
    good = np.full((120, 160, 3), 128, np.uint8)
    out = det.detect_batch([good, b"junk", tmp_path / "missing.jpg", jpeg()])
    assert len(out) == 4
    assert out[0] == [] and out[3] == []
    assert isinstance(out[1], ImageError) and isinstance(out[2], ImageError)
    assert "missing.jpg" in str(out[2])
    with pytest.raises(ImageError):
        det.detect_batch([good, b"junk"], errors="raise")


@pytest.mark.parametrize("make, what", [(corrupt_video, "could not be decoded"), (truncated_video, "stops at frame")])
def test_detect_reports_a_video_that_breaks_before_its_end(tmp_path, make, what):
    video = make(tmp_path)
    r = _cli("detect", str(video), "-f", "csv", "--no-progress")
    rows = _rows(r.stdout)
    assert r.returncode == 1
    assert [row for row in rows if row["error"]] and what in rows[-1]["error"]
    assert "@ 0x" not in r.stderr  # FFmpeg's own lines ("[mpeg4 @ 0x...]") stay out of the terminal
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_whole_video_is_still_a_success(tmp_path):
    truncated_video(tmp_path)
    r = _cli("detect", str(tmp_path / "whole.avi"), "-f", "csv", "--no-progress")
    assert r.returncode == 0 and not [row for row in _rows(r.stdout) if row["error"]]


def test_watch_reports_a_corrupt_video_with_an_event_and_exit_1(tmp_path):
    video = corrupt_video(tmp_path)
    events = tmp_path / "events.jsonl"
    r = _cli("watch", str(video), "--events", str(events), "--no-status")
    assert r.returncode == 1 and "decode error" in r.stderr
    import json

    ended = [e for e in map(json.loads, events.read_text().splitlines()) if e["event"] == "stream_ended"]
    assert len(ended) == 1 and "decode error" in ended[0]["detail"]
    assert "@ 0x" not in r.stderr


def test_twenty_one_broken_inputs_each_get_a_row(tmp_path):
    d = tmp_path / "broken"
    d.mkdir()
    enc = jpeg()
    cases = {
        "empty.jpg": b"",
        "text.jpg": b"hello",
        "half.jpg": enc[: len(enc) // 2],
        "header.jpg": enc[:20],
        "png-sig.png": b"\x89PNG\r\n\x1a\n",
        "bmp-sig.bmp": b"BM" + bytes(10),
        "gif-sig.jpg": b"GIF89a",
        "tiff-sig.tif": b"II*\x00" + bytes(4),
        "webp-sig.webp": b"RIFF\x00\x00\x00\x00WEBP",
        "zeros.jpg": bytes(1000),
        "ones.png": b"\xff" * 1000,
        "hdr.jpg": b"#?RADIANCE\n-Y 9000 +X 9000\n",
        "pfm.png": b"PF\n9000 9000\n-1\n",
        "html.jpg": b"<html></html>",
        "json.png": b"{}",
        "pdf.jpg": b"%PDF-1.4",
        "zip.jpg": b"PK\x03\x04" + bytes(30),
        "exr.png": b"v/1\x01" + bytes(20),
        "pam.jpg": b"P7\nWIDTH 9000\n",
        "ras.bmp": b"\x59\xa6\x6a\x95" + bytes(28),
        "avif.jpg": b"\x00\x00\x00\x20ftypavif" + bytes(20),
    }
    for name, data in cases.items():
        (d / name).write_bytes(data)
    r = CliRunner().invoke(app, ["detect", str(d), "-f", "csv", "--no-progress"])
    rows = [row for row in _rows(r.stdout) if row.get("image")]
    assert sorted(Path(row["image"]).name for row in rows) == sorted(cases)
    assert all(row["error"] for row in rows) and r.exit_code == 1


def test_verbose_shows_ffmpegs_own_lines(tmp_path):
    video = corrupt_video(tmp_path)
    r = _cli("detect", str(video), "-f", "csv", "--no-progress", "--verbose")
    assert r.returncode == 1 and "@ 0x" in r.stderr and "decode error" in r.stderr
    assert "@ 0x" not in r.stdout  # the rows stay clean
