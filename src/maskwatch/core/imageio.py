"""Reading pictures from paths, bytes or arrays into BGR uint8, without surprises.

EXIF orientation is applied, grayscale / RGBA / palette / 16-bit pictures are converted, and a
picture whose header claims more than ``MAX_PIXELS`` pixels is refused before it is decoded
(a decompression bomb would otherwise take all memory).
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Union

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ImageError

ImageInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, np.ndarray]

MAX_PIXELS = 100_000_000
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".jp2", ".pbm", ".pgm", ".ppm"})

# EXIF orientation tag -> operations that bring the stored pixels upright.
_EXIF_OPS = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: np.swapaxes(a, 0, 1),
    6: lambda a: np.swapaxes(a, 0, 1)[:, ::-1],
    7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
    8: lambda a: np.swapaxes(a, 0, 1)[::-1, :],
}


def describe(source: object) -> str:
    """A short name for an input, for error messages and result rows."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    if isinstance(source, np.ndarray):
        return f"<array {'x'.join(map(str, source.shape))} {source.dtype}>"
    return f"<{type(source).__name__}>"


def to_bgr_uint8(arr: np.ndarray, name: str = "<array>") -> np.ndarray:
    """Convert any 2-D or 3-D picture array (gray, BGR, BGRA; uint8/uint16/float) to BGR uint8."""
    if not isinstance(arr, np.ndarray) or arr.ndim not in (2, 3) or arr.size == 0:
        raise ImageError(name, "not a picture array: expected shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)")
    if arr.ndim == 3 and arr.shape[2] not in (1, 3, 4):
        raise ImageError(name, f"unsupported channel count {arr.shape[2]}")
    if arr.dtype == np.uint8:
        out = arr
    elif arr.dtype == np.uint16:
        out = (arr >> 8).astype(np.uint8)
    elif arr.dtype == np.bool_:
        out = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.floating):
        hi = float(np.nanmax(arr)) if arr.size else 1.0
        scale = 255.0 if hi <= 1.0 else 1.0
        out = np.clip(np.nan_to_num(arr) * scale, 0, 255).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.integer):
        out = np.clip(arr, 0, 255).astype(np.uint8)
    else:
        raise ImageError(name, f"unsupported pixel type {arr.dtype}")
    if out.ndim == 2 or out.shape[2] == 1:
        out = cv2.cvtColor(out.reshape(out.shape[:2]), cv2.COLOR_GRAY2BGR)
    elif out.shape[2] == 4:
        out = cv2.cvtColor(out, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(out)


def _check_header(data: bytes, name: str, max_pixels: int) -> int:
    """Read size and EXIF orientation from the header; refuse non-pictures and bombs."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies below
            im = Image.open(io.BytesIO(data))
        with im:
            w, h = im.size
            try:
                orientation = int(im.getexif().get(0x0112, 1) or 1)
            except Exception:  # broken EXIF must not lose the picture
                orientation = 1
    except UnidentifiedImageError:
        # Pillow may not know every format OpenCV reads; let OpenCV try before giving up.
        return 1
    except Image.DecompressionBombError:  # Pillow's own, higher limit: name maskwatch's
        raise ImageError(name, f"refused: more pixels than the limit of {max_pixels / 1e6:g} megapixels") from None
    except Exception as exc:
        raise ImageError(name, f"cannot read picture header ({exc})") from None
    if w * h > max_pixels:
        raise ImageError(
            name, f"refused: {w}x{h} is {w * h / 1e6:.3g} megapixels, over the limit of {max_pixels / 1e6:g} megapixels"
        )
    return orientation


def decode_bytes(data: bytes, name: str = "<bytes>", max_pixels: int | None = None) -> np.ndarray:
    """Decode an encoded picture (JPEG, PNG, ...) to BGR uint8, applying EXIF orientation."""
    if not data:
        raise ImageError(name, "empty file")
    max_pixels = max_pixels or MAX_PIXELS
    orientation = _check_header(bytes(data), name, max_pixels)
    buf = np.frombuffer(data, dtype=np.uint8)
    flags = cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        arr = cv2.imdecode(buf, flags)
    except cv2.error as exc:
        raise ImageError(name, f"cannot decode picture ({exc.msg.strip() if hasattr(exc, 'msg') else exc})") from None
    if arr is None:
        raise ImageError(name, "not a picture, or a corrupt one")
    if arr.shape[0] * arr.shape[1] > max_pixels:
        raise ImageError(
            name, f"refused: {arr.shape[1]}x{arr.shape[0]} is over the limit of {max_pixels / 1e6:g} megapixels"
        )
    if arr.ndim == 3 and arr.shape[2] == 4:
        if arr.dtype == np.uint16:  # 16-bit RGBA PNG: to 8 bits first, so that it too lies on white
            arr = (arr.astype(np.uint16) >> 8).astype(np.uint8)
        if arr.dtype == np.uint8:
            arr = _flatten_alpha(arr)
    op = _EXIF_OPS.get(orientation)
    if op is not None:
        arr = op(arr)
    return to_bgr_uint8(np.ascontiguousarray(arr), name)


def _flatten_alpha(bgra: np.ndarray) -> np.ndarray:
    """Composite a transparent picture on white, as a viewer shows it."""
    alpha = bgra[:, :, 3:4].astype(np.float32) / 255.0
    rgb = bgra[:, :, :3].astype(np.float32)
    out: np.ndarray = (rgb * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    return out


def load_image(source: ImageInput) -> np.ndarray:
    """Load a picture from a path, encoded bytes, or an array, as BGR uint8 (H, W, 3)."""
    name = describe(source)
    if isinstance(source, np.ndarray):
        return to_bgr_uint8(source, name)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_bytes(bytes(source), name)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise ImageError(name, "no such file")
        if path.is_dir():
            raise ImageError(name, "is a folder, not a picture")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImageError(name, f"cannot read file ({exc.strerror or exc})") from None
        return decode_bytes(data, name)
    raise ImageError(name, "unsupported input type: give a path, encoded bytes or a BGR uint8 array")
