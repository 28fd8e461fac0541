"""Command-line usage: install hints, help text, usage errors, summaries, exact file names, save folders, documented sizes."""

from __future__ import annotations

import csv
import importlib
import io
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO
from typer.testing import CliRunner

import maskwatch
from maskwatch.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(map(str, args)))


def _module(*names: str):
    """The first of ``names`` that imports (modules may move between subpackages)."""
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError(names)


def _picture(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((120, 160, 3), 90 + 20 * seed, np.uint8))  # no face in it
    return path


@pytest.mark.parametrize(
    "command, missing, hint",
    [
        (["train"], "torch", "pip install -e '.[train]'"),
        (["export"], "onnx", "pip install 'maskwatch[export]'"),
        (["serve"], "uvicorn", "pip install 'maskwatch[serve]'"),
    ],
)
def test_install_hints_print_the_real_command(monkeypatch, command, missing, hint):
    monkeypatch.setitem(sys.modules, missing, None)  # as if the extra were not installed
    r = run(*command)
    assert r.exit_code == 2, r.output
    assert hint in r.stderr, r.stderr


def test_help_keeps_bracketed_words():
    r = run("train", "--help")
    assert r.exit_code == 0
    assert "[train]" in r.output


def test_eval_plot_without_matplotlib_stops_before_the_work(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)

    def no_work(*args, **kwargs):
        raise AssertionError("detection ran although the plot could never be drawn")

    monkeypatch.setattr(maskwatch.Detector, "detect", no_work)
    r = run("eval", tmp_path, "--plot", tmp_path / "pr.png")
    assert r.exit_code != 0
    assert "pip install 'maskwatch[plot]'" in r.stderr, r.stderr
    assert isinstance(r.exception, SystemExit)  # a clean exit, not an exception
    assert not (tmp_path / "pr.png").exists()


def test_maskwatch_errors_end_commands_cleanly(tmp_path):
    r = run("eval", tmp_path / "nowhere")
    assert r.exit_code in (1, 2)
    assert isinstance(r.exception, SystemExit)
    assert "nowhere" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "1,,2", "x"])
def test_nonsense_scales_are_a_usage_error(tmp_path, value):
    pic = _picture(tmp_path / "a.jpg")
    r = run("detect", pic, "--scales", value)
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: --scales") and repr(value) in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("value", ["0.5", "1", "nan", "9", "-2"])
def test_nonsense_zoom_is_a_usage_error(tmp_path, value):
    pic = _picture(tmp_path / "a.jpg")
    r = run("detect", pic, "--zoom", value)
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: --zoom") and len(r.stderr.strip().splitlines()) == 1


def test_zoom_off_or_on_runs(tmp_path):
    pic = _picture(tmp_path / "a.jpg")
    for value in ("0", "2"):
        r = run("detect", pic, "--zoom", value, "--format", "csv")
        assert r.exit_code == 0, r.output
        assert r.stdout.startswith("label,x1,y1,x2,y2,confidence,image")


def test_models_gives_the_size_of_all_a_models_files():
    r = run("models")
    assert r.exit_code == 0, r.output
    folder = Path(maskwatch.__file__).parent / "models"
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("server"))
    total = sum((folder / f).stat().st_size for f in ("server.onnx", "server_cvcls.onnx", "server_cvcls2.onnx")) / 1e6
    assert f"{total:.2f} MB" in line, line
    assert "server_cvcls.onnx, server_cvcls2.onnx (every face)" in line  # it labels and vetoes every face
    mobile = next(ln for ln in r.stdout.splitlines() if ln.startswith("mobile"))
    assert (
        "mobile_cls4.onnx (faces whose class < 0.9, < 0.8 where voted no_mask)" in mobile
    )  # a cascade: the unsure faces only
    assert "rescue server_cvcls2.onnx (masked faces scored 0.471-0.59)" in mobile  # and its rescue's band
    total = sum((folder / f).stat().st_size for f in ("mobile.onnx", "mobile_cls4.onnx", "server_cvcls2.onnx")) / 1e6
    assert f"{total:.2f} MB" in mobile and "rescue" not in line


