"""Detector training: seeded, resumable, logged per epoch with validation figures, exported to ONNX."""

from __future__ import annotations

import copy
import json
import math
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..evaluation.datasets import load_dataset
from ..core.detector import Detector
from ..evaluation.metrics import best_f1_threshold, evaluate_results
from ..evaluation.run import run_eval
from .data import DetectionDataset, Source, build_samples, collate
from .export import blend_onnx_weights, export_detector, load_onnx_weights
from .loss import detection_loss, distill_loss
from .net import FaceMaskNet
from .pseudo import pseudo_label
from .yunet import LAYOUTS


@dataclass
class DetectorRecipe:
    name: str = "mobile"
    width: float = 1.0
    size: int = 320
    epochs: int = 30
    batch: int = 32
    lr: float = 3e-3
    weight_decay: float = 5e-4
    seed: int = 0
    input_size: int = 640
    threads: int = 2
    max_minutes: float = 0.0  # stop (resumably) after this long; 0 = no limit
    val_every: int = 4  # validate every N epochs (and after the last)
    sources: list = field(default_factory=list)
    val: list = field(default_factory=list)  # (root, split) pairs
    init: str | None = None  # an ONNX file made by maskwatch to start from
    init_from: str | None = None  # or: the recipe (in recipes.DETECTORS) whose result this continues
    paste: float = 0.0  # share of bare / unlabelled faces given a drawn mask or occluder
    cover: float = 0.0  # share of faces given a drawn cap, hood, hazmat hood, goggles or sunglasses
    rotate: float = 0.0  # share of crops turned (train/data.py: turn_crop)
    mix: str = "default"  # the training sets when ``sources`` is empty: "default" or "masked" (masked_sources)
    rare_repeat: int = 0  # extra draws per epoch of each picture that holds an ``incorrect`` face (the rare class)
    pseudo: str | None = None  # a crop classifier file whose sure answers label the faces without a mask label
    pseudo_from: str | None = None  # or: the classifier recipe (in pipeline.CLASSIFIERS) that makes it
    # or "YuNetMask": YuNet-n's network with a mask-class branch (train/yunet.py); or "YuNetMaskLite":
    # the same layers with stage 2's two 64-channel units at stride 8 (0.8x the time of YuNet-n's layout); or
    # "YuNetMaskNarrow": stage 2 at 32 channels until its last unit (0.83x)
    arch: str = "FaceMaskNet"
    teacher_init: bool = False  # YuNetMask: start from the teacher's weights (../shared/teachers)
    freeze: str = "none"  # YuNetMask: "base" (only the class branch learns), "backbone" (the neck and heads
    # too) or "early" (the stem and the first two stages stay; stages 3-5, the neck and heads learn)
    base_lr_scale: float = 1.0  # learning rate of the pretrained layers against the new ones
    distill: float = 0.0  # YuNetMask: weight of the teacher's face scores and boxes on the same crops as targets
    distill_from: str = "yunet"  # that teacher: "yunet" (YuNet-n's file) or "init" (the starting file)
    # the teacher's score a floor on the cells of labelled faces, not a target (loss.distill_loss):
    # labelled faces that it scores low (covered, turned, masked) may rise above it
    distill_floor: bool = False
    mimic_epochs: int = 0  # first, epochs that teach stage 2 alone to give the teacher's stage-2 features
    blend: float = 0.0  # share of the starting file's weights averaged into the final one (export.blend_onnx_weights)
    # the recipe whose training this one shares (same network, start and data): its last weights are
    # exported again and blended with this recipe's ``blend``, no training of its own (reblend_detector)
    weights_of: str | None = None
    # a soup: no training of its own, the weights of other recipes' files (same network, same start)
    # averaged, each with its share ({recipe name: share}, shares summing to 1; ``soup_detector``)
    soup: dict = field(default_factory=dict)
    export_meta: dict = field(default_factory=dict)  # runtime settings written into each exported file


