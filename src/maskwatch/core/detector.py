"""``Detector``: turns a picture into ``Face`` records with a maskwatch ONNX model.

A model file carries its own settings in ONNX metadata (``maskwatch`` key, JSON): input size,
strides, default score threshold, test-time flip, and optionally a second-stage crop classifier
file beside it. Inference needs only onnxruntime, OpenCV and NumPy.

Large pictures: the whole picture is shrunk to the model's input size (long side), which loses
faces that become smaller than about 8 px. With ``tile=True`` the picture is also cut into
overlapping tiles at up to full resolution, so a 4000 px crowd keeps its small faces; with
``scales=(1, 2)`` the whole picture is run at several input sizes. All passes are merged by NMS.

Crowds: a model with ``zoom`` in its settings looks at what its first pass found; when that holds
faces too small for the network (under ``zoom_below`` px at its input), the picture is run again
enlarged ``zoom`` times, and the enlarged pass's faces are reported. A picture without small faces
costs one pass; a crowd costs two (see ``Detector.zoom_sizes``).

Close-ups: a face bigger than the network saw in training (``shrink_above`` px at its input) is
found badly or not at all. A model with ``shrink_input`` runs a picture whose first pass holds such a
candidate again at that small size and takes its big faces from there (``Detector.shrink_size``);
the first pass keeps its own faces up to ``shrink_keep_below`` px, where both go to the merge.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Sequence

import cv2
import numpy as np
import onnxruntime as ort

from .calibration import calibrate, raw_threshold
from .detections import Detections
from .device import provider_name, providers_for
from .errors import ImageError, ModelError
from .face import LABELS, Face
from .geometry import (
    anchor_points,
    class_vote,
    clip_boxes,
    containment_matrix,
    distances_to_boxes,
    expand_boxes,
    nms,
    short_side,
    weighted_box_merge,
)
from .imageio import ImageInput, load_image
from .registry import CROP_DEFAULTS, VOTE_IOU, VOTE_SCORE, ModelSpec, first_input, meta_from_custom, resolve_model

# onnxruntime's telemetry events off, where the build has them. What cannot be turned off: importing onnxruntime
# writes a device id and a small database under $XDG_CACHE_HOME/Microsoft/DeveloperTools (default ~/.cache); see
# the README, "Files written outside your folders".
getattr(ort, "disable_telemetry_events", lambda: None)()


def _meta_of(sess: ort.InferenceSession) -> dict[str, Any]:
    return meta_from_custom(sess.get_modelmeta().custom_metadata_map)


def _session(
    path: Path, threads: int | None, providers: Sequence[Any] | None = None, spin: bool = True
) -> ort.InferenceSession:
    """An onnxruntime session. ``spin=False`` for sessions that take turns in one process (a detector
    and its crop classifiers): a pool that spin-waits after its run holds the cores the next
    session's run needs (docs/speed.md, Spinning thread pools)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
    so.inter_op_num_threads = 1
    if not spin:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    wanted = list(providers or ["CPUExecutionProvider"])
    try:
        sess = ort.InferenceSession(str(path), so, providers=wanted)
    except Exception as exc:  # onnxruntime raises several types for bad files
        raise ModelError(f"{path}: cannot load as an ONNX model ({str(exc).splitlines()[0]})") from None
    first = provider_name(wanted[0])
    if sess.get_providers()[0] != first:  # onnxruntime falls back to the CPU with a log line only
        raise ModelError(
            f"{path}: onnxruntime could not start {first} (running on {sess.get_providers()[0]}); "
            "is the GPU's driver and CUDA runtime installed?"
        )
    return sess


INSIDE_BIG = 0.7  # a first-pass face lying this much inside a close-up's face is a piece of it
INSIDE_BIG_BAND = 0.5  # ... and one as big as the shrunk pass's faces (shrink_keep_below's band), this much


def _inside_limit(found: Detections, big: float) -> np.ndarray:
    """How much of each first-pass face may lie inside a sure face of the shrunk pass before it counts as
    a piece of that close-up: ``INSIDE_BIG``, or ``INSIDE_BIG_BAND`` for faces of ``big`` px or more (the
    band the first pass shares with the shrunk one: the chin or the forehead of a close-up, cut as a face)."""
    return np.where(short_side(found.boxes) >= big, INSIDE_BIG_BAND, INSIDE_BIG)


NO_RESCUE = (1.0, 1.0)  # the rescue band of a detector without a rescue: no face score lies in it
MIN_INPUT, MAX_INPUT = 32, 8192  # px: the network input (input size x scale) allowed
MAX_ZOOM = 8.0  # the largest crowd zoom factor allowed (Detector(zoom=...), --zoom)
# a picture shrunk to under this share of its size is resized by area averaging, above it bilinearly
# (INTER_AREA at 640 -> 512 px took 2.3 ms, bilinear 0.45 ms; Letterbox.fill)
AREA_BELOW = 0.7
MAX_FACES = 1000  # faces per picture at most (the highest scored), whatever the threshold: see Detector
CANDIDATES_PER_FACE = 4  # boxes per allowed face that one pass may send to NMS (4000 for MAX_FACES)
MAX_CANDIDATES = CANDIDATES_PER_FACE * MAX_FACES


def check_threshold(value: float) -> float:
    """A face score threshold as a float in [0, 1], or ``ValueError`` saying so: the one check every
    edge (command line, service, watcher) relies on, translating the error into its own words."""
    thr = float(value)
    if not 0.0 <= thr <= 1.0:  # also refuses nan
        raise ValueError(f"score_threshold must be between 0 and 1, got {value}")
    return thr


class Cutoffs(NamedTuple):
    """One call's score cutoffs. Two score spaces: the *face score* is what users see and set (the
    threshold; calibrated by the model's ``score_calibration``, see ``maskwatch.core.calibration``); the
    *network score* is what the network outputs and NMS, voting and the second stage work in.

    ``face``: the call's threshold (face score). ``net``: the network score candidates are kept down
    to (the threshold's, or the rescue band's lower end where that is lower). ``pool``:
    the network score the candidates of the last passes are kept down to (lower than ``net`` when a
    single pass's class vote needs them). ``first``: the first passes' cutoff (lower still when a
    candidate may ask for a zoom pass)."""

    face: float
    net: float
    pool: float
    first: float
    call: float  # the call's threshold in network scores (``net`` reaches lower where the rescue looks)


