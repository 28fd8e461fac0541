"""Sample pictures shipped with the package (Kaggle "Face Mask Detection", andrewmvd 2020, CC0 1.0; see
CREDITS.md here): a crowd, masks worn wrongly, faces without a mask. ``maskwatch demo`` runs on them."""

from __future__ import annotations

from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parent


def paths() -> list[Path]:
    """The sample pictures, sorted by name."""
    return sorted(SAMPLES_DIR.glob("*.jpg"))