def default_sources(data: Path) -> tuple[list[Source], list[tuple[str, str]]]:
    """The training mix for the shipped models, from ``../shared/data``."""
    d = Path(data)
    sources = [
        Source(d / "kaggle-facemask", str(d / "kaggle-facemask" / "train.txt"), weight=2.0, teacher=True),
        Source(d / "macwinwin-facemask", None, weight=1.0, teacher=True),
        Source(d / "wider-face-train-subset", None, weight=1.0),
        Source(d / "wider-face-val-part", str(d / "wider-face-val-part" / "train.txt"), weight=1.0),
        # one-face pictures with mask labels (boxes from the teacher): odd masks, masks worn wrong
        Source(d / "maskedfacenet-synthetic", weight=1.0, kind="portraits"),
        Source(d / "mask-crops", weight=0.3, kind="crops"),
    ]
    val = [
        (str(d / "kaggle-facemask"), str(d / "kaggle-facemask" / "val.txt")),
        (str(d / "wider-face-val-part"), str(d / "wider-face-val-part" / "val.txt")),
    ]
    return sources, val


def masked_sources(data: Path) -> tuple[list[Source], list[tuple[str, str]]]:
    """The mix for masked faces at every covering and angle (issue 29): the default mix with the
    fixed validation parts of MacwinWin and webmask2020 left out (``evaluation.datasets.HOLDOUT``: what
    ``benchmarks/accuracy.py`` reports), webmask2020's training part added (black, printed and valved
    masks, goggles and sunglasses over masks, winter hats), and the teacher's faces filled in where the
    mask sets leave faces unlabelled (taught as faces of unknown class)."""
    from ..evaluation.datasets import HOLDOUT

    sources, val = default_sources(data)
    d = Path(data)
    for src in sources:
        if Path(src.root).name in HOLDOUT:
            src.holdout = HOLDOUT[Path(src.root).name]
    sources.insert(
        2, Source(d / "webmask2020-facemask", None, weight=2.0, teacher=True, holdout=HOLDOUT["webmask2020-facemask"])
    )
    return sources, val


class EMA:
    """Exponential moving average of the weights; what gets exported."""

    def __init__(self, model: torch.nn.Module, decay: float = 0.999):
        self.model = copy.deepcopy(model).eval()
        self.decay = decay
        self.updates = 0
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module):
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / 500))
        msd = model.state_dict()
        for k, v in self.model.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(msd[k].detach(), alpha=1 - d)
            else:
                v.copy_(msd[k])


def validate(onnx_path: Path, val: list[tuple[str, str]], limit: int | None = None) -> dict:
    """Run the exported model through the runtime ``Detector`` on validation sets."""
    det = Detector(onnx_path)
    out = {}
    for root, split in val:
        samples = load_dataset(Path(root), Path(split) if split else None)[:limit]
        results, _ = run_eval(det, samples)
        thr, f1 = best_f1_threshold(results)
        m = evaluate_results(results, 0.5, det.score_threshold)
        out[Path(root).name] = {
            "map": m.map,
            "ap": m.ap,
            "face_ap": m.face_ap,
            "label_accuracy": m.label_accuracy,
            "recall": m.recall,
            "best_f1_threshold": thr,
            "best_f1": f1,
        }
    return out


def _param_groups(model: torch.nn.Module, wd: float, base_lr_scale: float = 1.0):
    """AdamW groups: weight decay on weights only; pretrained layers (``base.``) at ``base_lr_scale``."""
    groups: dict[tuple[bool, bool], list] = {}
    for n, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault((p.ndim > 1, n.startswith("base.")), []).append(p)
    return [
        {"params": ps, "weight_decay": wd if decayed else 0.0, "lr_scale": base_lr_scale if base else 1.0}
        for (decayed, base), ps in groups.items()
    ]


def build_network(recipe: DetectorRecipe, log=print) -> torch.nn.Module:
    """The recipe's network: maskwatch's own ``FaceMaskNet``, or YuNet-n with a mask branch."""
    if recipe.arch == "FaceMaskNet":
        return FaceMaskNet(width=recipe.width)
    if recipe.arch not in YUNET_ARCHS:
        raise ValueError(f"unknown detector arch {recipe.arch!r}: FaceMaskNet, {', '.join(YUNET_ARCHS)}")
    from .teacher import teacher_path
    from .yunet import YuNetMask

    model = YuNetMask.of_arch(recipe.arch)
    if recipe.teacher_init:
        model.load_teacher(teacher_path())
        log(f"started from YuNet-n's weights ({teacher_path()})")
    if recipe.freeze == "base":
        for p in model.base.parameters():
            p.requires_grad_(False)
    elif recipe.freeze in FROZEN_STAGES:
        model.freeze_backbone(FROZEN_STAGES[recipe.freeze])
    elif recipe.freeze != "none":
        raise ValueError(f"unknown freeze {recipe.freeze!r}: none, base, {', '.join(FROZEN_STAGES)}")
    return model


