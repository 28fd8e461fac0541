"""Shipped models: ONNX files made by ``maskwatch train``, each with a model card beside it."""

from __future__ import annotations

from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent

# name -> detector file; PaddleHub module names are aliases
ALIASES = {
    "mobile": "mobile",
    "server": "server",
    "pyramidbox_lite_mobile_mask": "mobile",
    "pyramidbox_lite_server_mask": "server",
}


def available() -> list[str]:
    return sorted(n for n in ("mobile", "server") if (MODEL_DIR / f"{n}.onnx").is_file())


def resolve(name: str) -> Path | None:
    """The file of a shipped model name, or None when ``name`` is not one."""
    key = ALIASES.get(str(name).lower())
    return MODEL_DIR / f"{key}.onnx" if key else None
