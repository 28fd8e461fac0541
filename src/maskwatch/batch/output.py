"""Writing reports as a table, CSV, JSON or JSON lines."""

from __future__ import annotations

import csv
import io
import json
from typing import Iterable, TextIO

from .runner import ROW_FIELDS, Report, overall_summary
from ..core.face import LABELS

FORMATS = ("table", "csv", "json", "jsonl")


class ReportWriter:
    """Streams reports to ``out`` in one format; ``close`` writes what only the end can know."""

    def __init__(self, out: TextIO, fmt: str, summary: bool = False):
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
        self.out, self.fmt, self.summary = out, fmt, summary
        self.reports: list[Report] = []
        self._csv = None
        if fmt == "csv":
            self._csv = csv.DictWriter(out, fieldnames=list(ROW_FIELDS), extrasaction="ignore")
            self._csv.writeheader()

    def write(self, rep: Report) -> None:
        self.reports.append(rep)
        if self.fmt == "csv":
            for row in rep.rows():
                self._csv.writerow({k: ("" if v is None else v) for k, v in row.items()})
        elif self.fmt == "jsonl":
            self.out.write(json.dumps(rep.to_dict()) + "\n")
        self.out.flush()

    def close(self) -> None:
        if self.fmt == "json":
            doc = {"images": [r.to_dict() for r in self.reports]}
            if self.summary:
                doc["summary"] = overall_summary(self.reports)
            json.dump(doc, self.out, indent=2)
            self.out.write("\n")
        elif self.fmt == "jsonl" and self.summary:
            self.out.write(json.dumps({"summary": overall_summary(self.reports)}) + "\n")
        elif self.fmt == "table":
            self._table()
        self.out.flush()

    def _table(self) -> None:
        from rich.console import Console
        from rich.table import Table

        console = Console(file=self.out, width=max(100, Console().width) if self.out.isatty() else 160)
        t = Table(show_lines=False)
        for c in ("label", "x1", "y1", "x2", "y2", "confidence", "image"):
            t.add_column(c, justify="right" if c not in ("label", "image") else "left")
        style = {"mask": "green", "no_mask": "red", "incorrect": "yellow"}
        for rep in self.reports:
            src = rep.source + (f" #{rep.frame}" if rep.frame is not None else "")
            if rep.error:
                t.add_row("[bold red]error[/]", "", "", "", "", "", f"{src}: {rep.error}")
            elif not rep.faces:
                t.add_row("[dim](no face)[/]", "", "", "", "", "", src)
            for f in rep.faces:
                t.add_row(f"[{style[f.label]}]{f.label}[/]", *(f"{v:.0f}" for v in f.box), f"{f.confidence:.3f}", src)
        console.print(t)
        if self.summary:
            summary_table(self.reports, console)


def summary_table(reports: Iterable[Report], console) -> None:
    from rich.table import Table

    reports = list(reports)
    t = Table(title="summary")
    for c in ("image", *LABELS, "faces", "mask rate"):
        t.add_column(c, justify="left" if c == "image" else "right")
    for rep in reports:
        s = rep.to_dict()["summary"]
        name = rep.source + (f" #{rep.frame}" if rep.frame is not None else "")
        if rep.error:
            t.add_row(name, "", "", "", "error", "")
            continue
        t.add_row(name, *(str(s[k]) for k in LABELS), str(s["faces"]), _pct(s["mask_rate"]))
    o = overall_summary(reports)
    t.add_row("[bold]all[/]", *(f"[bold]{o[k]}[/]" for k in LABELS), f"[bold]{o['faces']}[/]", f"[bold]{_pct(o['mask_rate'])}[/]")
    console.print(t)
    if o["errors"]:
        console.print(f"[red]{o['errors']} of {o['images']} inputs failed[/]")


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def summary_text(reports: list[Report]) -> str:
    buf = io.StringIO()
    from rich.console import Console

    summary_table(reports, Console(file=buf, width=160))
    return buf.getvalue()
