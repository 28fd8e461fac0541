"""Choosing a model's runtime settings on the validation splits: input size rule and test-time flip.

    python benchmarks/input_sizes.py MODEL.onnx --sizes 640 800 960 [--flip] [--json out.json]
    python benchmarks/input_sizes.py MODEL.onnx --upscales 1 1.25 1.5 2 --min-input 640 --max-input 1280
    python benchmarks/input_sizes.py yunet --sizes 640 --upscales 1   # YuNet-n itself, same evaluation
    python benchmarks/input_sizes.py mobile --upscales 1 --zooms 0 1.5 1.75 2   # the crowd zoom off and on

Prints Kaggle val.txt mAP and label accuracy, WIDER val.txt face AP and recall by face size, and
the mean time per WIDER picture (decoding excluded), for each setting: a fixed long side
(``--sizes``) or the input sized to the picture (``--upscales``: the picture's own long side times
the factor, between ``--min-input`` and ``--max-input``; tiles above), and with ``--zooms`` the
second, enlarged pass for pictures whose first pass finds small faces (0: off; default: the
model's own setting). ``yunet`` evaluates the
teacher (../shared/teachers, needs the [train] extra to convert it) through the same code: its
face score and boxes exactly, with a class head that knows nothing (its mAP means nothing).
Validation splits only: these figures choose settings.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import cv2

from maskwatch import Detector
from maskwatch.core.imageio import load_image
from maskwatch.evaluation.datasets import load_dataset
from maskwatch.evaluation.metrics import ImageResult, evaluate_results
from maskwatch.evaluation.run import AP_MIN_SCORE


def yunet_as_maskwatch_file(folder: Path) -> Path:
    """YuNet-n's weights in maskwatch's file format (face score and boxes exactly YuNet's)."""
    from maskwatch.train.export import export_detector
    from maskwatch.train.teacher import teacher_path
    from maskwatch.train.yunet import YuNetMask

    net = YuNetMask()
    net.load_teacher(teacher_path())
    return export_detector(net, folder / "yunet-n.onnx", {"pad_value": 0, "input_size": 640, "score_threshold": 0.5})


def evaluate(det: Detector, samples: list, timed: bool = False) -> tuple[dict, float]:
    """Figures over ``samples`` and the mean milliseconds per picture (pictures decoded first)."""
    imgs = [load_image(s.image) for s in samples]
    results, spent = [], 0.0
    for s, img in zip(samples, imgs):
        t = time.perf_counter()
        d = det.detections(img, score_threshold=min(AP_MIN_SCORE, det.score_threshold))
        spent += time.perf_counter() - t
        results.append(ImageResult(d.boxes, d.scores, d.probs, s.boxes, s.labels, s.ignore))
    m = evaluate_results(results, 0.5, det.score_threshold).to_dict()
    return m, spent * 1000 / max(len(samples), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model", help="a model name or .onnx file, or 'yunet' for the teacher")
    ap.add_argument("--sizes", type=int, nargs="*", default=[])
    ap.add_argument("--upscales", type=float, nargs="*", default=[])
    ap.add_argument("--min-input", type=int, default=640)
    ap.add_argument("--max-input", type=int, default=1280)
    ap.add_argument("--flip", action="store_true", help="also try test-time flip")
    ap.add_argument("--zooms", type=float, nargs="*", default=[], help="crowd zoom factors to try (0: off)")
    ap.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("MASKWATCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")),
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    sets = {
        n: load_dataset(args.data / n, args.data / n / "val.txt") for n in ("kaggle-facemask", "wider-face-val-part")
    }
    tmp = tempfile.TemporaryDirectory()
    model = str(yunet_as_maskwatch_file(Path(tmp.name))) if args.model == "yunet" else args.model
    settings = [{"input_size": s} for s in args.sizes] + [{"upscale": u} for u in args.upscales]
    rows = []
    combos = [
        (s, f, z)
        for s in settings or [{}]
        for f in ([False, True] if args.flip else [None])
        for z in args.zooms or [None]
    ]
    for setting, flip, zoom in combos:
        det = Detector(model, input_size=setting.get("input_size"), flip=flip, zoom=zoom)
        if "upscale" in setting:
            det.upscale, det.min_input, det.max_input = setting["upscale"], args.min_input, args.max_input
        rule = f"{det.input_size} px" if det.upscale is None else f"x{det.upscale:g} in {det.min_input}-{det.max_input}"
        if det.zoom > 1:
            rule += f", zoom x{det.zoom:g} below {det.zoom_below:g} px"
        row: dict = {"model": args.model, **setting, "flip": det.flip, "zoom": det.zoom, "rule": rule}
        for name, samples in sets.items():
            m, ms = evaluate(det, samples)
            row[name] = {
                "map": m.get("map"),
                "face_ap": m["face_ap"],
                "label_accuracy": m["label_accuracy"],
                "recall_by_size": {
                    k: None if v["recall"] is None else round(v["recall"], 4) for k, v in m["recall_by_height"].items()
                },
                "ms_per_picture": round(ms, 1),
            }
        rows.append(row)
        k, w = row["kaggle-facemask"], row["wider-face-val-part"]
        print(
            f"{args.model} {row['rule']:18s} flip {det.flip!s:5s} kaggle mAP {k['map']:.4f} label acc "
            f"{k['label_accuracy'] or 0:.4f} | wider face AP {w['face_ap']:.4f} recall {w['recall_by_size']} "
            f"{w['ms_per_picture']:.0f} ms/picture",
            flush=True,
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
