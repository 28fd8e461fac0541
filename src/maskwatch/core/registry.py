"""The model registry: model names, their files and their runtime settings, in one place.

``resolve_model("mobile" | "server" | a PaddleHub module name | a path to an .onnx)`` gives a
``ModelSpec``: the name, the file, its aliases, and the settings a maskwatch model file carries in
its ONNX metadata (``maskwatch`` key, JSON), with the defaults for what a file leaves out. Every
other place (``Detector``, the command line, the PaddleHub module, the HTTP service) reads them here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import ModelError
from .face import LABELS
from .geometry import STRIDES
from ..models import MODEL_DIR

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
# a crop classifier file's settings when its metadata leaves them out (core.detector.CropModel)
CROP_DEFAULTS: dict[str, Any] = {"input_size": 96, "crop_expand": 1.3}
# shipped model name -> its aliases (PaddleHub's module name first)
SHIPPED: dict[str, tuple[str, ...]] = {
    "mobile": ("pyramidbox_lite_mobile_mask",),
    "server": ("pyramidbox_lite_server_mask",),
}


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
    return sorted(n for n in SHIPPED if (MODEL_DIR / f"{n}.onnx").is_file())


def shipped_path(name: str) -> Path | None:
    """The file of a shipped model name or alias, or None when ``name`` is not one."""
    key = aliases().get(str(name).lower())
    return MODEL_DIR / f"{key}.onnx" if key else None


def classifier_files(meta: dict[str, Any]) -> list[str]:
    """The crop classifier files a model's metadata names (one name or a list), beside the model."""
    files = meta.get("classifier") or []
    files = [files] if isinstance(files, str) else list(files)
    rescue = meta.get("rescue_classifier") or ""
    return files + [rescue] if rescue and rescue not in files else files


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


def first_input(long_side: float, upscale: float | None, input_size: int, min_input: int, max_input: int) -> int:
    """The long side (px) of a picture's first whole-picture pass, before ``scales``: ``input_size``
    (a fixed rule, ``upscale`` None), or the picture's own long side x ``upscale`` kept between
    ``min_input`` and ``max_input`` (``Detector.passes``; ``ModelSettings.first_input``)."""
    if upscale is None:
        return int(input_size)
    return int(round(min(max(long_side * upscale, min_input), max_input)))


def _floats(v: Any) -> tuple[float, ...]:
    return tuple(float(x) for x in v)


def _calibration(v: Any) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    return (_floats(v[0]), _floats(v[1])) if v else None


def _names(v: Any) -> tuple[str, ...]:
    return (v,) if isinstance(v, str) else tuple(str(x) for x in (v or ()))


def _setting(default: Any, convert: Any, doc: str, second_stage: bool = False) -> Any:
    """A field of ``ModelSettings``: its default, how a metadata value becomes it, what it means."""
    return field(default=default, metadata={"convert": convert, "doc": doc, "second_stage": second_stage})


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