YUNET_ARCHS = tuple(LAYOUTS)
# freeze= names: the backbone stages that keep their weights ("stem": the stem and stage 1, at stride 2)
FROZEN_STAGES = {"backbone": 5, "early": 2, "stem": 1}


def build_teacher(recipe: DetectorRecipe) -> torch.nn.Module | None:
    """The frozen starting network whose outputs are distillation targets (``recipe.distill``)."""
    if not recipe.distill:
        return None
    if recipe.arch not in YUNET_ARCHS:
        raise ValueError(f"distill needs arch {' or '.join(YUNET_ARCHS)} (the teacher is YuNet-n's network)")
    from .teacher import teacher_path
    from .yunet import YuNet, YuNetMask

    if recipe.distill_from == "yunet":
        teacher = YuNetMask(YuNet.from_onnx(teacher_path())).eval()
    elif recipe.distill_from == "init" and recipe.init:
        teacher = YuNetMask()
        load_onnx_weights(teacher, Path(recipe.init), strict=True)
        teacher.eval()
    else:
        raise ValueError(f"distill_from {recipe.distill_from!r}: 'yunet', or 'init' with a starting file")
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def _training_set(recipe: DetectorRecipe, data: Path, cache: Path, log) -> DetectionDataset:
    """The pictures one epoch draws from (default sources and validation sets when the recipe names none)."""
    if not recipe.sources:
        recipe.sources, default_val = (masked_sources if recipe.mix == "masked" else default_sources)(data)
        recipe.val = recipe.val or default_val
    samples = build_samples(recipe.sources, cache, recipe.rare_repeat)
    if recipe.pseudo:
        pseudo_label(samples, Path(recipe.pseudo), cache, log)
    log(f"training on {len(samples)} picture draws per epoch")
    return DetectionDataset(
        samples, size=recipe.size, seed=recipe.seed, paste=recipe.paste, cover=recipe.cover, rotate=recipe.rotate
    )


def _new_detector(recipe: DetectorRecipe, resumed: bool, log) -> torch.nn.Module:
    """The network, from ``recipe.init``'s weights unless a resumed run brings its own."""
    model = build_network(recipe, log)
    if recipe.init and not resumed:
        n = load_onnx_weights(model, Path(recipe.init))
        log(f"started from {recipe.init} ({n} tensors)")
    return model.to(memory_format=torch.channels_last)


def lr_schedule(base_lr: float, total: int) -> Callable[[int], float]:
    """Learning rate by step: linear warm-up over the first tenth (300 steps at most), then cosine to 2 %."""
    warm = min(300, total // 10)

    def lr_at(step: int) -> float:
        if step < warm:
            return base_lr * (0.1 + 0.9 * step / max(warm, 1))
        t = (step - warm) / max(total - warm, 1)
        return base_lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))

    return lr_at


def _resume(ckpt: Path, model: torch.nn.Module, ema: EMA, opt: torch.optim.Optimizer, log) -> tuple[int, int]:
    """Weights, EMA and optimiser from the last checkpoint; returns (first epoch, step)."""
    st = torch.load(ckpt, map_location="cpu", weights_only=False)
    model.load_state_dict(st["model"])
    ema.model.load_state_dict(st["ema"])
    ema.updates = st["ema_updates"]
    opt.load_state_dict(st["opt"])
    log(f"resumed from {ckpt} at epoch {st['epoch'] + 1}")
    return st["epoch"] + 1, st["step"]


