"""The serve package (issue 16 item 4): one ServeSettings from flags and MASKWATCH_* variables, and
/docs showing the real request and response schemas."""

import pytest

pytest.importorskip("fastapi", reason="serving needs the [serve] extra")
from fastapi.testclient import TestClient  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from maskwatch import MaskwatchError  # noqa: E402
from maskwatch.cli import app as cli_app  # noqa: E402
from maskwatch.serve import ServeSettings, SettingsError, create_app, load_settings  # noqa: E402


def test_settings_come_from_environment_and_options_win(monkeypatch):
    monkeypatch.setenv("MASKWATCH_MAX_MEGAPIXELS", "12.5")
    monkeypatch.setenv("MASKWATCH_CORS_ORIGINS", '["https://a.example"]')
    monkeypatch.setenv("MASKWATCH_PORT", "9000")
    s = load_settings()
    assert s.max_pixels == 12_500_000 and s.cors_origins == ["https://a.example"] and s.port == 9000
    assert load_settings(max_megapixels=2, port=None).max_pixels == 2_000_000  # None: not given
    assert load_settings(max_pixels=3_000_000, max_body=2_000_000).max_body == 2_000_000  # bytes and pixels too
    app = create_app()
    assert app.state.settings.max_pixels == 12_500_000


def test_environment_key_protects_the_app(monkeypatch):
    monkeypatch.setenv("MASKWATCH_API_KEY", "from-env")
    c = TestClient(create_app())
    assert c.get("/v1/models").status_code == 401
    assert c.get("/v1/models", headers={"X-API-Key": "from-env"}).status_code == 200


@pytest.mark.parametrize(
    "options, field",
    [
        ({"max_megapixels": float("nan")}, "max_megapixels"),
        ({"max_images": 0}, "max_images"),
        ({"port": 0}, "port"),
        ({"infer_threads": 0}, "infer_threads"),
        ({"model": "nope"}, "model"),
        ({"no_such_setting": 1}, "no_such_setting"),
    ],
)
def test_nonsense_settings_name_the_setting(options, field):
    with pytest.raises(SettingsError) as err:
        load_settings(**options)
    assert err.value.field == field and "\n" not in str(err.value)
    with pytest.raises(MaskwatchError):
        create_app(**options)


def test_bad_environment_variable_is_named_by_the_command(monkeypatch):
    monkeypatch.setenv("MASKWATCH_MAX_BODY_MB", "-3")
    r = CliRunner().invoke(cli_app, ["serve"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "error: MASKWATCH_MAX_BODY_MB (the environment variable behind --max-body-mb)" in r.output


def test_create_app_takes_settings_and_a_model_name():
    assert create_app(ServeSettings(max_images=3)).state.settings.max_images == 3
    assert create_app("server").state.models.default == "server"
    app = create_app(ServeSettings(max_images=3), api_key="k")
    assert app.state.settings.max_images == 3 and app.state.settings.api_key == "k"


def test_docs_show_the_request_and_response_schemas():
    spec = TestClient(create_app()).get("/openapi.json").json()
    detect = spec["paths"]["/v1/detect"]["post"]
    assert set(detect["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert "images" in detect["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert detect["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/DetectResponse")
    predict = spec["paths"]["/predict/{module_name}"]["post"]
    assert "confs_threshold" in predict["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert predict["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/PaddleHubResponse")
    schemas = spec["components"]["schemas"]
    assert {"DetectResponse", "PictureResult", "FaceOut", "Counts", "ModelList", "Health"} <= set(schemas)
    assert set(schemas["PaddleHubFace"]["properties"]) == {"label", "confidence", "left", "top", "right", "bottom"}


def test_paddlehub_answer_has_no_base64_unless_asked():
    import base64

    import cv2
    import numpy as np

    _, enc = cv2.imencode(".jpg", np.full((64, 64, 3), 128, np.uint8))
    c = TestClient(create_app())
    pic = base64.b64encode(enc.tobytes()).decode()
    res = c.post("/predict/pyramidbox_lite_mobile_mask", json={"images": [pic]}).json()["results"][0]
    assert set(res) == {"path", "data"}
    res = c.post("/predict/pyramidbox_lite_mobile_mask", json={"images": [pic], "visualization": True}).json()
    assert set(res["results"][0]) == {"path", "data", "base64"}


def test_serve_help_gives_the_settings_defaults():
    import re

    text = " ".join(CliRunner().invoke(cli_app, ["serve", "--help"], terminal_width=200).output.split())
    shown = dict(re.findall(r"--([a-z-]+) <\w+> (?:(?!--)[^[])*\[default: ([^],]+)", text))
    assert len(shown) == 7, shown
    for flag, value in shown.items():
        default = ServeSettings.model_fields[flag.replace("-", "_")].default
        assert float(value) == default if isinstance(default, (int, float)) else value == default, flag


def test_max_faces_setting_reaches_the_models(monkeypatch):
    monkeypatch.setenv("MASKWATCH_MAX_FACES", "7")
    app = create_app()
    assert app.state.settings.max_faces == 7 and app.state.models.get().max_faces == 7
    with pytest.raises(SettingsError):
        load_settings(max_faces=0)


def test_docs_give_400_for_bad_parameters_not_422():
    c = TestClient(create_app())
    spec = c.get("/openapi.json").json()
    assert not any("422" in op.get("responses", {}) for path in spec["paths"].values() for op in path.values())
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert "400" in spec["paths"]["/v1/detect"]["post"]["responses"]
    assert c.post("/v1/detect?threshold=high", json={"images": ["x"]}).status_code == 400  # as documented


def test_rest_model_names_come_from_the_registry(monkeypatch):
    from maskwatch.core.registry import available
    from maskwatch.serve.routers import rest

    c = TestClient(create_app())
    r = c.post("/v1/detect?model=nope", json={"images": ["x"]})
    assert r.status_code == 400 and all(name in r.json()["error"] for name in available())
    monkeypatch.setattr(rest, "available", lambda: ["mobile"])  # a smaller installation
    assert "server" not in c.post("/v1/detect?model=server", json={"images": ["x"]}).json()["error"].split("of ")[-1]
