"""Running the service: HEAD on pages and health, an access log line per request, API docs offline, a busy port, environment variables named as such."""

from __future__ import annotations
import sys
import pytest
from typer.testing import CliRunner
from maskwatch.cli import app

runner = CliRunner()


def test_head_on_the_pages_and_health():
    pytest.importorskip("fastapi", reason="serving needs the [serve] extra")
    from fastapi.testclient import TestClient

    from maskwatch.serve import create_app

    c = TestClient(create_app())
    assert c.head("/").status_code == 200 and c.head("/healthz").status_code == 200


def test_a_bad_environment_variable_is_named_not_a_flag(monkeypatch):
    pytest.importorskip("fastapi", reason="serving needs the [serve] extra")
    monkeypatch.setenv("MASKWATCH_PORT", "abc")
    r = runner.invoke(app, ["serve"])
    assert r.exit_code == 2 and r.stderr.startswith("error: MASKWATCH_PORT (the environment variable behind --port):")


def test_serve_on_a_busy_port_says_so_before_serving():
    pytest.importorskip("fastapi", reason="serving needs the [serve] extra")
    import socket
    import subprocess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run(
            [sys.executable, "-m", "maskwatch.cli", "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert r.returncode == 2 and "is in use" in r.stderr and "serving" not in r.stderr


def test_each_request_gets_an_access_log_line():
    pytest.importorskip("fastapi", reason="serving needs the [serve] extra")
    import subprocess
    import time
    import urllib.request

    from conftest import free_port

    port = free_port()
    p = subprocess.Popen(
        [sys.executable, "-m", "maskwatch.cli", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.3)
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=10).read()
    finally:
        p.terminate()
        out, _ = p.communicate(timeout=20)
    assert '"GET /v1/models HTTP/1.1" 200' in out


def test_api_docs_need_no_network():
    pytest.importorskip("fastapi", reason="serving needs the [serve] extra")
    from fastapi.testclient import TestClient

    from maskwatch.serve import create_app

    c = TestClient(create_app())
    for page in ("/docs", "/redoc"):
        html = c.get(page).text
        assert "cdn." not in html and "fonts.googleapis" not in html and "/docs-static/" in html
    assert c.get("/docs-static/swagger-ui-bundle.js").status_code == 200
