"""Fine-tuning a shipped model (or any maskwatch file) on a user's own pictures.

    maskwatch train --init mobile --data my_cameras/ --epochs 10

The network the file holds is rebuilt from its metadata (``arch``, ``config``) and every tensor is
copied from the file (``load_onnx_weights(strict=True)``: a file whose tensors do not match stops
with an error naming them, never a fresh start). The set is Pascal VOC, YOLO, COCO or WIDER
(``evaluation.datasets``), split by its own ``train.txt`` / ``val.txt`` or by a seeded split that is
written down. Each epoch is validated on the held-out pictures; the best weights by val mAP are kept
(the starting weights too: fine-tuning never hands back a worse model than it was given), training
stops early when val mAP has not risen for ``patience`` epochs, and Ctrl-C ends it with the best so
far. The file written is a drop-in for the one it came from: the same runtime settings and second
stage (its crop classifiers are copied beside it), the face score re-calibrated on the user's
validation split when it holds enough faces.
"""

from __future__ import annotations

import copy
import json
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..core.detector import Detector
from ..core.errors import MaskwatchError
from ..core.registry import PAD_VALUE, RUNTIME_SETTINGS, classifier_files, shipped_path
from ..core.registry import read_metadata as read_meta
from ..evaluation.datasets import Sample, load_dataset
from ..evaluation.metrics import best_f1_threshold, evaluate_results, pr_curve
from ..evaluation.run import run_eval
from .data import DetectionDataset
from ..export import write_metadata
from .export import export_detector, load_onnx_weights
from .loop import (
    EMA,
    FROZEN_STAGES,
    YUNET_ARCHS,
    DetectorRecipe,
    _param_groups,
    _train_epoch,
    build_network,
    lr_schedule,
)

DISTILL = 2.0  # weight of the starting network's face scores and boxes as targets (holds what it found before)
SMALL_SET = 1000  # training pictures under which the backbone stays frozen by default
MIN_CALIBRATION_FACES = 20  # labelled faces the validation split needs before the face score is re-calibrated
FIGURES = ("map", "face_ap", "recall", "precision", "label_accuracy")


def split_samples(
    data: Path,
    val_fraction: float = 0.2,
    seed: int = 0,
    problems: list[str] | None = None,
    class_map: dict[str, int] | None = None,
) -> tuple[list[Sample], list[Sample], str]:
    """(train, val, how): the set's own ``train.txt`` / ``val.txt`` when it has them, else a seeded split
    (``val_fraction`` of the pictures, at least one) of what can be read (files that cannot be read are
    left out and named in ``problems``)."""
    data = Path(data)
    if (data / "train.txt").is_file() and (data / "val.txt").is_file():
        train = load_dataset(data, data / "train.txt", problems=problems, class_map=class_map)
        val = load_dataset(data, data / "val.txt", problems=problems, class_map=class_map)
        return train, val, f"the set's own split ({data / 'train.txt'}, {data / 'val.txt'})"
    samples = load_dataset(data, problems=problems, class_map=class_map)
    if len(samples) < 2:
        raise MaskwatchError(f"{data}: fine-tuning needs at least 2 labelled pictures, found {len(samples)}")
    order = list(range(len(samples)))
    random.Random(seed).shuffle(order)
    n_val = min(len(samples) - 1, max(1, int(round(len(samples) * val_fraction))))
    train, val = [samples[i] for i in order[n_val:]], [samples[i] for i in order[:n_val]]
    return train, val, f"a split made with seed {seed}: {len(train)} to train, {len(val)} to validate"


def figures(det: Detector, samples: list[Sample]) -> dict:
    """The validation figures at the detector's own threshold."""
    results, _ = run_eval(det, samples)
    m = evaluate_results(results, 0.5, det.score_threshold)
    return {k: getattr(m, k) for k in FIGURES} | {"ap": m.ap}


