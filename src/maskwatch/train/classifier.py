"""Second-stage mask classifier: data from every set with mask labels, cropped the way the
runtime crops detections (square, grown by ``CROP_EXPAND`` around the face box).

Face boxes for the crop sets (mask-crops, MaskedFace-Net portraits) come from the YuNet
teacher, so that every source is framed alike and the classifier cannot learn framing
instead of masks.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..evaluation.datasets import UNKNOWN, load_dataset, read_voc
from ..core.detector import face_crops
from .export import export_classifier
from .net import CropClassifier
from .occluders import draw_mask, draw_occluder

CROP_EXPAND = 1.3
STORE_EXPAND = 1.7  # crops are stored wider so augmentation can shift and zoom
STORE_SIZE = 128
FACE_ONLY = -1  # training label of a face whose mask state is unknown (WIDER)


@dataclass
class ClassifierRecipe:
    name: str = "server_cls"
    width: float = 1.5  # 0.4 M parameters: chosen on Kaggle val.txt over width 1.0 at 96 px (mAP 0.747 vs 0.730)
    input_size: int = 128
    epochs: int = 24
    batch: int = 128
    lr: float = 3e-3
    seed: int = 0
    threads: int = 2
    synth: float = 0.3  # share of bare-face crops given a synthetic mask or occluder
    balance: float = 0.7  # class sampling weight is count ** -balance (0: as found, 1: equal classes)
    background: float = 0.0  # share of each batch drawn from mined non-faces (0: no background class)
    faces: float = 0.0  # share of each batch drawn from WIDER faces (no mask label: taught face vs background only)
    max_faces: int = 12000  # WIDER faces kept for that (sampled, small faces included)
    faces_by_size: bool = False  # sample those faces evenly over sizes (else as found: mostly tiny)
    mine_with: str = "server-det"  # the detector recipe whose mistakes are mined as non-faces
    # share of face crops (labelled and WIDER) given a drawn cap, hood, hazmat hood, goggles or sunglasses
    cover: float = 0.0
    turn: float = 0.0  # share of all crops (non-faces too) turned: up to +-45 degrees, or 90, or 180
    # a crop classifier (a recipe of pipeline.CLASSIFIERS by name, e.g. "server_fvcls", taken from the
    # training folder and trained first if missing; a shipped file's name; or a path) whose probabilities
    # on each training crop are targets too, weighted ``distill`` (knowledge distillation: a smaller
    # network learns the larger one's soft labels beside the hard ones); "": none
    distill_from: str = ""
    distill: float = 1.0


def _predict(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits in chunks of 256 (an empty input gives an empty result)."""
    if not len(x):
        return torch.zeros((0, net.fc.out_features))
    return torch.cat([net(x[i : i + 256]) for i in range(0, len(x), 256)])


def _largest(boxes: list) -> np.ndarray | None:
    if not boxes:
        return None
    b = np.asarray(boxes, np.float32)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return b[int(np.argmax(area)), :4]


def collect_items(data: Path, cache_dir: Path) -> tuple[list, list]:
    """(image path, box, label) for training and for validation (Kaggle val.txt)."""
    from .teacher import label_images

    d = Path(data)
    train, val = [], []
    for root, split, dest in (
        (d / "kaggle-facemask", d / "kaggle-facemask" / "train.txt", train),
        (d / "macwinwin-facemask", None, train),
        (d / "kaggle-facemask", d / "kaggle-facemask" / "val.txt", val),
    ):
        for s in load_dataset(root, split):
            for b, lab, ig in zip(s.boxes, s.labels, s.ignore):
                if lab != UNKNOWN and not ig and max(b[2] - b[0], b[3] - b[1]) >= 8:
                    dest.append((s.image, b, int(lab)))
    crop_dir = d / "mask-crops"
    crop_files = [
        (p, lab)
        for lab, sub in ((0, "mask"), (1, "no_mask"))
        for p in sorted((crop_dir / sub).glob("*"))
        if p.is_file()
    ]
    cache = label_images([p for p, _ in crop_files], Path(cache_dir) / "teacher-mask-crops.json", score_threshold=0.5)
    for p, lab in crop_files:
        b = _largest(cache.get(str(p), []))
        if b is None:
            img = cv2.imread(str(p))
            if img is None:
                continue
            b = np.array([0, 0, img.shape[1], img.shape[0]], np.float32)
        train.append((p, b, lab))
    synth = read_voc(d / "maskedfacenet-synthetic")
    cache = label_images(
        [s.image for s in synth], Path(cache_dir) / "teacher-maskedfacenet-synthetic.json", score_threshold=0.5
    )
    for s in synth:
        if not len(s.labels) or s.labels[0] == UNKNOWN:
            continue
        b = _largest(cache.get(str(s.image), []))
        if b is None:
            b = np.array([20, 10, 204, 214], np.float32)
        train.append((s.image, b, int(s.labels[0])))
    return train, val


