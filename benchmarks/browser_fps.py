"""Frames per second of the on-device (in-browser) mobile model in Debian's headless Chromium.

    python benchmarks/browser_fps.py [--frames 50] [--json benchmarks/results/browser_fps.json]
    python benchmarks/browser_fps.py --crowd --frames 20   # a 130-face crowd: the cascade's cost

Needs Chromium (/usr/bin/chromium), playwright from PyPI and the web assets
(scripts/vendor_web.sh). Starts ``maskwatch serve`` on loopback for the page and the model file;
the frames themselves never leave the browser.
"""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import CHROMIUM_ARGS as ARGS, LiveServer  # noqa: E402
from speed import machine, report, test_picture  # noqa: E402


def main() -> None:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--crowd", action="store_true", help="a crowd (130 faces, WIDER val) instead of one photo")
    args = ap.parse_args()
    img, src = test_picture(args.crowd)
    ok, enc = cv2.imencode(".jpg", img)
    srv = LiveServer().wait()
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
            page = b.new_page()
            page.goto(srv.url + "/")
            res = page.evaluate(
                """async ([b64, n]) => {
                    const blob = await (await fetch('data:image/jpeg;base64,' + b64)).blob();
                    const bmp = await createImageBitmap(blob);
                    await window.maskwatchOnDevice.detect(bmp);  // load + warm up
                    await window.maskwatchOnDevice.detect(bmp);
                    const t = performance.now();
                    let faces = 0, classified = 0;
                    for (let i = 0; i < n; i++) {
                        const found = await window.maskwatchOnDevice.detect(bmp);
                        faces = found.length;
                        classified = found.filter(f => f.classified).length;  // the crop classifier's (cascade)
                    }
                    const ms = (performance.now() - t) / n;
                    // the network alone: session.run on a fixed 640x480 input, no page code around it
                    const ort = await import('/static/ort/ort.wasm.min.mjs');
                    // the page's module instance: its settings (threads) stay as the page chose
                    const s = await ort.InferenceSession.create('/models/mobile.onnx',
                        {executionProviders: ['wasm'], graphOptimizationLevel: 'all'});
                    const feeds = {[s.inputNames[0]]: new ort.Tensor('float32',
                        new Float32Array(3 * 640 * 480).fill(100), [1, 3, 480, 640])};
                    for (let i = 0; i < 3; i++) await s.run(feeds);
                    const t2 = performance.now();
                    for (let i = 0; i < n; i++) await s.run(feeds);
                    return {ms, faces, classified, run_ms: (performance.now() - t2) / n, ort: ort.env.versions.web,
                            threads: ort.env.wasm.numThreads, isolated: self.crossOriginIsolated};
                }""",
                [base64.b64encode(enc.tobytes()).decode(), args.frames],
            )
            version = b.version
            b.close()
    finally:
        srv.stop()
    out = {
        "machine": machine(),
        "browser": f"Chromium {version} headless, onnxruntime-web {res['ort']} wasm",
        "threads": res["threads"],  # the page's: several when cross-origin isolated, else 1
        "cross_origin_isolated": res["isolated"],
        "picture": src,
        "frames": args.frames,
        "ms_per_frame": round(res["ms"], 1),
        "frames_per_s": round(1000 / res["ms"], 1),
        "faces": res["faces"],
        "classified": res["classified"],
        "network_ms": round(res["run_ms"], 1),  # session.run alone on a 640x480 input
    }
    report(out, args.json)


if __name__ == "__main__":
    main()
