"""Fine-tuning a shipped model on a user's own pictures (Pascal VOC, YOLO or COCO labels).

    maskwatch train --init mobile --data my_cameras/ --epochs 10

Starts from the shipped model's weights (read back from its ONNX file), reports the validation
figures before and after, and writes an ONNX file that ``Detector(model="path.onnx")`` loads,
with the same runtime settings (input size, flip, classifier) as the model it started from.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

from .. import models as registry
from ..evaluation.datasets import Sample, load_dataset
from ..core.detector import Detector
from ..core.registry import RUNTIME_SETTINGS, classifier_files
from ..core.errors import MaskwatchError
from ..evaluation.metrics import evaluate_results
from ..evaluation.run import run_eval
from .export import _set_meta
from .loop import DetectorRecipe, train_detector
from .pipeline import read_meta


def split_samples(
    data: Path, val_fraction: float = 0.2, seed: int = 0, problems: list[str] | None = None
) -> tuple[list[Sample], list[Sample]]:
    """Use the set's own train.txt / val.txt when it has them, else a seeded 80 / 20 split
    (files that cannot be read are left out and named in ``problems``)."""
    data = Path(data)
    if (data / "train.txt").is_file() and (data / "val.txt").is_file():
        return (
            load_dataset(data, data / "train.txt", problems=problems),
            load_dataset(data, data / "val.txt", problems=problems),
        )
    samples = load_dataset(data, problems=problems)
    if len(samples) < 2:
        raise MaskwatchError(f"{data}: fine-tuning needs at least 2 labelled pictures, found {len(samples)}")
    order = list(range(len(samples)))
    random.Random(seed).shuffle(order)
    n_val = max(1, int(round(len(samples) * val_fraction)))
    return [samples[i] for i in order[n_val:]], [samples[i] for i in order[:n_val]]


def _figures(det: Detector, samples: list[Sample]) -> dict:
    results, _ = run_eval(det, samples)
    m = evaluate_results(results, 0.5, det.score_threshold)
    return {k: getattr(m, k) for k in ("map", "face_ap", "recall", "precision", "label_accuracy")} | {"ap": m.ap}


def finetune(
    init: str,
    data: Path,
    out: Path,
    epochs: int = 10,
    lr: float = 1e-3,
    batch: int = 8,
    size: int = 320,
    seed: int = 0,
    log=print,
) -> tuple[Path, dict]:
    init_path = registry.resolve(init) or Path(init)
    if not Path(init_path).is_file():
        raise MaskwatchError(f"{init}: not a shipped model name nor an .onnx file")
    meta = read_meta(Path(init_path))
    problems: list[str] = []
    train, val = split_samples(data, seed=seed, problems=problems)
    for msg in problems:
        log(msg)
    before = _figures(Detector(init_path), val)
    log(f"before: {json.dumps(before)}")
    out = Path(out)
    recipe = DetectorRecipe(
        name="finetuned",
        width=meta.get("config", {}).get("width", 1.0),
        size=size,
        epochs=epochs,
        batch=batch,
        lr=lr,
        seed=seed,
        input_size=meta.get("input_size", 640),
        init=str(init_path),
        sources=[("samples", train)],
        val=[],
        val_every=10_000,
    )
    path = train_detector(recipe, out, Path(data), resume=False, log=log)
    # keep the runtime settings of the model we started from
    new_meta = read_meta(path)
    for k in RUNTIME_SETTINGS:
        if k in meta:
            new_meta[k] = meta[k]
    new_meta["finetuned_from"] = str(init)
    new_meta["finetune_data"] = str(data)
    for f in classifier_files(meta):  # the crop classifiers go along
        shutil.copy2(Path(init_path).parent / f, path.parent / f)
    _set_meta(path, new_meta)
    after = _figures(Detector(path), val)
    log(f"after:  {json.dumps(after)}")
    report = {
        "init": str(init),
        "train_pictures": len(train),
        "val_pictures": len(val),
        "before": before,
        "after": after,
        "model": str(path),
    }
    (out / "finetune.json").write_text(json.dumps(report, indent=2))
    return path, report
