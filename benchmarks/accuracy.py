"""Accuracy of the shipped models on the validation splits, the figures of the model cards.

    python benchmarks/accuracy.py [--models mobile server] [--json benchmarks/results/accuracy.json]
    python benchmarks/accuracy.py --models mobile:0.9   # MODEL:X runs Detector(MODEL, classifier_below=X)
    python benchmarks/accuracy.py --models mobile mobile:0 --input-size 640 --zoom 0   # as the on-device page runs it

Kaggle ``val.txt`` (mAP at IoU 0.5 over mask / no_mask / incorrect, label accuracy) and WIDER
val part ``val.txt`` (class-agnostic face AP over all valid faces). Same code as ``maskwatch eval``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import DATA, detector  # noqa: E402

from maskwatch.evaluation.datasets import load_dataset  # noqa: E402
from maskwatch.evaluation.metrics import evaluate_results  # noqa: E402
from maskwatch.evaluation.run import run_eval  # noqa: E402

SETS = [("kaggle-facemask", "val.txt"), ("wider-face-val-part", "val.txt")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="+", default=["mobile", "server"], help="MODEL or MODEL:X (classifier_below=X)")
    ap.add_argument("--data", type=Path, default=DATA, help="data folder (default: $MASKWATCH_DATA, ../shared/data)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--input-size", type=int, help="a fixed input size (the long side) instead of the model's rule")
    ap.add_argument("--zoom", type=float, help="the crowd zoom (0: off; default: the model's)")
    args = ap.parse_args()
    out = {}
    for model in args.models:
        det = detector(model, input_size=args.input_size, zoom=args.zoom)
        key = (
            model
            + (f"@{args.input_size}" if args.input_size else "")
            + ("" if args.zoom is None else f" zoom {args.zoom:g}")
        )
        out[key] = {"score_threshold": det.score_threshold}
        for name, split in SETS:
            samples = load_dataset(args.data / name, args.data / name / split)
            results, errors = run_eval(det, samples)
            m = evaluate_results(results, 0.5, det.score_threshold).to_dict()
            out[key][f"{name}/{split}"] = m
            print(
                f"{key:7s} {name:22s} mAP {m.get('map') or 0:.4f}  face AP {m['face_ap']:.4f}  "
                f"recall {m['recall'] or 0:.4f}  label acc {m['label_accuracy'] or 0:.4f}  "
                f"recall<16 {m['recall_by_height']['<16']['recall'] or 0:.3f}"
            )
    if args.json:  # models not measured this time keep their earlier entries
        args.json.parent.mkdir(parents=True, exist_ok=True)
        old = json.loads(args.json.read_text()) if args.json.is_file() else {}
        args.json.write_text(json.dumps({**old, **out}, indent=2) + "\n")


if __name__ == "__main__":
    main()
