"""Command-line options a user of Ultralytics or of the docs expects: the output format from the file's suffix, --version, --conf, --classes, --save-txt/--save-crop, --input-size, a per-frame bar for videos, extras named on a missing install."""

from __future__ import annotations
import json
import pytest
from typer.testing import CliRunner
from maskwatch import Detector, __version__
from maskwatch.cli import app
from maskwatch.samples import SAMPLES_DIR, paths

runner = CliRunner()


@pytest.mark.parametrize(
    "name, check", [("faces.json", json.loads), ("faces.jsonl", lambda t: [json.loads(x) for x in t.splitlines()])]
)
def test_output_format_follows_the_file_suffix(tmp_path, name, check):
    out = tmp_path / name
    r = runner.invoke(app, ["detect", str(paths()[0]), "-o", str(out)])
    assert r.exit_code == 0, r.output
    check(out.read_text())


def test_version_flag():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.stdout.strip() == f"maskwatch {__version__}"


def test_conf_is_an_alias_of_the_threshold(tmp_path):
    a = runner.invoke(app, ["detect", str(paths()[0]), "-f", "csv", "--conf", "0.9"])
    b = runner.invoke(app, ["detect", str(paths()[0]), "-f", "csv", "--threshold", "0.9"])
    assert a.exit_code == b.exit_code == 0 and a.stdout == b.stdout


def test_a_video_gets_a_per_frame_bar_and_its_summary_says_frames(tmp_path):
    import cv2
    import numpy as np

    video = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 10, (160, 120))
    for _ in range(20):
        w.write(np.full((120, 160, 3), 90, np.uint8))
    w.release()
    r = runner.invoke(app, ["detect", str(video), "-f", "csv", "--progress", "--summary"])
    assert r.exit_code == 0, r.output
    assert "20/20" in r.stderr and "0/1" not in r.stderr
    assert "all (1 video: 20 frames)" in r.stderr
    r = runner.invoke(app, ["detect", str(video), "-f", "csv", "--progress", "--vid-stride", "3"])
    assert "7/7" in r.stderr


def test_classes_keeps_only_the_labels_asked_for(tmp_path):
    import csv as csv_mod

    src = SAMPLES_DIR / "maksssksksss307.jpg"  # one of each label
    r = runner.invoke(app, ["detect", str(src), "-f", "csv", "--classes", "no_mask,incorrect"])
    labels = {row["label"] for row in csv_mod.DictReader(r.stdout.splitlines())}
    assert r.exit_code == 0 and labels and labels <= {"no_mask", "incorrect"}
    r = runner.invoke(app, ["detect", str(src), "--classes", "hat"])
    assert r.exit_code == 2 and "--classes" in r.stderr


def test_save_txt_and_save_crop_write_yolo_labels_and_crops(tmp_path):
    from maskwatch.core.face import LABELS
    from maskwatch.evaluation.datasets import load_dataset

    src = SAMPLES_DIR / "maksssksksss307.jpg"
    out = tmp_path / "o"
    r = runner.invoke(app, ["detect", str(src), "-f", "csv", "--save-dir", str(out), "--save-txt", "--save-crop"])
    assert r.exit_code == 0, r.output
    faces = Detector("mobile").detect(src)
    lines = (out / "labels" / "maksssksksss307.txt").read_text().splitlines()
    assert len(lines) == len(faces)
    cls, cx, cy, w, h, conf = lines[0].split()
    assert LABELS[int(cls)] == faces[0].label and 0 < float(cx) < 1 and abs(float(conf) - faces[0].confidence) < 1e-3
    crops = sorted((out / "crops").rglob("*.jpg"))
    assert len(crops) == len(faces) and {c.parent.name for c in crops} == {f.label for f in faces}
    # the labels read back as a YOLO set (the picture beside them) with the boxes detect gave
    (out / "images").mkdir()
    (out / "images" / src.name).write_bytes(src.read_bytes())
    sample = load_dataset(out, fmt="yolo")[0]
    assert all(abs(float(x) - float(y)) <= 1.0 for x, y in zip(sample.boxes[0], faces[0].box))


def test_detect_takes_input_size_as_watch_does(tmp_path):
    a = runner.invoke(app, ["detect", str(paths()[0]), "-f", "csv", "--input-size", "320"])
    assert a.exit_code == 0, a.output
    small = Detector("mobile", input_size=320).detect(paths()[0])
    assert len(a.stdout.strip().splitlines()) - 1 == max(1, len(small))


class _FakeCapture:
    """A capture of ``n`` frames that records which were decoded (read) and which only grabbed."""

    def __init__(self, n: int, bad: tuple[int, ...] = ()):
        self.n, self.bad, self.pos = n, bad, 0
        self.decoded: list[int] = []
        self.grabbed: list[int] = []

    def get(self, prop):
        import cv2

        return float(self.n) if prop == cv2.CAP_PROP_FRAME_COUNT else 0.0

    def _next(self) -> bool:
        i = self.pos
        self.pos += 1
        return i < self.n and i not in self.bad

    def read(self):
        import numpy as np

        i = self.pos
        ok = self._next()
        if ok:
            self.decoded.append(i)
        return ok, (np.zeros((4, 4, 3), np.uint8) if ok else None)

    def grab(self):
        i = self.pos
        ok = self._next()
        if ok:
            self.grabbed.append(i)
        return ok


def test_a_video_stride_decodes_only_the_frames_it_keeps():
    from maskwatch.batch.sources import FileFrames

    cap = _FakeCapture(10)
    assert [i for i, _ in FileFrames(cap, stride=3)] == [0, 3, 6, 9]
    assert cap.decoded == [0, 3, 6, 9] and cap.grabbed == [1, 2, 4, 5, 7, 8]
    cap = _FakeCapture(10, bad=(4, 5))  # a corrupt stretch among the grabbed frames is still reported
    frames = FileFrames(cap, stride=3)
    assert [i for i, _ in frames] == [0, 3, 6, 9]
    assert frames.lost == 2 and frames.problem and "from frame 4" in frames.problem


def test_detect_and_watch_read_videos_with_one_reader(tmp_path, monkeypatch):
    """``detect`` on a video goes through watch.reader.FrameReader, as ``watch`` does."""
    import cv2
    import numpy as np

    from maskwatch.watch import reader

    video = tmp_path / "clip.mp4"
    out = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"mp4v"), 10, (64, 48))
    for k in range(7):
        out.write(np.full((48, 64, 3), 20 * k, np.uint8))
    out.release()
    made = []
    real = reader.FrameReader

    def spy(*a, **k):
        made.append(k.get("stride"))
        return real(*a, **k)

    monkeypatch.setattr(reader, "FrameReader", spy)
    r = runner.invoke(app, ["detect", str(video), "-f", "jsonl", "--vid-stride", "3"])
    assert r.exit_code == 0, r.output
    assert made == [3]
    assert [json.loads(ln)["frame"] for ln in r.stdout.splitlines()] == [0, 3, 6]
