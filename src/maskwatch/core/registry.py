"""The model registry: model names, their files and their runtime settings, in one place.

``resolve_model("mobile" | "server" | a PaddleHub module name | a path to an .onnx)`` gives a
``ModelSpec``: the name, the file, its aliases, and the settings a maskwatch model file carries in
its ONNX metadata (``maskwatch`` key, JSON), with the defaults for what a file leaves out. Every
other place (``Detector``, the command line, the PaddleHub module, the HTTP service) reads them here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import ModelError
from .face import LABELS
from .geometry import STRIDES

META_KEY = "maskwatch"  # the ONNX metadata key holding a model file's settings
PAD_VALUE = 114  # the value the network input is padded with (what the models were trained with)
# one pass: the candidates overlapping a kept face by more than this vote on its class
# (geometry.class_vote; mobile, Kaggle val label accuracy: 0.3 and 0.7 did no better)
VOTE_IOU = 0.5
# ... and score at least this (network score): a fixed pool, so that a face's label does not depend
# on the threshold a call asks for. mobile, Kaggle val label accuracy with its crop classifier / the
# vote alone: 0.02 -> 0.974 / 0.964, 0.1 -> 0.974 / 0.963, 0.25 -> 0.976 / 0.960, 0.4 -> 0.976 / -
VOTE_SCORE = 0.1
VERIFY_WEIGHT = 0.5  # default veto strength: chosen on validation (models/server.md)
# the settings a model file's metadata may leave out, and their values (train/export.py writes them
# into every new file; the web page reads them, through GET /v1/models, from ModelSpec.summary)
DEFAULTS: dict[str, Any] = {
    "labels": list(LABELS),
    "strides": list(STRIDES),
    "input_size": 640,
    "score_threshold": 0.5,
    "nms_threshold": 0.45,
    "pad_value": PAD_VALUE,
}
# a crop classifier file's settings when its metadata leaves them out (core.detector.CropModel)
CROP_DEFAULTS: dict[str, Any] = {"input_size": 96, "crop_expand": 1.3}
# the metadata keys that set how Detector runs a model file (what a fine-tuned copy must keep)
RUNTIME_SETTINGS = (
    "input_size",
    "upscale",
    "min_input",
    "max_input",
    "zoom",
    "zoom_below",
    "zoom_score",
    "zoom_max_input",
    "score_calibration",
    "score_threshold",
    "nms_threshold",
    "flip",
    "scales",
    "classifier",
    "classifier_weight",
    "classifier_below",
    "verify_weight",
    "classifier_flip",
)

# the settings of the second stage (crop classifiers): what a file of the network alone leaves out
SECOND_STAGE = ("classifier", "classifier_weight", "classifier_below", "verify_weight", "classifier_flip")

# shipped model name -> its aliases (PaddleHub's module name first)
SHIPPED: dict[str, tuple[str, ...]] = {
    "mobile": ("pyramidbox_lite_mobile_mask",),
    "server": ("pyramidbox_lite_server_mask",),
}


def model_dir() -> Path:
    from .. import models

    return models.MODEL_DIR


def aliases() -> dict[str, str]:
    """Every name a shipped model answers to -> the model's name."""
    out = {n: n for n in SHIPPED}
    out.update({a: n for n, al in SHIPPED.items() for a in al})
    return out


def paddlehub_modules() -> dict[str, str]:
    """PaddleHub module name -> shipped model name."""
    return {al[0]: n for n, al in SHIPPED.items()}


def available() -> list[str]:
    """The shipped models present in this installation."""
    return sorted(n for n in SHIPPED if (model_dir() / f"{n}.onnx").is_file())


def shipped_path(name: str) -> Path | None:
    """The file of a shipped model name or alias, or None when ``name`` is not one."""
    key = aliases().get(str(name).lower())
    return model_dir() / f"{key}.onnx" if key else None


def classifier_files(meta: dict[str, Any]) -> list[str]:
    """The crop classifier files a model's metadata names (one name or a list), beside the model."""
    files = meta.get("classifier") or []
    return [files] if isinstance(files, str) else list(files)


def meta_from_custom(custom: dict[str, str] | None) -> dict[str, Any]:
    try:
        meta = json.loads((custom or {}).get(META_KEY, "{}"))
    except json.JSONDecodeError:
        return {}
    return meta if isinstance(meta, dict) else {}


