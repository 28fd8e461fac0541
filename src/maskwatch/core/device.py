"""Where a model runs: ``Detector(device=...)`` / ``--device`` -> onnxruntime execution providers.

``cpu`` (the default) runs onnxruntime's CPU provider, as before. ``cuda`` or ``cuda:N`` runs on
NVIDIA GPU N through the CUDA provider, ``tensorrt`` or ``tensorrt:N`` through TensorRT (CUDA, then
the CPU, take the nodes it cannot), both from the ``onnxruntime-gpu`` package (the ``gpu`` extra:
docs/models.md, "Running on a GPU"). ``auto`` picks the first of TensorRT, CUDA, CPU that this
onnxruntime offers. A device this onnxruntime does not offer is a ``ValueError`` that names it and
says what is installed.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

DEVICES = ("cpu", "cuda", "cuda:N", "tensorrt", "tensorrt:N", "auto")
CPU, CUDA, TENSORRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
GPU_HINT = "pip install 'maskwatch[gpu]' (the onnxruntime-gpu build; docs/models.md, Running on a GPU)"


def available() -> list[str]:
    """The execution providers this onnxruntime offers."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def providers_for(device: str, offered: Sequence[str] | None = None) -> list[Any]:
    """onnxruntime's providers list for a device name (see the module's docstring)."""
    offered = list(available() if offered is None else offered)
    name = str(device).strip().lower()
    if name == "auto":
        name = "tensorrt" if TENSORRT in offered else "cuda" if CUDA in offered else "cpu"
    m = re.fullmatch(r"(cpu|cuda|tensorrt)(?::(\d+))?", name)
    if m is None or (m.group(1) == "cpu" and m.group(2) is not None):
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    kind, index = m.group(1), int(m.group(2) or 0)
    if kind == "cpu":
        return [CPU]
    wanted = TENSORRT if kind == "tensorrt" else CUDA
    if wanted not in offered:
        raise ValueError(
            f"device {device}: this onnxruntime has no {wanted} (it offers {', '.join(offered) or 'none'}); {GPU_HINT}"
        )
    gpu = {"device_id": index}
    chain: list[Any] = [(TENSORRT, dict(gpu))] if kind == "tensorrt" else []
    if CUDA in offered:
        chain.append((CUDA, dict(gpu)))
    return chain + [CPU]


def provider_name(entry: Any) -> str:
    """The name in a providers list entry (a name, or a (name, options) pair)."""
    return str(entry[0] if isinstance(entry, (tuple, list)) else entry)
