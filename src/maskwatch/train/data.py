"""Training data: which pictures, which labels, and the augmentations that make faces hard.

Face boxes come from every labelled set; mask classes only from the sets that have them
(others carry class ``UNKNOWN`` and teach only where faces are). Faces that the mask sets
leave unlabelled are filled in from the YuNet teacher's cached boxes (face-only), so that
the detector is not taught that a real face is background; later stages may give such faces
a mask label from the project's own crop classifier (``pseudo.py``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..evaluation.datasets import holdout, UNKNOWN, Sample, load_dataset
from ..core.face import LABELS
from ..core.geometry import iou_matrix
from ..core.registry import PAD_VALUE

MIN_FACE = 6.0  # faces smaller than this (px, after scaling) are ignored, not taught


def add_teacher_faces(
    sample: Sample, teacher_boxes: list, keep_score: float = 0.75, ignore_score: float = 0.5
) -> Sample:
    """Add teacher faces that no label covers: sure ones as face-only boxes, unsure ones as ignore."""
    if not teacher_boxes:
        return sample
    tb = np.asarray(teacher_boxes, dtype=np.float32).reshape(-1, 5)
    tb = tb[tb[:, 4] >= ignore_score]
    if len(sample.boxes) and len(tb):
        ious = iou_matrix(tb[:, :4], sample.boxes)
        # also drop teacher boxes mostly inside a labelled one (different box styles)
        inter_frac = _containment(tb[:, :4], sample.boxes)
        tb = tb[(ious.max(1) < 0.3) & (inter_frac.max(1) < 0.6)]
    if not len(tb):
        return sample
    return Sample(
        sample.image,
        np.concatenate([sample.boxes, tb[:, :4]]),
        np.concatenate([sample.labels, np.full(len(tb), UNKNOWN)]),
        np.concatenate([sample.ignore, tb[:, 4] < keep_score]),
    )


def _containment(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = np.maximum((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), 1e-6)
    return inter / area_a[:, None]


@dataclass
class Source:
    """One labelled set in the training mix; ``weight`` repeats it per epoch."""

    root: Path
    split: str | None = None
    weight: float = 1.0
    teacher: bool = False  # fill unlabelled faces from the teacher
    face_only: bool = False  # ignore its class labels
    kind: str = "boxes"  # "boxes": a labelled set; "crops": class folders; "portraits": one labelled face per picture
    holdout: float = 0.0  # leave out the set's fixed validation part of this share (evaluation.datasets.HOLDOUT)


def class_folder_items(root: Path) -> list[tuple[Path, int]]:
    """(picture, class) for a folder with one sub-folder per class (mask, no_mask, incorrect)."""
    from ..evaluation.datasets import label_index

    out = []
    for sub in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        lab = label_index(sub.name)
        out.extend((f, lab) for f in sorted(sub.iterdir()) if f.is_file())
    return out


def portrait_items(root: Path) -> list[tuple[Path, int]]:
    """(picture, class) for a VOC set whose pictures each show one labelled face (MaskedFace-Net)."""
    from ..evaluation.datasets import read_voc

    return [(s.image, int(s.labels[0])) for s in read_voc(root) if len(s.labels) and s.labels[0] != UNKNOWN]


def one_face_samples(items: list[tuple[Path, int]], cache: dict, min_score: float = 0.6) -> list[Sample]:
    """Pictures of one labelled face: the teacher says where it is (its largest face); pictures
    where the teacher finds none are left out, so no face is ever taught as background."""
    out = []
    for path, lab in items:
        tb = np.asarray(cache.get(str(path), []), np.float32).reshape(-1, 5)
        if not len(tb) or tb[:, 4].max() < min_score:
            continue
        area = (tb[:, 2] - tb[:, 0]) * (tb[:, 3] - tb[:, 1])
        main = int(np.argmax(area))
        labels = np.full(len(tb), UNKNOWN)
        labels[main] = lab
        ignore = tb[:, 4] < min_score
        ignore[main] = False
        out.append(Sample(path, tb[:, :4], labels, ignore))
    return out


def build_samples(sources: list[Source], cache_dir: Path, rare_repeat: int = 0) -> list[Sample]:
    """The pictures of ``sources`` as drawn in one epoch; with ``rare_repeat``, the scene sets'
    pictures that hold an ``incorrect`` face are drawn that many times more (at the end; the
    portraits' masks worn wrong are many already)."""
    from .teacher import label_images

    out: list[Sample] = []
    rare: list[Sample] = []
    for src in sources:
        if isinstance(src, tuple):  # ("samples", [Sample, ...]): a ready list, e.g. a user's fine-tuning set
            out.extend(src[1])
            continue
        if src.kind in ("crops", "portraits"):
            items = class_folder_items(src.root) if src.kind == "crops" else portrait_items(src.root)
            cache = label_images(
                [p for p, _ in items], Path(cache_dir) / f"teacher-{Path(src.root).name}.json", score_threshold=0.5
            )
            samples = one_face_samples(items, cache)
            _repeat(out, samples, src.weight)
            continue
        samples = load_dataset(src.root, src.split)
        if src.holdout:  # the validation part benchmarks/accuracy.py reports is never trained on
            samples = holdout(samples, src.holdout, part="train")
        if src.face_only:
            for s in samples:
                s.labels[:] = UNKNOWN
        if src.teacher:
            tag = Path(src.root).name + ("-" + Path(src.split).stem if src.split else "")
            cache = label_images([s.image for s in samples], Path(cache_dir) / f"teacher-{tag}.json")
            samples = [add_teacher_faces(s, cache.get(str(s.image), [])) for s in samples]
        _repeat(out, samples, src.weight)
        if rare_repeat:
            rare.extend(rare_pictures(samples))
    return out + rare * rare_repeat


def rare_pictures(samples: list[Sample], label: int = LABELS.index("incorrect")) -> list[Sample]:
    """The distinct pictures among ``samples`` that hold a face of class ``label`` (drawn again
    so that a rare class is seen more often: Kaggle's training split has 97 ``incorrect`` faces)."""
    return [s for s in distinct(samples) if (s.labels == label).any()]


def distinct(samples: list[Sample]) -> list[Sample]:
    """Each sample object once, in first-seen order (a source drawn several times per epoch holds
    the same objects)."""
    return list({id(s): s for s in samples}.values())


def _repeat(out: list, samples: list, weight: float) -> None:
    """Add ``samples`` ``weight`` times (a fraction adds a fixed random part)."""
    whole, frac = int(weight), weight - int(weight)
    out.extend(samples * whole)
    if frac > 0:
        out.extend(random.Random(0).sample(samples, int(round(frac * len(samples)))))


def _color_jitter(img: np.ndarray, rng: random.Random) -> np.ndarray:
    if rng.random() < 0.8:
        hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-8, 8)) % 180
        hsv[..., 1] *= rng.uniform(0.6, 1.4)
        hsv[..., 2] *= rng.uniform(0.6, 1.4)
        img = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR)
    if rng.random() < 0.05:
        img = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    if rng.random() < 0.1:
        k = rng.choice([3, 5])
        img = cv2.GaussianBlur(img, (k, k), 0)
    if rng.random() < 0.1:
        q = rng.randint(30, 80)
        ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            img = cv2.imdecode(enc, cv2.IMREAD_COLOR)
    return img


