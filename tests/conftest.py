"""Shared fixtures: the real-photo folder (skipped without it) and pictures the tests make."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path | None:
    env = os.environ.get("MASKWATCH_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if (cand / "kaggle-facemask").is_dir():
            return cand
    return None


@pytest.fixture(scope="session")
def data() -> Path:
    d = data_dir()
    if d is None:
        pytest.skip("real photos not available: set MASKWATCH_DATA or provide ../shared/data")
    return d


@pytest.fixture(scope="session")
def mobile():
    from maskwatch import Detector

    return Detector("mobile")


@pytest.fixture
def blank_jpeg(tmp_path) -> Path:
    """A picture with no face in it (a smooth gradient)."""
    img = np.tile(np.linspace(40, 200, 320, dtype=np.uint8)[None, :, None], (240, 1, 3))
    p = tmp_path / "blank.jpg"
    cv2.imwrite(str(p), img)
    return p


def kaggle_val(data: Path, n: int):
    from maskwatch.datasets import load_dataset

    return load_dataset(data / "kaggle-facemask", data / "kaggle-facemask" / "val.txt")[:n]
