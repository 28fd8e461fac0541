"""Batch work over many pictures and videos: one report per picture or frame, errors included.

One bad file never stops the rest: it gives a report with ``error`` set.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from itertools import groupby
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np

from .annotate import annotate, anonymize, summarize, summarize_counts
from ..core.detector import Detector
from ..core.errors import MaskwatchError
from ..core.face import LABELS, Face
from ..core.imageio import ImageInput, load_image
from .sources import is_stream, is_video, open_capture

# A batch row's columns, in PaddleHub's order first, and each one's type: the one definition behind the
# CSV header, the table and the Ray pipeline's Arrow schema (ray/pipeline.py)
ROW_TYPES: dict[str, type] = {
    "label": str,
    "x1": float,
    "y1": float,
    "x2": float,
    "y2": float,
    "confidence": float,
    "image": str,
    "score": float,
    "frame": int,
    "error": str,
}
ROW_FIELDS = tuple(ROW_TYPES)


@dataclass
class Report:
    """What came of one picture (or one video frame)."""

    source: str
    faces: list[Face] = field(default_factory=list)
    error: str | None = None
    width: int | None = None
    height: int | None = None
    frame: int | None = None
    saved: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def rows(self) -> list[dict]:
        """The paper's rows: label, x1, y1, x2, y2, confidence, image path (+ score, frame, error)."""
        base = {"image": self.source, "frame": self.frame}
        if not self.faces:
            return [{**dict.fromkeys(ROW_FIELDS), **base, "error": self.error}]
        # faces found and then an error (an annotated picture that could not be written): keep both
        return [{**face_row(f.to_dict()), **base, "error": self.error} for f in self.faces]

    def to_dict(self) -> dict:
        d = {
            "image": self.source,
            "width": self.width,
            "height": self.height,
            "faces": [f.to_dict() for f in self.faces],
            "summary": summarize(self.faces),
            "error": self.error,
        }
        if self.frame is not None:
            d["frame"] = self.frame
        if self.saved:
            d["saved"] = self.saved
        return d


def face_row(d: dict) -> dict:
    """One serialised face (``Face.to_dict``) as the columns of a CSV row or table line."""
    x1, y1, x2, y2 = d["box"]
    return {
        "label": d["label"],
        "x1": x1,
        "y1": y1,
        "x2": x2,
        "y2": y2,
        "confidence": d["confidence"],
        "score": d["score"],
    }


def _save_path(save_dir: Path, source: str, common: Path | None) -> Path:
    p = Path(source)
    try:
        rel = p.resolve().relative_to(common) if common else Path(p.name)
    except ValueError:
        rel = Path(p.name)
    out = save_dir / rel
    if out.suffix.lower() not in (".jpg", ".jpeg", ".png", ".bmp", ".webp"):
        out = out.with_suffix(".jpg")
    return out


def common_root(paths: list[str]) -> Path | None:
    files = [Path(p).resolve() for p in paths if Path(p).is_file()]
    if len(files) < 2:
        return files[0].parent if files else None
    try:
        return Path(os.path.commonpath([str(f.parent) for f in files]))
    except ValueError:
        return None


@dataclass(frozen=True)
class Options:
    """What a batch keeps of each picture besides its rows (``detect --classes --anonymize --save-txt --save-crop``)."""

    classes: frozenset[str] | None = None  # only faces with these labels are reported, drawn and saved
    anonymize: str | None = None  # "blur" or "pixelate": faces hidden in every picture saved
    save_txt: bool = False  # YOLO labels (class cx cy w h confidence, normalised) under SAVE_DIR/labels/
    save_crop: bool = False  # each face's crop under SAVE_DIR/crops/LABEL/

    def keep(self, faces: list[Face]) -> list[Face]:
        return faces if self.classes is None else [f for f in faces if f.label in self.classes]


NO_OPTIONS = Options()


def detect_image(
    detector: Detector,
    source: str,
    save_dir: Path | None = None,
    common: Path | None = None,
    data: ImageInput | None = None,
    options: Options = NO_OPTIONS,
) -> Report:
    """The report for one picture: ``source`` names it (and is read, unless ``data`` holds the picture already:
    encoded bytes or a BGR array, as a Ray read step gives)."""
    try:
        img = load_image(source if data is None else data)
        faces = options.keep(detector.detect(img))
    except MaskwatchError as exc:
        return Report(source, error=str(exc.reason) if hasattr(exc, "reason") else str(exc))
    except Exception as exc:  # nothing may stop the batch; say what happened
        return Report(source, error=f"unexpected error: {type(exc).__name__}: {exc}")
    rep = Report(source, faces, width=img.shape[1], height=img.shape[0])
    if save_dir is not None:
        out = _save_path(Path(save_dir), source, common)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            written = cv2.imwrite(str(out), annotate(img, faces, anonymize_faces=options.anonymize))
            written = written and save_extras(
                img, faces, Path(save_dir), out.relative_to(save_dir).with_suffix(""), options
            )
        except (OSError, cv2.error):
            written = False
        if written:
            rep.saved = str(out)
        else:
            rep.error = f"could not write annotated picture to {out}"
    return rep


def save_extras(img: np.ndarray, faces: list[Face], save_dir: Path, stem: Path, options: Options) -> bool:
    """``--save-txt``: ``SAVE_DIR/labels/STEM.txt``, a line per face, ``class cx cy w h confidence``
    (normalised, class in ``LABELS`` order: YOLO's layout, which ``maskwatch eval`` and training read);
    ``--save-crop``: ``SAVE_DIR/crops/LABEL/STEM_I.jpg`` per face (hidden too under ``--anonymize``).
    False when a file could not be written."""
    h, w = img.shape[:2]
    if options.save_txt:
        txt = save_dir / "labels" / stem.with_suffix(".txt")
        txt.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        for f in faces:
            x1, y1, x2, y2 = f.box
            cx, cy, bw, bh = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h
            lines.append(f"{LABELS.index(f.label)} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f} {f.confidence:.4f}\n")
        txt.write_text("".join(lines))
    if options.save_crop:
        shown = anonymize(img, [f.box for f in faces], options.anonymize) if options.anonymize else img
        for i, f in enumerate(faces):
            x1, y1, x2, y2 = (int(round(v)) for v in f.box)
            crop = shown[max(0, y1) : min(h, y2), max(0, x1) : min(w, x2)]
            if crop.size:
                path = save_dir / "crops" / f.label / f"{stem.name}_{i}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                if not cv2.imwrite(str(path), crop):
                    return False
    return True


def detect_video(
    detector: Detector,
    source: str,
    save_dir: Path | None = None,
    stride: int = 1,
    max_frames: int | None = None,
    options: Options = NO_OPTIONS,
) -> Iterator[Report]:
    """Reports for every ``stride``-th frame of a video file, camera index or stream URL (``options``: as
    for pictures; labels and crops are named after the video and the frame).

    Read by ``watch.reader.FrameReader``, as ``watch`` reads: in a thread of its own, so that decoding
    the next frame overlaps the detector's work on this one, every frame kept in order, a file read
    past corrupt stretches (an error row says what was lost), frames off the stride not decoded."""
    from ..watch.reader import FrameReader, SourceError

    reader = FrameReader(source, every_frame=True, reconnect=False, stride=stride)
    try:
        reader.start()
    except SourceError as exc:
        yield Report(source, error=exc.reason)
        return
    writer = None
    n = 0
    index = 0
    try:
        while True:
            frame = reader.get(timeout=0.5)  # a wait that Ctrl-C interrupts
            if frame is None:
                if reader.done:
                    break
                continue
            img, index = frame.image, frame.index
            faces = options.keep(detector.detect(img))
            rep = Report(source, faces, width=img.shape[1], height=img.shape[0], frame=index)
            if save_dir is not None:
                name = Path(source).stem if not source.isdigit() else f"camera{source}"
                out_path = Path(save_dir) / f"{name}.mp4"
                if writer is None:
                    Path(save_dir).mkdir(parents=True, exist_ok=True)
                    size = (img.shape[1], img.shape[0])
                    writer = cv2.VideoWriter(str(out_path), cv2.VideoWriter.fourcc(*"mp4v"), reader.fps / stride, size)
                writer.write(annotate(img, faces, anonymize_faces=options.anonymize))
                save_extras(img, faces, Path(save_dir), Path(f"{name}_{index:06d}"), options)
                rep.saved = str(out_path)
            yield rep
            n += 1
            if max_frames and n >= max_frames:
                break
        if n == 0 and not reader.error:
            yield Report(source, error="video holds no readable frame")
        elif reader.error and not (max_frames and n >= max_frames):
            yield Report(source, frame=reader.end, error=reader.error)  # an error row: exit code 1
    except Exception as exc:  # a frame or the writer failed: the frames done stay, the rest of the batch goes on
        yield Report(source, frame=index, error=f"video stopped at frame {index}: {type(exc).__name__}: {exc}")
    finally:
        reader.stop()
        if writer is not None:
            writer.release()


