"""Hands and objects over mouths are not masks: what each model calls a bare face once something
covers its mouth.

    python benchmarks/occluded.py [--models mobile mobile:0 server] [--draws 3] [--json benchmarks/results/occluded.json]

On every Kaggle ``val.txt`` face labelled ``no_mask`` (at least 16 px tall), the training code's
occluder (``train/occluders.py``: a hand, fruit, a phone or a cup over the mouth, drawn with a fixed
seed; ``--draws`` copies of each picture, each with other occluders) is drawn into the picture; each model then runs on the whole picture, as a user's call does,
at its default threshold. Per model: of the occluded faces, how many it finds (a detection with IoU
>= 0.3) and what it calls them; the same faces in the untouched pictures for comparison. PaddleHub's
model is known to call such faces ``mask``. The occluders are the synthetic ones the models were
trained with (on other pictures), so this measures the failure on drawn hands, not on real ones.
MODEL:X runs ``Detector(MODEL, classifier_below=X)`` (``mobile:0``: without its crop classifier).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import DATA, detector, report  # noqa: E402

from maskwatch import Detector  # noqa: E402
from maskwatch.core.face import LABELS  # noqa: E402
from maskwatch.core.geometry import iou_matrix  # noqa: E402
from maskwatch.evaluation.datasets import load_dataset  # noqa: E402
from maskwatch.train.data import PASTE_MIN_FACE, paste_on_face  # noqa: E402
from maskwatch.train.occluders import draw_occluder  # noqa: E402

NO_MASK = LABELS.index("no_mask")


def occluded_pictures(data: Path, draws: int = 1) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(name, untouched picture, occluded picture, boxes of the occluded faces): ``draws`` occluded
    copies of each val picture, each with its own occluders."""
    root = data / "kaggle-facemask"
    out = []
    for k, s in enumerate(load_dataset(root, root / "val.txt")):
        img = cv2.imread(str(s.image))
        if img is None:
            continue
        for d in range(draws):
            rng = np.random.default_rng([k, d])
            covered = img.copy()
            boxes = [
                b
                for b, lab, ig in zip(s.boxes, s.labels, s.ignore)
                if lab == NO_MASK
                and not ig
                and b[3] - b[1] >= PASTE_MIN_FACE
                and paste_on_face(covered, b, lambda sq, e, rng=rng: draw_occluder(sq, rng, e))
            ]
            if boxes:
                out.append((s.image.name, img, covered, np.array(boxes, np.float32)))
    return out


def labels_of(det: Detector, img: np.ndarray, boxes: np.ndarray) -> list[str | None]:
    """The label the model gives each face of ``boxes`` (None: not found, IoU < 0.3)."""
    found = det.detections(img)
    if not len(found):
        return [None] * len(boxes)
    iou = iou_matrix(boxes, found.boxes)
    names = [det.labels[i] for i in found.probs.argmax(1)]
    return [names[int(j)] if iou[i, j] >= 0.3 else None for i, j in enumerate(iou.argmax(1))]


def tally(labels: list[str | None]) -> dict:
    n = len(labels)
    found = [x for x in labels if x is not None]
    out = {"faces": n, "found": len(found), "found_rate": round(len(found) / n, 4)}
    for name in LABELS:
        out[f"called_{name}"] = sum(x == name for x in found)
        out[f"{name}_rate_of_found"] = round(out[f"called_{name}"] / max(len(found), 1), 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="+", default=["mobile", "mobile:0", "server"], help="MODEL or MODEL:X")
    ap.add_argument("--draws", type=int, default=3, help="occluded copies of each picture (other occluders)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--data", type=Path, default=DATA, help="data folder (default: $MASKWATCH_DATA, ../shared/data)")
    args = ap.parse_args()
    pictures = occluded_pictures(args.data, args.draws)
    out: dict = {
        "data": "kaggle-facemask val.txt, no_mask faces >= 16 px",
        "draws": args.draws,
        "occluded_pictures": len(pictures),
        "faces": int(sum(len(b) for *_, b in pictures)),
        "models": {},
    }
    for model in args.models:
        det = detector(model)
        plain, covered = [], []
        for _, img, cov, boxes in pictures:
            plain += labels_of(det, img, boxes)
            covered += labels_of(det, cov, boxes)
        out["models"][model] = {"occluded": tally(covered), "untouched": tally(plain)}
        o, u = out["models"][model]["occluded"], out["models"][model]["untouched"]
        print(
            f"{model:9s} occluded: found {o['found']}/{o['faces']}, called no_mask {o['no_mask_rate_of_found']:.3f}, "
            f"mask {o['mask_rate_of_found']:.3f}, incorrect {o['incorrect_rate_of_found']:.3f}  |  untouched: found "
            f"{u['found']}/{u['faces']}, no_mask {u['no_mask_rate_of_found']:.3f}, mask {u['mask_rate_of_found']:.3f}",
            flush=True,
        )
    report(out, args.json)


if __name__ == "__main__":
    main()
