"""Writing reports as a table, CSV, JSON or JSON lines."""

from __future__ import annotations

import csv
import json
from typing import TextIO

from ..core.face import LABELS
from .annotate import summarize
from .runner import ROW_FIELDS, Report, overall_summary

FORMATS = ("table", "csv", "json", "jsonl")


class ReportWriter:
    """Streams reports to ``out`` in one format; ``close`` writes what only the end can know.

    Every format is written as the reports come, so that an interruption (Ctrl-C) followed by ``close``
    leaves a valid file of what was finished: whole CSV rows and JSON lines, a closed JSON array.
    """

    def __init__(self, out: TextIO, fmt: str, summary: bool = False, per_image: bool = False):
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
        self.out, self.fmt, self.summary, self.per_image = out, fmt, summary, per_image
        self.reports: list[Report] = []
        self._csv = None
        self._closed = False
        if fmt == "csv":
            self._csv = csv.DictWriter(out, fieldnames=list(ROW_FIELDS), extrasaction="ignore")
            self._csv.writeheader()
        elif fmt == "json":
            out.write('{\n  "images": [')

    def write(self, rep: Report) -> None:
        self.reports.append(rep)
        if self._csv is not None:
            for row in rep.rows():
                self._csv.writerow(csv_cells(row))
        elif self.fmt == "jsonl":
            self.out.write(json.dumps(rep.to_dict()) + "\n")
        elif self.fmt == "json":
            sep = "\n" if len(self.reports) == 1 else ",\n"
            self.out.write(sep + _indent(json.dumps(rep.to_dict(), indent=2), 4))
        self.out.flush()

    def close(self) -> None:
        """Finish the output (safe to call after an interruption, and more than once)."""
        if self._closed:
            return
        self._closed = True
        if self.fmt == "json":
            self.out.write("\n  ]" if self.reports else "]")
            if self.summary:
                self.out.write(',\n  "summary": ' + _indent(json.dumps(overall_summary(self.reports), indent=2), 2)[2:])
            self.out.write("\n}\n")
        elif self.fmt == "jsonl" and self.summary:
            self.out.write(json.dumps({"summary": overall_summary(self.reports)}) + "\n")
        elif self.fmt == "table":
            self._table()
        self.out.flush()

    def _table(self) -> None:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        # a file or a pipe gets each row on one line, however long the file names
        console = Console(file=self.out, width=max(100, Console().width) if self.out.isatty() else 100_000)
        t = Table(show_lines=False)
        for c in ("label", "x1", "y1", "x2", "y2", "confidence", "image"):
            t.add_column(c, justify="right" if c not in ("label", "image") else "left")
        style = {"mask": "green", "no_mask": "red", "incorrect": "yellow"}
        for rep in self.reports:
            src = rep.source + (f" #{rep.frame}" if rep.frame is not None else "")
            if rep.error:
                t.add_row(Text("error", style="bold red"), "", "", "", "", "", Text(f"{src}: {rep.error}"))
            elif not rep.faces:
                t.add_row(Text("(no face)", style="dim"), "", "", "", "", "", Text(src))
            for row in rep.rows() if rep.faces else []:
                t.add_row(
                    Text(row["label"], style=style[row["label"]]),
                    *(f"{row[k]:.0f}" for k in ("x1", "y1", "x2", "y2")),
                    f"{row['confidence']:.3f}",
                    Text(src),
                )
        console.print(t)
        if self.summary:
            self.out.write(summary_text(self.reports, self.per_image))


def csv_cells(row: dict) -> dict:
    """One row as the CSV writes it (an empty cell for None)."""
    return {k: ("" if v is None else v) for k, v in row.items()}


def _indent(text: str, n: int) -> str:
    pad = " " * n
    return "\n".join(pad + line for line in text.splitlines())


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def summary_text(reports: list[Report], per_image: bool = False, overall: dict | None = None) -> str:
    """Plain text, one line per row: the overall figures first (``overall``, or computed from ``reports``),
    then each picture when ``per_image``.

    The name comes last so that long paths never break the columns (and are printed exactly as they are).
    """
    head = ("mask", "no_mask", "incorrect", "faces", "mask rate")

    def line(s: dict, name: str) -> str:
        return (
            "  ".join(
                f"{v:>{len(h)}}" for h, v in zip(head, [*(s[k] for k in LABELS), s["faces"], _pct(s["mask_rate"])])
            )
            + f"  {name}"
        )

    o = overall_summary(reports) if overall is None else overall
    lines = ["summary", "  ".join(head) + "  image", line(o, f"all ({o['images']} inputs)")]
    if per_image:
        for rep in reports:
            name = rep.source + (f" #{rep.frame}" if rep.frame is not None else "")
            if rep.error:
                lines.append("  ".join(f"{'-':>{len(h)}}" for h in head) + f"  {name}: error")
            else:
                lines.append(line(summarize(rep.faces), name))
    frames = [r for r in reports if r.frame is not None]
    if frames:  # faces in videos are summed over frames: say so, and where people are counted
        videos = len({r.source for r in frames})
        lines.append(
            f"videos: {videos}, {len(frames)} frames, {sum(len(r.faces) for r in frames)} faces summed over "
            "frames (a person seen in many frames counts many times; `maskwatch watch VIDEO` counts people)"
        )
    if o["errors"]:
        lines.append(f"{o['errors']} of {o['images']} inputs failed")
    return "\n".join(lines) + "\n"