def read_metadata(path: Path) -> dict[str, Any]:
    """The maskwatch settings stored in a model file."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return meta_from_custom(sess.get_modelmeta().custom_metadata_map)


@dataclass(frozen=True)
class ModelSpec:
    """A model: its name, file, aliases, and runtime settings (from the file's metadata)."""

    name: str
    path: Path
    aliases: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def paddlehub_module(self) -> str | None:
        return self.aliases[0] if self.aliases and self.aliases[0].startswith("pyramidbox_") else None

    @property
    def kind(self) -> str:
        return str(self.meta.get("kind", "detector"))

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.meta.get("labels", DEFAULTS["labels"]))

    @property
    def input_size(self) -> int:
        return int(self.meta.get("input_size", DEFAULTS["input_size"]))

    @property
    def upscale(self) -> float | None:
        """Input sized to the picture: its long side times this (None: a fixed ``input_size``)."""
        v = self.meta.get("upscale")
        return None if v is None else float(v)

    @property
    def min_input(self) -> int:
        """With ``upscale``: the smallest network input (long side, px); smaller pictures are enlarged to it."""
        return int(self.meta.get("min_input", 320))

    @property
    def max_input(self) -> int:
        """With ``upscale``: the largest network input (long side, px); larger pictures also get tiles."""
        return int(self.meta.get("max_input", 1280))

    @property
    def zoom(self) -> float:
        """Crowds: when the first pass finds faces smaller than ``zoom_below`` px, the picture is run
        again enlarged this many times more, and that pass's faces are reported (0: never)."""
        return float(self.meta.get("zoom", 0.0))

    @property
    def zoom_below(self) -> float:
        """With ``zoom``: a face whose short side is under this many network-input px asks for the enlarged pass."""
        return float(self.meta.get("zoom_below", 12.0))

    @property
    def zoom_score(self) -> float:
        """With ``zoom``: the network score (before any calibration) a small face needs to ask for it."""
        return float(self.meta.get("zoom_score", 0.25))

    @property
    def zoom_max_input(self) -> int:
        """With ``zoom``: the largest enlarged network input (long side, px)."""
        return int(self.meta.get("zoom_max_input", 2 * self.max_input))

    @property
    def score_calibration(self) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """Knots (network score, face score) of the map from the network's score to the face score
        maskwatch reports (see ``maskwatch.core.calibration``); None: reported as the network gives it."""
        v = self.meta.get("score_calibration")
        if not v:
            return None
        return tuple(float(x) for x in v[0]), tuple(float(x) for x in v[1])

    def input_policy(self) -> str:
        """The input size rule in words, as ``maskwatch models`` prints it."""
        if self.upscale is None:
            rule = f"{self.input_size} px"
        else:
            rule = f"picture x{self.upscale:g}, {self.min_input}-{self.max_input} px"
        if self.zoom > 1:
            rule += (
                f"; x{self.zoom:g} more (to {self.zoom_max_input} px) when it finds faces under {self.zoom_below:g} px"
            )
        return rule

    @property
    def strides(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.meta.get("strides", DEFAULTS["strides"]))

    @property
    def pad_multiple(self) -> int:
        """The network input's sides are multiples of this (the largest stride)."""
        return max(self.strides)

    @property
    def pad_value(self) -> int:
        return int(self.meta.get("pad_value", DEFAULTS["pad_value"]))

    @property
    def score_threshold(self) -> float:
        return float(self.meta.get("score_threshold", DEFAULTS["score_threshold"]))

    @property
    def nms_threshold(self) -> float:
        return float(self.meta.get("nms_threshold", DEFAULTS["nms_threshold"]))

    @property
    def flip(self) -> bool:
        return bool(self.meta.get("flip", False))

    @property
    def scales(self) -> tuple[float, ...]:
        return tuple(float(s) for s in self.meta.get("scales", (1.0,)))

    @property
    def classifiers(self) -> tuple[str, ...]:
        """The second-stage crop classifier files (names beside the model file)."""
        return tuple(classifier_files(self.meta))

    @property
    def classifier_weight(self) -> float:
        return float(self.meta.get("classifier_weight", 0.7))

    @property
    def classifier_below(self) -> float:
        """The crop classifiers label only the faces whose own class probability (the detector's
        top class) is under this: a cascade that asks them only where the detector is unsure
        (above 1, the default: every face)."""
        return float(self.meta.get("classifier_below", 1.01))

    @property
    def verify_weight(self) -> float:
        return float(self.meta.get("verify_weight", VERIFY_WEIGHT))

    @property
    def classifier_flip(self) -> bool:
        return bool(self.meta.get("classifier_flip", False))

    def classifier_settings(self) -> list[dict[str, Any]]:
        """Each crop classifier's file, input size, crop expansion and labels (from its own
        metadata), what a runtime outside Python (the on-device page) needs to run it."""
        out = []
        for name in self.classifiers:
            p = self.path.parent / name
            meta = _file_meta(str(p), p.stat().st_mtime) if p.is_file() else {}
            out.append(
                {
                    "file": name,
                    "input_size": int(meta.get("input_size", CROP_DEFAULTS["input_size"])),
                    "crop_expand": float(meta.get("crop_expand", CROP_DEFAULTS["crop_expand"])),
                    "labels": list(meta.get("labels", LABELS)),
                }
            )
        return out

    @property
    def files(self) -> tuple[Path, ...]:
        """The model file and its classifier files."""
        return (self.path, *(self.path.parent / c for c in self.classifiers))

    @property
    def size_bytes(self) -> int:
        """The total size of all files (the classifiers included)."""
        return sum(f.stat().st_size for f in self.files if f.is_file())

    def summary(self) -> dict[str, Any]:
        """What ``maskwatch models`` and ``GET /v1/models`` show."""
        return {
            "name": self.name,
            "paddlehub_module": self.paddlehub_module,
            "input_size": self.input_size,
            "strides": list(self.strides),
            "pad_multiple": self.pad_multiple,
            "pad_value": self.pad_value,
            "upscale": self.upscale,
            "min_input": self.min_input,
            "max_input": self.max_input,
            "zoom": self.zoom,
            "zoom_below": self.zoom_below,
            "zoom_score": self.zoom_score,
            "zoom_max_input": self.zoom_max_input,
            "score_calibration": None if self.score_calibration is None else [list(k) for k in self.score_calibration],
            "score_threshold": self.score_threshold,
            "nms_threshold": self.nms_threshold,
            "vote_iou": VOTE_IOU,
            "vote_score": VOTE_SCORE,
            "flip": self.flip,
            "scales": list(self.scales),
            "labels": list(self.labels),
            "classifiers": list(self.classifiers),
            "classifier_below": self.classifier_below,
            "classifier_weight": self.classifier_weight,
            "verify_weight": self.verify_weight,
            "classifier_flip": self.classifier_flip,
            "classifier_settings": self.classifier_settings(),
            "file_bytes": self.size_bytes,
        }


