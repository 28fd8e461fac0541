"""maskwatch: find every face in a picture or video and tell whether it wears a mask."""

from .core.detections import Detections
from .core.detector import Detector
from .core.errors import ImageError, MaskwatchError, ModelError
from .core.face import LABELS, Face
from .core.imageio import load_image
from .watch.watcher import Watcher

__version__ = "0.1.0"
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
    "__version__",
]
