"""maskwatch: find every face in a picture or video and tell whether it wears a mask."""

from .core.detections import Detections
from .core.detector import Detector
from .core.errors import ImageError, MaskwatchError, ModelError
from .core.face import LABELS, Face
from .core.imageio import load_image

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``maskwatch.Watcher`` and ``maskwatch.annotate`` are imported when first asked for: ``import maskwatch``
    loads no video or drawing code."""
    if name == "Watcher":
        from .watch.watcher import Watcher

        return Watcher
    if name == "annotate":  # draw a result: maskwatch.annotate(image, faces, anonymize_faces=None)
        from .batch.annotate import annotate

        return annotate
    raise AttributeError(f"module 'maskwatch' has no attribute {name!r}")


__all__ = [
    "Detector",
    "Detections",
    "Face",
    "LABELS",
    "MaskwatchError",
    "ImageError",
    "ModelError",
    "load_image",
    "Watcher",
    "annotate",
    "__version__",
]
