"""``maskwatch demo`` on the pictures shipped in the package: runs with no data folder, writes the main job."""

import csv

import cv2
from typer.testing import CliRunner

from maskwatch import samples
from maskwatch.batch.runner import Report
from maskwatch.cli import app


def test_samples_are_small_credited_and_show_every_label(mobile):
    pics = samples.paths()
    assert 4 <= len(pics) <= 8
    assert sum(p.stat().st_size for p in pics) < 1.5e6
    credits = (samples.SAMPLES_DIR / "CREDITS.md").read_text()
    assert "CC0 1.0" in credits and "andrewmvd" in credits
    assert all(p.name in credits for p in pics)
    labels = {f.label for p in pics for f in mobile.detect(str(p))}
    assert labels == {"mask", "no_mask", "incorrect"}  # a mask worn wrong and a face without one are there
    assert max(len(mobile.detect(str(p))) for p in pics) >= 30  # and a crowd


def test_demo_writes_csv_annotated_pictures_and_summary(tmp_path, monkeypatch, mobile):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["demo"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "maskwatch-demo"
    assert "maskwatch-demo/faces.csv" in r.output and "maskwatch-demo/annotated" in r.output
    pics = samples.paths()
    # the CSV holds exactly the rows `maskwatch detect` writes for these pictures
    with open(out / "faces.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    expected = [row for p in pics for row in Report(str(p), mobile.detect(str(p))).rows()]
    assert len(rows) == len(expected)
    for got, exp in zip(rows, expected):
        assert got["image"] == exp["image"] and got["label"] == exp["label"]
        assert [float(got[k]) for k in ("x1", "y1", "x2", "y2")] == [exp[k] for k in ("x1", "y1", "x2", "y2")]
    # one annotated copy per picture, with boxes drawn on it
    for p in pics:
        drawn, orig = cv2.imread(str(out / "annotated" / p.name)), cv2.imread(str(p))
        assert drawn is not None and drawn.shape == orig.shape
        assert (cv2.absdiff(drawn, orig).max(axis=2) > 60).mean() > 0.002
    summary = (out / "summary.txt").read_text()
    n = {lab: sum(row["label"] == lab for row in rows) for lab in ("mask", "no_mask", "incorrect")}
    assert f"all ({len(pics)} inputs)" in summary
    assert summary.splitlines()[2].split()[:4] == [
        str(n["mask"]),
        str(n["no_mask"]),
        str(n["incorrect"]),
        str(len(rows)),
    ]
    assert all(p.name in summary for p in pics)
    # a second run replaces the first, in the same place
    assert CliRunner().invoke(app, ["demo"]).exit_code == 0
    assert sorted(x.name for x in out.iterdir()) == ["annotated", "faces.csv", "summary.txt"]
