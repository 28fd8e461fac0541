"""Shipped models: ONNX files made by ``maskwatch train``, each with a model card beside it.

This package only holds the files. Names, aliases, paths and settings live in ``maskwatch.core.registry``,
which imports ``MODEL_DIR`` from here; nothing here imports back.
"""

from __future__ import annotations

from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent
