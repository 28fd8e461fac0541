"""Running a detector over a labelled set and presenting the figures (``maskwatch eval``)."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text

from .datasets import Sample
from ..core.detector import Detector
from ..core.errors import MaskwatchError
from .metrics import ImageResult
from ..core.face import LABELS
from ..core.imageio import load_image

AP_MIN_SCORE = 0.02  # detections kept for the PR curves; the operating threshold applies elsewhere


def run_eval(
    det: Detector, samples: list[Sample], progress: bool = False, console=None
) -> tuple[list[ImageResult], list[str]]:
    """Detections (down to ``AP_MIN_SCORE``) paired with the truth, and the pictures that failed."""
    from rich.progress import Progress

    results, errors = [], []
    with Progress(console=console, disable=not progress, transient=True) as bar:
        task = bar.add_task("eval", total=len(samples))
        for s in samples:
            try:
                img = load_image(s.image)
            except MaskwatchError as exc:
                errors.append(str(exc))
                bar.advance(task)
                continue
            results.append(eval_image(det, img, s))
            bar.advance(task)
    return results, errors


def eval_image(det: Detector, img, sample: Sample, floor: float = AP_MIN_SCORE) -> ImageResult:
    """One picture's detections (down to ``floor``: ``AP_MIN_SCORE`` for precision-recall curves; the
    model's threshold where only its operating point is wanted, which is faster) paired with its truth:
    what ``run_eval`` does for each picture, also for pictures changed in memory (``evaluation.variants``)."""
    raw = det.detections(img, score_threshold=min(floor, det.score_threshold))
    return ImageResult(raw.boxes, raw.scores, raw.probs, sample.boxes, sample.labels, sample.ignore)


def format_report(m: dict, console) -> None:
    from rich.table import Table

    t = Table(
        title=f"{m['data']}{' (' + m['split'] + ')' if m.get('split') else ''}: {m['images']} pictures, model {m['model']}, IoU {m['iou']}{', head boxes' if m.get('head_boxes') else ''}"
    )
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_column("faces", justify="right")
    for k in LABELS:
        if k in m["ap"]:
            t.add_row(f"AP {k}", f"{m['ap'][k]:.4f}", str(m["gt_faces"].get(k, "")))
    if m.get("map") is not None:
        t.add_row("[bold]mAP[/]", f"[bold]{m['map']:.4f}[/]", "")
    t.add_row("[bold]face AP[/] (class-agnostic)", f"[bold]{m['face_ap']:.4f}[/]", str(m["gt_faces"]["face"]))
    thr = m["score_threshold"]
    for name, v in m["recall_by_height"].items():
        t.add_row(
            f"recall, height {name} px (score >= {thr:.2f})",
            "-" if v["recall"] is None else f"{v['recall']:.4f}",
            str(v["faces"]),
        )
    for name, v in m.get("recall_by_label", {}).items():
        t.add_row(f"recall, {name} faces (score >= {thr:.2f})", f"{v['recall']:.4f}", str(v["faces"]))
    if m.get("recall") is not None:
        t.add_row(f"recall, all (score >= {thr:.2f})", f"{m['recall']:.4f}", "")
    if m.get("precision") is not None:
        t.add_row(f"precision (score >= {thr:.2f})", f"{m['precision']:.4f}", "")
    if m.get("label_accuracy") is not None:
        t.add_row("label accuracy on matched faces", f"{m['label_accuracy']:.4f}", str(m["labelled_matches"]))
    console.print(t)
    if m.get("errors"):
        console.print(
            Text(f"{len(m['errors'])} pictures could not be read", style="red")
            + Text(": " + "; ".join(m["errors"][:5]))
        )


def plot_module():
    """matplotlib's pyplot, or a MaskwatchError naming the extra: call it before the work, not after."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MaskwatchError(f"--plot needs matplotlib: pip install 'maskwatch[plot]' ({exc})") from None
    return plt


def plot_curves(curves: dict, m: dict, path: Path) -> None:
    plt = plot_module()
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, (rec, prec) in curves.items():
        ap = m["face_ap"] if name == "face" else m["ap"].get(name, 0.0)
        ax.plot(rec, prec, label=f"{name} (AP {ap:.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    ax.set_title(f"{Path(m['data']).name}: precision-recall at IoU {m['iou']}")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