def network_of(init_path: Path, meta: dict, freeze: str, log: Callable[[str], None]) -> torch.nn.Module:
    """The network ``init_path`` holds, rebuilt from its metadata, every tensor copied from the file."""
    arch = meta.get("arch") or meta.get("config", {}).get("arch", "FaceMaskNet")
    if meta.get("kind", "detector") != "detector":
        raise MaskwatchError(
            f"{init_path}: a {meta.get('kind')} file, not a detector: give mobile, server or a detector"
        )
    recipe = DetectorRecipe(arch=arch, width=meta.get("config", {}).get("width", 1.0))
    try:
        net = build_network(recipe, log)
    except ValueError as exc:
        raise MaskwatchError(f"{init_path}: {exc}") from None
    n = load_onnx_weights(net, init_path, strict=True)
    log(f"started from {init_path}: {arch}, all {n} tensors copied")
    if freeze != "none":
        if arch not in YUNET_ARCHS or freeze not in FROZEN_STAGES:
            raise MaskwatchError(f"freeze {freeze!r}: {arch} freezes none or {', '.join(FROZEN_STAGES)}")
        frozen = net.freeze_backbone(FROZEN_STAGES[freeze])
        log(f"frozen: the {freeze} ({sum(p.numel() for p in frozen)} weights); --unfreeze trains every layer")
    return net


def recalibrate(path: Path, val: list[Sample], meta: dict, log: Callable[[str], None]) -> bool:
    """Refit the face score's map and the default threshold on the user's validation split, as the
    shipped models were fitted on theirs (``train.pipeline.calibrate_scores``): the threshold of best F1,
    0.6 keeping all but 1 point of its recall. Too few faces: the starting model's map is kept."""
    from ..core.calibration import calibrate, fit_calibration, keep_threshold

    faces = int(sum((~s.ignore).sum() for s in val))
    if faces < MIN_CALIBRATION_FACES:
        log(
            f"face score: kept the starting model's calibration and threshold ({faces} labelled faces to "
            f"validate on, {MIN_CALIBRATION_FACES} needed to re-calibrate)"
        )
        return False
    # the network's own scores, as calibrate_scores fits them: no map, no rescue (its band hangs on the threshold)
    raw_meta = {k: v for k, v in meta.items() if k not in ("score_calibration", "rescue")}
    write_metadata(path, raw_meta)
    results, _ = run_eval(Detector(path, score_threshold=0.02), val)
    default_raw, f1 = best_f1_threshold(results)
    rec, _, sc, _ = pr_curve(results, 0.5, None)
    knots = fit_calibration(default_raw, keep_threshold(sc, rec, default_raw))
    meta["score_calibration"] = [knots[0], knots[1]]
    meta["score_threshold"] = round(float(calibrate(np.array([default_raw]), knots)[0]), 4)
    meta["threshold_f1"] = round(f1, 4)
    meta["threshold_chosen_on"] = ["fine-tuning validation split"]
    meta.pop("threshold_best_f1", None)  # the threshold is this split's best F1 now, the rescue's band with it
    write_metadata(path, meta)
    log(
        f"face score re-calibrated on the validation split ({faces} faces): default threshold "
        f"{meta['score_threshold']} (best F1 {f1:.3f})"
    )
    return True