def _train_epoch(
    model: torch.nn.Module,
    ema: EMA,
    opt: torch.optim.Optimizer,
    ds: DetectionDataset,
    recipe: DetectorRecipe,
    epoch: int,
    steps: int,
    step: int,
    lr_at: Callable[[int], float],
    teacher: torch.nn.Module | None = None,
) -> tuple[int, dict[str, float]]:
    """One epoch of batches; returns the step reached and the summed losses."""
    from tqdm import tqdm

    ds.epoch = epoch
    order = list(range(len(ds)))
    random.Random(recipe.seed * 7919 + epoch).shuffle(order)
    model.train()
    agg = {"loss": 0.0, "obj": 0.0, "box": 0.0, "cls": 0.0, "distill": 0.0}
    bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{recipe.epochs}", unit="batch", mininterval=5)
    for b in bar:
        batch = collate([ds[i] for i in order[b * recipe.batch : (b + 1) * recipe.batch]])
        imgs = batch[0].contiguous(memory_format=torch.channels_last)
        for g in opt.param_groups:
            g["lr"] = lr_at(step) * g.get("lr_scale", 1.0)
        obj, dist, cls = model(imgs)
        labelled: list[torch.Tensor] = []
        loss, parts = detection_loss(
            obj, dist, cls, batch[1], batch[2], batch[3], imgs.shape[-2:], labelled if recipe.distill_floor else None
        )
        if teacher is not None:
            with torch.no_grad():
                t_obj, t_dist, _ = teacher(imgs)
            d = distill_loss(obj, dist, t_obj, t_dist, labelled[0] if labelled else None)
            loss = loss + recipe.distill * d
            parts["distill"] = float(d.detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 10.0)
        opt.step()
        ema.update(model)
        step += 1
        agg["loss"] += loss.item()
        for k in ("obj", "box", "cls", "distill"):
            agg[k] += parts.get(k, 0.0)
        bar.set_postfix(loss=f"{agg['loss'] / (b + 1):.3f}", lr=f"{lr_at(step):.1e}", refresh=False)
    bar.close()
    return step, agg


def _export_last(recipe: DetectorRecipe, net: torch.nn.Module, out_dir: Path, log) -> Path:
    """The file of a run's last weights: exported, then blended once with its start (``blend``)."""
    onnx_path = export_detector(
        net, out_dir / f"{recipe.name}.onnx", {"input_size": recipe.input_size, **recipe.export_meta}
    )
    if recipe.blend and recipe.init:
        n = blend_onnx_weights(onnx_path, Path(recipe.init), recipe.blend)
        log(f"{n} tensors averaged with {recipe.init} ({recipe.blend:g} of it)")
    return onnx_path


