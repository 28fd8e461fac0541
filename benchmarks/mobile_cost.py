"""What ``mobile``'s network costs per 640x480 frame, counted: multiply-adds per operator type, from the
ONNX graph with its shapes inferred at a fixed input, and the time that gives on a phone-class core.

    python benchmarks/mobile_cost.py [--model mobile] [--width 640 --height 480] [--json benchmarks/results/mobile_cost.json]

Convolutions count output elements x input channels per group x kernel area; other operators count
their output elements (one operation each). The phone estimate divides the multiply-adds by a
core's sustained rate, at half and at a quarter of its fp32 peak (small depthwise and 1x1 convolutions
do not reach more): an Arm Cortex-A76 at 2.4 GHz (the big cores of mid-range phones since 2019; two
128-bit NEON FMA pipes, 8 fp32 multiply-adds a cycle, 19.2 G/s) and a Cortex-A55 at 1.8 GHz (the
little cores; 4 a cycle, 7.2 G/s). ``--x86-ms`` (this machine's one-thread network time) prints the
rate this machine reaches, as a check of the shares. docs/mobile.md has the figures.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx
from onnx import shape_inference

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import machine, report  # noqa: E402

from maskwatch.core.registry import resolve_model  # noqa: E402

CORES = {  # fp32 multiply-adds a second at peak
    "Cortex-A76 at 2.4 GHz": 2.4e9 * 8,  # two 128-bit NEON FMA pipes
    "Cortex-A55 at 1.8 GHz": 1.8e9 * 4,  # one 128-bit NEON FMA a cycle
}


def count(model_path: Path, height: int, width: int) -> dict[str, float]:
    m = onnx.load(str(model_path))
    inp = m.graph.input[0]
    for d, v in zip(inp.type.tensor_type.shape.dim, (1, 3, height, width)):
        d.ClearField("dim_param")
        d.dim_value = v
    m = shape_inference.infer_shapes(m)
    shapes = {}
    for vi in list(m.graph.value_info) + list(m.graph.output) + list(m.graph.input):
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        if dims and all(dims):
            shapes[vi.name] = dims
    inits = {t.name: list(t.dims) for t in m.graph.initializer}
    ops: dict[str, float] = defaultdict(float)
    for n in m.graph.node:
        out = shapes.get(n.output[0])
        if out is None:
            continue
        elems = float(np.prod(out))
        if n.op_type == "Conv":
            w = inits.get(n.input[1]) or shapes.get(n.input[1])
            if w is None:
                continue
            ops["Conv (multiply-adds)"] += elems * w[1] * w[2] * w[3]
        else:
            ops[n.op_type] += elems
    return dict(sorted(ops.items(), key=lambda kv: -kv[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="mobile")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--x86-ms", type=float, help="this machine's one-thread network time, for the efficiency check")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    path = resolve_model(args.model).path
    ops = count(path, args.height, args.width)
    macs = ops.get("Conv (multiply-adds)", 0.0)
    other = sum(v for k, v in ops.items() if not k.startswith("Conv"))
    out = {
        "model": args.model,
        "input": f"{args.width}x{args.height}",
        "conv_gmacs": round(macs / 1e9, 3),
        "other_gops": round(other / 1e9, 3),
        "by_op": {k: round(v / 1e6, 2) for k, v in ops.items()},
        "phone_estimate_ms": {
            core: {f"at {int(100 * share)} % of peak": round(1000 * macs / (share * peak), 1) for share in (0.5, 0.25)}
            for core, peak in CORES.items()
        },
        "machine": machine(),
    }
    if args.x86_ms:
        out["x86_one_thread_gmacs_per_s"] = round(macs / 1e9 / (args.x86_ms / 1000), 2)
    report(out, args.json)


if __name__ == "__main__":
    main()