@dataclass(frozen=True)
class ModelSettings:
    """A model file's runtime settings, each with its default for a file that leaves it out: the one
    definition that ``ModelSpec``, ``Detector`` (``settings.replace(**overrides)``), ``maskwatch models``,
    the PaddleHub module and the web page (``GET /v1/models``) read. ``from_meta`` reads a file's
    metadata, ``asdict`` gives the JSON form that training writes back."""

    kind: str = _setting("detector", str, "what the file is: a detector (or a crop classifier)")
    labels: tuple[str, ...] = _setting(tuple(LABELS), _names, "the class names of the network's class branch")
    strides: tuple[int, ...] = _setting(tuple(STRIDES), lambda v: tuple(int(x) for x in v), "feature strides, px")
    input_size: int = _setting(640, int, "the network input's long side (px), with no upscale rule")
    upscale: float | None = _setting(None, _opt_float, "input sized to the picture: its long side times this")
    min_input: int = _setting(320, int, "with upscale: the smallest network input (long side, px)")
    max_input: int = _setting(1280, int, "with upscale: the largest network input; larger pictures also get tiles")
    zoom: float = _setting(0.0, float, "crowds: run again this many times larger when faces are too small (0: never)")
    zoom_below: float = _setting(
        12.0, float, "with zoom: a face whose short side is under this many input px asks for it"
    )
    zoom_score: float = _setting(0.25, float, "with zoom: the network score a small face needs to ask for it")
    zoom_max_input: int = _setting(0, int, "with zoom: the largest enlarged input (0 in a file: twice max_input)")
    zoom_max_scale: float = _setting(
        0.0, float, "with zoom: the enlarged input's long side at most this many times the picture's (0: no such cap)"
    )
    shrink_input: int = _setting(
        0, int, "big faces: also run the picture at this long side when its first pass finds one (0: never)"
    )
    shrink_above: float = _setting(
        200.0, float, "with shrink_input: a face this many input px or more is big, reported by the shrunk pass"
    )
    shrink_score: float = _setting(0.25, float, "with shrink_input: the network score a big face needs to ask for it")
    shrink_trigger: float = _setting(
        0.0,
        float,
        "with shrink_input: a candidate this many input px or more asks for the shrunk pass (0: shrink_above)",
    )
    shrink_keep_below: float = _setting(
        0.0,
        float,
        "with shrink_input: the first pass keeps its faces under this many input px (0: shrink_above); "
        "between shrink_above and this, both passes' faces go to the merge",
    )
    score_calibration: tuple[tuple[float, ...], tuple[float, ...]] | None = _setting(
        None, _calibration, "knots (network score, face score) of the face score's map; None: the network's own"
    )
    score_threshold: float = _setting(0.5, float, "the default face score threshold (best F1 on validation)")
    nms_threshold: float = _setting(0.45, float, "IoU above which NMS drops the lower-scored box")
    pad_value: int = _setting(PAD_VALUE, int, "the value the network input is padded with")
    flip: bool = _setting(False, bool, "also run the picture mirrored and average")
    scales: tuple[float, ...] = _setting((1.0,), _floats, "input-size multipliers: a pass each")
    classifier: tuple[str, ...] = _setting((), _names, "crop classifier files beside the model", True)
    classifier_input: int = _setting(
        0, int, "the crop classifiers' crops' side, px (0: each classifier's own input size)", True
    )
    classifier_weight: float = _setting(0.7, float, "the crop classifiers' share of a face's class probabilities", True)
    classifier_below: float = _setting(
        1.01, float, "ask the crop classifiers only where the top class is under this", True
    )
    classifier_below_bare: float = _setting(
        0.0,
        float,
        "faces voted no_mask: ask the crop classifiers only where the top class is under this "
        "instead (0: classifier_below)",
        True,
    )
    verify_weight: float = _setting(VERIFY_WEIGHT, float, "veto strength: score x P(face) ** this", True)
    classifier_flip: bool = _setting(False, bool, "the crop classifiers also see each crop mirrored", True)
    classifier_flip_below: float = _setting(
        1.01, float, "with classifier_flip: only the crops whose top class (background included) is under this", True
    )
    rescue: float = _setting(
        0.0,
        float,
        "rescue: a face just under the default threshold scores max(s, s^(1-w) x P(face)^w), w this (0: off)",
        True,
    )
    rescue_classifier: str = _setting("", str, "with rescue: the crop classifier (with a background class) asked", True)
    rescue_min_side: float = _setting(
        24.0, float, "with rescue: only faces with a short side of this many px or more", True
    )
    rescue_min_face: float = _setting(
        0.0, float, "with rescue: lift only where the classifier's P(face) is this or more", True
    )
    rescue_input: int = _setting(0, int, "with rescue: the crops' side, px (0: the classifier's own input size)", True)

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> ModelSettings:
        """The settings a file's metadata gives, the defaults for what it leaves out."""
        given = {f.name: f.metadata["convert"](meta[f.name]) for f in fields(cls) if meta.get(f.name) is not None}
        out = cls(**given)
        out = out if out.zoom_max_input else replace(out, zoom_max_input=2 * out.max_input)
        # the shrunk pass's two other lines are never under shrink_above (0 in a file: at it)
        return replace(
            out,
            shrink_trigger=max(out.shrink_above, out.shrink_trigger),
            shrink_keep_below=max(out.shrink_above, out.shrink_keep_below),
        )

    def asdict(self) -> dict[str, Any]:
        """The JSON form (lists for tuples), as a file's metadata holds it."""

        def plain(v: Any) -> Any:
            return [plain(x) for x in v] if isinstance(v, tuple) else v

        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}

    def replace(self, **overrides: Any) -> ModelSettings:
        """These settings with some changed (``Detector``'s per-instance overrides)."""
        return replace(self, **overrides)

    @property
    def pad_multiple(self) -> int:
        """The network input's sides are multiples of this (the largest stride)."""
        return max(self.strides)

    def rescue_band(self) -> tuple[float, float] | None:
        """The face scores the rescue looks at, [t^(1/(1-w)), t) for the threshold t and ``rescue`` w:
        the lowest score that ``max(s, s^(1-w) x P(face)^w)`` can lift to t, up to t. None without a
        rescue (``rescue`` 0, or not under 1)."""
        w, top = self.rescue, self.score_threshold
        return (top ** (1 / (1 - w)), top) if 0 < w < 1 else None

    def first_input(self, width: int, height: int) -> int:
        """The first pass's network input (long side, px) for a picture of this size (``first_input``)."""
        return first_input(max(width, height), self.upscale, self.input_size, self.min_input, self.max_input)

    def input_policy(self) -> str:
        """The input size rule in words, as ``maskwatch models`` prints it."""
        if self.upscale is None:
            rule = f"{self.input_size} px"
        else:
            rule = f"picture x{self.upscale:g}, {self.min_input}-{self.max_input} px"
        if self.zoom > 1:
            rule += f"; x{self.zoom:g} more (at most {self.zoom_cap_words()}) when it finds faces under {self.zoom_below:g} px"
        if self.shrink_input > 0:
            rule += f"; faces of {self.shrink_above:g} px or more from a pass at {self.shrink_input} px"
            if self.shrink_trigger > self.shrink_above:
                rule += f" when one of {self.shrink_trigger:g} px or more is found"
            if self.shrink_keep_below > self.shrink_above:
                rule += f" (and the first pass's up to {self.shrink_keep_below:g} px)"
        return rule

    def zoom_cap_words(self) -> str:
        """The crowd zoom's largest input in words (``maskwatch models``, the PaddleHub module's docs)."""
        scale = f" and the picture x{self.zoom_max_scale:g}" if self.zoom_max_scale > 0 else ""
        return f"{self.zoom_max_input} px{scale}"