PASTE_MIN_FACE = 16.0  # px: smaller faces are too small to draw a mask on
PASTE_EXPAND = 1.7  # the square drawn on, as a multiple of the face height (occluders' geometry)


def paste_on_face(img: np.ndarray, box: np.ndarray, draw) -> bool:
    """Redraw the square around one face of ``img`` (in place) with ``draw(square, expand)``, the
    square ``PASTE_EXPAND`` times the face height, centred on the face (edges replicated where it
    leaves the picture). False, and nothing drawn, when most of that square is outside the picture."""
    h, w = img.shape[:2]
    side = int(round((box[3] - box[1]) * PASTE_EXPAND))
    x0 = int(round((box[0] + box[2]) / 2 - side / 2))
    y0 = int(round((box[1] + box[3]) / 2 - side / 2))
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x0 + side), min(h, y0 + side)
    if sx1 - sx0 < side * 0.6 or sy1 - sy0 < side * 0.6:
        return False  # face mostly outside the picture
    square = cv2.copyMakeBorder(
        img[sy0:sy1, sx0:sx1], sy0 - y0, y0 + side - sy1, sx0 - x0, x0 + side - sx1, cv2.BORDER_REPLICATE
    )
    square = draw(square, PASTE_EXPAND)
    img[sy0:sy1, sx0:sx1] = square[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0]
    return True


