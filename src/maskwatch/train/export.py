"""Export trained networks to the ONNX files that ``Detector`` loads, with settings as metadata."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from ..face import LABELS
from .net import ClassifierExport, CropClassifier, ExportWrapper, FaceMaskNet

META_KEY = "maskwatch"


def _set_meta(path: Path, meta: dict) -> None:
    import onnx

    m = onnx.load(str(path))
    del m.metadata_props[:]
    p = m.metadata_props.add()
    p.key, p.value = META_KEY, json.dumps(meta)
    m.producer_name = "maskwatch"
    onnx.save(m, str(path))


def export_detector(net: FaceMaskNet, path: Path, meta: dict | None = None) -> Path:
    """Write the detector; parameter names are kept so ``--init`` can load them back for fine-tuning."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = net.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            ExportWrapper(net), torch.zeros(1, 3, 320, 320), str(path),
            input_names=["image"], output_names=["scores", "boxes", "classes"],
            dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}, "scores": {0: "batch", 1: "anchors"},
                          "boxes": {0: "batch", 1: "anchors"}, "classes": {0: "batch", 1: "anchors"}},
            opset_version=17, do_constant_folding=False, dynamo=False,
        )
    full = {"kind": "detector", "version": 1, "labels": list(LABELS), "strides": [8, 16, 32], "input_size": 640,
            "score_threshold": 0.5, "nms_threshold": 0.45, "arch": "FaceMaskNet", "config": net.config}
    full.update(meta or {})
    _set_meta(path, full)
    return path


def export_classifier(net: CropClassifier, path: Path, input_size: int, crop_expand: float, meta: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = net.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            ClassifierExport(net), torch.zeros(1, 3, input_size, input_size), str(path),
            input_names=["crops"], output_names=["probs"], dynamic_axes={"crops": {0: "n"}, "probs": {0: "n"}},
            opset_version=17, do_constant_folding=False, dynamo=False,
        )
    full = {"kind": "classifier", "version": 1, "labels": list(LABELS), "input_size": input_size, "crop_expand": crop_expand,
            "arch": "CropClassifier", "config": net.config}
    full.update(meta or {})
    _set_meta(path, full)
    return path


def load_onnx_weights(net: torch.nn.Module, path: Path, prefix: str = "net.") -> int:
    """Copy the initializers of a maskwatch ONNX file back into ``net`` (for fine-tuning)."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    state = net.state_dict()
    loaded = 0
    for k in state:
        v = inits.get(prefix + k)
        if v is not None and tuple(v.shape) == tuple(state[k].shape):
            state[k] = torch.from_numpy(v.copy())
            loaded += 1
    net.load_state_dict(state)
    return loaded
