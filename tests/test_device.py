"""Where a model runs: Detector(device=...) and --device choose onnxruntime's providers; a device this
onnxruntime does not offer is a clear error naming it. These tests need no GPU."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from maskwatch import Detector
from maskwatch.cli import app
from maskwatch.core.device import CPU, CUDA, TENSORRT, providers_for
from maskwatch.samples import paths

GPU_BUILD = [TENSORRT, CUDA, CPU]


def test_device_names_give_the_provider_chains():
    assert providers_for("cpu", GPU_BUILD) == [CPU]
    assert providers_for("cuda", GPU_BUILD) == [(CUDA, {"device_id": 0}), CPU]
    assert providers_for("CUDA:1", GPU_BUILD) == [(CUDA, {"device_id": 1}), CPU]
    assert providers_for("tensorrt:2", GPU_BUILD) == [(TENSORRT, {"device_id": 2}), (CUDA, {"device_id": 2}), CPU]
    assert providers_for("auto", GPU_BUILD)[0] == (TENSORRT, {"device_id": 0})
    assert providers_for("auto", [CUDA, CPU])[0] == (CUDA, {"device_id": 0})
    assert providers_for("auto", [CPU]) == [CPU]


@pytest.mark.parametrize("bad", ["gpu", "cpu:1", "cuda:x", "", "cuda:-1"])
def test_unknown_device_names_are_refused(bad):
    with pytest.raises(ValueError, match="device must be one of"):
        providers_for(bad, GPU_BUILD)


def test_a_device_this_onnxruntime_lacks_is_named_with_the_fix():
    with pytest.raises(ValueError) as e:
        providers_for("cuda", [CPU])
    msg = str(e.value)
    assert "device cuda" in msg and CUDA in msg and "maskwatch[gpu]" in msg


def test_detector_on_the_cpu_is_the_default_and_unchanged():
    a, b = Detector("mobile"), Detector("mobile", device="cpu")
    assert a.device == b.device == "cpu" and b.session.get_providers() == [CPU]
    img = str(paths()[0])
    assert [f.to_dict() for f in a.detect(img)] == [f.to_dict() for f in b.detect(img)]
    with pytest.raises(ValueError, match="not both"):
        Detector("mobile", device="cpu", providers=[CPU])


def test_device_flag_on_a_machine_without_the_gpu_build(monkeypatch):
    import maskwatch.core.device as device

    monkeypatch.setattr(device, "available", lambda: [CPU])
    r = CliRunner().invoke(app, ["detect", str(paths()[0]), "--device", "cuda", "-f", "csv"])
    assert r.exit_code == 2 and r.stderr.startswith("error: --device cuda:"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = CliRunner().invoke(app, ["detect", str(paths()[0]), "--device", "cpu", "-f", "csv"])
    assert r.exit_code == 0 and r.stdout.startswith("label,")