def finetune(
    init: str,
    data: Path,
    out: Path,
    epochs: int = 10,
    lr: float = 3e-4,
    batch: int = 8,
    size: int = 320,
    seed: int = 0,
    freeze: str | None = None,
    class_map: dict[str, int] | None = None,
    val_fraction: float = 0.2,
    patience: int = 3,
    distill: float = DISTILL,
    log: Callable[[str], None] = print,
) -> tuple[Path, dict]:
    """Fine-tune ``init`` (mobile, server or a maskwatch .onnx) on ``data``; returns (the file written, a report).

    ``freeze``: "backbone" (default under ``SMALL_SET`` training pictures), "early" or "none".
    The report holds the validation figures before and after, the epoch kept and why training stopped.
    """
    init_path = shipped_path(init) or Path(init)
    if not Path(init_path).is_file():
        raise MaskwatchError(f"{init}: not a shipped model name nor an .onnx file")
    init_path = Path(init_path)
    meta = read_meta(init_path)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    train, val, how = split_samples(data, val_fraction, seed, problems, class_map)
    for msg in problems:
        log(msg)
    if not train:
        raise MaskwatchError(f"{data}: no labelled picture to train on")
    _write_split(out, train, val, how, log)
    freeze = freeze or ("backbone" if len(train) < SMALL_SET else "none")
    torch.manual_seed(seed)
    random.seed(seed)
    net = network_of(init_path, meta, freeze if meta.get("arch") in YUNET_ARCHS else "none", log)
    start = Detector(init_path)
    before = figures(start, val)
    log(f"before: {_line(before)} on {len(val)} validation pictures")

    keep = {k: meta[k] for k in RUNTIME_SETTINGS if k in meta}
    candidate = out / "epoch.onnx"
    for f in classifier_files(meta):  # the crop classifiers go along, beside every file written
        shutil.copy2(init_path.parent / f, out / f)
    best = {"epoch": 0, "map": before["map"], "figures": before}
    best_path = out / "best.onnx"
    shutil.copy2(init_path, best_path)
    stopped = "all epochs done"
    recipe = DetectorRecipe(name="finetuned", epochs=epochs, batch=batch, lr=lr, seed=seed, size=size, distill=distill)
    ds = DetectionDataset([*train], size=size, seed=seed, pad_value=int(meta.get("pad_value", PAD_VALUE)))
    teacher = _frozen_copy(net) if distill else None  # the starting network: what it knew is held
    ema = EMA(net)
    opt = torch.optim.AdamW(_param_groups(net, recipe.weight_decay), lr=lr)
    steps = max(1, -(-len(ds) // batch))
    lr_at = lr_schedule(lr, steps * epochs)
    step, since_best = 0, 0
    t0 = time.time()
    try:
        for epoch in range(epochs):
            step, agg = _train_epoch(net, ema, opt, ds, recipe, epoch, steps, step, lr_at, teacher)
            export_detector(ema.model, candidate, {**keep, "finetuned_from": str(init)})
            fig = figures(Detector(candidate), val)
            row = {"epoch": epoch + 1, "loss": round(agg["loss"] / steps, 4), **{k: fig[k] for k in FIGURES}}
            with open(out / "log.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
            better = fig["map"] > best["map"]
            log(
                f"epoch {epoch + 1}/{epochs}: loss {row['loss']:.4f}, val {_line(fig)}" + ("  (best)" if better else "")
            )
            if better:
                best = {"epoch": epoch + 1, "map": fig["map"], "figures": fig}
                shutil.copy2(candidate, best_path)
                since_best = 0
            else:
                since_best += 1
                if patience and since_best >= patience:
                    stopped = f"stopped early: val mAP did not rise for {patience} epochs"
                    break
    except KeyboardInterrupt:
        stopped = "stopped by Ctrl-C: the best weights so far are kept"
        log(stopped)
    candidate.unlink(missing_ok=True)

    final = out / "finetuned.onnx"
    shutil.copy2(best_path, final)
    best_path.unlink(missing_ok=True)
    new_meta = copy.deepcopy(meta) | {"finetuned_from": str(init), "finetune_data": str(data)}
    new_meta["finetune_epoch"] = best["epoch"]
    write_metadata(final, new_meta)
    if best["epoch"] == 0:
        log("no epoch beat the starting weights on val mAP: kept them")
    recalibrated = recalibrate(final, val, new_meta, log)
    after = figures(Detector(final), val)
    log(f"after:  {_line(after)}")
    report = {
        "init": str(init),
        "data": str(data),
        "split": how,
        "train_pictures": len(train),
        "val_pictures": len(val),
        "freeze": freeze,
        "epochs_run": epoch + 1 if epochs else 0,
        "epoch_kept": best["epoch"],
        "stopped": stopped,
        "recalibrated": recalibrated,
        "seconds": round(time.time() - t0, 1),
        "before": before,
        "after": after,
        "model": str(final),
    }
    (out / "finetune.json").write_text(json.dumps(report, indent=2))
    return final, report


def _frozen_copy(net: torch.nn.Module) -> torch.nn.Module:
    teacher = copy.deepcopy(net).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def _write_split(out: Path, train: list[Sample], val: list[Sample], how: str, log: Callable[[str], None]) -> None:
    """The pictures of each side, one path a line (``train.txt``, ``val.txt`` under ``out``), and say so."""
    for name, samples in (("train.txt", train), ("val.txt", val)):
        (out / name).write_text("".join(f"{s.image}\n" for s in samples))
    log(f"split: {how}; the lists are in {out / 'train.txt'} and {out / 'val.txt'}")


def _line(fig: dict) -> str:
    return ", ".join(f"{k} {fig[k]:.4f}" for k in FIGURES if fig.get(k) is not None)