FACE_SIZE_BINS = (8, 16, 32, 64)  # px (long side): the lower edges of the size groups of by_size


def collect_faces(data: Path, limit: int, seed: int, val: bool = False, by_size: bool = False) -> list:
    """(image path, box, FACE_ONLY) for WIDER's exhaustively labelled faces (8 px and up), sampled to ``limit``.

    They carry no mask label; a verifying classifier learns from them only that they are faces,
    which teaches its background class the small, blurred and turned faces of crowds. WIDER's
    faces are mostly tiny, so ``by_size`` samples the same number from each size group
    (``FACE_SIZE_BINS``; a group with fewer gives all it has), and close-ups are seen as often.
    """
    d = Path(data)
    items = []
    wider = d / "wider-face-val-part"
    sources = (
        [(wider, wider / "val.txt")] if val else [(d / "wider-face-train-subset", None), (wider, wider / "train.txt")]
    )
    for root, split in sources:
        for s in load_dataset(root, split):
            for b, ig in zip(s.boxes, s.ignore):
                if not ig and max(b[2] - b[0], b[3] - b[1]) >= 8:
                    items.append((s.image, b, FACE_ONLY))
    rng = np.random.default_rng(seed)
    if by_size and len(items) > limit:
        side = np.array([max(b[2] - b[0], b[3] - b[1]) for _, b, _ in items])
        group = np.searchsorted(np.array(FACE_SIZE_BINS), side, side="right") - 1
        return [items[i] for i in sample_evenly(group, limit, rng)]
    if len(items) > limit:
        items = [items[i] for i in sorted(rng.choice(len(items), limit, replace=False))]
    return items


