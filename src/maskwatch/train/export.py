"""Export trained networks to the ONNX files that ``Detector`` loads, with settings as metadata."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..export import write_metadata
from ..core.face import LABELS
from ..core.registry import DEFAULTS
from .net import ClassifierExport, CropClassifier, ExportWrapper


def _to_onnx(
    module: torch.nn.Module, dummy: torch.Tensor, path: Path, inputs: list[str], outputs: list[str], dynamic: dict
) -> None:
    """Export with parameter names kept (no constant folding), so weights can be read back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            dummy,
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic,
            opset_version=17,
            do_constant_folding=False,
            dynamo=False,
        )


def export_detector(net: torch.nn.Module, path: Path, meta: dict | None = None) -> Path:
    """Write the detector; parameter names are kept so ``--init`` can load them back for fine-tuning."""
    path = Path(path)
    _to_onnx(
        ExportWrapper(net.eval()),
        torch.zeros(1, 3, 320, 320),
        path,
        ["image"],
        ["scores", "boxes", "classes"],
        {
            "image": {0: "batch", 2: "height", 3: "width"},
            "scores": {0: "batch", 1: "anchors"},
            "boxes": {0: "batch", 1: "anchors"},
            "classes": {0: "batch", 1: "anchors"},
        },
    )
    full = {
        "kind": "detector",
        "version": 1,
        **DEFAULTS,
        "arch": net.config.get("arch", "FaceMaskNet"),
        "config": net.config,
    }
    full.update(meta or {})
    write_metadata(path, full)
    return path


def export_classifier(
    net: CropClassifier, path: Path, input_size: int, crop_expand: float, meta: dict | None = None
) -> Path:
    path = Path(path)
    _to_onnx(
        ClassifierExport(net.eval()),
        torch.zeros(1, 3, input_size, input_size),
        path,
        ["crops"],
        ["probs"],
        {"crops": {0: "n", 2: "h", 3: "w"}, "probs": {0: "n"}},  # it pools over the crop: any size runs
    )
    labels = list(LABELS) + (["background"] if net.config.get("num_classes", len(LABELS)) > len(LABELS) else [])
    full = {
        "kind": "classifier",
        "version": 1,
        "labels": labels,
        "input_size": input_size,
        "crop_expand": crop_expand,
        "arch": "CropClassifier",
        "config": net.config,
    }
    full.update(meta or {})
    write_metadata(path, full)
    return path


def load_onnx_weights(net: torch.nn.Module, path: Path, prefix: str = "net.", strict: bool = False) -> int:
    """Copy the initializers of a maskwatch ONNX file back into ``net`` (for fine-tuning); returns how
    many tensors were copied. ``strict``: every tensor of ``net`` must be in the file with its shape,
    else ``MaskwatchError`` says how many and which were not (never a silent fresh start)."""
    import onnx
    from onnx import numpy_helper

    from ..core.errors import MaskwatchError

    m = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    state = net.state_dict()
    loaded = 0
    missing: list[str] = []
    unused = tuple(getattr(net, "export_unused", ()))  # parts that no output uses: not in an exported file
    for k in state:
        v = inits.get(prefix + k)
        if v is None and unused and k.startswith(unused):
            continue
        if v is not None and tuple(v.shape) == tuple(state[k].shape):
            state[k] = torch.from_numpy(v.copy())
            loaded += 1
        elif state[k].dtype.is_floating_point:  # counters (BatchNorm's num_batches_tracked) are not weights
            why = (
                "not in the file" if v is None else f"shape {tuple(v.shape)} in the file, {tuple(state[k].shape)} here"
            )
            missing.append(f"{k} ({why})")
    if strict and missing:
        arch = getattr(net, "config", {}).get("arch", type(net).__name__)
        raise MaskwatchError(
            f"{path}: {len(missing)} of {len(missing) + loaded} tensors of the {arch} network are not in the file "
            f"(it holds another network, or was not written by maskwatch): {', '.join(missing[:8])}"
            + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        )
    net.load_state_dict(state)
    return loaded


def blend_onnx_weights(path: Path, start: Path, share: float) -> int:
    """Average a trained file's weights with those of the file it started from, in place: each
    floating-point tensor becomes ``(1 - share) x trained + share x start`` (weight-space ensembling,
    WiSE-FT: Wortsman et al., 2022). A fine-tuned network keeps most of what it learnt and gives back
    what it lost on the data its start was good at. Both files must hold the same network; returns how
    many tensors were averaged."""
    import onnx
    from onnx import numpy_helper

    from ..core.errors import MaskwatchError

    if not 0 < share < 1:
        raise ValueError(f"share must be between 0 and 1, got {share!r}")
    m = onnx.load(str(path))
    first = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(start)).graph.initializer}
    done = 0
    for init in m.graph.initializer:
        x = numpy_helper.to_array(init)
        if x.dtype.kind != "f":
            continue
        y = first.get(init.name)
        if y is None or y.shape != x.shape:
            raise MaskwatchError(f"{start}: has no tensor {init.name} of shape {x.shape}: not the network of {path}")
        init.CopyFrom(numpy_helper.from_array(((1 - share) * x + share * y).astype(x.dtype), init.name))
        done += 1
    onnx.save(m, str(path))
    return done
