"""PaddleHub drop-in: ``maskwatch.hub.Module(name="pyramidbox_lite_mobile_mask")``.

Same method, arguments and result shape as PaddleHub's ``pyramidbox_lite_mobile_mask`` /
``pyramidbox_lite_server_mask``; a user changes ``import paddlehub as hub`` to
``from maskwatch import hub`` and nothing else. ``incorrect`` (mask below the nose) reports as
``NO MASK``, since PaddleHub has only two labels.
"""

from __future__ import annotations

import base64
import os
import shutil
import time
from pathlib import Path
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from .batch.annotate import annotate, check_anonymize
from .core.detector import Detector
from .core.registry import ModelSpec, classifier_files, paddlehub_modules
from .core.errors import MaskwatchError, ModelError
from .core.face import Face
from .core.imageio import load_image

MODULES = paddlehub_modules()  # PaddleHub module name -> model name


def paddle_label(face: Face | Mapping[str, Any]) -> tuple[str, float]:
    """PaddleHub's two labels; ``incorrect`` counts as NO MASK, with the probability of not wearing it right."""
    d = face.to_dict() if isinstance(face, Face) else face
    if d["label"] == "mask":
        return "MASK", float(d["confidence"])
    probs = d["probs"]
    p_no = probs.get("no_mask", 0.0) + probs.get("incorrect", 0.0) if any(probs.values()) else d["confidence"]
    return "NO MASK", round(min(1.0, float(p_no)), 4)  # a sum of rounded values, rounded again


def paddle_face(d: Mapping[str, Any], width: int, height: int) -> dict[str, Any]:
    """PaddleHub's form of one serialised face (``Face.to_dict``): two labels, whole pixels inside the picture."""
    label, conf = paddle_label(d)
    x1, y1, x2, y2 = d["box"]
    return {
        "label": label,
        "confidence": conf,
        "left": int(max(0, round(x1))),
        "top": int(max(0, round(y1))),
        "right": int(min(width, round(x2))),
        "bottom": int(min(height, round(y2))),
    }


def to_paddle(faces: list[Face], width: int, height: int) -> list[dict[str, Any]]:
    """PaddleHub's ``data`` for one picture, built from each face's ``to_dict``."""
    return [paddle_face(f.to_dict(), width, height) for f in faces]


