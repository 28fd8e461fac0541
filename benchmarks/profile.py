"""Where one ``Detector.detect`` call on a 640x480 picture spends its time: the stages timed in Python
(preprocess, network, decode, zoom decision, NMS and vote, crop classifiers, calibration) and the
network's own operators from onnxruntime's profiler.

    python benchmarks/profile.py [--model mobile] [--runs 200] [--json benchmarks/results/profile_mobile.json]
    python benchmarks/profile.py --crowd --runs 50 --json benchmarks/results/profile_mobile_crowd.json

Each stage is timed by wrapping the function that does it (the wrappers cost about 1 us each), on
the picture ``benchmarks/speed.py`` uses (a Kaggle photo at 640x480, decoded beforehand), after 20
warm-up calls; medians over ``--runs`` calls. docs/speed.md has the table and what was done about it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import machine, report, test_picture  # noqa: E402

import maskwatch.core.detector as md  # noqa: E402
from maskwatch import Detector  # noqa: E402


def stage_times(det: Detector, img, runs: int) -> dict[str, float]:
    spent: dict[str, list[float]] = defaultdict(list)
    current: dict[str, float] = defaultdict(float)

    def wrap(owner, name: str, label: str) -> None:
        fn = getattr(owner, name)

        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                current[label] += time.perf_counter() - t

        setattr(owner, name, timed)

    sess = det.session
    run = sess.run

    def net(*a, **k):
        t = time.perf_counter()
        try:
            return run(*a, **k)
        finally:
            current["network (session.run)"] += time.perf_counter() - t

    class _S:  # the session, its run timed
        def __getattr__(self, n):
            return net if n == "run" else getattr(sess, n)

    det.session = _S()  # type: ignore[assignment]
    wrap(md.Letterbox, "fill", "preprocess (resize, pad, HWC->CHW)")
    # (the network time of the zoom pass, when one runs, is in "network"; its decision in "zoom decision")
    wrap(md, "decode", "decode (anchors -> boxes)")
    wrap(det, "zoom_sizes", "zoom decision")
    wrap(det, "_second_stage", "crop classifiers")
    wrap(md, "nms", "NMS")
    wrap(md, "class_vote", "class vote")
    wrap(md, "calibrate", "score calibration")
    for _ in range(20):
        det.detect(img)
    totals = []
    for _ in range(runs):
        current.clear()
        t = time.perf_counter()
        det.detect(img)
        total = time.perf_counter() - t
        totals.append(total)
        for k, v in current.items():
            spent[k].append(v)
        spent["other Python (the rest of detect)"].append(total - sum(current.values()))
    out = {k: round(1000 * statistics.median(v), 3) for k, v in spent.items()}
    out["total"] = round(1000 * statistics.median(totals), 3)
    return out


def operator_times(model: str, img, runs: int) -> list[dict]:
    """The network's operators by type, from onnxruntime's profiler (one session, ``runs`` runs)."""
    import onnxruntime as ort

    det = Detector(model)
    blob = det.input_blob(img)
    so = ort.SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "ort")
    so.intra_op_num_threads = det.session.get_session_options().intra_op_num_threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(det.path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    for _ in range(runs):
        sess.run(None, {name: blob})
    prof = json.loads(Path(sess.end_profiling()).read_text())
    by_op: dict[str, float] = defaultdict(float)
    for ev in prof:
        if ev.get("cat") == "Node" and ev.get("name", "").endswith("_kernel_time"):
            by_op[ev["args"]["op_name"]] += ev["dur"] / 1000 / runs
    total = sum(by_op.values())
    return [
        {"op": k, "ms": round(v, 3), "share": round(v / total, 3)}
        for k, v in sorted(by_op.items(), key=lambda x: -x[1])
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="mobile")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--crowd", action="store_true", help="a crowd (130 faces, WIDER FACE val) at 640x480 instead")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    img, src = test_picture(args.crowd)
    det = Detector(args.model)
    out = {
        "machine": machine(),
        "picture": src,
        "model": args.model,
        "input": det.passes(img.shape[1], img.shape[0])[0],
        "stages_ms": stage_times(det, img, args.runs),
        "operators": operator_times(args.model, img, max(20, args.runs // 4)),
    }
    report(out, args.json)


if __name__ == "__main__":
    main()