@lru_cache(maxsize=64)
def _file_meta(path: str, mtime: float) -> dict[str, Any]:
    return read_metadata(Path(path))


@lru_cache(maxsize=64)
def _spec(name: str, path: str, mtime: float, alias: tuple[str, ...]) -> ModelSpec:
    return ModelSpec(name, Path(path), alias, read_metadata(Path(path)))


def resolve_model(name_or_path: str | os.PathLike[str]) -> ModelSpec:
    """The ``ModelSpec`` of a shipped model name, a PaddleHub module name, or a path to an .onnx file."""
    alias: tuple[str, ...]
    path = shipped_path(str(name_or_path)) if not isinstance(name_or_path, os.PathLike) else None
    if path is None:
        path = Path(name_or_path)
        if not path.is_file():
            known = ", ".join(aliases())
            raise ModelError(f"{name_or_path}: not a model name ({known}) nor an existing .onnx file")
        name, alias = path.stem, ()
    else:
        if not path.is_file():
            raise ModelError(f"{name_or_path}: the shipped model file {path.name} is missing from this installation")
        name, alias = path.stem, SHIPPED[path.stem]
    try:
        return _spec(name, str(path.resolve()), path.stat().st_mtime, alias)
    except ModelError:
        raise
    except Exception as exc:  # onnxruntime raises several types for bad files
        raise ModelError(f"{path}: cannot load as an ONNX model ({str(exc).splitlines()[0]})") from None
