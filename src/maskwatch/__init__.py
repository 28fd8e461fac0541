"""maskwatch: find every face in a picture or video and tell whether it wears a mask."""

from .detector import Detector
from .errors import ImageError, MaskwatchError, ModelError
from .face import LABELS, Face
from .imageio import load_image

__version__ = "0.1.0"
__all__ = ["Detector", "Face", "LABELS", "MaskwatchError", "ImageError", "ModelError", "load_image", "__version__"]