def test_summary_gives_the_overall_figures_first_and_each_picture_only_when_asked(tmp_path):
    d = tmp_path / "in"
    names = ["a.jpg", "b.jpg", "c" * 150 + ".jpg"]
    for i, n in enumerate(names):
        _picture(d / n, i)
    r = run("detect", d, "-f", "csv", "--summary")
    assert r.exit_code == 0, r.output
    assert "all (3 inputs)" in r.stderr
    assert not any(n in r.stderr for n in names)  # only the overall figures
    r = run("detect", d, "-f", "csv", "--summary-per-image")
    assert r.exit_code == 0, r.output
    lines = r.stderr.splitlines()
    first = next(i for i, ln in enumerate(lines) if "all (3 inputs)" in ln)
    for n in names:  # each picture after the overall line, its whole name on one line
        assert any(ln.endswith(str(d / n)) for ln in lines[first + 1 :]), n


def test_table_rows_stay_whole_when_output_is_not_a_terminal(tmp_path):
    long = tmp_path / ("deep" * 20) / ("x" * 120 + ".jpg")
    _picture(long)
    r = run("detect", long, "-f", "table", "--summary-per-image")
    assert r.exit_code == 0, r.output
    rows = [ln for ln in r.stdout.splitlines() if str(long) in ln]
    assert len(rows) == 2, r.stdout  # the table row and the summary line, each on one line


@pytest.mark.parametrize("name", ["team [copy].jpg", "[bold]loud.jpg", "[red].jpg", "back\\[slash].jpg"])
def test_file_names_are_printed_exactly(tmp_path, name):
    d = tmp_path / "in [/x]"
    good = _picture(d / "ok.jpg")
    bad = d / name
    bad.write_bytes(b"not a picture")
    for fmt in ("table", "csv"):
        r = run("detect", good, bad, "-f", fmt, "--summary-per-image")
        assert r.exit_code == 1, r.output
        assert isinstance(r.exception, SystemExit), r.exception
        assert f"error: {bad}: " in r.stderr, r.stderr
        shown = r.stdout + r.stderr
        assert str(good) in shown and str(bad) in shown


def test_error_messages_are_single_lines(tmp_path):
    bad = tmp_path / ("long-folder-name-" * 8) / "broken.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"nope")
    r = run("detect", bad, "-f", "csv")
    assert r.exit_code == 1
    assert any(ln.startswith(f"error: {bad}: ") for ln in r.stderr.splitlines()), r.stderr


def test_detect_never_writes_over_its_inputs(tmp_path):
    d = tmp_path / "photos"
    pics = [_picture(d / f"{n}.jpg", i) for i, n in enumerate("ab")]
    before = {p: p.read_bytes() for p in pics}
    r = run("detect", d, "--save-dir", d, "-f", "csv")
    assert r.exit_code == 0, r.output
    assert {p: p.read_bytes() for p in pics} == before
    assert sorted(p.name for p in (tmp_path / "photos2").iterdir()) == ["a.jpg", "b.jpg"]
    r = run("detect", d / "a.jpg", "-o", d / "a.jpg")
    assert r.exit_code == 2 and "one of the inputs" in r.stderr
    assert (d / "a.jpg").read_bytes() == before[d / "a.jpg"]


def test_a_second_run_gets_a_new_save_folder(tmp_path):
    pic = _picture(tmp_path / "a.jpg")
    out = tmp_path / "runs" / "predict"
    for expect in ("predict", "predict2", "predict3"):
        r = run("detect", pic, "--save-dir", out, "-f", "csv")
        assert r.exit_code == 0, r.output
        assert (tmp_path / "runs" / expect / "a.jpg").is_file()
        assert str(tmp_path / "runs" / expect) in r.stderr
        saved = list(csv.DictReader(io.StringIO(r.stdout)))
        assert saved and all(row["error"] == "" for row in saved)