def threshold_value(v: Any) -> float:
    """PaddleHub's ``confs_threshold`` as a score threshold: any number, held to [0, 1] (over 1
    finds nothing, as in PaddleHub); anything else is an error naming it."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
        raise MaskwatchError(f"confs_threshold: expected a number, got {_short_repr(v)}")
    try:
        v = float(v)
    except OverflowError:  # an integer of hundreds of digits is no threshold anyone meant
        raise MaskwatchError(f"confs_threshold: number out of range ({_short_repr(v)})") from None
    if np.isnan(v):
        raise MaskwatchError(f"confs_threshold: expected a number, got {v!r}")
    return min(max(float(v), 0.0), 1.0)


def _short_repr(v: Any) -> str:
    r = repr(v) if not isinstance(v, int) else f"an integer of {len(str(abs(v)))} digits"
    return r if len(r) <= 60 else r[:57] + "..."


class Module:
    """A PaddleHub-like module backed by a maskwatch model."""

    def __init__(self, name: str = "pyramidbox_lite_mobile_mask", directory: str | None = None, **kwargs):
        if name not in MODULES:
            raise ModelError(f"{name}: unknown module; maskwatch provides {', '.join(MODULES)}")
        self.name = name
        self.model = MODULES[name]
        self._detectors: dict[bool, Detector] = {}  # by use_multi_scale; the threshold is given per call

    def _detector(self, multi_scale: bool) -> Detector:
        det = self._detectors.get(bool(multi_scale))
        if det is None:
            det = Detector(self.model, scales=(1.0, 2.0) if multi_scale else None)
            self._detectors[bool(multi_scale)] = det
        return det

    def face_detection(
        self,
        images=None,
        paths=None,
        batch_size=1,
        use_gpu=False,
        visualization=False,
        output_dir="detection_result",
        use_multi_scale=False,
        shrink=0.5,
        confs_threshold=0.6,
        *,
        data=None,
        anonymize: str | None = None,
    ) -> list[dict[str, Any]]:
        """Find faces and tell MASK / NO MASK, one dict per picture: {'path': ..., 'data': [...]}.

        ``images``: BGR arrays; ``paths``: files. ``shrink`` is accepted for compatibility:
        maskwatch sizes its input itself (its model card says how) because shrinking loses small
        faces. ``use_multi_scale`` adds a pass at twice the input size. ``use_gpu`` is ignored
        (onnxruntime on the CPU). ``anonymize`` ("blur" or "pixelate", maskwatch's own): faces hidden in
        the ``visualization`` pictures, boxes and labels kept.
        """
        check_anonymize(anonymize)
        if data:  # PaddleHub's older calling form
            if "image" in data:
                paths = list(paths or []) + list(data["image"])
            elif "data" in data:
                images = list(images or []) + list(data["data"])
        if images is None and paths is None:
            raise MaskwatchError("face_detection: give images (BGR arrays) or paths")
        if isinstance(images, np.ndarray):  # one picture (H, W[, C]) or a stack of them (N, H, W, C)
            images = list(images) if images.ndim == 4 else [images]
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        threshold = threshold_value(confs_threshold)
        det = self._detector(use_multi_scale)
        items: list[tuple[str, Any]] = []
        for im in images or []:
            items.append((f"ndarray_time={int(round(time.time(), 6) * 1e6)}", im))
        for p in paths or []:
            items.append((str(p), p))
        results = []
        for name, src in items:
            img = load_image(src)
            faces = det.detect(img, score_threshold=threshold)
            res = {"path": name, "data": to_paddle(faces, img.shape[1], img.shape[0])}
            if visualization:
                res["save_path"] = _save(img, faces, name, output_dir, anonymize)
            results.append(res)
        return results

    def get_face_detector_module(self) -> Detector:
        """The face detector this module runs (PaddleHub returns its inner face detection module)."""
        return self._detector(False)

    def set_face_detector_module(self, module: Detector | Module | str) -> None:
        """Run another face detector: a ``Detector``, another ``Module``, or a model name or .onnx path."""
        if isinstance(module, Module):
            module = module.get_face_detector_module()
        elif not isinstance(module, Detector):
            module = Detector(module)
        self._detectors = {False: module}

    def save_inference_model(
        self,
        dirname: str | os.PathLike,
        model_filename: str | None = None,
        params_filename: str | None = None,
        combined: bool = True,
        **kwargs: Any,
    ) -> list[str]:
        """Write the files a phone or browser app needs into ``dirname``: the ONNX model, its crop
        classifier files, and README.md with the input and output contract. Returns the paths written.
        (PaddleHub writes Paddle inference files here; ``model_filename``, ``params_filename`` and
        ``combined`` are accepted for compatibility: an ONNX file holds both.)"""
        det = self.get_face_detector_module()
        out = Path(dirname)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        files = [det.path] + [det.path.parent / f for f in classifier_files(det.meta)]
        for f in files:
            target = out / (model_filename if (f == det.path and model_filename) else f.name)
            shutil.copyfile(f, target)
            written.append(str(target))
        readme = out / "README.md"
        readme.write_text(_contract(det, Path(written[0]).name), encoding="utf-8")
        return written + [str(readme)]

    def serving_method(self, images, **kwargs) -> list[dict[str, Any]]:
        """PaddleHub Serving's entry: base64-encoded pictures."""
        decoded = [load_image(base64.b64decode(s)) for s in images]
        allowed = {
            k: kwargs[k]
            for k in ("shrink", "confs_threshold", "visualization", "use_multi_scale", "output_dir")
            if k in kwargs
        }
        return self.face_detection(images=decoded, **allowed)


def _contract(det: Detector, filename: str) -> str:
    """The input/output contract of a detector file, for the app that runs it."""
    sess = det.session
    inp = sess.get_inputs()[0]
    outs = ", ".join(f"`{o.name}` {o.shape}" for o in sess.get_outputs())
    cls = ", ".join(classifier_files(det.meta)) or "none"
    spec = det.spec
    return f"""# {filename}: maskwatch face + mask detector (ONNX)

Written by `maskwatch.hub.Module.save_inference_model`. Run it with ONNX Runtime (Mobile, Web or any other).

## Input
`{inp.name}`: float32 {inp.shape}, BGR, values 0-255 (no normalisation). Resize the picture so that its
long side is {_size_rule(spec)}, place it top-left and pad right and bottom with {spec.settings.pad_value} up to
multiples of {spec.settings.pad_multiple}.

## Outputs
{outs}: per anchor point (strides {", ".join(map(str, spec.settings.strides))}, row-major over each stride's grid, the point at
the cell centre) the face score, the distances left, top, right, bottom to the box edges in input pixels,
and the label probabilities ({", ".join(det.labels)}).

## After the network
Keep scores >= {det.score_threshold} (the model's threshold{_calibration_note(spec)}), turn distances into boxes, NMS at IoU
{det.nms_threshold}, scale the boxes back to the picture. Test-time flip: {det.flip}. Second-stage crop
classifier file(s): {cls} (settings in the model's `maskwatch` metadata).
"""


def _size_rule(spec: ModelSpec) -> str:
    if spec.settings.upscale is None:
        rule = f"{spec.settings.input_size} px"
    else:
        rule = (
            f"the picture's own long side x {spec.settings.upscale:g}, kept between {spec.settings.min_input} and {spec.settings.max_input} px "
            f"({spec.settings.first_input(640, 480)} px for a 640x480 picture)"
        )
    if spec.settings.zoom > 1:
        rule += (
            f"; when that pass finds a face (network score >= {spec.settings.zoom_score:g}) under {spec.settings.zoom_below:g} px, "
            f"the picture is run again {spec.settings.zoom:g} times larger (at most {spec.settings.zoom_cap_words()}) and that "
            "pass's faces are the answer"
        )
    if spec.settings.shrink_input > 0:
        rule += (
            f"; when it finds a face of {spec.settings.shrink_trigger:g} px or more, "
            f"the picture is also run at {spec.settings.shrink_input} px and the faces of "
            f"{spec.settings.shrink_above:g} px or more are taken from there"
        )
        if spec.settings.shrink_keep_below > spec.settings.shrink_above:
            rule += f" (and from the first pass up to {spec.settings.shrink_keep_below:g} px)"
    return rule


def _calibration_note(spec: ModelSpec) -> str:
    if spec.settings.score_calibration is None:
        return ""
    raw, cal = spec.settings.score_calibration
    return (
        f", in calibrated units: map the network's score through the piecewise-linear knots raw {list(raw)} "
        f"-> {list(cal)} first"
    )


def _save(img: np.ndarray, faces: list[Face], name: str, output_dir: str, anonymize: str | None = None) -> str:
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(name).stem if not name.startswith("ndarray_time=") else name
    path = out_dir / f"{stem}.jpg"
    if path.exists():
        path = out_dir / f"{stem}time={int(time.time())}.jpg"
    if not cv2.imwrite(str(path), annotate(img, faces, anonymize_faces=anonymize)):
        raise MaskwatchError(f"{path}: could not write the annotated picture")
    return str(path)