def soup_detector(recipe: DetectorRecipe, files: dict[str, Path], out_dir: Path, log=print) -> Path:
    """``recipe``'s file as a soup of trained files ({recipe name: file}, in ``recipe.soup``'s order):
    each floating-point tensor the share-weighted average of theirs (Wortsman et al., 2022, "Model
    soups"). The files must hold one network fine-tuned from one start."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(recipe.soup)
    if len(names) < 2 or abs(sum(recipe.soup.values()) - 1) > 1e-6:
        raise ValueError(f"{recipe.name}: a soup takes two files or more, shares summing to 1: {recipe.soup}")
    onnx_path = out_dir / f"{recipe.name}.onnx"
    shutil.copy2(files[names[0]], onnx_path)
    total = recipe.soup[names[0]]
    for name in names[1:]:  # a running average: the k-th file's share of the first k
        total += recipe.soup[name]
        blend_onnx_weights(onnx_path, files[name], recipe.soup[name] / total)
    log(f"{onnx_path}: " + " + ".join(f"{recipe.soup[n]:g} x {files[n]}" for n in names))
    (out_dir / "recipe.json").write_text(json.dumps(asdict(recipe), default=str, indent=1))
    with open(out_dir / "log.jsonl", "a") as f:
        f.write(json.dumps({"epoch": recipe.epochs, "soup": {n: str(files[n]) for n in names}, "val": {}}) + "\n")
    return onnx_path


def reblend_detector(recipe: DetectorRecipe, trained: Path, out_dir: Path, log=print) -> Path:
    """``recipe``'s file from the training of another run (``trained``: its folder, same network and
    start): that run's last weights (the EMA, as it exported them) blended with ``recipe.blend`` of the
    start. Two blends of one training cost one training (``weights_of``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    net = build_network(recipe, log)
    net.load_state_dict(torch.load(Path(trained) / "last.ckpt", map_location="cpu", weights_only=False)["ema"])
    onnx_path = _export_last(recipe, net.eval(), out_dir, log)
    (out_dir / "recipe.json").write_text(json.dumps(asdict(recipe), default=str, indent=1))
    row = {"epoch": recipe.epochs, "weights_of": str(trained), "val": {}}
    (out_dir / "log.jsonl").write_text(json.dumps(row) + "\n")
    log(json.dumps(row))
    return onnx_path


def mimic_stage2(
    model: torch.nn.Module, teacher: torch.nn.Module, ds: DetectionDataset, recipe: DetectorRecipe, log=print
) -> list[float]:
    """Teach the student's stage 2 alone (a new, narrower one) to give the teacher's stage-2 features
    on the training crops: mean squared error over the teacher's mean square, ``recipe.mimic_epochs``
    epochs at ``recipe.lr`` x 3, cosine. The rest of the network is left as it is. Returns each
    epoch's mean loss."""
    from tqdm import tqdm

    stage2 = model.base.stage2
    params = list(stage2.parameters())
    opt = torch.optim.AdamW(params, lr=recipe.lr * 3, weight_decay=0.0)
    steps = max(1, len(ds) // recipe.batch)
    lr_at = lr_schedule(recipe.lr * 3, steps * recipe.mimic_epochs)
    losses, step = [], 0
    for epoch in range(recipe.mimic_epochs):
        ds.epoch = epoch
        order = list(range(len(ds)))
        random.Random(recipe.seed * 104729 + epoch).shuffle(order)
        total = 0.0
        for b in tqdm(range(steps), desc=f"stage 2, epoch {epoch + 1}/{recipe.mimic_epochs}", mininterval=5):
            imgs = collate([ds[i] for i in order[b * recipe.batch : (b + 1) * recipe.batch]])[0]
            with torch.no_grad():
                t = teacher.base.stage2_out(imgs)
                x = model.base.stage2_in(imgs)
            x = model.base.run_stage2(x)
            loss = (x - t).pow(2).mean() / t.pow(2).mean().clamp(min=1e-6)
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            total += loss.item()
        losses.append(total / steps)
        log(f"stage 2 taught the teacher's features, epoch {epoch + 1}: relative error {losses[-1]:.4f}")
    return losses


def train_detector(recipe: DetectorRecipe, out_dir: Path, data: Path, resume: bool = True, log=print) -> Path:
    """Train (or resume) a detector; returns the exported ONNX path in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(recipe.threads)
    random.seed(recipe.seed)
    np.random.seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    ds = _training_set(recipe, data, out_dir.parent / "cache", log)
    ckpt = out_dir / "last.ckpt"
    resumed = resume and ckpt.is_file()
    model = _new_detector(recipe, resumed, log)
    teacher = build_teacher(recipe)
    if recipe.mimic_epochs and not resumed:
        if teacher is None:
            raise ValueError("mimic_epochs needs a distillation teacher (distill > 0)")
        mimic_stage2(model, teacher, ds, recipe, log)
    ema = EMA(model)
    opt = torch.optim.AdamW(_param_groups(model, recipe.weight_decay, recipe.base_lr_scale), lr=recipe.lr)
    steps_per_epoch = max(1, len(ds) // recipe.batch)
    lr_at = lr_schedule(recipe.lr, steps_per_epoch * recipe.epochs)
    start_epoch, step = _resume(ckpt, model, ema, opt, log) if resumed else (0, 0)
    (out_dir / "recipe.json").write_text(json.dumps(asdict(recipe), default=str, indent=1))
    t_start = time.time()
    for epoch in range(start_epoch, recipe.epochs):
        t_ep = time.time()
        step, agg = _train_epoch(model, ema, opt, ds, recipe, epoch, steps_per_epoch, step, lr_at, teacher)
        torch.save(
            {
                "model": model.state_dict(),
                "ema": ema.model.state_dict(),
                "ema_updates": ema.updates,
                "opt": opt.state_dict(),
                "epoch": epoch,
                "step": step,
            },
            ckpt,
        )
        last = epoch + 1 == recipe.epochs
        if last:  # blended once, when the last epoch ends
            onnx_path = _export_last(recipe, ema.model, out_dir, log)
        else:
            onnx_path = export_detector(
                ema.model, out_dir / f"{recipe.name}.onnx", {"input_size": recipe.input_size, **recipe.export_meta}
            )
        due = recipe.val and ((epoch + 1) % max(1, recipe.val_every) == 0 or last)
        val = validate(onnx_path, recipe.val) if due else {}
        row = {
            "epoch": epoch + 1,
            "step": step,
            "seconds": round(time.time() - t_ep, 1),
            **{k: round(v / steps_per_epoch, 4) for k, v in agg.items()},
            "val": val,
        }
        with open(out_dir / "log.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        log(json.dumps(row))
        if recipe.max_minutes and (time.time() - t_start) / 60 > recipe.max_minutes and epoch + 1 < recipe.epochs:
            log(f"stopping after {recipe.max_minutes} minutes; run the same command again to resume")
            break
    return out_dir / f"{recipe.name}.onnx"
