import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from maskwatch.core.errors import ImageError
from maskwatch.core.imageio import load_image, to_bgr_uint8


def _png_bytes(arr, mode=None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG") if mode else Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_array_passes_through_as_bgr_uint8():
    arr = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    out = load_image(arr)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    assert np.array_equal(out, arr)


def test_grayscale_bytes_become_three_channels():
    gray = np.full((10, 12), 77, np.uint8)
    out = load_image(_png_bytes(gray))
    assert out.shape == (10, 12, 3)
    assert (out == 77).all()


def test_rgba_is_composited_on_white():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent on the left half
    rgba[:, 4:, 3] = 255
    out = load_image(_png_bytes(rgba))
    assert out.shape == (8, 8, 3)
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[0, 7].tolist() == [0, 0, 255]  # BGR red


def test_palette_png():
    im = Image.new("P", (6, 5))
    im.putpalette([0, 0, 255] + [0] * 765)  # index 0 is blue
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    out = load_image(buf.getvalue())
    assert out.shape == (5, 6, 3)
    assert out[0, 0].tolist() == [255, 0, 0]


def test_16bit_png(tmp_path):
    arr = np.full((9, 7, 3), 65535, np.uint16)
    p = tmp_path / "deep.png"
    cv2.imwrite(str(p), arr)
    out = load_image(p)
    assert out.dtype == np.uint8 and (out == 255).all()


def test_16bit_array_and_float_array():
    assert to_bgr_uint8(np.full((2, 2), 256 * 10, np.uint16)).max() == 10
    assert to_bgr_uint8(np.full((2, 2, 3), 0.5, np.float32)).max() == 127


def test_exif_orientation_is_applied(tmp_path):
    # a 40 x 20 (w x h) picture stored sideways with orientation 6 (rotate 90 clockwise to view)
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :10] = (255, 0, 0)  # left band red (RGB)
    im = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6
    p = tmp_path / "rot.jpg"
    im.save(p, exif=exif, quality=95)
    out = load_image(p)
    assert out.shape[:2] == (40, 20)  # upright: taller than wide
    # the red band (stored on the left) is at the top after a clockwise turn
    assert out[2, 10, 2] > 200 and out[-2, 10, 2] < 60
    assert np.array_equal(load_image(p.read_bytes()), out)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    )


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    p = tmp_path / "bomb.png"
    p.write_bytes(_png_header_only(11000, 10000))
    with pytest.raises(ImageError) as exc:
        load_image(p)
    assert "bomb.png" in str(exc.value) and "refused" in str(exc.value)


def test_non_image_file_names_the_file(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("this is not a picture")
    with pytest.raises(ImageError) as exc:
        load_image(p)
    assert "notes.jpg" in str(exc.value)


def test_missing_empty_and_folder(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(empty)
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)


def test_truncated_jpeg_is_an_error_or_a_picture_never_a_crash(tmp_path):
    ok, enc = cv2.imencode(".jpg", np.full((64, 64, 3), 128, np.uint8))
    p = tmp_path / "cut.jpg"
    p.write_bytes(enc.tobytes()[:40])
    try:
        out = load_image(p)
        assert out.ndim == 3
    except ImageError as exc:
        assert "cut.jpg" in str(exc)


def test_bad_array_shapes_and_types():
    with pytest.raises(ImageError):
        load_image(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(ImageError):
        load_image(np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(ImageError):
        load_image(12345)


def test_16bit_rgba_is_composited_on_white_like_8bit():
    clear = np.zeros((4, 4, 4), np.uint16)  # fully transparent
    ok, enc = cv2.imencode(".png", clear)
    assert ok
    assert (load_image(enc.tobytes()) == 255).all()
    half = np.zeros((4, 4, 4), np.uint16)
    half[..., 3] = 32896  # alpha about 0.5 over black: grey
    ok, enc = cv2.imencode(".png", half)
    assert np.abs(load_image(enc.tobytes()).astype(int) - 127).max() <= 2
