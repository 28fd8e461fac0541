"""Model export for phones and browsers: ONNX (optimised), ORT format, and int8.

    maskwatch export --model mobile --format ort --int8 --output mobile_int8.ort

``onnx``: batch-norms folded, ready for ONNX Runtime (Mobile, Web) or any ONNX runtime.
``ort``: ONNX Runtime's own format for ONNX Runtime Mobile (Android / iOS) builds.
``--int8``: static int8 quantisation (QDQ, per channel), calibrated on real pictures.
The maskwatch settings (input size, threshold, labels) travel in the file's metadata.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .core.registry import META_KEY, SECOND_STAGE, classifier_files, read_metadata, resolve_model, shipped_path
from .core.errors import MaskwatchError
from .core.imageio import IMAGE_SUFFIXES

FORMATS = ("onnx", "ort")


def _resolve(model: str) -> Path:
    path = shipped_path(model) or Path(model)
    if not path.is_file():
        raise MaskwatchError(f"{model}: not a model name nor an .onnx file")
    return path


def write_metadata(path: Path, meta: dict) -> None:
    """Store maskwatch's settings (JSON under the ``maskwatch`` key) in an ONNX file's metadata."""
    import onnx

    m = onnx.load(str(path))
    del m.metadata_props[:]
    p = m.metadata_props.add()
    p.key, p.value = META_KEY, json.dumps(meta)
    m.producer_name = "maskwatch"
    onnx.save(m, str(path))


def optimise(src: Path, dst: Path) -> Path:
    """Fold batch-norms and constants (portable 'basic' level), keep the metadata."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
    write_metadata(dst, read_metadata(src))
    return dst


