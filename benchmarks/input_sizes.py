"""Choosing a model's runtime settings on the validation splits: input size and test-time flip.

    python benchmarks/input_sizes.py MODEL.onnx --sizes 640 800 960 [--flip] [--json out.json]

Prints Kaggle val.txt mAP and WIDER val.txt face AP for each setting (validation splits only:
these figures choose settings, they are not the held-out test the model cards report).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from maskwatch import Detector
from maskwatch.evaluation.datasets import load_dataset
from maskwatch.evaluation.metrics import evaluate_results
from maskwatch.evaluation.run import run_eval


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model")
    ap.add_argument("--sizes", type=int, nargs="+", default=[640, 800, 960])
    ap.add_argument("--flip", action="store_true", help="also try test-time flip")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("MASKWATCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    sets = {n: load_dataset(args.data / n, args.data / n / "val.txt") for n in ("kaggle-facemask", "wider-face-val-part")}
    rows = []
    for size in args.sizes:
        for flip in ([False, True] if args.flip else [False]):
            det = Detector(args.model, input_size=size, flip=flip)
            row = {"input_size": size, "flip": flip}
            for name, samples in sets.items():
                m = evaluate_results(run_eval(det, samples)[0], 0.5, det.score_threshold).to_dict()
                row[name] = {"map": m.get("map"), "face_ap": m["face_ap"], "ap": m["ap"], "label_accuracy": m["label_accuracy"]}
            rows.append(row)
            k, w = row["kaggle-facemask"], row["wider-face-val-part"]
            print(f"size {size:5d} flip {flip!s:5s}  kaggle mAP {k['map']:.4f} face AP {k['face_ap']:.4f}  "
                  f"wider face AP {w['face_ap']:.4f}  aps {json.dumps({a: round(b, 3) for a, b in k['ap'].items()})}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
