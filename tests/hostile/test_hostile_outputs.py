"""Output files survive the disk (issue 33): a full disk says one line, exits 1, and leaves a valid file."""

from __future__ import annotations

import csv
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import maskwatch.batch.output as output
from maskwatch.batch.output import OutputError, OutputFile, ReportWriter
from maskwatch.batch.runner import Report
from maskwatch.cli import app
from maskwatch.core.face import Face
from maskwatch.samples import paths as sample_paths

SAMPLES = str(Path(sample_paths()[0]).parent)


def _report(i: int) -> Report:
    faces = [Face((10.0 + i, 20.0, 50.0, 70.0), "mask", 0.91, 0.88, (0.91, 0.05, 0.04)) for _ in range(3)]
    return Report(f"pictures/p{i:03d}.jpg", faces, width=640, height=480)


@pytest.fixture
def disk_of(monkeypatch):
    """A disk that takes ``n`` more bytes, then refuses with ENOSPC (after writing part of the piece that overflows)."""

    def make(n: int) -> None:
        left = [n]
        real = os.pwrite

        def pwrite(fd, data, offset):
            if offset + len(data) <= os.fstat(fd).st_size:  # rewriting bytes already on disk takes no space
                return real(fd, data, offset)
            if left[0] <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            part = bytes(data[: left[0]])
            left[0] -= len(part)
            return real(fd, part, offset)

        monkeypatch.setattr(output.os, "pwrite", pwrite)

    return make


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
@pytest.mark.parametrize("budget", [700, 1500, 4000])
def test_a_full_disk_keeps_a_valid_file_of_whole_rows(tmp_path, disk_of, fmt, budget):
    path = tmp_path / f"out.{fmt}"
    disk_of(budget)
    out = OutputFile(path)
    writer = ReportWriter(out, fmt, summary=True)
    with pytest.raises(OutputError, match=f"cannot write {path}: No space left on device"):
        for i in range(100):
            writer.write(_report(i))
    writer.close()  # the end is tried once more, and not raised again
    out.close()
    text = path.read_text()
    if fmt == "csv":
        rows = list(csv.DictReader(text.splitlines()))
        assert rows and all(r["x1"] and r["confidence"] and r["score"] for r in rows)
        assert len(rows) == 3 * len({r["image"] for r in rows})  # every picture whole
    elif fmt == "jsonl":
        docs = [json.loads(line) for line in text.splitlines()]
        assert docs and all(len(d["faces"]) == 3 for d in docs)
    else:
        doc = json.loads(text)
        assert all(len(d["faces"]) == 3 for d in doc["images"])


def test_a_file_with_room_is_unchanged_by_the_whole_piece_writing(tmp_path):
    a = tmp_path / "a.json"
    out = OutputFile(a)
    w = ReportWriter(out, "json", summary=True)
    for i in range(5):
        w.write(_report(i))
    w.close()
    out.close()
    doc = json.loads(a.read_text())
    assert len(doc["images"]) == 5 and doc["summary"]["faces"] == 15


def test_detect_on_a_full_disk_says_one_line_and_exits_1(tmp_path, disk_of):
    disk_of(300)
    out = tmp_path / "faces.csv"
    r = CliRunner().invoke(app, ["detect", SAMPLES, "-f", "csv", "-o", str(out), "--no-progress"])
    assert r.exit_code == 1
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert errors == [errors[0]] and f"cannot write {out}: No space left on device" in errors[0]
    assert "Traceback" not in r.output
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert all(row["x1"] and row["confidence"] for row in rows)  # no half row


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "table"])
def test_dev_full_as_output_is_one_line_exit_1(fmt):
    r = subprocess.run(
        [sys.executable, "-m", "maskwatch.cli", "detect", SAMPLES, "-f", fmt, "-o", "/dev/full", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == ["error: cannot write /dev/full: No space left on device"]


def test_stdout_on_a_full_disk_is_one_line_exit_1():
    with open("/dev/full", "w") as full:
        r = subprocess.run(
            [sys.executable, "-m", "maskwatch.cli", "detect", SAMPLES, "-f", "csv", "--no-progress"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == ["error: cannot write <stdout>: No space left on device"]