def valid_zoom(zoom: float) -> bool:
    """A crowd zoom factor Detector accepts: 0 (off) or above 1 and at most ``MAX_ZOOM``."""
    return not isinstance(zoom, bool) and (zoom == 0 or (bool(np.isfinite(zoom)) and 1 < zoom <= MAX_ZOOM))


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, highest first (ties in index order); all when fewer."""
    return np.argsort(-scores, kind="stable")[:k]


def decode(
    scores: np.ndarray,
    dists: np.ndarray,
    probs: np.ndarray,
    input_hw: tuple[int, int],
    net_min: float,
    strides: tuple[int, ...],
    max_candidates: int = MAX_CANDIDATES,
) -> Detections:
    """Network outputs for one picture -> boxes in network-input pixels above ``net_min``, the
    ``max_candidates`` highest scored at most."""
    pts = anchor_points(int(input_hw[0]), int(input_hw[1]), strides)
    keep = np.nonzero(scores >= net_min)[0]
    if not len(keep):
        return Detections.empty()
    if len(keep) > max_candidates:
        keep = keep[top_k(scores[keep], max_candidates)]
    boxes = distances_to_boxes(pts[keep], dists[keep])
    return Detections(boxes.astype(np.float32), scores[keep].astype(np.float32), probs[keep].astype(np.float32))


class Detector:
    """Face + mask detector.

    ``model``: "mobile" (default), "server", a PaddleHub module name, or a path to a maskwatch
    ``.onnx`` file. ``score_threshold`` keeps faces whose face score reaches it (default: the
    model's, chosen for best F1 on validation data). ``tile`` and ``scales`` add passes for large
    pictures with small faces. ``device``: where it runs, "cpu" (default), "cuda", "cuda:N",
    "tensorrt[:N]" or "auto" (``maskwatch.core.device``); ``providers``: onnxruntime execution
    providers given directly instead.
    ``max_faces`` (default ``MAX_FACES``, 1000): the most faces one picture gives, the highest
    scored; each pass sends at most ``CANDIDATES_PER_FACE`` x ``max_faces`` boxes to NMS, so that no
    threshold, not even 0, makes a picture slow (the second stage classifies ``max_faces`` at most).
    ``classifier_below`` (default: the model's; ``mobile`` 0.9; ``server`` every face): a model
    with crop classifiers asks them only about the faces whose top class probability from the
    detector is under this (0: never, the network alone, fastest in crowds; above 1: every face).
    ``zoom`` (the crowd zoom factor, 0: off) and ``shrink_input`` (the close-ups' pass, px, 0: off)
    change the model's extra passes (``zoom_sizes``, ``shrink_size``).
    Safe to share between threads; pickles as its model and settings (a worker process or a Ray
    actor rebuilds the session).
    """

    def __init__(
        self,
        model: str | os.PathLike[str] = "mobile",
        score_threshold: float | None = None,
        nms_threshold: float | None = None,
        input_size: int | None = None,
        tile: bool = False,
        scales: Sequence[float] | None = None,
        flip: bool | None = None,
        threads: int | None = None,
        providers: Sequence[Any] | None = None,
        max_faces: int = MAX_FACES,
        device: str | None = None,
        zoom: float | None = None,
        classifier_below: float | None = None,
        shrink_input: int | None = None,
    ):
        self._args: dict[str, Any] = {
            "model": model,
            "score_threshold": score_threshold,
            "nms_threshold": nms_threshold,
            "input_size": input_size,
            "tile": tile,
            "scales": None if scales is None else tuple(scales),
            "flip": flip,
            "threads": threads,
            "providers": None if providers is None else list(providers),
            "device": device,
            "max_faces": max_faces,
            "zoom": zoom,
            "classifier_below": classifier_below,
            "shrink_input": shrink_input,
        }
        if isinstance(max_faces, bool) or not isinstance(max_faces, (int, np.integer)) or max_faces < 1:
            raise ValueError(f"max_faces must be a positive whole number, got {max_faces!r}")
        self.max_faces = int(max_faces)
        if device is not None:
            if providers is not None:
                raise ValueError("give device or providers, not both")
            providers = providers_for(device)  # ValueError naming the device when it is not offered
        self.device = device or "cpu"
        self.spec: ModelSpec = resolve_model(model)
        path = self.spec.path
        self.path = path
        self.name = str(model)
        below = self.spec.classifier_below if classifier_below is None else classifier_below
        if isinstance(below, bool) or not isinstance(below, (int, float)) or not 0 <= below < float("inf"):
            raise ValueError(f"classifier_below must be a number >= 0 (0: never, above 1: every face), got {below!r}")
        self._cls_below = float(below)  # a cascade: the crop classifiers label only the faces the detector is unsure of
        # ... and the faces voted no_mask from the file's own line for them (a call's classifier_below
        # sets both): a hand over a bare mouth is voted mask, and the line that keeps it from being
        # called one is the other faces' (docs/speed.md, The cascade's two lines)
        bare = self.spec.classifier_below_bare if classifier_below is None else 0.0
        self._cls_below_bare = float(bare) if bare > 0 else self._cls_below
        # classifiers never asked (classifier_below 0) are not loaded. The detector keeps onnxruntime's
        # spinning thread pool (faster) unless classifiers take turns with it on every face; a cascade
        # (classifier_below <= 1) asks them seldom, so its detector spins and its classifiers' pools do
        # not (docs/speed.md, Spinning thread pools)
        asks = self._cls_below > 0
        turns = bool(self.spec.classifiers) and self._cls_below > 1
        self.session = _session(path, threads, providers, spin=not turns)  # the detector's onnxruntime session
        self.meta = dict(self.spec.meta)
        if self.meta.get("kind", "detector") != "detector":
            raise ModelError(f"{path}: is a maskwatch {self.meta.get('kind')} model, not a detector")
        self._input = self.session.get_inputs()[0].name
        self._buffers = threading.local()  # per-thread input buffers (see _blob)
        if zoom is not None and not valid_zoom(zoom):
            raise ValueError(f"zoom must be 0 (off) or a factor above 1 and at most {MAX_ZOOM:g}, got {zoom!r}")
        if shrink_input is not None and not (
            isinstance(shrink_input, (int, np.integer))
            and not isinstance(shrink_input, bool)
            and (shrink_input == 0 or MIN_INPUT <= shrink_input <= MAX_INPUT)
        ):
            raise ValueError(f"shrink_input must be 0 (off) or {MIN_INPUT}-{MAX_INPUT} px, got {shrink_input!r}")
        overrides: dict[str, Any] = {
            "score_threshold": None if score_threshold is None else check_threshold(score_threshold),
            "nms_threshold": None if nms_threshold is None else float(nms_threshold),
            "flip": None if flip is None else bool(flip),
            "scales": tuple(float(s) for s in scales) if scales else None,
            "zoom": None if zoom is None else float(zoom),
            "shrink_input": None if shrink_input is None else int(shrink_input),
            "classifier_below": self._cls_below,
            "classifier_below_bare": self._cls_below_bare,
        }
        # this detector's settings: the model's, with what this call asked for (registry.ModelSettings)
        self.settings = self.spec.settings.replace(**{k: v for k, v in overrides.items() if v is not None})
        if input_size is not None:  # the old fixed rule: the long side becomes input_size
            self.settings = self.settings.replace(input_size=int(input_size), upscale=None)
        settings = self.settings
        self.labels = settings.labels
        self.input_size, self.upscale = settings.input_size, settings.upscale
        self.min_input, self.max_input = settings.min_input, settings.max_input
        self.score_threshold = check_threshold(settings.score_threshold)
        self.nms_threshold, self.flip = settings.nms_threshold, settings.flip
        self.tile = bool(tile)
        self.scales = settings.scales
        # a second, enlarged pass for pictures whose first pass finds small faces (0: never)
        self.zoom, self.zoom_below, self.zoom_score = settings.zoom, settings.zoom_below, settings.zoom_score
        self.zoom_max_input = min(settings.zoom_max_input, MAX_INPUT)
        self.zoom_max_scale = settings.zoom_max_scale
        # big faces: a shrunk pass for the faces too big for the network at the first pass's size
        self.shrink_input, self.shrink_above = settings.shrink_input, settings.shrink_above
        self.shrink_score, self.shrink_keep_below = settings.shrink_score, settings.shrink_keep_below
        self.shrink_trigger = settings.shrink_trigger
        self._rescue: CropModel | None = None  # the rescue (loaded below, with the classifiers)
        self._rescue_band = NO_RESCUE  # face scores [low, high) that get it (the file's rescue_band)
        self._rescue_after = False  # the rescue after the veto, from the second stage's own P(face)
        self._default_net = self.cutoffs().net  # the model's own threshold, in network scores
        top = self.input_size if self.upscale is None else self.max_input
        bad = [s for s in self.scales if not (np.isfinite(s) and MIN_INPUT <= top * s <= MAX_INPUT)]
        if bad:
            raise ValueError(f"scales {bad} give inputs outside {MIN_INPUT}-{MAX_INPUT} px at input size {top}")
        # second stage: one crop classifier file, or several whose probabilities are averaged
        self._classifiers = []
        for cls_file in settings.classifier if asks else ():
            cpath = path.parent / cls_file
            if not cpath.is_file():
                raise ModelError(f"{path}: its classifier {cls_file} is missing")
            crop = CropModel.load(cpath, threads, providers, settings.classifier_flip, settings.classifier_flip_below)
            self._classifiers.append(crop.resized(settings.classifier_input, cpath, "classifier_input"))
        self._cls_weight = settings.classifier_weight
        # a classifier with a background class also vetoes non-faces: score x P(face) ** verify_weight
        self._verify_weight = settings.verify_weight
        if asks and settings.rescue > 0 and settings.rescue_classifier:
            self._rescue, self._rescue_band = self._load_rescue(path, threads, providers)
        elif asks and settings.rescue > 0:
            vetoes = self._verify_weight > 0 and any(c.background is not None for c in self._classifiers)
            if not (vetoes and self._cls_below > 1):
                raise ModelError(f"{path}: a rescue without a rescue_classifier needs classifiers that veto every face")
            self._rescue_band, self._rescue_after = self._band_of(path), True

    def _band_of(self, path: Path) -> tuple[float, float]:
        """The face scores the rescue looks at (``ModelSettings.rescue_band``), from the model file's own
        threshold, not the call's: a face's score never depends on the threshold a call asks for."""
        check_threshold(self.spec.settings.score_threshold)
        band = self.spec.settings.rescue_band()
        if band is None:
            raise ModelError(f"{path}: rescue must be between 0 and 1, got {self.settings.rescue!r}")
        return band

    def _load_rescue(
        self, path: Path, threads: int | None, providers: Sequence[Any] | None
    ) -> tuple[CropModel, tuple[float, float]]:
        """The rescue's classifier, and the face scores it is asked about (``_band_of``)."""
        band = self._band_of(path)
        rpath = path.parent / self.settings.rescue_classifier
        if not rpath.is_file():
            raise ModelError(f"{path}: its rescue classifier {self.settings.rescue_classifier} is missing")
        model = CropModel.load(rpath, threads, providers)
        if model.background is None:
            raise ModelError(f"{rpath}: a rescue classifier needs a background class")
        return model.resized(self.settings.rescue_input, rpath, "rescue_input"), band

    def __repr__(self) -> str:
        return f"Detector(model={self.name!r}, score_threshold={self.score_threshold}, input_size={self.input_size})"

    def __getstate__(self) -> dict[str, Any]:
        return dict(self._args)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    # -- public API ---------------------------------------------------------------------------

    def detect(self, image: ImageInput, score_threshold: float | None = None) -> list[Face]:
        """Faces in one picture (BGR uint8 array, path, or encoded bytes), highest score first.
        ``score_threshold``: this call's face score threshold (default: the detector's)."""
        return self.detections(image, score_threshold).to_faces()

    def detections(self, image: ImageInput, score_threshold: float | None = None) -> Detections:
        """``detect`` as a ``Detections`` (arrays, one row per face)."""
        return self._detect_image(load_image(image), self.cutoffs(score_threshold))

    def detect_batch(
        self, images: Iterable[ImageInput], score_threshold: float | None = None, *, errors: str = "return"
    ) -> list[list[Face] | ImageError]:
        """``detect`` for each picture, in order (pictures of one size share network runs).

        A picture that cannot be read does not stop the others: its entry is the ``ImageError`` that
        names it, in its place (``errors="raise"``: the first such error is raised instead)."""
        return [
            d if isinstance(d, ImageError) else d.to_faces()
            for d in self.detections_batch(images, score_threshold, errors=errors)
        ]

    def detections_batch(
        self,
        images: Iterable[ImageInput],
        score_threshold: float | None = None,
        max_batch: int = 8,
        *,
        errors: str = "return",
    ) -> list[Detections | ImageError]:
        """``detections`` for each picture, in order. Pictures of the same size are preprocessed into
        one network input of up to ``max_batch`` pictures, so they share one ``session.run``. A picture
        that cannot be read gives its ``ImageError`` in its place (``errors="raise"``: raised)."""
        if errors not in ("return", "raise"):
            raise ValueError(f'errors must be "return" or "raise", got {errors!r}')
        cut = self.cutoffs(score_threshold)
        loaded: list[np.ndarray | ImageError] = []
        for im in images:
            try:
                loaded.append(load_image(im))
            except ImageError as exc:
                if errors == "raise":
                    raise
                loaded.append(exc)
        good = [i for i, im in enumerate(loaded) if not isinstance(im, ImageError)]
        imgs = [im for im in loaded if not isinstance(im, ImageError)]
        parts: list[list[Detections]] = [[] for _ in imgs]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, img in enumerate(imgs):
            groups.setdefault(img.shape, []).append(i)
        for idx in groups.values():
            h, w = imgs[idx[0]].shape[:2]
            whole, regions = self.passes(w, h)
            for start in range(0, len(idx), max_batch):
                chunk = idx[start : start + max_batch]
                for size in whole:
                    for i, d in zip(chunk, self._run_views([imgs[i] for i in chunk], size, cut.first)):
                        parts[i].append(d)
                for i in chunk:
                    parts[i] += [self._run_view(imgs[i], region, size, cut.first) for region, size in regions]
        out: list[Detections | ImageError] = list(loaded)  # type: ignore[arg-type]
        for i, img, p in zip(good, imgs, parts):
            out[i] = self._zoom_and_finish(img, p, cut)
        return out

    def passes(self, width: int, height: int) -> tuple[list[int], list[tuple[tuple[int, int, int, int], int]]]:
        """How a picture of this size is run: the network sizes (long side, px) of the whole-picture
        passes, and the (region, size) of each tile pass.

        A fixed ``input_size``: the picture's long side becomes ``input_size`` x each scale; tiles at
        full resolution only with ``tile=True``. A model sized to the picture (``upscale`` in its
        settings): the long side becomes the picture's own x ``upscale``, kept between ``min_input``
        and ``max_input``; a picture that would need more than 1.25 x ``max_input`` at ``upscale``
        (at least 1: tiles are there to keep small faces, and a tiled picture gets no crowd zoom) is
        also cut into tiles, each enlarged that much to ``max_input``. So a first pass smaller than
        the picture (``upscale`` under 1, ``mobile``'s) leaves the tiling of large pictures as it was.
        """
        long = max(width, height)
        if self.upscale is None:
            base, tile_px, tile_size, cut = self.input_size, self.input_size, self.input_size, self.tile
        else:
            base = first_input(long, self.upscale, self.input_size, self.min_input, self.max_input)
            tile_scale = max(self.upscale, 1.0)
            tile_size = self.max_input
            tile_px = max(MIN_INPUT, int(round(self.max_input / tile_scale)))
            cut = self.tile or long * tile_scale > self.max_input * 1.25
        whole = [int(round(base * sc)) for sc in self.scales]
        regions = [(r, tile_size) for r in tiles(width, height, tile_px)] if cut else []
        return whole, regions

    def input_blob(self, image: ImageInput) -> np.ndarray:
        """The network input of a picture's first whole-picture pass, exactly as ``detect`` makes it
        (size from ``passes``, the model's pad value): what int8 calibration must see."""
        img = load_image(image)
        size = self.passes(img.shape[1], img.shape[0])[0][0]
        return Letterbox.of(img.shape[:2], size, self.settings.pad_multiple).blob(img, self.settings.pad_value)

    def zoom_sizes(self, width: int, height: int, found: Detections | Sequence[Face]) -> list[int]:
        """The network sizes (long side, px) of the enlarged passes a picture of this size gets after
        its first passes found ``found`` (a ``Detections`` of network scores, or the faces ``detect``
        returned; picture pixels); [] for none.

        With ``zoom`` on and no tiles: when a candidate scored at least ``zoom_score`` has a short
        side under ``zoom_below`` px at the first pass's input, each whole-picture pass is run again
        ``zoom`` times larger (at most ``zoom_max_input``, and with ``zoom_max_scale`` at most that
        many times the picture's long side: enlarging a small picture further adds no detail, only
        time); none when that is no larger.
        """
        if not isinstance(found, Detections):
            found = Detections.from_faces(list(found))
        if self.zoom <= 1 or not len(found):
            return []
        whole, regions = self.passes(width, height)
        if regions:
            return []
        side = short_side(found.boxes) * (whole[0] / max(width, height))
        if not np.any((found.scores >= self.zoom_score) & (side < self.zoom_below)):
            return []
        cap = self.zoom_max_input
        if self.zoom_max_scale > 0:
            cap = min(cap, int(round(max(width, height) * self.zoom_max_scale)))
        sizes = [int(round(min(s * self.zoom, max(cap, s)))) for s in whole]
        return sizes if max(sizes) > max(whole) else []

    def shrink_size(self, width: int, height: int, found: Detections | Sequence[Face]) -> int:
        """The long side (px) of the shrunk pass a picture of this size gets after its first passes
        found ``found`` (as for ``zoom_sizes``); 0 for none.

        With ``shrink_input`` on: when a candidate scored at least ``shrink_score`` has a short side
        of ``shrink_trigger`` (never under ``shrink_above``) px or more at the first pass's input (a
        close-up: bigger than the faces the network was trained on), the whole picture is run again at
        ``shrink_input`` px, and the faces of ``shrink_above`` px or more are taken from that pass (the
        first pass keeping its own under ``shrink_keep_below``); none when the first pass is not much
        larger (1.5 x) than the shrunk one.
        """
        if not isinstance(found, Detections):
            found = Detections.from_faces(list(found))
        if self.shrink_input <= 0 or not len(found):
            return 0
        whole, _ = self.passes(width, height)
        if max(whole) < 1.5 * self.shrink_input:
            return 0
        side = short_side(found.boxes) * (max(whole) / max(width, height))
        big = (side >= self.shrink_trigger) & (found.scores >= self.shrink_score)
        return self.shrink_input if np.any(big) else 0

    # -- internals: preprocess, run, postprocess --------------------------------------------------

    def threshold_of(self, score_threshold: float | None = None) -> float:
        """A call's face score threshold: this detector's when ``None``, else ``score_threshold``
        checked (``ValueError`` outside [0, 1]). The one check: the command line, the service and the
        watcher call it and translate the error into their own words."""
        return self.score_threshold if score_threshold is None else check_threshold(score_threshold)

    def cutoffs(self, score_threshold: float | None = None) -> Cutoffs:
        """The score cutoffs of one call, in both score spaces, computed once (see ``Cutoffs``)."""
        face = self.threshold_of(score_threshold)
        cal = self.settings.score_calibration
        # candidates the rescue may lift over the threshold are kept down to its band (NO_RESCUE: none)
        low = min(face, self._rescue_band[0])
        net = low if cal is None else raw_threshold(low, cal)
        call = face if cal is None else raw_threshold(face, cal)
        # one pass's class vote counts every candidate from VOTE_SCORE up, whatever the call's threshold
        pool = net if self.flip or len(self.scales) > 1 else min(net, VOTE_SCORE)
        # the first passes also keep what may ask for a zoom or a shrunk pass
        first = min(pool, self.zoom_score) if self.zoom > 1 else pool
        first = min(first, self.shrink_score) if self.shrink_input > 0 else first
        return Cutoffs(face, net, pool, first, call)

    def _detect_image(self, img: np.ndarray, cut: Cutoffs) -> Detections:
        """All faces at or above the call's cutoffs on a BGR uint8 picture, after NMS and classification."""
        h, w = img.shape[:2]
        whole, regions = self.passes(w, h)
        parts = [self._run_view(img, (0, 0, w, h), size, cut.first) for size in whole]
        parts += [self._run_view(img, region, size, cut.first) for region, size in regions]
        return self._zoom_and_finish(img, parts, cut)

    def _zoom_and_finish(self, img: np.ndarray, parts: list[Detections], cut: Cutoffs) -> Detections:
        """The first passes' candidates -> the picture's faces, after an enlarged pass when they ask for
        one (small faces: ``zoom_sizes``) and a shrunk pass when they hold a big face (``shrink_size``)."""
        h, w = img.shape[:2]
        found = Detections.merge(parts)
        shrink = self.shrink_size(w, h, found)
        if self.zoom > 1:  # the first passes kept candidates down to zoom_score: see cutoffs
            sizes = self.zoom_sizes(w, h, found)
            if sizes:
                parts = [self._run_view(img, (0, 0, w, h), size, cut.pool) for size in sizes]
            else:
                parts = [p[p.scores >= cut.pool] for p in parts]
        if shrink:  # big faces from the shrunk pass, the rest as found, both passes' between the two lines
            px = max(w, h) / max(self.passes(w, h)[0])  # picture px per first-pass input px
            big = self.shrink_above * px
            keep_below = self.shrink_keep_below * px
            shrunk = self._run_view(img, (0, 0, w, h), shrink, cut.pool)
            shrunk = shrunk[short_side(shrunk.boxes) >= big]
            # faces the model itself would report (whatever this call's threshold: a low one must not
            # let a doubtful big box swallow the faces inside it)
            sure = shrunk.boxes[shrunk.scores >= max(cut.net, self._default_net)]
            small = [p[short_side(p.boxes) < keep_below] for p in parts]
            if len(sure):  # and no face inside a big one: the first pass's pieces of a close-up (eyes, a mask)
                small = [
                    p[containment_matrix(p.boxes, sure).max(axis=1, initial=0.0) < _inside_limit(p, big)] for p in small
                ]
            parts = [p for p in [*small, shrunk] if len(p)] or small
        return self._finish(img, parts, cut)

    def _finish(self, img: np.ndarray, parts: list[Detections], cut: Cutoffs) -> Detections:
        """Postprocess in network scores (at ``cut.net``), then report calibrated face scores
        (``maskwatch.core.calibration``) at or above ``cut.face``."""
        cal = self.settings.score_calibration
        out = self._postprocess(img, parts, cut.net, cut.call)
        if cal is not None and len(out):
            out = Detections(out.boxes, calibrate(out.scores, cal), out.probs, out.labels)
        return out[out.scores >= cut.face]

    def _rescue_mask(self, raw: Detections, voted: np.ndarray | None = None) -> np.ndarray:
        """Which faces (network scores) the rescue looks at: scored in the rescue band (``_rescue_band``,
        face scores: just under the model's own threshold), voted ``mask`` or ``incorrect`` (``voted``:
        their vote before the second stage, where it ran), a short side of ``rescue_min_side`` px or
        more, and not lying inside a face already over the threshold (a piece of it)."""
        look = np.zeros(len(raw), bool)
        if self._rescue_band == NO_RESCUE or not len(raw):
            return look
        cal = self.settings.score_calibration
        low, high = self._rescue_band
        if cal is not None:
            low, high = raw_threshold(low, cal), raw_threshold(high, cal)
        look = (raw.scores >= low) & (raw.scores < high) & (short_side(raw.boxes) >= self.settings.rescue_min_side)
        if "no_mask" in self.labels:  # masked faces (voted mask or incorrect): a bare face is not what it is for
            look &= (raw.probs if voted is None else voted).argmax(axis=1) != self.labels.index("no_mask")
        sure = raw.boxes[raw.scores >= high]
        if look.any() and len(sure):
            look &= containment_matrix(raw.boxes, sure).max(axis=1) < INSIDE_BIG
        return look

    def _rescued(self, img: np.ndarray, sub: Detections) -> Detections:
        """The rescue classifier on faces the network doubts (``_rescue_mask``): face score max(s, s^(1-w) x
        P(face)^w) where P(face) reaches ``rescue_min_face``, never lowered (``_lifted``), so that a
        masked face under a hood or a cap that the classifier is sure of is lifted; where the voted class
        is under ``classifier_below``, the classifier's classes blended in as the cascade's would be
        (these faces skip the cascade: one crop each)."""
        assert self._rescue is not None
        probs, face = self._rescue(img, sub.boxes)
        scores = self._lifted(sub.scores, face)
        unsure = self._unsure(sub.probs)
        blend = self._cls_weight * probs + (1 - self._cls_weight) * sub.probs
        out_probs = np.where(unsure[:, None], blend, sub.probs).astype(np.float32)
        return Detections(sub.boxes, scores, out_probs, sub.labels)

    def _lifted(self, net: np.ndarray, face: Any) -> np.ndarray:
        """Network scores -> the rescue's: max(s, s^(1-w) x P(face)^w) in face scores where P(face)
        reaches ``rescue_min_face``, back in network scores; never lower."""
        cal = self.settings.score_calibration
        s = (calibrate(net, cal) if cal else net).astype(np.float64)
        w, face = self.settings.rescue, np.clip(np.asarray(face, np.float64), 1e-6, 1.0)
        lifted = np.where(face >= self.settings.rescue_min_face, np.maximum(s, s ** (1 - w) * face**w), s)
        raw = np.interp(lifted, cal[1], cal[0]) if cal else lifted
        out: np.ndarray = np.maximum(net, raw.astype(np.float32))  # (the round trip never lowers one)
        return out

    def _vetoed_then_rescued(self, img: np.ndarray, raw: Detections, call_min: float) -> Detections:
        """The rescue after the veto (a model whose classifiers label and veto every face, no
        ``rescue_classifier``): the faces the rescue may look at (24 px or more) are classified even
        under the call's threshold; after the veto, those of the band (``_rescue_mask``, on the vote
        before it) are lifted with the P(face) the classifiers gave. Highest score first."""
        eligible = short_side(raw.boxes) >= self.settings.rescue_min_side
        raw = raw[np.flatnonzero((raw.scores >= call_min) | eligible)]
        if not len(raw):
            return raw
        out, face = second_stage_faces(
            raw, [c(img, raw.boxes) for c in self._classifiers], self._cls_weight, self._verify_weight
        )
        look = self._rescue_mask(out, voted=raw.probs)
        if look.any() and face is not None:
            scores = out.scores.copy()
            scores[look] = self._lifted(out.scores[look], face[look])
            out = Detections(out.boxes, scores, out.probs, out.labels)
        return out[np.argsort(-out.scores, kind="stable")]

    def _postprocess(
        self, img: np.ndarray, parts: list[Detections], net_min: float, call_min: float | None = None
    ) -> Detections:
        """The passes over one picture -> its faces, all in network scores: clip, NMS (or a vote of the
        passes), second stage; the faces scored at or above ``net_min``. ``call_min``, the call's own
        threshold where the rescue keeps candidates lower: the faces under it that the rescue
        does not lift are dropped before the crop classifiers are asked about them."""
        h, w = img.shape[:2]
        pool = Detections.merge(parts)
        pool = Detections(clip_boxes(pool.boxes, w, h), pool.scores, pool.probs, self.labels)
        # a candidate lying wholly in the padding clips to nothing: it is no face (and would merge to 0,0,0,0)
        pool = pool[short_side(pool.boxes) >= 1]
        above = np.flatnonzero(pool.scores >= net_min)  # the pool may reach lower, to vote: see cutoffs
        raw = pool[above]
        if not len(raw):
            return raw
        keep = nms(raw.boxes, raw.scores, self.nms_threshold, max_keep=self.max_faces)  # the highest scored
        if len(parts) > 1 or self.flip:  # several passes vote: average their boxes and class probabilities
            boxes, probs = weighted_box_merge(raw.boxes, raw.scores, keep, self.nms_threshold, raw.probs)
            # (float sums may pass the edge)
            raw = Detections(clip_boxes(boxes, w, h), raw.scores[keep], probs.astype(np.float32), self.labels)
        else:  # one pass: the candidates around each kept face vote on its class (geometry.class_vote)
            probs = class_vote(pool.boxes, pool.scores, pool.probs, above[keep], VOTE_IOU, VOTE_SCORE)
            raw = Detections(raw.boxes[keep], raw.scores[keep], probs, self.labels)
        call = net_min if call_min is None else call_min
        if self._rescue_after and len(raw):
            raw = self._vetoed_then_rescued(img, raw, call)
            raw = raw[raw.scores >= net_min]
        elif (self._classifiers or self._rescue is not None) and len(raw):
            look = self._rescue_mask(raw)  # the rescued faces skip the cascade: one crop each
            rest = raw[np.flatnonzero(~look & (raw.scores >= call))]
            done = [self._second_stage(img, rest) if self._classifiers and len(rest) else rest]
            if look.any():
                done.append(self._rescued(img, raw[np.flatnonzero(look)]))
                merged = Detections.merge(done)
                done = [merged[np.argsort(-merged.scores, kind="stable")]]
            raw = done[0]
            raw = raw[raw.scores >= net_min]
        return raw

    def _unsure(self, probs: np.ndarray) -> np.ndarray:
        """Which faces the cascade asks about: top class probability under ``classifier_below``, or
        under ``classifier_below_bare`` for the faces voted ``no_mask``."""
        below = np.full(len(probs), self._cls_below)
        if self._cls_below_bare != self._cls_below and "no_mask" in self.labels:
            below[probs.argmax(axis=1) == self.labels.index("no_mask")] = self._cls_below_bare
        out: np.ndarray = probs.max(axis=1) < below
        return out

    def _second_stage(self, img: np.ndarray, raw: Detections) -> Detections:
        """The crop classifiers on the faces the detector is unsure of (``classifier_below``; all by
        default), their labels blended in and their veto applied; highest score first."""
        ask = self._unsure(raw.probs)
        if not ask.any():
            return raw
        sub = raw[np.flatnonzero(ask)]
        sub = second_stage(sub, [c(img, sub.boxes) for c in self._classifiers], self._cls_weight, self._verify_weight)
        if ask.all():
            return sub
        out = Detections.merge([sub, raw[np.flatnonzero(~ask)]])
        return out[np.argsort(-out.scores, kind="stable")]

    def _blob(self, n: int, h: int, w: int) -> np.ndarray:
        """This thread's network input buffer, shaped (n, 3, h, w). Reused from call to call (it
        grows to the largest input seen): a fresh multi-megabyte array per picture costs time
        (docs/speed.md, Buffers)."""
        flat = getattr(self._buffers, "flat", None)
        if flat is None or flat.size < n * 3 * h * w:
            flat = self._buffers.flat = np.empty(n * 3 * h * w, np.float32)
        return flat[: n * 3 * h * w].reshape(n, 3, h, w)

    def _run_view(self, img: np.ndarray, region: tuple[int, int, int, int], size: int, net_min: float) -> Detections:
        """One pass over a region of the picture, resized so its long side is ``size``; candidates with
        a network score at or above ``net_min``."""
        x0, y0, x1, y1 = region
        return self._run_views([img[y0:y1, x0:x1]], size, net_min, (x0, y0))[0]

    def _run_views(
        self, views: Sequence[np.ndarray], size: int, net_min: float, offset: tuple[int, int] = (0, 0)
    ) -> list[Detections]:
        """One pass over pictures of the same size, in one ``session.run``: preprocess, run, postprocess."""
        prep = Letterbox.of(views[0].shape[:2], size, self.settings.pad_multiple)
        per = 2 if self.flip else 1
        blob = self._blob(per * len(views), prep.ph, prep.pw)
        for i, view in enumerate(views):
            prep.fill(blob[i * per : (i + 1) * per], view, self.settings.pad_value)
        scores, dists, probs = self.session.run(None, {self._input: blob})
        out = []
        for i in range(len(views)):
            found = []
            for j in range(per):
                k = i * per + j
                r = decode(
                    scores[k],
                    dists[k],
                    probs[k],
                    (prep.ph, prep.pw),
                    net_min,
                    self.settings.strides,
                    CANDIDATES_PER_FACE * self.max_faces,
                )
                if len(r):
                    found.append(prep.to_picture(r, flipped=j == 1, offset=offset))
            out.append(Detections.merge(found))
        return out


def resize_to(view: np.ndarray, nw: int, nh: int) -> np.ndarray:
    """``view`` resized to ``nw`` x ``nh``: bilinearly from ``AREA_BELOW`` of its size up; below it by
    area averaging, in two steps where it shrinks to half or less: a whole factor k first (OpenCV's
    fast path: each pixel the mean of k x k; the last k - 1 rows and columns at most left out), then
    bilinearly by the rest (from 0.5 up). A 640x480 frame to 224 px took 0.82 ms in one step, 0.13 ms
    in two, pixels within 0.4 of 255 on average (docs/speed.md, "Shrinking in two steps")."""
    vh, vw = view.shape[:2]
    if (nw, nh) == (vw, vh):
        return view
    scale = max(nw / vw, nh / vh)
    if scale >= AREA_BELOW:
        return cv2.resize(view, (nw, nh), interpolation=cv2.INTER_LINEAR)
    k = int(1 / scale)
    if k < 2 or vw // k < nw or vh // k < nh:
        return cv2.resize(view, (nw, nh), interpolation=cv2.INTER_AREA)
    half = cv2.resize(view[: vh // k * k, : vw // k * k], (vw // k, vh // k), interpolation=cv2.INTER_AREA)
    return half if half.shape[:2] == (nh, nw) else cv2.resize(half, (nw, nh), interpolation=cv2.INTER_LINEAR)


@dataclass(frozen=True)
class Letterbox:
    """How a picture of one size becomes the network input: resized so its long side is the input size,
    padded right and bottom to multiples of the largest stride with the model's pad value. The one
    letterbox: the runtime, the int8 calibration (``export.calibration_blobs``) and the teacher
    (``train/teacher.py``) all use it."""

    scale: float
    nw: int
    nh: int
    pw: int
    ph: int

    @staticmethod
    def of(hw: tuple[int, ...], size: int, multiple: int) -> "Letterbox":
        """Long side resized to ``size``, padded right and bottom to multiples of ``multiple``."""
        vh, vw = int(hw[0]), int(hw[1])
        scale = size / max(vh, vw)
        nw, nh = max(1, round(vw * scale)), max(1, round(vh * scale))
        return Letterbox(scale, nw, nh, -(-nw // multiple) * multiple, -(-nh // multiple) * multiple)

    def fill(self, rows: np.ndarray, view: np.ndarray, pad_value: int) -> None:
        """Write ``view`` (and its mirror image, when ``rows`` has two) into the network input rows."""
        resized = resize_to(view, self.nw, self.nh)
        rows[:, :, self.nh :, :] = pad_value
        rows[:, :, : self.nh, self.nw :] = pad_value
        pictures = (resized, cv2.flip(resized, 1)) if len(rows) > 1 else (resized,)
        for row, picture in zip(rows, pictures):  # HWC uint8 -> CHW float32 in one copy (docs/speed.md, Buffers)
            np.copyto(row[:, : self.nh, : self.nw], picture.transpose(2, 0, 1), casting="unsafe")

    def blob(self, view: np.ndarray, pad_value: int) -> np.ndarray:
        """``view`` as a network input of its own, (1, 3, ph, pw) float32."""
        rows = np.empty((1, 3, self.ph, self.pw), np.float32)
        self.fill(rows, view, pad_value)
        return rows

    def to_picture(self, r: Detections, flipped: bool, offset: tuple[int, int]) -> Detections:
        """Boxes in network-input pixels -> pixels of the picture."""
        b = r.boxes
        if flipped:
            b = np.stack([self.nw - b[:, 2], b[:, 1], self.nw - b[:, 0], b[:, 3]], 1)
        x0, y0 = offset
        b = b / self.scale + np.array([x0, y0, x0, y0], np.float32)
        return Detections(b.astype(np.float32), r.scores, r.probs)


FLIP_ALWAYS = 1.01  # classifier_flip_below: above 1, every crop is also seen mirrored
CROP_BATCH = 16  # face crops per classifier run: memory grows with it, speed does not (docs/speed.md, Crop batches)


class CropModel:
    """A second-stage crop classifier file: mask-class probabilities for face boxes and, when it has
    a ``background`` class, the probability that each box is a face at all."""

    def __init__(
        self,
        session: ort.InferenceSession,
        size: int,
        expand: float,
        background: int | None,
        flip: bool = False,
        flip_below: float = FLIP_ALWAYS,
    ):
        self.session, self.input = session, session.get_inputs()[0].name
        self.size, self.expand, self.background = size, expand, background
        self.flip = flip  # also classify each crop mirrored and average (test-time flip)
        self.flip_below = flip_below  # ... only the crops whose top class (background included) is under this

    @staticmethod
    def load(
        path: Path,
        threads: int | None = None,
        providers: Sequence[Any] | None = None,
        flip: bool = False,
        flip_below: float = FLIP_ALWAYS,
    ) -> "CropModel":
        sess = _session(path, threads, providers, spin=False)
        meta = _meta_of(sess)
        labels = list(meta.get("labels", LABELS))
        bg = labels.index("background") if "background" in labels else None
        if [x for x in labels if x != "background"] != list(LABELS):
            raise ModelError(f"{path}: classifier labels {labels} do not match {list(LABELS)} (+ background)")
        n_out = sess.get_outputs()[0].shape[-1]
        if isinstance(n_out, int) and n_out != len(labels):
            raise ModelError(f"{path}: classifier gives {n_out} outputs for {len(labels)} labels")
        size, expand = (
            meta.get("input_size", CROP_DEFAULTS["input_size"]),
            meta.get("crop_expand", CROP_DEFAULTS["crop_expand"]),
        )
        return CropModel(sess, int(size), float(expand), bg, flip, flip_below)

    def resized(self, size: int, path: Path, setting: str) -> "CropModel":
        """This classifier on crops of ``size`` px instead of its own (0: its own): smaller crops cost
        less (a network that pools over the whole crop takes any size). ``ModelError`` naming the file
        and the ``setting`` when its input has a fixed size or ``size`` is out of range."""
        if size > 0 and size != self.size:
            shape = self.session.get_inputs()[0].shape[2:]
            if any(isinstance(d, int) for d in shape) or not MIN_INPUT <= size <= MAX_INPUT:
                raise ModelError(f"{path}: takes {self.size} px crops only, not {setting} {size}")
            self.size = size
        return self

    def __call__(self, img: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(N, 3) mask-class probabilities and (N,) P(face) or None, from square crops around ``boxes``."""
        if not len(boxes):
            return np.zeros((0, len(LABELS))), (None if self.background is None else np.zeros(0))
        crops = face_crops(img, boxes, self.size, self.expand)
        p = np.concatenate([self._run(crops[i : i + CROP_BATCH]) for i in range(0, len(crops), CROP_BATCH)])
        if self.background is None:
            return p, None
        face = 1.0 - p[:, self.background]
        p = np.delete(p, self.background, axis=1)
        return p / np.maximum(p.sum(1, keepdims=True), 1e-9), face

    def _run(self, crops: np.ndarray) -> np.ndarray:
        """Class probabilities for a batch of crops (the float input is made per batch: an
        evaluation keeps thousands of candidate faces per crowd picture)."""
        n = len(crops)
        if self.flip and self.flip_below > 1:  # one run for both: the mirrored crops follow the originals
            crops = np.concatenate([crops, crops[:, :, ::-1]])
        p: np.ndarray = self.session.run(None, {self.input: crops.transpose(0, 3, 1, 2).astype(np.float32)})[0]
        p = p.astype(np.float64)
        if not self.flip:
            return p
        if self.flip_below > 1:
            both: np.ndarray = (p[:n] + p[n:]) / 2
            return both
        # a cascade of the mirror: only the crops the classifier is unsure of are seen mirrored
        unsure = np.flatnonzero(p.max(axis=1) < self.flip_below)
        if len(unsure):
            mirrored = np.ascontiguousarray(crops[unsure, :, ::-1].transpose(0, 3, 1, 2)).astype(np.float32)
            p[unsure] = (p[unsure] + self.session.run(None, {self.input: mirrored})[0].astype(np.float64)) / 2
        return p


def second_stage(
    raw: Detections,
    outs: Sequence[tuple[np.ndarray, np.ndarray | None]],
    classifier_weight: float,
    verify_weight: float,
) -> Detections:
    """Merge crop classifier outputs into detections, highest score first.

    Class probabilities: ``classifier_weight`` x the classifiers' average + the rest x the detector's
    head. Score: the detector's score x P(face) ** ``verify_weight``, P(face) averaged over the
    classifiers that have a background class (a veto on hands, ears and other non-faces).
    """
    out, _ = second_stage_faces(raw, outs, classifier_weight, verify_weight)
    return out[np.argsort(-out.scores, kind="stable")]


def second_stage_faces(
    raw: Detections,
    outs: Sequence[tuple[np.ndarray, np.ndarray | None]],
    classifier_weight: float,
    verify_weight: float,
) -> tuple[Detections, np.ndarray | None]:
    """``second_stage`` in the order of ``raw``, with P(face) of each face (None without a classifier
    that has a background class)."""
    probs = np.mean([p for p, _ in outs], axis=0)
    blended = (classifier_weight * probs + (1 - classifier_weight) * raw.probs).astype(np.float32)
    faces = [f for _, f in outs if f is not None]
    if not faces:
        return Detections(raw.boxes, raw.scores, blended, raw.labels), None
    face = np.clip(np.mean(faces, axis=0), 0.0, 1.0)
    scores = (raw.scores * face**verify_weight).astype(np.float32)
    return Detections(raw.boxes, scores, blended, raw.labels), face


def face_crops(img: np.ndarray, boxes: np.ndarray, size: int, expand: float) -> np.ndarray:
    """Square crops (N, size, size, 3) around boxes, grown by ``expand``, padded where they leave the picture."""
    sq = expand_boxes(boxes, expand)
    out = np.empty((len(sq), size, size, 3), np.uint8)
    for i, (x1, y1, x2, _y2) in enumerate(sq):
        s = size / max(x2 - x1, 1e-3)
        m = np.array([[s, 0, -x1 * s], [0, s, -y1 * s]], np.float32)
        out[i] = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out


def tiles(width: int, height: int, tile: int, overlap: float = 0.25) -> list[tuple[int, int, int, int]]:
    """Overlapping ``tile`` x ``tile`` windows at full resolution covering a picture larger than one tile.

    Tiles overlap by ``overlap`` so that a face cut by one tile's edge is whole in the next.
    """
    if max(width, height) <= tile * 1.25:
        return []
    step = max(1, int(tile * (1 - overlap)))

    def starts(n: int) -> list[int]:
        if n <= tile:
            return [0]
        xs = list(range(0, n - tile + 1, step))
        if xs[-1] + tile < n:
            xs.append(n - tile)
        return xs

    return [(x, y, min(width, x + tile), min(height, y + tile)) for y in starts(height) for x in starts(width)]
