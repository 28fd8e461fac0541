"""YuNet teacher (training time only): face boxes for faces that the mask sets leave unlabelled.

maskwatch never loads this at run time and never ships it; it lives in ``../shared/teachers``.
Its boxes are used as face-only training labels (class unknown) so that the detector is not
taught that unlabelled faces are background. The model cards record this.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from ..core.detector import Letterbox
from ..core.geometry import nms

TEACHER_FILE = "yunet_n_dynamic.onnx"


def teacher_path() -> Path:
    """YuNet-n's file: ``$MASKWATCH_TEACHER``, else ``teachers/`` beside the data folder (``../shared``)."""
    from ..evaluation.datasets import data_root

    env = os.environ.get("MASKWATCH_TEACHER")
    if env:
        return Path(env)
    root = data_root()
    if root is not None and (root.parent / "teachers" / TEACHER_FILE).is_file():
        return root.parent / "teachers" / TEACHER_FILE
    return Path(__file__).resolve().parents[4] / "shared" / "teachers" / TEACHER_FILE


class YuNetTeacher:
    def __init__(
        self,
        path: Path | str | None = None,
        score_threshold: float = 0.6,
        max_side: int = 960,
        long_side: int | None = None,
        threads: int = 2,
    ):
        path = Path(path) if path else teacher_path()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.score_threshold = score_threshold
        self.max_side = max_side
        self.long_side = long_side  # run every picture at this long side (benchmarks), instead of the rule below

    def detect(self, bgr: np.ndarray) -> np.ndarray:
        """Faces as an (N, 5) array of x1, y1, x2, y2, score in pixels of ``bgr``."""
        h0, w0 = bgr.shape[:2]
        scale = min(1.0, self.max_side / max(h0, w0))
        # Small pictures are enlarged so the teacher sees small faces (it is weak below ~10 px).
        if max(h0, w0) < 640:
            scale = 640 / max(h0, w0)
        if self.long_side:
            scale = self.long_side / max(h0, w0)
        box = Letterbox.of((h0, w0), round(max(h0, w0) * scale), 32)  # the runtime's letterbox, padded with 0
        blob = box.blob(bgr, 0)  # as YuNet-n was trained
        pw = box.pw
        scale = box.scale
        outs = dict(zip([o.name for o in self.sess.get_outputs()], self.sess.run(None, {"input": blob})))
        boxes, scores = [], []
        for s in (8, 16, 32):
            gw = pw // s
            cls = outs[f"cls_{s}"].reshape(-1)
            obj = outs[f"obj_{s}"].reshape(-1)
            bb = outs[f"bbox_{s}"].reshape(-1, 4)
            score = np.sqrt(np.clip(cls * obj, 0, 1))
            keep = score >= self.score_threshold
            if not keep.any():
                continue
            idx = np.nonzero(keep)[0]
            cx = (idx % gw + bb[idx, 0]) * s
            cy = (idx // gw + bb[idx, 1]) * s
            bw = np.exp(bb[idx, 2]) * s
            bh = np.exp(bb[idx, 3]) * s
            boxes.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1))
            scores.append(score[idx])
        if not boxes:
            return np.zeros((0, 5), np.float32)
        b = np.concatenate(boxes) / scale
        sc = np.concatenate(scores)
        k = nms(b, sc, 0.45)
        return np.concatenate([b[k], sc[k, None]], 1).astype(np.float32)


def label_images(paths: list[Path], cache_file: Path, score_threshold: float = 0.6) -> dict[str, list]:
    """Run the teacher over pictures once and cache its boxes in a json file."""
    cache_file = Path(cache_file)
    cache: dict[str, list] = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    todo = [p for p in paths if str(p) not in cache]
    if todo:
        from tqdm import tqdm

        teacher = YuNetTeacher(score_threshold=score_threshold)
        for p in tqdm(todo, desc=f"teacher {cache_file.stem}", unit="img"):
            img = cv2.imread(str(p))
            cache[str(p)] = teacher.detect(img).round(2).tolist() if img is not None else []
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_text(json.dumps(cache))
    return cache
