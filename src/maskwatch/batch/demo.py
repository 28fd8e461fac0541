"""``maskwatch demo``: the main job (a CSV of faces, annotated pictures, the summary) on the sample
pictures shipped in the package, so that a first run needs nothing but the install."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..core.detector import Detector
from ..samples import paths as sample_paths
from .output import ReportWriter, summary_text
from .runner import overall_summary, run

DEMO_DIR = Path("maskwatch-demo")


@dataclass
class DemoResult:
    folder: Path
    csv: Path
    annotated: Path
    summary_file: Path
    summary: dict
    summary_text: str


def run_demo(folder: str | os.PathLike[str] = DEMO_DIR, model: str = "mobile") -> DemoResult:
    """Detect on the sample pictures into ``folder``: ``faces.csv`` (the rows ``maskwatch detect`` writes),
    ``annotated/`` (each picture with its boxes) and ``summary.txt`` (faces per label, per picture).
    Files of an earlier demo in that folder are replaced."""
    folder = Path(folder)
    annotated = folder / "annotated"
    annotated.mkdir(parents=True, exist_ok=True)
    det = Detector(model)
    items: list[tuple[str, str | None]] = [(str(p), None) for p in sample_paths()]
    csv_path = folder / "faces.csv"
    with open(csv_path, "w", newline="") as out:
        writer = ReportWriter(out, "csv")
        try:
            for rep in run(det, items, save_dir=annotated):
                writer.write(rep)
        finally:
            writer.close()
    text = summary_text(writer.reports, per_image=True)
    summary_file = folder / "summary.txt"
    summary_file.write_text(text)
    return DemoResult(folder, csv_path, annotated, summary_file, overall_summary(writer.reports), text)
