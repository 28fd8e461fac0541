"""What a newcomer met on a fresh clone (issue 31's list), each now a test."""

from __future__ import annotations

import json
import sys

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


def test_zoom_sizes_takes_what_detect_returns():
    det = Detector("mobile")
    crowd = SAMPLES_DIR / "maksssksksss603.jpg"
    faces = det.detect(crowd)
    sizes = det.zoom_sizes(400, 226, faces)
    assert isinstance(sizes, list) and all(isinstance(s, int) for s in sizes)
    assert det.zoom_sizes(400, 226, []) == []


def test_watch_without_its_extra_is_a_usage_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "trackers", None)
    r = runner.invoke(app, ["watch", str(paths()[0])])
    assert r.exit_code == 2 and "pip install 'maskwatch[watch]'" in r.stderr


def test_head_on_the_pages_and_health():
    pytest.importorskip("fastapi", reason="serving needs the [serve] extra")
    from fastapi.testclient import TestClient

    from maskwatch.serve import create_app

    c = TestClient(create_app())
    assert c.head("/").status_code == 200 and c.head("/healthz").status_code == 200
