"""Choosing the server model's second stage on the validation splits: which crop classifier, how
much its classes weigh against the detector head, and how strongly its background class vetoes.

    python benchmarks/second_stage.py runs/server-det/server-det.onnx runs/server_vcls/server_vcls.onnx \\
        runs/server_fvcls/server_fvcls.onnx --weights 0.5 0.7 --verify 0 0.5 1 --threshold 0.371 [--json out.json]

Each picture is read once; the detector runs once on it (960 px, test-time flip, as the server
model does) and each classifier once per detection; every combination is then merged with
``second_stage``, the function ``Detector`` uses, and scored like ``maskwatch eval``: Kaggle val.txt mAP and WIDER val
part val.txt face AP (validation splits: these figures choose settings). ``--crop-flip`` also
tries each classifier on every crop and its mirror image, averaged (metadata ``classifier_flip``).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from maskwatch import Detector
from maskwatch.evaluation.datasets import load_dataset
from maskwatch.core.detections import Detections
from maskwatch.core.detector import CropModel, second_stage
from maskwatch.evaluation.metrics import ImageResult, evaluate_results
from maskwatch.core.errors import MaskwatchError
from maskwatch.evaluation.run import AP_MIN_SCORE
from maskwatch.core.imageio import load_image

SETS = ("kaggle-facemask", "wider-face-val-part")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "detector",
        type=Path,
        help="a maskwatch detector .onnx without classifier (e.g. runs/server-det/server-det.onnx)",
    )
    ap.add_argument("classifiers", type=Path, nargs="+", help="crop classifier .onnx files, each tried alone")
    ap.add_argument(
        "--weights", type=float, nargs="+", default=[0.5], help="classifier weights against the detector head"
    )
    ap.add_argument("--verify", type=float, nargs="+", default=[0.5], help="veto strengths (P(face) exponent)")
    ap.add_argument(
        "--crop-flip", action="store_true", help="also try each classifier on crops and their mirror images, averaged"
    )
    ap.add_argument("--input-size", type=int, default=960)
    ap.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("MASKWATCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")),
    )
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--threshold", type=float, default=0.5, help="operating threshold for recall, precision and label accuracy"
    )
    args = ap.parse_args()

    det = Detector(args.detector, input_size=args.input_size, flip=True, score_threshold=AP_MIN_SCORE)
    if det.meta.get("classifier"):
        raise SystemExit(f"{args.detector}: has a classifier of its own; give the bare detector file")
    names = [c.name for c in args.classifiers]
    models = [CropModel.load(c) for c in args.classifiers]
    if args.crop_flip:
        names += [f"{c.name} + flip" for c in args.classifiers]
        models += [CropModel.load(c, flip=True) for c in args.classifiers]
    # one pass over each set: every picture is read once, the detector and each classifier run once
    firsts, outs = {}, {(c, name): [] for c in range(len(models)) for name in SETS}
    for name in SETS:
        firsts[name] = []
        for s in load_dataset(args.data / name, args.data / name / "val.txt"):
            try:
                img = load_image(s.image)
            except MaskwatchError as exc:
                print(f"skipped: {exc}")
                continue
            raw = det.detections(img, AP_MIN_SCORE)  # what run_eval (maskwatch eval) does
            firsts[name].append(ImageResult(raw.boxes, raw.scores, raw.probs, s.boxes, s.labels, s.ignore))
            for c, model in enumerate(models):
                outs[(c, name)].append(model(img, raw.boxes) if len(raw) else None)
    rows = []
    for c, cname in enumerate(names):
        for w in args.weights:
            for a in args.verify:
                row = {"classifier": cname, "classifier_weight": w, "verify_weight": a}
                for name in SETS:
                    merged = []
                    for r, o in zip(firsts[name], outs[(c, name)]):
                        if o is not None:
                            m = second_stage(Detections(r.pred_boxes, r.pred_scores, r.pred_probs), [o], w, a)
                            k = m.scores >= AP_MIN_SCORE  # as Detector does after the veto
                            r = ImageResult(m.boxes[k], m.scores[k], m.probs[k], r.gt_boxes, r.gt_labels, r.gt_ignore)
                        merged.append(r)
                    m = evaluate_results(merged, 0.5, args.threshold).to_dict()
                    row[name] = {
                        "map": m.get("map"),
                        "ap": m["ap"],
                        "face_ap": m["face_ap"],
                        "label_accuracy": m["label_accuracy"],
                    }
                rows.append(row)
                k, wi = row["kaggle-facemask"], row["wider-face-val-part"]
                print(
                    f"{cname:27s} weight {w:.2f} verify {a:.2f}: Kaggle mAP {k['map']:.4f} "
                    f"({' / '.join(f'{v:.3f}' for v in k['ap'].values())}) face AP {k['face_ap']:.4f} "
                    f"label acc {k['label_accuracy']:.3f} | WIDER face AP {wi['face_ap']:.4f}",
                    flush=True,
                )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"detector": str(args.detector), "input_size": args.input_size, "flip": True, "rows": rows}, indent=1
            )
        )


if __name__ == "__main__":
    main()
