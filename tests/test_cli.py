"""The command line: every format, saved pictures, bad files among good ones, exit codes."""

import csv
import io
import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import kaggle_val
from maskwatch.cli import app

runner = CliRunner()


@pytest.fixture
def folder(tmp_path):
    """Two made-up pictures in nested folders and one file that is not a picture."""
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    img = np.tile(np.linspace(0, 255, 200, dtype=np.uint8)[None, :, None], (150, 1, 3))
    cv2.imwrite(str(d / "a.jpg"), img)
    cv2.imwrite(str(d / "sub" / "b.png"), img[::-1])
    (d / "sub" / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    return d


def run(*args):
    return runner.invoke(app, list(map(str, args)))


def test_csv_rows_for_every_input_and_error_row(folder):
    r = run("detect", folder, "--format", "csv")
    assert r.exit_code == 1, r.output  # one input failed
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert list(rows[0].keys())[:7] == ["label", "x1", "y1", "x2", "y2", "confidence", "image"]
    images = {row["image"] for row in rows}
    assert {p.name for p in map(__import__("pathlib").Path, images)} == {"a.jpg", "b.png", "broken.jpg"}
    err_rows = [row for row in rows if row["error"]]
    assert len(err_rows) == 1 and err_rows[0]["image"].endswith("broken.jpg")
    assert "broken.jpg" in r.stderr


def test_json_and_jsonl_and_summary(folder):
    r = run("detect", folder / "a.jpg", folder / "sub" / "b.png", "--format", "json", "--summary")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [i["image"].split("/")[-1] for i in doc["images"]] == ["a.jpg", "b.png"]
    assert doc["summary"]["images"] == 2 and doc["summary"]["errors"] == 0
    assert set(doc["summary"]) >= {"mask", "no_mask", "incorrect", "faces", "mask_rate"}
    r = run("detect", folder / "a.jpg", "--format", "jsonl", "--summary")
    lines = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert lines[0]["image"].endswith("a.jpg") and lines[0]["faces"] == []
    assert "summary" in lines[-1]


def test_table_format(folder):
    r = run("detect", folder / "a.jpg", "--format", "table", "--summary")
    assert r.exit_code == 0
    assert "label" in r.stdout and "a.jpg" in r.stdout and "mask rate" in r.stdout


def test_output_file_and_glob(folder, tmp_path):
    out = tmp_path / "res.jsonl"
    r = run("detect", str(folder / "**" / "*.png"), "--format", "jsonl", "--output", out)
    assert r.exit_code == 0, r.output
    lines = out.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["image"].endswith("b.png")


def test_usage_errors_exit_2(folder):
    assert run("detect", folder, "--format", "xml").exit_code == 2
    assert run("detect", folder, "--model", "nope").exit_code == 2
    assert run("detect", folder, "--threshold", "3").exit_code == 2
    assert run("detect").exit_code == 2


def test_missing_source_gives_error_row(tmp_path):
    r = run("detect", tmp_path / "nothing.jpg", "--format", "csv")
    assert r.exit_code == 1
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert rows[0]["error"] == "no such file or folder"


def test_saved_pictures_are_annotated(data, tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    for s in kaggle_val(data, 3):
        shutil.copy(s.image, src / s.image.name)
    (src / "bad.jpg").write_text("nope")
    out = tmp_path / "annotated"
    r = run("detect", src, "--save-dir", out, "--format", "json", "--workers", "2")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    good = [i for i in doc["images"] if not i["error"]]
    assert len(good) == 3 and sum(len(i["faces"]) for i in good) > 0
    for item in good:
        saved = cv2.imread(item["saved"])
        orig = cv2.imread(item["image"])
        assert saved.shape == orig.shape
        if item["faces"]:
            assert np.abs(saved.astype(int) - orig.astype(int)).sum() > 0  # boxes were drawn
    assert not (out / "bad.jpg").exists()


def test_entry_point_runs(folder):
    exe = shutil.which("maskwatch") or None
    cmd = [exe] if exe else [sys.executable, "-m", "maskwatch.cli"]
    p = subprocess.run(
        cmd + ["detect", str(folder / "a.jpg"), "--format", "csv"], capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0].startswith("label,x1,y1,x2,y2,confidence,image")


def test_eval_on_made_up_voc(tmp_path):
    """eval on a tiny VOC set made here: a picture with no labelled face and no face found."""
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "e.jpg"), np.full((100, 100, 3), 127, np.uint8))
    (tmp_path / "annotations" / "e.xml").write_text("<annotation><filename>e.jpg</filename></annotation>")
    r = run("eval", tmp_path, "--json")
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)
    assert m["images"] == 1 and m["face_ap"] == 0.0 and m["recall"] is None