def run(
    detector: Detector,
    sources: Iterable[tuple[str, str | None]],
    workers: int = 1,
    save_dir: Path | None = None,
    vid_stride: int = 1,
    on_done: Callable[[Report], None] | None = None,
    options: Options = NO_OPTIONS,
) -> Iterator[Report]:
    """Reports for every source in order; pictures run on ``workers`` threads (one shared detector).

    A video, camera or stream gives its reports frame by frame as they come (a camera never ends:
    its rows must not wait for the end).
    """
    items = list(sources)
    common = common_root([s for s, e in items if e is None and not is_video(s)])
    save = Path(save_dir) if save_dir else None

    def one(item: tuple[str, str | None]) -> list[Report]:
        src, err = item
        if err is not None:
            return [Report(src, error=err)]
        return [detect_image(detector, src, save, common, options=options)]

    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        for video, group in groupby(items, key=lambda it: it[1] is None and is_video(it[0])):
            if video:
                for src, _ in group:
                    for rep in detect_video(detector, src, save, vid_stride, options=options):
                        yield rep
                        if on_done:  # a video's progress is its frames
                            on_done(rep)
                continue
            for reps in pool.map(one, group) if pool else map(one, group):
                yield from reps
                if on_done:
                    on_done(reps[-1])
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


MAX_AUTO_WORKERS = 4  # pictures at once when not told: one per core, at most this many


def worker_plan(workers: int | None, items: Iterable[tuple[str, str | None]]) -> tuple[int, int | None]:
    """(pictures processed at once, onnxruntime threads of the shared detector) for a batch.

    Not told: one picture per core (at most ``MAX_AUTO_WORKERS``) when there is more than one picture,
    each run on one onnxruntime thread. The mobile network is small: two pictures on one thread each
    get far more done than one picture on two threads (docs/speed.md, Threads per call), and each
    worker decodes its own picture while the other runs. One picture
    or videos alone: one worker with the detector's own threads (the lowest latency). ``workers``
    given: that many, sharing the cores."""
    cores = os.cpu_count() or 1
    pictures = sum(1 for s, e in items if e is not None or not is_video(s))
    if workers is None:
        workers = min(cores, MAX_AUTO_WORKERS) if pictures > 1 else 1
    return workers, (max(1, cores // workers) if workers > 1 else None)


def work_units(items: Iterable[tuple[str, str | None]], stride: int = 1) -> int | None:
    """How many reports ``run`` will give for ``items``: a picture one, a video file each ``stride``-th of
    the frames its container declares (None: a camera or a stream, which has no end, or a count unknown)."""
    total = 0
    for src, err in items:
        if err is not None or not is_video(src):
            total += 1
            continue
        if is_stream(src):
            return None
        cap = open_capture(src)
        try:
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if cap.isOpened() else 1
        finally:
            cap.release()
        if n <= 0:
            return None
        total += -(-n // max(1, stride))
    return total


def overall_summary(reports: list[Report]) -> dict:
    faces = [f for r in reports for f in r.faces]
    s = summarize(faces)
    s["images"] = len({(r.source, r.frame) for r in reports})
    s["errors"] = sum(1 for r in reports if r.error)
    return s


class Tally:
    """``overall_summary`` counted one picture at a time, keeping nothing per picture (memory stays flat
    however long the run). The same figures, except for a picture named twice in one run: it counts twice
    here, once in ``overall_summary``."""

    def __init__(self) -> None:
        self.labels: Counter[str] = Counter()
        self.images = 0
        self.errors = 0

    def add(self, labels: Iterable[str], error: str | None) -> None:
        """One picture (or frame): the labels of its faces, and its error if it has one."""
        self.labels.update(labels)
        self.images += 1
        self.errors += error is not None

    def result(self) -> dict:
        return {**summarize_counts(self.labels), "images": self.images, "errors": self.errors}