# the settings a fine-tuned or exported copy of a model keeps (all but what the file is)
RUNTIME_SETTINGS = tuple(f.name for f in fields(ModelSettings) if f.name != "kind")
# the settings of the second stage (crop classifiers): what a file of the network alone leaves out
SECOND_STAGE = tuple(f.name for f in fields(ModelSettings) if f.metadata["second_stage"])
# what training writes into every new detector file (train/export.py), from the defaults above
DEFAULTS: dict[str, Any] = {
    k: v
    for k, v in ModelSettings().asdict().items()
    if k in ("labels", "strides", "input_size", "score_threshold", "nms_threshold", "pad_value")
}


@dataclass(frozen=True)
class ModelSpec:
    """A model: its name, file, aliases, metadata, and the runtime settings it gives (``settings``).
    Every setting also reads as an attribute: ``spec.input_size`` is ``spec.settings.input_size``."""

    name: str
    path: Path
    aliases: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict, compare=False)
    settings: ModelSettings = field(default_factory=ModelSettings, compare=False)

    def __getattr__(self, name: str) -> Any:
        """The settings' fields and properties (called only for names the spec itself lacks)."""
        try:
            settings = object.__getattribute__(self, "settings")
        except AttributeError:  # not built yet (unpickling)
            raise AttributeError(name) from None
        return getattr(settings, name)

    @property
    def paddlehub_module(self) -> str | None:
        return self.aliases[0] if self.aliases and self.aliases[0].startswith("pyramidbox_") else None

    @property
    def classifiers(self) -> tuple[str, ...]:
        """The second-stage crop classifier files (names beside the model file)."""
        return self.settings.classifier

    def classifier_settings(self) -> list[dict[str, Any]]:
        """Each crop classifier's file, input size, crop expansion and labels (from its own
        metadata), what a runtime outside Python (the on-device page) needs to run it."""
        return [self._crop_settings(name) for name in self.classifiers]

    def rescue_settings(self) -> dict[str, Any] | None:
        """The rescue's classifier as ``classifier_settings`` gives each (None without a rescue)."""
        name = self.settings.rescue_classifier
        return self._crop_settings(name) if self.settings.rescue > 0 and name else None

    def _crop_settings(self, name: str) -> dict[str, Any]:
        p = self.path.parent / name
        meta = _file_meta(str(p), p.stat().st_mtime) if p.is_file() else {}
        return {
            "file": name,
            "input_size": int(meta.get("input_size", CROP_DEFAULTS["input_size"])),
            "crop_expand": float(meta.get("crop_expand", CROP_DEFAULTS["crop_expand"])),
            "labels": list(meta.get("labels", LABELS)),
        }

    @property
    def files(self) -> tuple[Path, ...]:
        """The model file and its classifier files (the rescue's included)."""
        return (self.path, *(self.path.parent / c for c in classifier_files(self.settings.asdict())))

    @property
    def size_bytes(self) -> int:
        """The total size of all files (the classifiers included)."""
        return sum(f.stat().st_size for f in self.files if f.is_file())

    @property
    def network_threshold(self) -> float:
        """The default threshold for the network without the rescue (the export for devices, the
        browser page): the best-F1 choice where the recipe moved the file's own up for the rescue."""
        best = self.meta.get("threshold_best_f1")
        return float(best) if best is not None and self.settings.rescue > 0 else self.settings.score_threshold

    def summary(self) -> dict[str, Any]:
        """What ``maskwatch models`` and ``GET /v1/models`` show: every setting, and what follows from them."""
        settings = {k: v for k, v in self.settings.asdict().items() if k not in ("kind", "classifier")}
        return {
            "name": self.name,
            "paddlehub_module": self.paddlehub_module,
            **settings,
            "pad_multiple": self.settings.pad_multiple,
            "network_threshold": self.network_threshold,
            "rescue_band": self.settings.rescue_band(),
            "vote_iou": VOTE_IOU,
            "vote_score": VOTE_SCORE,
            "classifiers": list(self.classifiers),
            "classifier_settings": self.classifier_settings(),
            "rescue_settings": self.rescue_settings(),
            "file_bytes": self.size_bytes,
        }


@lru_cache(maxsize=64)
def _file_meta(path: str, mtime: float) -> dict[str, Any]:
    return read_metadata(Path(path))


@lru_cache(maxsize=64)
def _spec(name: str, path: str, mtime: float, alias: tuple[str, ...]) -> ModelSpec:
    meta = read_metadata(Path(path))
    return ModelSpec(name, Path(path), alias, meta, ModelSettings.from_meta(meta))


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