def test_eval_real_subset_with_plot(data, tmp_path):
    png = tmp_path / "pr.png"
    r = run("eval", data / "kaggle-facemask", "--split", "val.txt", "--limit", "12", "--plot", png)
    assert r.exit_code == 0, r.output
    assert "mAP" in r.stdout and "face AP" in r.stdout and "label accuracy" in r.stdout
    assert png.stat().st_size > 1000


def test_video_gives_a_report_per_frame_and_an_annotated_video(tmp_path):
    path = tmp_path / "clip.mp4"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    for i in range(6):
        w.write(np.full((120, 160, 3), 30 * i, np.uint8))
    w.release()
    r = run("detect", path, "--format", "jsonl", "--vid-stride", "2", "--save-dir", tmp_path / "out")
    assert r.exit_code == 0, r.output
    lines = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert [ln["frame"] for ln in lines] == [0, 2, 4]
    assert (tmp_path / "out" / "clip.mp4").stat().st_size > 0


def test_unreadable_video_is_an_error_row(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    r = run("detect", bad, "--format", "csv")
    assert r.exit_code == 1
    assert "broken.mp4" in r.stderr


def test_export_onnx_loads_and_keeps_settings(tmp_path):
    from maskwatch import Detector

    out = tmp_path / "m.onnx"
    r = run("export", "--model", "mobile", "--format", "onnx", "--output", out)
    assert r.exit_code == 0, r.output
    # mobile's crop classifier is a cascade without a veto: the device file is the graph alone
    det, shipped = Detector(str(out)), Detector("mobile", classifier_below=0)
    assert not det.spec.classifiers and not any(k.startswith(("classifier", "rescue")) for k in det.meta)
    assert det.input_size == shipped.input_size
    # the threshold of the network alone (best F1), not the one moved for the rescue it no longer runs
    assert det.score_threshold == shipped.spec.network_threshold == shipped.meta["threshold_best_f1"]
    assert det.score_threshold < shipped.score_threshold and det.spec.network_threshold == det.score_threshold
    assert shipped.spec.summary()["network_threshold"] == det.score_threshold  # what the browser page runs at
    assert det.spec.score_calibration == shipped.spec.score_calibration
    img = np.full((120, 160, 3), 100, np.uint8)
    img[30:90, 50:110] = 200  # something to find at a low threshold
    assert det.detect(img, 0.05) == shipped.detect(img, 0.05)
    assert run("export", "--model", "server").exit_code == 2  # labels and vetoes every face: not for devices


def test_export_with_classifier_writes_the_pair_that_runs_as_the_shipped_model(tmp_path, data):
    import glob

    from maskwatch import Detector

    out = tmp_path / "dev" / "mobile.onnx"
    r = run("export", "--model", "mobile", "--with-classifier", "--output", out)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "dev" / "mobile_cls4.onnx").is_file() and "mobile_cls4.onnx" in r.output
    assert (tmp_path / "dev" / "server_cvcls2.onnx").is_file()  # the rescue's classifier goes along
    det, shipped = Detector(str(out)), Detector("mobile")
    assert det.spec.classifiers == ("mobile_cls4.onnx",) and len(det._classifiers) == 1
    assert det._rescue is not None and det._rescue_band == shipped._rescue_band
    assert det._cls_below == shipped._cls_below and det._verify_weight == 0
    for f in sorted(glob.glob(str(data / "kaggle-facemask" / "images" / "*")))[:4]:
        img = cv2.imread(f)
        assert det.detect(img) == shipped.detect(img), f
    assert run("export", "--model", "server", "--with-classifier").exit_code == 2  # still not for devices