def calibration_files(folder: Path, count: int = 64) -> list[Path]:
    """Pictures to calibrate on, at most ``count``.

    A data folder holding ``kaggle-facemask/`` (or that folder, or its ``images/``) gives the pictures named in
    Kaggle's ``train.txt`` only, never ``val.txt``'s, the split the int8 figures are measured on. Any other folder
    gives its own pictures.
    """
    root = Path(folder)
    kaggle = next(
        (
            d
            for d in (root / "kaggle-facemask", root, root.parent)
            if (d / "train.txt").is_file() and (d / "images").is_dir()
        ),
        None,
    )
    if kaggle is None:
        return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:count]
    by_stem = {p.stem: p for p in (kaggle / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    names = sorted(set((kaggle / "train.txt").read_text().split()))
    return [by_stem[Path(n).stem] for n in names if Path(n).stem in by_stem][:count]


def calibration_blobs(folder: Path, model: Path, count: int = 64) -> list[np.ndarray]:
    """The network inputs int8 is calibrated on: pictures of ``folder`` letterboxed by ``model``'s own
    ``Detector`` (its input size rule and pad value), the inputs the quantised graph will see."""
    from .core.detector import Detector

    files = calibration_files(folder, count)
    if not files:
        raise MaskwatchError(f"{folder}: no pictures to calibrate int8 quantisation on (use --calib DIR)")
    det = Detector(model, classifier_below=0)
    blobs = []
    for f in files:
        try:
            blobs.append(det.input_blob(f))
        except MaskwatchError:  # a picture that cannot be read is left out
            continue
    return blobs


def quantise_int8(src: Path, dst: Path, calib: Path) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    meta = read_metadata(src)
    blobs = calibration_blobs(calib, src)
    name = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(blobs)

        def get_next(self):
            b = next(self.it, None)
            return None if b is None else {name: b}

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(dst),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=[],
            extra_options={"ActivationSymmetric": False},
        )
    meta["quantization"] = "int8 static QDQ per-channel"
    write_metadata(dst, meta)
    return dst


def to_ort_format(src: Path, dst: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_onnx = Path(tmp) / (dst.stem + ".onnx")
        shutil.copy2(src, tmp_onnx)
        cmd = [
            sys.executable,
            "-m",
            "onnxruntime.tools.convert_onnx_models_to_ort",
            str(tmp_onnx),
            "--output_dir",
            tmp,
            "--optimization_style",
            "Fixed",
        ]
        p = subprocess.run(cmd, capture_output=True, text=True)
        produced = sorted(Path(tmp).glob("*.ort"))
        if p.returncode != 0 or not produced:
            raise MaskwatchError(f"ORT conversion failed: {(p.stderr or p.stdout).strip().splitlines()[-1:]}")
        shutil.copy2(produced[0], dst)
    return dst


def export_model(
    model: str,
    fmt: str = "onnx",
    int8: bool = False,
    output: Path | None = None,
    calib: Path | None = None,
    with_classifier: bool = False,
) -> Path:
    """Write ``model`` for a device. A veto-free cascade (``mobile``) is written as its graph alone,
    or, ``with_classifier``, with its crop classifier beside it (float, in the same format; the
    graph's metadata keeps the cascade and names that file), the pair that ``Detector`` and the
    browser page run."""
    if fmt not in FORMATS:
        raise MaskwatchError(f"unknown format {fmt!r}: use onnx or ort")
    src = _resolve(model)
    spec = resolve_model(src)
    meta = spec.meta
    # a cascade without a veto (mobile: the crop classifier relabels only faces the graph is unsure
    # of) exports as its graph alone, which a device runs by the contract of docs/mobile.md; a model
    # whose classifier labels or vetoes every face (server) is two files and is not for devices
    cascade = spec.settings.classifier_below <= 1 and spec.settings.verify_weight == 0
    if spec.classifiers and not cascade:
        raise MaskwatchError(f"{model}: has a second-stage classifier; export the single-file mobile model for devices")
    name = Path(src).stem + ("_int8" if int8 else "")
    output = Path(output) if output else Path(f"{name}.{fmt}")
    output.parent.mkdir(parents=True, exist_ok=True)
    classifiers = list(spec.classifiers) if with_classifier else []
    if with_classifier and not classifiers:
        raise MaskwatchError(f"{model}: has no crop classifier to export with it")
    rescue = spec.settings.rescue_classifier if with_classifier else ""
    for cls in classifier_files(meta) if with_classifier else []:  # beside the graph (the rescue's too)
        with tempfile.TemporaryDirectory() as tmp:
            _write(optimise(src.parent / cls, Path(tmp) / "opt.onnx"), output.parent / f"{Path(cls).stem}.{fmt}", fmt)
    with tempfile.TemporaryDirectory() as tmp:
        cur = optimise(src, Path(tmp) / "opt.onnx")
        if int8:
            if calib is None:
                raise MaskwatchError(
                    "--int8 needs pictures to calibrate on: --calib DIR, or --data (or $MASKWATCH_DATA) "
                    "naming a folder that holds kaggle-facemask/"
                )
            cur = quantise_int8(cur, Path(tmp) / "int8.onnx", Path(calib))
        if classifiers:  # the cascade (and the rescue) kept, naming the classifier files as written
            kept = {**meta, "classifier": [f"{Path(c).stem}.{fmt}" for c in classifiers]}
            if rescue:
                kept["rescue_classifier"] = f"{Path(rescue).stem}.{fmt}"
            write_metadata(cur, kept)
        elif spec.classifiers:  # the graph alone: its settings without the second stage's, and the
            # threshold chosen for the network alone where the recipe moved it for the rescue
            alone = {k: v for k, v in meta.items() if k not in SECOND_STAGE}
            write_metadata(cur, {**alone, "score_threshold": spec.network_threshold})
        _write(cur, output, fmt)
    return output


def _write(src: Path, dst: Path, fmt: str) -> None:
    """An optimised ONNX file to ``dst`` in ``fmt`` (onnx, or ort for ONNX Runtime Mobile)."""
    if fmt == "ort":
        to_ort_format(src, dst)
    else:
        shutil.copy2(src, dst)
