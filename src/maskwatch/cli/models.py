"""``maskwatch models``: the shipped models and their settings."""

from __future__ import annotations


def models():
    """List the shipped models."""
    from .. import models as registry
    from ..core.detector import classifier_files, read_metadata

    for name in registry.available():
        meta = read_metadata(registry.resolve(name))
        size = registry.resolve(name).stat().st_size / 1e6
        cls = ", ".join(classifier_files(meta)) or "-"
        print(f"{name:8s} {size:5.2f} MB  input {meta.get('input_size')}  threshold {meta.get('score_threshold')}"
              f"  flip {meta.get('flip', False)}  classifier {cls}")