def sample_evenly(group: np.ndarray, limit: int, rng: np.random.Generator) -> list[int]:
    """Indices of at most ``limit`` items, as many from each group as it can give; sorted."""
    members = [np.nonzero(group == g)[0] for g in np.unique(group)]
    chosen, left = [], limit
    for i, m in enumerate(sorted(members, key=len)):  # smallest groups first: their unused share passes on
        take = min(len(m), left // (len(members) - i))
        chosen.extend(rng.choice(m, take, replace=False).tolist())
        left -= take
    return sorted(chosen)


def verify_loss(logits: torch.Tensor, y: torch.Tensor, smoothing: float = 0.1) -> torch.Tensor:
    """Cross-entropy for labelled crops; for FACE_ONLY crops, -log P(not background)."""
    known = y >= 0
    loss = logits.new_zeros(())
    if known.any():
        loss = F.cross_entropy(logits[known], y[known], label_smoothing=smoothing, reduction="sum")
    if (~known).any():
        lf = logits[~known]
        loss = loss + (torch.logsumexp(lf, 1) - torch.logsumexp(lf[:, :3], 1)).sum()
    return loss / len(y)


def distill_loss(logits: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) per crop, averaged: ``teacher`` probabilities, the student's logits."""
    t = teacher.clamp_min(1e-8)
    return (t * (t.log() - F.log_softmax(logits, 1))).sum(1).mean()


class _Teacher:
    """A crop classifier file run with onnxruntime on training batches (0-255 BGR, N x 3 x S x S)."""

    def __init__(self, name: str, classes: int, threads: int):
        from ..core.detector import _session
        from ..models import MODEL_DIR

        path = Path(name) if Path(name).suffix == ".onnx" else MODEL_DIR / f"{name}.onnx"
        self.session = _session(path, threads, spin=False)  # (turns with torch on the same cores)
        self.input = self.session.get_inputs()[0].name
        out = self.session.get_outputs()[0].shape[-1]
        if out != classes:
            raise ValueError(f"{path}: gives {out} classes, the network being trained {classes}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {self.input: x.numpy()})[0].astype(np.float32))


def extract(items: list) -> tuple[np.ndarray, np.ndarray]:
    """Stored crops (N, STORE_SIZE, STORE_SIZE, 3) and labels."""
    by_img: dict = {}
    for i, (p, _, _) in enumerate(items):
        by_img.setdefault(str(p), []).append(i)
    crops = np.zeros((len(items), STORE_SIZE, STORE_SIZE, 3), np.uint8)
    labels = np.array([it[2] for it in items], np.int64)
    for p, idx in by_img.items():
        img = cv2.imread(p)
        if img is None:
            continue
        crops[idx] = face_crops(img, np.stack([items[i][1] for i in idx]), STORE_SIZE, STORE_EXPAND)
    return crops, labels


def augment_batch(crops: np.ndarray, size: int, rng: np.random.Generator, train: bool) -> torch.Tensor:
    """Zoom / shift / flip / blur / colour, then the runtime crop (CROP_EXPAND) at ``size``."""
    out = np.empty((len(crops), size, size, 3), np.uint8)
    base = STORE_SIZE * CROP_EXPAND / STORE_EXPAND  # side of the runtime crop inside a stored crop
    for i, c in enumerate(crops):
        side = base * (rng.uniform(0.85, 1.15) if train else 1.0)
        cx = STORE_SIZE / 2 + (rng.uniform(-0.08, 0.08) * side if train else 0)
        cy = STORE_SIZE / 2 + (rng.uniform(-0.08, 0.08) * side if train else 0)
        s = size / side
        m = np.array([[s, 0, -(cx - side / 2) * s], [0, s, -(cy - side / 2) * s]], np.float32)
        im = cv2.warpAffine(c, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if train:
            if rng.random() < 0.5:
                im = im[:, ::-1]
            if rng.random() < 0.3:  # small faces: lose detail as a far-away face does
                small = int(rng.integers(14, 48))
                im = cv2.resize(cv2.resize(im, (small, small), interpolation=cv2.INTER_AREA), (size, size))
            if rng.random() < 0.8:
                hsv = cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_BGR2HSV).astype(np.float32)
                hsv[..., 0] = (hsv[..., 0] + rng.uniform(-10, 10)) % 180
                hsv[..., 1] *= rng.uniform(0.6, 1.4)
                hsv[..., 2] *= rng.uniform(0.6, 1.4)
                im = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR)
            if rng.random() < 0.05:
                im = cv2.cvtColor(cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        out[i] = im
    return torch.from_numpy(out).permute(0, 3, 1, 2).float()


def synthesize(
    crops: np.ndarray, labels: np.ndarray, rng: np.random.Generator, rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """Turn some bare faces into masked (any pattern), wrongly masked, or hand/object-covered faces."""
    crops, labels = crops.copy(), labels.copy()
    for i in np.nonzero(labels == 1)[0]:
        if rng.random() >= rate:
            continue
        u = rng.random()
        if u < 0.35:
            crops[i], labels[i] = draw_mask(crops[i], rng, STORE_EXPAND, "right"), 0
        elif u < 0.6:
            crops[i], labels[i] = (
                draw_mask(crops[i], rng, STORE_EXPAND, "below_nose" if rng.random() < 0.7 else "chin"),
                2,
            )
        else:
            crops[i] = draw_occluder(crops[i], rng, STORE_EXPAND)  # still no_mask
    return crops, labels


def cover_crops(crops: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    """A share ``rate`` of face crops with a cap, hood, hazmat hood, goggles or sunglasses drawn on the face
    (``evaluation.variants.cover``, as the detector's training and the ``covered`` benchmark draw them); the
    label stays: a masked face under a hood is still ``mask``, and still a face, not background."""
    from ..evaluation.variants import COLOURS, COVERINGS, cover

    if rate <= 0 or not len(crops):
        return crops
    out = crops.copy()
    side = crops.shape[1]
    face = side / STORE_EXPAND  # the face box's side in a stored crop (centred)
    box = np.array([side / 2 - 0.42 * face, side / 2 - face / 2, side / 2 + 0.42 * face, side / 2 + face / 2])
    for i in np.nonzero(rng.random(len(out)) < rate)[0]:
        cover(out[i], box, COVERINGS[rng.integers(len(COVERINGS))], COLOURS[rng.integers(len(COLOURS))])
    return out


def turn_crops(crops: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    """A share ``rate`` of crops turned about their centre: 60 % by up to +-45 degrees, 25 % by 90 either
    way, 15 % upside down (the ``turned`` benchmark's 30, 90 and 180 degrees). Non-faces are turned as
    often as faces, so that a turn is no sign of background."""
    if rate <= 0 or not len(crops):
        return crops
    out = crops.copy()
    side = crops.shape[1]
    for i in np.nonzero(rng.random(len(out)) < rate)[0]:
        u = rng.random()
        angle = rng.uniform(-45, 45) if u < 0.6 else (float(rng.choice([-90, 90])) if u < 0.85 else 180.0)
        m = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
        out[i] = cv2.warpAffine(out[i], m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out


def occluded_val(xva: np.ndarray, yva: np.ndarray, size: int) -> tuple[torch.Tensor, np.ndarray]:
    """Validation bare faces with a hand or object over the mouth (fixed seed): should stay no_mask."""
    rng = np.random.default_rng(1234)
    bare = xva[yva == 1]
    occ = np.stack([draw_occluder(c, rng, STORE_EXPAND) for c in bare]) if len(bare) else bare
    return augment_batch(occ, size, rng, train=False), np.ones(len(occ), np.int64)


@dataclass
class _Crops:
    """The crops of one classifier run: labelled faces, and (with a background class) the detector's
    mistakes and unlabelled WIDER faces."""

    xtr: np.ndarray
    ytr: np.ndarray
    xva: np.ndarray
    yva: np.ndarray
    xneg: np.ndarray | None = None
    yneg: np.ndarray | None = None
    xneg_va: np.ndarray | None = None
    xfac: np.ndarray | None = None


def _load_crops(recipe: ClassifierRecipe, data: Path, cache: Path, detector: Path | None, log) -> _Crops:
    train_items, val_items = collect_items(data, cache)
    xtr, ytr = extract(train_items)
    xva, yva = extract(val_items)
    log(f"classifier: {len(ytr)} training crops {np.bincount(ytr, minlength=3).tolist()}, {len(yva)} validation crops")
    crops = _Crops(xtr, ytr, xva, yva)
    if recipe.background > 0:
        if detector is None:
            raise ValueError("a classifier with a background class needs the detector whose mistakes it learns")
        from . import negatives

        src_tr, src_va = negatives.negative_sources(data)
        tag = negatives.cache_tag(Path(detector), recipe.seed)
        crops.xneg, crops.yneg = extract(
            negatives.mine(detector, src_tr, cache / f"negatives-{tag}-train.json", cache, recipe.seed, log)
        )
        crops.xneg_va, _ = extract(
            negatives.mine(detector, src_va, cache / f"negatives-{tag}-val.json", cache, recipe.seed, log)
        )
        log(f"classifier: {len(crops.yneg)} background training crops, {len(crops.xneg_va)} validation")
    if recipe.faces > 0 and recipe.background > 0:
        crops.xfac, _ = extract(collect_faces(data, recipe.max_faces, recipe.seed, by_size=recipe.faces_by_size))
        log(f"classifier: {len(crops.xfac)} WIDER face crops without mask labels")
    return crops


@dataclass
class _ValSet:
    """Validation inputs, made once: the labelled crops, bare faces with a hand over the mouth, and (with a
    background class) the detector's mistakes and WIDER val faces."""

    x: torch.Tensor
    occluded: torch.Tensor
    occluded_y: np.ndarray
    mistakes: torch.Tensor | None
    wider: torch.Tensor | None
    covered: torch.Tensor  # the labelled crops, each with a drawn covering (fixed seed)
    turned: torch.Tensor  # the labelled crops, each turned (fixed seed)

    @staticmethod
    def of(crops: _Crops, recipe: ClassifierRecipe, data: Path, rng: np.random.Generator) -> "_ValSet":
        size = recipe.input_size
        x = augment_batch(crops.xva, size, rng, train=False)
        occ, occ_y = occluded_val(crops.xva, crops.yva, size)
        mistakes = augment_batch(crops.xneg_va, size, rng, train=False) if crops.xneg_va is not None else None
        wider = None
        if crops.xneg_va is not None:  # WIDER val.txt faces (never trained on): how many would be vetoed
            wider = augment_batch(extract(collect_faces(data, 2000, recipe.seed, val=True))[0], size, rng, train=False)
        covered = augment_batch(cover_crops(crops.xva, np.random.default_rng(4321), 1.0), size, rng, train=False)
        turned = augment_batch(turn_crops(crops.xva, np.random.default_rng(4322), 1.0), size, rng, train=False)
        return _ValSet(x, occ, occ_y, mistakes, wider, covered, turned)


def _classifier_batch(
    crops: _Crops, recipe: ClassifierRecipe, rng: np.random.Generator, p: np.ndarray, n_neg: int, n_fac: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One training batch: labelled faces drawn toward class balance (some made masked or covered),
    then detector mistakes and unlabelled faces."""
    idx = rng.choice(len(crops.ytr), recipe.batch - n_neg - n_fac, p=p)
    xb, yb = synthesize(crops.xtr[idx], crops.ytr[idx], rng, recipe.synth)
    xb = cover_crops(xb, rng, recipe.cover)
    if n_neg:
        assert crops.xneg is not None and crops.yneg is not None
        j = rng.integers(0, len(crops.xneg), n_neg)
        xb, yb = np.concatenate([xb, crops.xneg[j]]), np.concatenate([yb, crops.yneg[j]])
    if n_fac:
        assert crops.xfac is not None
        j = rng.integers(0, len(crops.xfac), n_fac)
        xfac = cover_crops(crops.xfac[j], rng, recipe.cover)
        xb, yb = np.concatenate([xb, xfac]), np.concatenate([yb, np.full(n_fac, FACE_ONLY)])
    xb = turn_crops(xb, rng, recipe.turn)
    return augment_batch(xb, recipe.input_size, rng, train=True), torch.from_numpy(yb)


def _validate_classifier(net: torch.nn.Module, val: _ValSet, yva: np.ndarray) -> dict:
    """The epoch's figures: accuracy (all, per class), hand over mouth kept no_mask, and with a background
    class, faces wrongly vetoed (Kaggle, WIDER) and detector mistakes caught (Kaggle)."""
    net.eval()
    with torch.no_grad():
        logits = _predict(net, val.x)
        pred = logits[:, :3].argmax(1).numpy()  # the label the runtime gives (background is a separate veto)
        per = {
            n: float((pred[yva == c] == c).mean()) if (yva == c).any() else None
            for c, n in enumerate(("mask", "no_mask", "incorrect"))
        }
        yocc = val.occluded_y
        occ_pred = net(val.occluded)[:, :3].argmax(1).numpy() if len(yocc) else np.zeros(0)
        cov_logits, turn_logits = _predict(net, val.covered), _predict(net, val.turned)
        row = {
            "val_accuracy": round(float((pred == yva).mean()), 4),
            "covered_accuracy": round(float((cov_logits[:, :3].argmax(1).numpy() == yva).mean()), 4),
            "turned_accuracy": round(float((turn_logits[:, :3].argmax(1).numpy() == yva).mean()), 4),
            "per_class": per,
            "hand_over_mouth_no_mask": float((occ_pred == yocc).mean()) if len(yocc) else None,
        }
        if val.mistakes is not None and val.wider is not None:
            pos_bg = logits.argmax(1).numpy() == 3
            row["covered_called_background"] = round(float((cov_logits.argmax(1).numpy() == 3).mean()), 4)
            row["turned_called_background"] = round(float((turn_logits.argmax(1).numpy() == 3).mean()), 4)
            neg_bg = _predict(net, val.mistakes).argmax(1).numpy() == 3
            wider_bg = _predict(net, val.wider).argmax(1).numpy() == 3
            row.update(
                faces_called_background=round(float(pos_bg.mean()), 4),
                wider_faces_called_background=round(float(wider_bg.mean()), 4) if len(wider_bg) else None,
                mistakes_called_background=round(float(neg_bg.mean()), 4) if len(neg_bg) else None,
            )
    return row


def train_classifier(
    recipe: ClassifierRecipe, out_dir: Path, data: Path, resume: bool = True, log=print, detector: Path | None = None
) -> Path:
    """Train (or resume) a crop classifier; with ``recipe.background`` > 0 it also learns a
    ``background`` class from the mistakes of ``detector`` (see ``negatives.py``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(recipe.threads)
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    crops = _load_crops(recipe, data, out_dir.parent / "cache", detector, log)
    net = CropClassifier(width=recipe.width, num_classes=4 if recipe.background > 0 else 3)
    teacher = _Teacher(recipe.distill_from, net.fc.out_features, recipe.threads) if recipe.distill_from else None
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=1e-3)
    counts = np.bincount(crops.ytr, minlength=3).astype(np.float64)
    # sample classes toward balance, so the rare 'incorrect' is seen often enough
    w_cls = np.maximum(counts, 1) ** -recipe.balance
    p = w_cls[crops.ytr] / w_cls[crops.ytr].sum()
    n_neg = int(round(recipe.batch * recipe.background)) if crops.xneg is not None and len(crops.xneg) else 0
    n_fac = int(round(recipe.batch * recipe.faces)) if crops.xfac is not None and len(crops.xfac) else 0
    steps = max(1, len(crops.ytr) // recipe.batch)
    total = steps * recipe.epochs
    ckpt = out_dir / "last.ckpt"
    start = 0
    if resume and ckpt.is_file():
        st = torch.load(ckpt, map_location="cpu", weights_only=False)
        net.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        start = st["epoch"] + 1
    val = _ValSet.of(crops, recipe, data, rng)
    for epoch in range(start, recipe.epochs):
        net.train()
        t0 = time.time()
        tot = kd = 0.0
        for b in range(steps):
            step = epoch * steps + b
            for g in opt.param_groups:
                g["lr"] = recipe.lr * 0.5 * (1 + math.cos(math.pi * step / total))
            x, y = _classifier_batch(crops, recipe, rng, p, n_neg, n_fac)
            logits = net(x)
            loss = verify_loss(logits, y)
            if teacher is not None:
                soft = distill_loss(logits, teacher(x))
                kd += float(soft.detach())
                loss = loss + recipe.distill * soft
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss.detach())
        row = {"epoch": epoch + 1, "loss": round(tot / steps, 4), **_validate_classifier(net, val, crops.yva)}
        if teacher is not None:
            row["distill"] = round(kd / steps, 4)
        row["seconds"] = round(time.time() - t0, 1)
        log(json.dumps(row))
        with open(out_dir / "log.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        torch.save({"model": net.state_dict(), "opt": opt.state_dict(), "epoch": epoch}, ckpt)
    (out_dir / "recipe.json").write_text(json.dumps(asdict(recipe), indent=1))
    return export_classifier(net, out_dir / f"{recipe.name}.onnx", recipe.input_size, CROP_EXPAND)