def paste_occluders(
    img: np.ndarray, boxes: np.ndarray, labels: np.ndarray, ignore: np.ndarray, rate: float, rng: random.Random
) -> np.ndarray:
    """Draw masks (worn right, below the nose, on the chin) or hands and objects on bare or
    unlabelled faces of ``img`` (in place) and return their new labels: the detector's own class
    head then sees masks of every colour and pattern, masks worn wrong, and hands over mouths
    (still ``no_mask``)."""
    from .occluders import draw_mask, draw_occluder

    if rate <= 0 or not len(boxes):
        return labels
    nrng = np.random.default_rng(rng.getrandbits(32))
    labels = labels.copy()
    for i, (b, lab, ig) in enumerate(zip(boxes, labels, ignore)):
        fh = b[3] - b[1]
        if (
            ig
            or lab not in (UNKNOWN, 1)
            or fh < PASTE_MIN_FACE
            or b[2] - b[0] < PASTE_MIN_FACE * 0.6
            or rng.random() >= rate
        ):
            continue
        new = [int(lab)]

        def draw(square: np.ndarray, expand: float, new: list[int] = new) -> np.ndarray:
            u = rng.random()  # drawn only for a face that is drawn on, as before paste_on_face existed
            if u < 0.45:
                new[0] = 0
                return draw_mask(square, nrng, expand, "right")
            if u < 0.75:
                new[0] = 2
                return draw_mask(square, nrng, expand, "below_nose" if rng.random() < 0.7 else "chin")
            return draw_occluder(square, nrng, expand)  # the class stays what it was

        if paste_on_face(img, b, draw):
            labels[i] = new[0]
    return labels


def cover_faces(img: np.ndarray, boxes: np.ndarray, ignore: np.ndarray, rate: float, rng: random.Random) -> None:
    """Draw a cap, hood, hazmat hood, goggles or sunglasses (``evaluation.variants.cover``) on a share
    ``rate`` of the faces of ``img`` big enough to carry one (in place). The label stays: a masked
    face under a hood is still ``mask``, and the detector learns that it is still a face."""
    from ..evaluation.variants import COLOURS, COVERINGS, MIN_COVERED_PX, cover

    if rate <= 0:
        return
    for b, ig in zip(boxes, ignore):
        if ig or min(b[2] - b[0], b[3] - b[1]) < MIN_COVERED_PX or rng.random() >= rate:
            continue
        cover(img, b, COVERINGS[rng.randrange(len(COVERINGS))], COLOURS[rng.randrange(len(COLOURS))])


def turned_box(box: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The upright box around a face's oval (the ellipse inscribed in ``box``) after the affine ``m``:
    tight around the turned face, not around its box's turned corners."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    a, b = (box[2] - box[0]) / 2, (box[3] - box[1]) / 2
    ncx, ncy = m[:, :2] @ np.array([cx, cy]) + m[:, 2]
    r = m[:, :2]
    hw = math.hypot(r[0, 0] * a, r[0, 1] * b)
    hh = math.hypot(r[1, 0] * a, r[1, 1] * b)
    return np.array([ncx - hw, ncy - hh, ncx + hw, ncy + hh], np.float32)


def turn_crop(img, boxes, labels, ignore, rng: random.Random, pad_value: int):
    """A training crop turned about its centre: up to 45 degrees either way, or (a fifth of the time)
    90 or 180; the corners filled with the pad value. A face whose centre leaves the crop is dropped,
    one cut by the edge is ignored, as ``crop`` does."""
    size = img.shape[0]
    angle = rng.choice((90.0, 180.0, -90.0)) if rng.random() < 0.2 else rng.uniform(-45.0, 45.0)
    m = cv2.getRotationMatrix2D((size / 2, size / 2), angle, 1.0)
    out = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=(pad_value,) * 3)
    if not len(boxes):
        return out, boxes, labels, ignore
    nb = np.stack([turned_box(b, m) for b in boxes])
    centre = (nb[:, :2] + nb[:, 2:]) / 2
    keep = np.all((centre >= 0) & (centre < size), axis=1)
    nb, labels, ignore = nb[keep], labels[keep], ignore[keep]
    clipped = np.clip(nb, 0, size)
    area = np.maximum((nb[:, 2] - nb[:, 0]) * (nb[:, 3] - nb[:, 1]), 1e-6)
    vis = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1]) / area
    return out, clipped.astype(np.float32), labels, ignore | (vis < 0.6)