def test_unwritable_output_or_save_dir_and_bad_scales_are_usage_errors(folder, tmp_path):
    r = run("detect", folder / "a.jpg", "-o", tmp_path / "no" / "such" / "dir" / "x.csv")
    assert r.exit_code == 2 and "--output" in r.output
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = run("detect", folder / "a.jpg", "--save-dir", blocker / "sub")
    assert r.exit_code == 2 and "--save-dir" in r.output
    for bad in ("0", "-1", "0.001"):
        r = run("detect", folder / "a.jpg", "--scales", bad)
        assert r.exit_code == 2 and "scales" in r.output


def test_eval_names_unreadable_label_files_and_scores_the_rest(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    for stem in ("good", "broken"):
        cv2.imwrite(str(tmp_path / "images" / f"{stem}.jpg"), np.full((100, 100, 3), 127, np.uint8))
    (tmp_path / "annotations" / "good.xml").write_text("<annotation><filename>good.jpg</filename></annotation>")
    (tmp_path / "annotations" / "broken.xml").write_text("<annotation><filename>broken.jpg")
    r = run("eval", tmp_path, "--json")
    assert r.exit_code == 1, r.output  # one input failed
    m = json.loads(r.stdout)
    assert m["images"] == 1 and len(m["errors"]) == 1 and "broken.xml" in m["errors"][0]


def test_eval_yolo_set_with_a_bad_label_and_a_non_picture(tmp_path):
    for sub in ("images", "labels"):
        (tmp_path / sub).mkdir()
    for stem in ("a", "b"):
        cv2.imwrite(str(tmp_path / "images" / f"{stem}.jpg"), np.full((100, 100, 3), 127, np.uint8))
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "labels" / "b.txt").write_text("mask 0.5 0.5 0.2 0.2\n")  # not a class number
    (tmp_path / "images" / "c.jpg").write_text("not a picture")
    r = run("eval", tmp_path, "--json")
    assert r.exit_code == 1, r.output
    m = json.loads(r.stdout)
    assert m["images"] == 1
    assert sorted(e.split(":")[0].split("/")[-1] for e in m["errors"]) == ["b.txt", "c.jpg"]


def test_picture_whose_annotation_cannot_be_written_keeps_its_faces(tmp_path):
    from maskwatch.batch.runner import Report, detect_image
    from maskwatch.core.face import Face

    face = Face(box=(1.0, 2.0, 30.0, 40.0), label="mask", confidence=0.9, score=0.8, probs=(0.9, 0.05, 0.05))
    rows = Report("p.jpg", [face], error="could not write annotated picture to x.jpg").rows()
    assert len(rows) == 1 and rows[0]["label"] == "mask" and "could not write" in rows[0]["error"]
    pic = tmp_path / "p.jpg"
    cv2.imwrite(str(pic), np.full((60, 60, 3), 90, np.uint8))
    blocker = tmp_path / "blocker"
    blocker.write_text("")

    class OneFace:
        def detect(self, img):
            return [face]

    rep = detect_image(OneFace(), str(pic), save_dir=blocker)  # a file where the folder should be
    assert rep.faces == [face] and rep.saved is None and "could not write" in rep.error


def test_eval_unknown_class_name_stops_with_the_file_named(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "p.jpg"), np.full((100, 100, 3), 127, np.uint8))
    (tmp_path / "annotations" / "p.xml").write_text(
        "<annotation><filename>p.jpg</filename><object><name>person</name>"
        "<bndbox><xmin>10</xmin><ymin>10</ymin><xmax>50</xmax><ymax>50</ymax></bndbox></object></annotation>"
    )
    r = run("eval", tmp_path)
    assert r.exit_code == 2 and "p.xml" in r.output and "person" in r.output


def test_eval_malformed_coco_is_named(tmp_path):
    (tmp_path / "labels.json").write_text("[1, 2, 3]")
    r = run("eval", tmp_path / "labels.json")
    assert r.exit_code == 2 and "labels.json" in r.output and "COCO" in r.output
