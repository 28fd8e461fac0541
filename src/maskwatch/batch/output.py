"""Writing reports as a table, CSV, JSON or JSON lines."""

from __future__ import annotations

import csv
import io
import json
import os
from typing import IO, Protocol, cast

from ..core.errors import MaskwatchError
from ..core.face import LABELS
from .annotate import summarize
from .runner import ROW_FIELDS, Report, overall_summary

FORMATS = ("table", "csv", "json", "jsonl")


class TextSink(Protocol):
    """Where a ``ReportWriter`` writes: a text file, stdout, or an ``OutputFile``."""

    def write(self, text: str, /) -> int: ...
    def flush(self) -> None: ...
    def isatty(self) -> bool: ...


class OutputError(MaskwatchError):
    """The results could not be written (a full disk, an I/O error): names the file; what was written
    before stays a valid file."""

    def __init__(self, name: str, exc: OSError):
        self.name = name
        self.reason = exc.strerror or str(exc)
        self.errno = exc.errno
        super().__init__(f"cannot write {name}: {self.reason}")


class OutputFile:
    """A text file written in whole pieces: each ``write`` lands whole or not at all. When the disk
    refuses a piece (``ENOSPC``, ``EIO``...), the file is cut back to the end of the last whole piece and
    ``OutputError`` names it; rows are never left half written.

    ``write(text, tail)`` also keeps ``tail`` at the end of the file (a JSON document's closing
    brackets), rewritten in place after each piece, so that the file is a whole document after every
    write, and still is when the disk fills: restoring the tail over bytes already on disk needs no
    new space."""

    def __init__(self, path: str | os.PathLike[str]):
        self.name = str(path)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        self._good = 0  # bytes of whole pieces written, the tail not counted
        self._tail = b""

    def write(self, text: str, tail: str | None = None) -> int:
        data = text.encode("utf-8")
        new_tail = self._tail if tail is None else tail.encode("utf-8")
        try:
            self._write_at(self._good, data + new_tail)
        except OSError as exc:
            self._restore()
            raise OutputError(self.name, exc) from None
        self._good += len(data)
        self._tail = new_tail
        return len(text)

    def _write_at(self, offset: int, data: bytes) -> None:
        view = memoryview(data)
        done = 0
        while done < len(view):
            done += os.pwrite(self._fd, view[done:], offset + done)

    def _restore(self) -> None:
        """Back to the last whole piece and its tail, in place (a device such as /dev/full cannot be cut)."""
        try:
            self._write_at(self._good, self._tail)
            os.ftruncate(self._fd, self._good + len(self._tail))
        except OSError:
            pass

    def flush(self) -> None:
        pass  # every write went to the file

    def isatty(self) -> bool:
        return os.isatty(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


_JSON_END = "\n  ]\n}\n"  # how a JSON report file ends after its last picture
_JSON_EMPTY_END = "]\n}\n"  # ... and with no picture


class ReportWriter:
    """Streams reports to ``out`` in one format; ``close`` writes what only the end can know.

    Every format is written as the reports come, so that an interruption (Ctrl-C) followed by ``close``
    leaves a valid file of what was finished: whole CSV rows and JSON lines, a closed JSON array.
    """

    def __init__(self, out: TextSink, fmt: str, summary: bool = False, per_image: bool = False):
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
        self.out, self.fmt, self.summary, self.per_image = out, fmt, summary, per_image
        self.reports: list[Report] = []
        self._written = 0  # reports written whole
        self._closed = False
        self.failed = False  # the output refused a write
        if fmt == "csv":
            self._emit(",".join(ROW_FIELDS) + "\r\n")
        elif fmt == "json":
            self._emit('{\n  "images": [', _JSON_EMPTY_END)

    def write(self, rep: Report) -> None:
        """One report, written as one piece (all its rows, or its JSON object) and flushed.

        ``OutputError`` if the output refuses it (a full disk): nothing of it is kept, and ``close``
        still ends the file validly where it can."""
        if self.fmt == "csv":
            buf = io.StringIO()
            rows = csv.DictWriter(buf, fieldnames=list(ROW_FIELDS), extrasaction="ignore")
            rows.writerows(csv_cells(row) for row in rep.rows())
            piece = buf.getvalue()
        elif self.fmt == "jsonl":
            piece = json.dumps(rep.to_dict()) + "\n"
        elif self.fmt == "json":
            sep = "\n" if not self._written else ",\n"
            piece = sep + _indent(json.dumps(rep.to_dict(), indent=2), 4)
        else:
            piece = ""
        self._emit(piece, _JSON_END if self.fmt == "json" else None)
        self.reports.append(rep)
        self._written += 1

    def _emit(self, text: str, tail: str | None = None) -> None:
        """``text`` to the output, whole; ``tail``: what the file must end with until the next piece
        (kept at the end by an ``OutputFile``; other outputs get it at ``close``)."""
        try:
            if isinstance(self.out, OutputFile):
                self.out.write(text, tail)
            elif text:
                self.out.write(text)
            self.out.flush()
        except OutputError:
            self.failed = True
            raise
        except OSError as exc:  # stdout, or a file object the caller opened
            self.failed = True
            raise OutputError(getattr(self.out, "name", "the output"), exc) from None

    def close(self) -> None:
        """Finish the output (safe to call after an interruption, and more than once). After a refused
        write the end is tried once more and not raised again (the first refusal was)."""
        if self._closed:
            return
        self._closed = True
        failed_before = self.failed
        try:
            if self.fmt == "json":
                end = _JSON_END if self._written else _JSON_EMPTY_END
                if self.summary and not failed_before:
                    summary = _indent(json.dumps(overall_summary(self.reports), indent=2), 2)[2:]
                    end = end.removesuffix("\n}\n") + ',\n  "summary": ' + summary + "\n}\n"
                if isinstance(self.out, OutputFile):
                    self._emit("", end)  # the tail becomes the end, summary included
                else:
                    self._emit(end)
            elif self.fmt == "jsonl" and self.summary and not failed_before:
                self._emit(json.dumps({"summary": overall_summary(self.reports)}) + "\n")
            elif self.fmt == "table":
                try:
                    self._table()
                except OSError as exc:
                    self.failed = True
                    raise OutputError(getattr(self.out, "name", "the output"), exc) from None
        except OutputError:
            if not failed_before:
                raise

    def _table(self) -> None:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        # a file or a pipe gets each row on one line, however long the file names
        console = Console(
            file=cast(IO[str], self.out), width=max(100, Console().width) if self.out.isatty() else 100_000
        )
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


def _what(reports: list[Report], overall: dict) -> str:
    """What the overall line sums: "12 inputs", or "1 video: 100 frames" (and the pictures beside it)."""
    frames = [r for r in reports if r.frame is not None]
    if not frames:
        return f"{overall['images']} inputs"
    videos = len({r.source for r in frames})
    pictures = len({r.source for r in reports if r.frame is None})
    return f"{videos} video{'s' if videos != 1 else ''}: {len({(r.source, r.frame) for r in frames})} frames" + (
        f", {pictures} other inputs" if pictures else ""
    )


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
    lines = ["summary", "  ".join(head) + "  image", line(o, f"all ({_what(reports, o)})")]
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
