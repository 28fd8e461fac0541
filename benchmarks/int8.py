"""The device export of ``mobile``, float against int8: file size, Kaggle ``val.txt`` accuracy, speed.

    python benchmarks/int8.py [--runs 50] [--json benchmarks/results/mobile_int8.json]

Exports ``mobile`` as a device gets it (``maskwatch export --model mobile``: the graph alone, no crop
classifier) twice, float and ``--int8`` (calibrated on 64 pictures of Kaggle's ``train.txt``), then
measures both files the same way: ``maskwatch eval``'s code on Kaggle ``val.txt`` (the files'
settings: input sized to the picture, crowd zoom, class vote) and ``benchmarks/speed.py``'s timing
of a 640x480 photo, each file in its own process. Needs ``../shared/data`` (or $MASKWATCH_DATA).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import DATA, in_own_process, machine, report  # noqa: E402

from maskwatch import Detector  # noqa: E402
from maskwatch.evaluation.datasets import load_dataset  # noqa: E402
from maskwatch.evaluation.metrics import evaluate_results  # noqa: E402
from maskwatch.evaluation.run import run_eval  # noqa: E402
from maskwatch.export import export_model  # noqa: E402


def accuracy(path: Path, data: Path) -> dict:
    det = Detector(str(path))
    root = data / "kaggle-facemask"
    results, errors = run_eval(det, load_dataset(root, root / "val.txt"))
    m = evaluate_results(results, 0.5, det.score_threshold).to_dict()
    return {
        "map": round(m["map"], 4),
        "face_ap": round(m["face_ap"], 4),
        "label_accuracy": round(m["label_accuracy"], 4),
        "recall": round(m["recall"], 4),
        "precision": round(m["precision"], 4),
        "errors": len(errors),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--data", type=Path, default=DATA, help="data folder (default: $MASKWATCH_DATA, ../shared/data)")
    args = ap.parse_args()
    out: dict = {"machine": machine(), "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    with tempfile.TemporaryDirectory() as tmp:
        files = {
            "float": export_model("mobile", output=Path(tmp) / "mobile.onnx"),
            "int8": export_model("mobile", int8=True, output=Path(tmp) / "mobile_int8.onnx", calib=args.data),
        }
        for kind, path in files.items():
            speed = in_own_process(str(path), args.runs, crowd=False)
            out[kind] = {
                "command": f"maskwatch export --model mobile{' --int8' if kind == 'int8' else ''}",
                "file_mb": round(path.stat().st_size / 1e6, 3),
                "kaggle-facemask/val.txt": accuracy(path, args.data),
                "photo_640x480_median_ms": speed["median_ms"],
                "photo_640x480_p90_ms": speed["p90_ms"],
            }
            print(kind, out[kind], flush=True)
    report(out, args.json)


if __name__ == "__main__":
    main()
