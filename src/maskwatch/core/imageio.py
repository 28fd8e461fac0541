"""Reading pictures from paths, bytes or arrays into BGR uint8, without surprises.

EXIF orientation is applied, grayscale / RGBA / palette / 16-bit pictures are converted, and a
picture whose header claims more than ``MAX_PIXELS`` pixels is refused before it is decoded
(a decompression bomb would otherwise take all memory).
"""

from __future__ import annotations

import io
import os
import re
import stat
import warnings
from struct import error as struct_error
from pathlib import Path
from typing import Union

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ImageError, printable

# OpenCV's own decoder messages ("[ERROR:0@2.9] global grfmt_tiff.cpp ...") would repeat each
# ImageError, which names the input, in another form on the user's terminal
if not os.environ.get("MASKWATCH_VERBOSE"):  # maskwatch --verbose shows them
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except AttributeError:  # an OpenCV build without the logging module
        pass

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
        return printable(os.fspath(source) if not isinstance(source, bytes) else str(source))
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    if isinstance(source, np.ndarray):
        return f"<array {'x'.join(map(str, source.shape))} {source.dtype}>"
    return f"<{type(source).__name__}>"


_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def file_problem(path: Path) -> str | None:
    """Why ``path`` is not a picture file that can be read (missing, a folder, a FIFO, a device...), or None."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "broken symbolic link" if os.path.islink(path) else "no such file"
    except OSError as exc:
        return f"cannot read file ({exc.strerror or exc})"
    if stat.S_ISREG(st.st_mode):
        return None
    if stat.S_ISDIR(st.st_mode):
        return "is a folder, not a picture"
    kind = next((k for test, k in _KINDS if test(st.st_mode)), "not a regular file")
    via = " (through a symbolic link)" if os.path.islink(path) else ""
    return f"is {kind}{via}, not a regular file: not read"


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


# The formats a picture may come in: each is recognised by its first bytes, and its size is read from
# its header before any pixel is decoded. (signature, format name, Pillow's name for it)
_ACCEPTED: tuple[tuple[bytes, str, frozenset[str]], ...] = (
    (b"\xff\xd8\xff", "JPEG", frozenset({"JPEG", "MPO"})),
    (b"\x89PNG\r\n\x1a\n", "PNG", frozenset({"PNG"})),
    (b"BM", "BMP", frozenset({"BMP", "DIB"})),
    (b"GIF87a", "GIF", frozenset({"GIF"})),
    (b"GIF89a", "GIF", frozenset({"GIF"})),
    (b"II*\x00", "TIFF", frozenset({"TIFF"})),
    (b"MM\x00*", "TIFF", frozenset({"TIFF"})),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000", frozenset({"JPEG2000"})),
    (b"\xffO\xffQ", "JPEG 2000", frozenset({"JPEG2000"})),
)
# Formats OpenCV would decode but nobody sends to a mask detector: refused by name, never decoded
# (their headers are not read by the size check, so they could be decompression bombs).
_REFUSED: tuple[tuple[bytes, str], ...] = (
    (b"#?RADIANCE", "Radiance HDR"),
    (b"#?RGBE", "Radiance HDR"),
    (b"PF", "PFM"),
    (b"Pf", "PFM"),
    (b"P7", "PAM"),
    (b"\x59\xa6\x6a\x95", "Sun raster"),
    (b"v/1\x01", "OpenEXR"),
)
_PNM = re.compile(rb"P[1-6]\s")
_ISO_BMFF = re.compile(rb"....ftyp(avif|avis|heic|heix|mif1|msf1)", re.DOTALL)
MAX_FILE_BYTES = 1 << 30  # a path larger than this is refused before it is read


def sniff_format(data: bytes) -> str:
    """The picture format that ``data`` starts with (one of the accepted ones), or ``ImageError``-worthy
    ``ValueError`` naming a refused format or saying that it is not a picture."""
    head = bytes(data[:32])
    for sig, fmt, _ in _ACCEPTED:
        if head.startswith(sig):
            return fmt
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if _PNM.match(head):
        return "PNM"
    for sig, fmt in _REFUSED:
        if head.startswith(sig):
            raise ValueError(f"{fmt} pictures are not accepted: send JPEG, PNG, BMP, WebP, TIFF, GIF or PNM")
    if m := _ISO_BMFF.match(head):
        raise ValueError(f"{m.group(1).decode().upper()} pictures are not accepted: send JPEG, PNG, BMP, WebP or TIFF")
    raise ValueError("not a picture (or a format maskwatch does not read: JPEG, PNG, BMP, WebP, TIFF, GIF, PNM)")


_PILLOW_NAMES = {fmt: names for _, fmt, names in _ACCEPTED} | {"WebP": frozenset({"WEBP"}), "PNM": frozenset({"PPM"})}


def picture_header(
    data: bytes, name: str = "<bytes>", max_pixels: int | None = None
) -> tuple[str, int, int, Image.Image]:
    """(format, width, height, the opened header) of an encoded picture, read without decoding a pixel.

    Every way a picture enters (paths, bytes, base64, uploads, WebSocket frames) passes here first:
    a format that is not accepted, or a header that cannot be read, is an ``ImageError`` naming ``name``.
    The caller closes the returned Pillow image (its pixels are never loaded here).
    """
    try:
        fmt = sniff_format(data)
    except ValueError as exc:
        raise ImageError(name, str(exc)) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies
            im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:  # Pillow's own limit, far above maskwatch's: name maskwatch's
        limit = (max_pixels or MAX_PIXELS) / 1e6
        raise ImageError(name, f"refused: more pixels than the limit of {limit:g} megapixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, struct_error) as exc:
        raise ImageError(name, f"cannot read the {fmt} header ({_short(exc)})") from None
    except Exception as exc:  # a header Pillow chokes on in another way is still the input's fault
        raise ImageError(name, f"cannot read the {fmt} header ({type(exc).__name__})") from None
    if im.format not in _PILLOW_NAMES[fmt]:  # a file that starts as one format and parses as another
        im.close()
        raise ImageError(name, f"inconsistent picture header ({fmt} signature, {im.format} content)")
    w, h = im.size
    return fmt, int(w), int(h), im


def check_pixels(width: int, height: int, name: str, max_pixels: int | None = None) -> None:
    """Refuse a picture whose declared size is over ``max_pixels`` (default ``MAX_PIXELS``)."""
    limit = max_pixels or MAX_PIXELS
    if width <= 0 or height <= 0:
        raise ImageError(name, f"the header declares an empty picture ({width}x{height})")
    if width * height > limit:
        raise ImageError(
            name,
            f"refused: {width}x{height} is {width * height / 1e6:.3g} megapixels, over the limit of {limit / 1e6:g} megapixels",
        )


def declared_pixels(data: bytes, name: str = "<bytes>", max_pixels: int | None = None) -> int:
    """Width x height as the picture's header declares it (``ImageError`` for what the gate refuses)."""
    _, w, h, im = picture_header(data, name, max_pixels)
    im.close()
    return w * h


def _check_header(data: bytes, name: str, max_pixels: int) -> int:
    """The decode gate: format and size from the header, compared before anything else is read;
    then the EXIF orientation."""
    _, w, h, im = picture_header(data, name, max_pixels)
    with im:
        check_pixels(w, h, name, max_pixels)
        try:
            orientation = int(im.getexif().get(0x0112, 1) or 1)
        except Exception:  # broken EXIF must not lose the picture
            orientation = 1
    return orientation


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__


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
        if not os.fspath(source):
            raise ImageError("''", "empty path: name a picture file")
        path = Path(source)
        problem = file_problem(path)
        if problem is not None:
            raise ImageError(name, problem)
        try:
            with open(path, "rb") as fh:  # a regular file (checked above): a read that ends
                size = os.fstat(fh.fileno()).st_size
                if size > MAX_FILE_BYTES:
                    raise ImageError(
                        name, f"refused: {size / 2**20:.0f} MB, over the limit of {MAX_FILE_BYTES >> 20} MB a file"
                    )
                data = fh.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise ImageError(name, f"cannot read file ({exc.strerror or exc})") from None
        return decode_bytes(data, name)
    raise ImageError(name, "unsupported input type: give a path, encoded bytes or a BGR uint8 array")
