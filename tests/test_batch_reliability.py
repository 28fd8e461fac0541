"""Batch work keeps every input and what was finished: folder walks, interrupted outputs, bombs, labels that never overlap, threads, caches."""

from __future__ import annotations

import csv
import importlib
import io
import json
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import kaggle_val
from typer.testing import CliRunner

import maskwatch
from maskwatch.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(map(str, args)))


def _module_of(*names: str):
    """The first of ``names`` that imports (modules move into subpackages)."""
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "run") or hasattr(module, "annotate"):
            return module
    raise ImportError(names)


def _annotate_module():
    return _module_of("maskwatch.batch.annotate", "maskwatch.annotate")


def _pictures(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"p{i:02d}.jpg"
        cv2.imwrite(str(p), np.full((96, 128, 3), (40 + 10 * i) % 250, np.uint8))
        out.append(p)
    return out


def test_folder_walk_gives_a_row_for_broken_links_and_loops(tmp_path):
    d = tmp_path / "in"
    _pictures(d, 1)
    (d / "dangling.jpg").symlink_to(d / "gone.jpg")
    (d / "self.jpg").symlink_to(d / "self.jpg")
    (d / "up").symlink_to(d)
    r = run("detect", d, "-f", "csv")
    assert r.exit_code == 1, r.output
    rows = {Path(row["image"]).name: row["error"] for row in csv.DictReader(io.StringIO(r.stdout))}
    assert rows["p00.jpg"] == ""
    assert "broken symbolic link" in rows["dangling.jpg"]
    assert "symbolic link loop" in rows["self.jpg"]
    assert "symbolic link loop" in rows["up"]


def test_a_loop_named_directly_is_called_a_loop(tmp_path):
    loop = tmp_path / "loop.jpg"
    loop.symlink_to(loop)
    r = run("detect", loop, "-f", "csv")
    assert r.exit_code == 1
    assert f"error: {loop}: symbolic link loop" in r.stderr


def _interrupt_after(monkeypatch, n: int) -> None:
    """The (n+1)-th picture is interrupted as by Ctrl-C."""
    real = maskwatch.Detector.detect
    calls = [0]

    def detect(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] > n:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(maskwatch.Detector, "detect", detect)


@pytest.mark.parametrize("summary", [[], ["--summary"]])
def test_interrupted_json_is_valid_json_of_what_was_finished(tmp_path, monkeypatch, summary):
    pics = _pictures(tmp_path / "in", 5)
    _interrupt_after(monkeypatch, 3)
    out = tmp_path / "x.json"
    r = run("detect", *pics, "-f", "json", "-o", out, "-w", "1", *summary)  # one at a time: a known picture fails
    assert isinstance(r.exception, KeyboardInterrupt) or r.exit_code in (1, 130), r.output  # Ctrl-C
    doc = json.loads(out.read_text())
    assert [Path(i["image"]).name for i in doc["images"]] == ["p00.jpg", "p01.jpg", "p02.jpg"]
    if summary:
        assert doc["summary"]["images"] == 3


def test_json_output_is_the_same_document_as_before(tmp_path):
    pics = _pictures(tmp_path / "in", 2)
    r = run("detect", *pics, "-f", "json", "--summary")
    doc = json.loads(r.stdout)
    assert list(doc) == ["images", "summary"] and len(doc["images"]) == 2
    r = run("detect", pics[0], "-f", "json", "--threshold", "1")
    assert json.loads(r.stdout)["images"][0]["faces"] == []


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_interrupted_csv_and_jsonl_keep_whole_rows(tmp_path, monkeypatch, fmt):
    pics = _pictures(tmp_path / "in", 5)
    _interrupt_after(monkeypatch, 2)
    out = tmp_path / f"x.{fmt}"
    r = run("detect", *pics, "-f", fmt, "-o", out, "-w", "1")  # one at a time: a known picture fails
    assert isinstance(r.exception, KeyboardInterrupt) or r.exit_code in (1, 130), r.output  # Ctrl-C
    text = out.read_text()
    assert text.endswith("\n")
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [Path(row["image"]).name for row in rows] == ["p00.jpg", "p01.jpg"]
    else:
        assert [Path(json.loads(ln)["image"]).name for ln in text.splitlines()] == ["p00.jpg", "p01.jpg"]


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` (no pixel data needed to read the header)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(64))) + chunk(b"IEND", b"")


@pytest.mark.parametrize("size", [(12_000, 10_000), (20_000, 10_000)])  # 120 MP, and over Pillow's 179 MP
def test_a_decompression_bomb_is_refused_naming_maskwatchs_limit(tmp_path, size):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header(*size))
    r = run("detect", bomb, "-f", "csv")
    assert r.exit_code == 1
    line = next(ln for ln in r.stderr.splitlines() if "bomb.png" in ln)
    assert "the limit of 100 megapixels" in line, line
    assert "178956970" not in r.stderr and "178,956,970" not in r.stderr


def test_labels_in_a_crowd_never_overlap_and_small_faces_get_a_legend():
    annotate = _annotate_module()
    from maskwatch import Face

    rng = np.random.default_rng(1)
    faces = []
    for i in range(60):  # a crowd: 60 faces of 14-70 px, many touching
        x, y, s = rng.uniform(0, 560), rng.uniform(0, 420), rng.uniform(14, 70)
        faces.append(Face((x, y, x + s, y + s), ("mask", "no_mask", "incorrect")[i % 3], 0.9, 0.9))
    img = np.full((480, 640, 3), 128, np.uint8)
    layout = annotate.label_layout(faces, img.shape)
    tags = [spot[0] for spot in layout if spot is not None]
    assert tags, "the larger faces keep their tags"
    for i, a in enumerate(tags):
        assert 0 <= a[0] < a[2] <= 640 and 0 <= a[1] < a[3] <= 480
        for b in tags[i + 1 :]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    small = [f for f, spot in zip(faces, layout) if f.width < 30]
    assert small and all(spot is None for f, spot in zip(faces, layout) if f.width < 30)
    out = annotate.annotate(img, faces)
    corner = out[:40, :40]  # the legend's first swatch
    assert (corner == annotate.COLORS_BGR["mask"]).all(axis=2).any()


def test_one_large_face_keeps_its_readable_tag():
    annotate = _annotate_module()
    from maskwatch import Face

    img = np.zeros((480, 640, 3), np.uint8)
    face = Face((200, 150, 360, 330), "mask", 0.97, 0.99)
    ((rect, scale),) = annotate.label_layout([face], img.shape)
    assert rect[3] <= 150 and scale >= annotate.MIN_TEXT_SCALE  # above the box
    out = annotate.annotate(img, [face])
    assert not (out[:40, :40] != 0).any()  # no legend when every face is tagged


def test_results_are_identical_from_eight_threads(data, tmp_path):
    pics = [str(s.image) for s in kaggle_val(data, 16)]
    one = run("detect", *pics, "-f", "csv", "--workers", "1")
    eight = run("detect", *pics, "-f", "csv", "--workers", "8")
    assert one.exit_code == eight.exit_code == 0, one.output
    assert one.stdout == eight.stdout
    assert len(list(csv.DictReader(io.StringIO(one.stdout)))) >= 16


def test_interrupting_many_workers_stops_the_pictures_not_started(tmp_path, monkeypatch):
    pics = _pictures(tmp_path / "in", 40)
    real = maskwatch.Detector.detect
    calls = [0]

    def detect(self, *args, **kwargs):
        calls[0] += 1
        time.sleep(0.05)  # a picture takes a while
        return real(self, *args, **kwargs)

    monkeypatch.setattr(maskwatch.Detector, "detect", detect)
    batch = _module_of("maskwatch.batch.runner", "maskwatch.batch")
    det = maskwatch.Detector("mobile")
    gen = batch.run(det, [(str(p), None) for p in pics], workers=2)
    next(gen)
    gen.close()  # what Ctrl-C in the consumer does to the generator
    time.sleep(0.3)
    assert calls[0] < len(pics) // 2  # the running pictures finish, the queued ones never start (holds already)


def test_onnxruntime_cache_files_follow_xdg_cache_home_as_documented(tmp_path):
    """What onnxruntime writes on import cannot be turned off; the README says XDG_CACHE_HOME moves it."""
    import os
    import subprocess
    import sys

    home, cache = tmp_path / "home", tmp_path / "cache"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(cache)}
    code = "import numpy as np, maskwatch; maskwatch.Detector('mobile').detect(np.zeros((64, 64, 3), np.uint8))"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    assert not any(home.rglob("*")), list(home.rglob("*"))  # nothing in the home folder
