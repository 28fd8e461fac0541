"""Hard negatives for the crop classifier: what the detector takes for a face but is not one.

The detector's own mistakes on training pictures (fists, hands holding a mask, ears, toys, faces
printed on things it should not count are rarer) are collected as a fourth, ``background``
class, so that the second stage can veto them. A detection is a negative only when it is far
from every labelled face and every face the YuNet teacher finds (the mask sets leave many faces
unlabelled); WIDER's labels are exhaustive, so the teacher is not needed there. A few random
boxes per picture add easy negatives. Results are cached per detector file.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from ..evaluation.datasets import load_dataset
from ..core.geometry import iou_matrix

BACKGROUND = 3  # label index of "not a face" in a verifying crop classifier
MAX_IOU = 0.2  # a detection overlapping a known face more than this is not a negative
MIN_SCORE = 0.15  # hard negatives are detections at least this sure
PER_IMAGE = 12  # at most this many hard negatives from one picture (crowds would dominate)
RANDOM_PER_IMAGE = 2


def cache_tag(detector: Path, seed: int) -> str:
    """Names a negatives cache after the detector file's content and the mining settings, so that a
    cache mined with another detector or other settings is not reused."""
    import hashlib

    file_tag = hashlib.sha1(Path(detector).read_bytes()).hexdigest()[:8]
    settings = hashlib.sha1(json.dumps([MAX_IOU, MIN_SCORE, PER_IMAGE, RANDOM_PER_IMAGE, seed]).encode()).hexdigest()[
        :6
    ]
    return f"{Path(detector).stem}-{file_tag}-{settings}"


def negative_sources(data: Path) -> tuple[list[tuple[Path, str | None, bool]], list[tuple[Path, str | None, bool]]]:
    """(root, split, use teacher) for mining training negatives and validation negatives."""
    d = Path(data)
    train = [
        (d / "kaggle-facemask", str(d / "kaggle-facemask" / "train.txt"), True),
        (d / "macwinwin-facemask", None, True),
        (d / "wider-face-train-subset", None, False),
    ]
    val = [(d / "kaggle-facemask", str(d / "kaggle-facemask" / "val.txt"), True)]
    return train, val


def is_negative(boxes: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Which boxes lie away from every known face: low IoU, and centre outside each face box."""
    if not len(boxes):
        return np.zeros(0, bool)
    if not len(known):
        return np.ones(len(boxes), bool)
    iou = iou_matrix(boxes, known)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    inside = (
        (cx[:, None] >= known[None, :, 0])
        & (cx[:, None] <= known[None, :, 2])
        & (cy[:, None] >= known[None, :, 1])
        & (cy[:, None] <= known[None, :, 3])
    )
    return (iou.max(1) < MAX_IOU) & ~inside.any(1)


def random_boxes(width: int, height: int, known: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``n`` random square boxes (2-25 % of the short side) away from known faces."""
    out = []
    short = min(width, height)
    for _ in range(n * 5):
        s = rng.uniform(0.02, 0.25) * short
        if s < 8:
            continue
        x, y = rng.uniform(0, width - s), rng.uniform(0, height - s)
        b = np.array([[x, y, x + s, y + s]], np.float32)
        if is_negative(b, known)[0]:
            out.append(b[0])
        if len(out) >= n:
            break
    return np.array(out, np.float32).reshape(-1, 4)


def mine(detector_path: Path, sources: list, cache_file: Path, teacher_dir: Path, seed: int = 0, log=print) -> list:
    """(image path, box, BACKGROUND) items from ``sources``; cached in ``cache_file``."""
    cache_file = Path(cache_file)
    if cache_file.is_file():
        rows = json.loads(cache_file.read_text())
        return [(Path(p), np.array(b, np.float32), BACKGROUND) for p, b in rows]
    from tqdm import tqdm

    from ..core.detector import Detector
    from .teacher import label_images

    det = Detector(detector_path, score_threshold=MIN_SCORE, input_size=960, flip=True, threads=2)
    rng = np.random.default_rng(seed)
    rows = []
    for root, split, use_teacher in sources:
        samples = load_dataset(Path(root), split)
        taught = {}
        if use_teacher:
            name = Path(root).name + ("-" + Path(split).stem if split else "")
            taught = label_images(
                [s.image for s in samples], Path(teacher_dir) / f"teacher-{name}.json", score_threshold=0.5
            )
        for s in tqdm(samples, desc=f"negatives {Path(root).name}", unit="img"):
            img = cv2.imread(str(s.image))
            if img is None:
                continue
            known = np.asarray(s.boxes, np.float32).reshape(-1, 4)
            t = np.asarray(taught.get(str(s.image), []), np.float32).reshape(-1, 5)[:, :4]
            known = np.concatenate([known, t])
            raw = det.detections(img, score_threshold=MIN_SCORE)
            hard = raw.boxes[is_negative(raw.boxes, known)][:PER_IMAGE]  # detections come sorted by score
            hard = hard[np.minimum(hard[:, 2] - hard[:, 0], hard[:, 3] - hard[:, 1]) >= 6]
            easy = random_boxes(img.shape[1], img.shape[0], known, RANDOM_PER_IMAGE, rng)
            rows += [(str(s.image), b.round(1).tolist()) for b in np.concatenate([hard, easy])]
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    cache_file.write_text(json.dumps(rows))
    log(f"negatives: {len(rows)} crops from {cache_file.name}")
    return [(Path(p), np.array(b, np.float32), BACKGROUND) for p, b in rows]
