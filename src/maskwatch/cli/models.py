"""``maskwatch models``: the shipped models and their settings."""

from __future__ import annotations


def models():
    """List the shipped models."""
    from .. import models as registry
    from ..core.detector import classifier_files, read_metadata

    for name in registry.available():
        path = registry.resolve(name)
        meta = read_metadata(path)
        files = [path, *(path.parent / f for f in classifier_files(meta))]  # the size is all the model's files
        size = sum(f.stat().st_size for f in files) / 1e6
        cls = ", ".join(classifier_files(meta)) or "-"
        print(f"{name:8s} {size:5.2f} MB  input {meta.get('input_size')}  threshold {meta.get('score_threshold')}"
              f"  flip {meta.get('flip', False)}  classifier {cls}")