def test_int8_calibrates_on_kaggle_training_pictures_only(tmp_path):
    export = _module("maskwatch.export", "maskwatch.core.export")
    kaggle = tmp_path / "data" / "kaggle-facemask"
    for n in ("t1", "t2", "v1", "v2"):
        _picture(kaggle / "images" / f"{n}.png")
    (kaggle / "train.txt").write_text("t1\nt2\n")
    (kaggle / "val.txt").write_text("v1\nv2\n")
    for given in (tmp_path / "data", kaggle, kaggle / "images"):
        assert [p.name for p in export.calibration_files(given)] == ["t1.png", "t2.png"], given


def test_data_folder_is_found_as_the_other_commands_find_it(tmp_path, monkeypatch):
    datasets = _module("maskwatch.datasets", "maskwatch.evaluation.datasets")
    monkeypatch.chdir(tmp_path)  # not relative to the current folder
    (tmp_path / "mine").mkdir()
    monkeypatch.setenv("MASKWATCH_DATA", str(tmp_path / "mine"))
    assert datasets.data_root(None) == tmp_path / "mine"
    assert datasets.data_root(Path("given")) == Path("given")
    monkeypatch.delenv("MASKWATCH_DATA")
    beside_checkout = REPO.parent / "shared" / "data"
    assert datasets.data_root(None) == (beside_checkout if beside_checkout.is_dir() else None)


def test_save_without_a_folder_writes_under_runs(tmp_path, monkeypatch):
    pic = _picture(tmp_path / "photos" / "a.jpg")
    monkeypatch.chdir(tmp_path)
    for expect in ("predict", "predict2"):
        r = run("detect", pic, "--save", "--summary", "--output", "runs/detect/faces.csv")
        assert r.exit_code == 0, r.output
        assert (tmp_path / "runs" / "detect" / expect / "a.jpg").is_file()
    assert (tmp_path / "runs" / "detect" / "faces.csv").read_text().startswith("label,")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "runs"]  # nothing else left behind


def test_documented_input_sizes_are_the_models(tmp_path):
    """docs/models.md, docs/mobile.md and the model card state the input rule `maskwatch models` reads from the files."""
    from maskwatch.core.registry import resolve_model

    r = run("models")
    rules = dict(re.findall(r"^(\w+)\s.*?input (.+?)  threshold", r.stdout, re.MULTILINE))
    assert set(rules) >= {"mobile", "server"}, r.stdout
    models_doc = (REPO / "docs" / "models.md").read_text()  # the README links there for the rules
    for name in ("mobile", "server"):
        assert f"`{name}`: {rules[name]}" in models_doc, rules[name]
        assert re.search(rf"\| `{name}`[^|]*\| [^|]* \| {re.escape(rules[name])}", models_doc), rules[name]
    fixed = resolve_model("mobile").input_size  # what a fixed-size runtime (a phone app) uses
    mobile_doc = (REPO / "docs" / "mobile.md").read_text()
    assert f"model's input size ({fixed} for\n  the shipped `mobile`" in mobile_doc
    card = (REPO / "src" / "maskwatch" / "models" / "mobile.md").read_text()
    assert f"**{rules['mobile']}**" in card


def test_readme_main_job_writes_under_runs_and_names_the_plot_extra():
    readme = (REPO / "README.md").read_text()
    first_block = readme.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    # the first command installs and runs the demo (no data folder needed); the folder job comes next
    assert "pip install -e ." in first_block[0] and first_block[0].endswith("maskwatch demo")
    main_job = next(ln for ln in first_block if "maskwatch detect" in ln)
    assert "--save " in main_job and "--output runs/" in main_job and "annotated" not in main_job
    assert "pip install 'maskwatch[plot]'" in readme
    assert "PyTorch 2.13 CPU" not in readme and "torch==2.13.0" in (REPO / ".ci" / "run").read_text()


def test_save_dir_dot_gets_a_numbered_sibling(tmp_path, monkeypatch):
    d = tmp_path / "photos"
    pic = _picture(d / "a.jpg")
    before = pic.read_bytes()
    monkeypatch.chdir(d)
    r = run("detect", "a.jpg", "--save-dir", ".", "-f", "csv")
    assert r.exit_code == 0, r.output
    assert pic.read_bytes() == before
    assert (tmp_path / "photos2" / "a.jpg").is_file()