class DetectionDataset:
    """Random crops of ``size`` x ``size`` with faces at every scale the field shows."""

    def __init__(
        self,
        samples: list[Sample],
        size: int = 320,
        seed: int = 0,
        augment: bool = True,
        paste: float = 0.0,
        pad_value: int = PAD_VALUE,
        cover: float = 0.0,
        rotate: float = 0.0,
    ):
        self.samples = samples
        self.pad_value = pad_value  # what crops past the picture's edge are filled with: the model's own
        self.size = size
        self.seed = seed
        self.augment = augment
        self.paste = paste  # share of bare / unlabelled faces given a synthetic mask or occluder
        self.cover = cover  # share of faces given a drawn cap, hood, hazmat hood, goggles or sunglasses
        self.rotate = rotate  # share of crops turned (up to 45 degrees either way; a fifth of them by 90 or 180)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        rng = random.Random((self.seed * 1_000_003 + self.epoch) * 10_000_019 + i)
        s = self.samples[i]
        img = cv2.imread(str(s.image), cv2.IMREAD_COLOR)
        if img is None:
            img = np.full((self.size, self.size, 3), self.pad_value, np.uint8)
            return img, np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, bool)
        return self.crop(img, s.boxes.copy(), s.labels.copy(), s.ignore.copy(), rng)

    def crop(self, img, boxes, labels, ignore, rng: random.Random):
        h, w = img.shape[:2]
        size = self.size
        valid = ~ignore
        sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) if len(boxes) else np.zeros(0)
        ref = None
        if rng.random() < 0.5 or not valid.any():
            # as at inference: long side near 640, with jitter
            scale = 640 / max(h, w) * math.exp(rng.uniform(math.log(0.5), math.log(1.6)))
        else:
            ref = rng.choice(list(np.nonzero(valid)[0]))
            want = math.exp(rng.uniform(math.log(10), math.log(size * 0.8)))
            scale = want / max(sides[ref], 1.0)
        scale = float(np.clip(scale, 0.1, 4.0))
        scale = min(scale, 2400 / max(h, w))
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        sb = boxes * scale
        # crop window
        if ref is not None:
            b = sb[ref]
            lo_x, hi_x = b[2] - size, b[0]
            lo_y, hi_y = b[3] - size, b[1]
            x0 = rng.uniform(min(lo_x, hi_x), max(lo_x, hi_x))
            y0 = rng.uniform(min(lo_y, hi_y), max(lo_y, hi_y))
        else:
            x0 = rng.uniform(min(0, nw - size), max(0, nw - size))
            y0 = rng.uniform(min(0, nh - size), max(0, nh - size))
        x0, y0 = int(round(x0)), int(round(y0))
        # resize only the needed region to save time on big upscales
        src_x0, src_y0 = max(0, x0), max(0, y0)
        src_x1, src_y1 = min(nw, x0 + size), min(nh, y0 + size)
        out = np.full((size, size, 3), self.pad_value, np.uint8)
        if src_x1 > src_x0 and src_y1 > src_y0:
            ox0, oy0 = src_x0 / scale, src_y0 / scale
            ox1, oy1 = src_x1 / scale, src_y1 / scale
            m = np.array([[scale, 0, -ox0 * scale], [0, scale, -oy0 * scale]], np.float32)
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            patch = (
                cv2.warpAffine(
                    img, m, (src_x1 - src_x0, src_y1 - src_y0), flags=interp, borderValue=(self.pad_value,) * 3
                )
                if interp == cv2.INTER_LINEAR
                else cv2.resize(
                    img[int(oy0) : int(math.ceil(oy1)), int(ox0) : int(math.ceil(ox1))],
                    (src_x1 - src_x0, src_y1 - src_y0),
                    interpolation=interp,
                )
            )
            out[src_y0 - y0 : src_y1 - y0, src_x0 - x0 : src_x1 - x0] = patch
        sb = sb - np.array([x0, y0, x0, y0], np.float32)
        if len(sb):
            area = np.maximum((sb[:, 2] - sb[:, 0]) * (sb[:, 3] - sb[:, 1]), 1e-6)
            cb = np.clip(sb, 0, size)
            carea = np.clip(cb[:, 2] - cb[:, 0], 0, None) * np.clip(cb[:, 3] - cb[:, 1], 0, None)
            vis = carea / area
            keep = vis > 0.05
            sb, cb, labels, ignore, vis = sb[keep], cb[keep], labels[keep], ignore[keep], vis[keep]
            ignore = ignore | (vis < 0.6)
            side = np.maximum(cb[:, 2] - cb[:, 0], cb[:, 3] - cb[:, 1])
            ignore = ignore | (side < MIN_FACE)
            sb = np.where((vis >= 0.6)[:, None], cb, sb)
        if self.augment:
            labels = paste_occluders(out, sb, labels, ignore, self.paste, rng)
            cover_faces(out, sb, ignore, self.cover, rng)
            if self.rotate and rng.random() < self.rotate:
                out, sb, labels, ignore = turn_crop(out, sb, labels, ignore, rng, self.pad_value)
            if rng.random() < 0.5:
                out = out[:, ::-1].copy()
                if len(sb):
                    sb = np.stack([size - sb[:, 2], sb[:, 1], size - sb[:, 0], sb[:, 3]], 1)
            out = _color_jitter(out, rng)
        return out, sb.astype(np.float32), labels.astype(np.int64), ignore.astype(bool)


def collate(batch):
    import torch

    imgs = torch.from_numpy(np.stack([b[0] for b in batch])).permute(0, 3, 1, 2).float()
    return imgs, [b[1] for b in batch], [b[2] for b in batch], [b[3] for b in batch]
