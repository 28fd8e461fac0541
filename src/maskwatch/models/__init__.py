"""Shipped models: ONNX files made by ``maskwatch train``, each with a model card beside it.

Names, aliases and settings live in ``maskwatch.core.registry``; this package only holds the files.
"""

from __future__ import annotations

from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent


def available() -> list[str]:
    from ..core.registry import available

    return available()


def resolve(name: str) -> Path | None:
    """The file of a shipped model name, or None when ``name`` is not one."""
    from ..core.registry import shipped_path

    return shipped_path(name)
