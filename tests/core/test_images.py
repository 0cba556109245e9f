"""Decoding tests: every input is built here with Pillow or by hand from bytes."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from core.errors import RepLensError
from core.images import MAX_PIXELS, decode_image, from_array, to_gray, working_copy


def encode(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def distinct_rgb(height: int, width: int) -> np.ndarray:
    """An (H, W, 3) uint8 image whose pixels all differ, so any transform shows."""
    values = np.arange(height * width * 3, dtype=np.uint16).reshape(height, width, 3) * 7 % 256
    return values.astype(np.uint8)


# -- EXIF orientation ---------------------------------------------------------

# Orientation tag value -> the array transform that displays the image
# upright, from the TIFF/EXIF definition of tag 0x0112.
EXIF_REFERENCE = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # rotated 180
    4: lambda a: a[::-1],  # mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),  # transposed
    6: lambda a: np.rot90(a, k=-1),  # rotate 90 clockwise to display
    7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],  # transverse
    8: lambda a: np.rot90(a, k=1),  # rotate 90 counter-clockwise to display
}


def with_orientation(pixels: np.ndarray, orientation: int, format: str) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    options = {"quality": 100, "subsampling": 0} if format == "JPEG" else {}
    return encode(Image.fromarray(pixels), format, exif=exif.tobytes(), **options)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_reference(orientation):
    pixels = distinct_rgb(3, 5)

    decoded = decode_image(with_orientation(pixels, orientation, "PNG"), "oriented.png")

    expected = EXIF_REFERENCE[orientation](pixels)
    assert decoded.pixels.shape == expected.shape
    np.testing.assert_array_equal(decoded.pixels, expected)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_jpeg_halves(orientation):
    # 4 wide x 2 high: left half red, right half blue.
    pixels = np.zeros((2, 4, 3), np.uint8)
    pixels[:, :2] = (255, 0, 0)
    pixels[:, 2:] = (0, 0, 255)
    data = with_orientation(pixels, orientation, "JPEG")

    first = decode_image(data, "halves.jpg")
    second = decode_image(data, "halves.jpg")

    expected = EXIF_REFERENCE[orientation](pixels)
    assert first.pixels.shape == expected.shape
    assert np.abs(first.pixels.astype(int) - expected).max() < 40
    np.testing.assert_array_equal(first.pixels, second.pixels)


def test_exif_orientation_3_and_6_halves():
    pixels = np.zeros((2, 4, 3), np.uint8)
    pixels[:, :2] = (255, 0, 0)
    pixels[:, 2:] = (0, 0, 255)

    rotated = decode_image(with_orientation(pixels, 3, "JPEG"), "o3.jpg").pixels
    turned = decode_image(with_orientation(pixels, 6, "JPEG"), "o6.jpg").pixels

    # Blue on the left, red on the right.
    assert rotated[0, 0, 2] > 200
    assert rotated[0, 0, 0] < 60
    assert rotated[0, -1, 0] > 200
    assert rotated[0, -1, 2] < 60
    assert turned.shape == (4, 2, 3)  # 2 wide, 4 high


# -- High bit depth and float modes ---------------------------------------------

RAMP_16 = (np.arange(256, dtype=np.uint16) * 257).reshape(1, 256)


def sixteen_bit_file(mode: str) -> bytes:
    if mode == "I;16":
        image = Image.fromarray(RAMP_16)
        assert image.mode == "I;16"
        return encode(image, "PNG")
    if mode == "I;16B":
        image = Image.frombytes("I;16B", (256, 1), RAMP_16.astype(">u2").tobytes())
        return encode(image, "TIFF")
    if mode == "I":
        image = Image.fromarray(RAMP_16.astype(np.int32))
        assert image.mode == "I"
        return encode(image, "TIFF")
    raise AssertionError(mode)


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_sixteen_bit_ramp_keeps_256_levels(mode):
    decoded = decode_image(sixteen_bit_file(mode), f"ramp-{mode}.png")

    assert decoded.source_mode == mode
    assert decoded.grayscale
    assert decoded.pixels.shape == (1, 256, 3)
    np.testing.assert_array_equal(decoded.pixels[0, :, 0], np.arange(256))
    assert len(np.unique(decoded.pixels)) == 256


def test_float_unit_range_scales_by_255():
    values = np.linspace(0.0, 1.0, 11, dtype=np.float32).reshape(1, 11)

    decoded = decode_image(encode(Image.fromarray(values, "F"), "TIFF"), "unit.tif")

    assert decoded.source_mode == "F"
    np.testing.assert_array_equal(decoded.pixels[0, :, 0], np.rint(values[0].astype(np.float64) * 255))


def test_float_wide_range_stretches():
    values = np.array([[-2.0, 0.0, 2.0, 6.0]], dtype=np.float32)

    decoded = decode_image(encode(Image.fromarray(values, "F"), "TIFF"), "wide.tif")

    np.testing.assert_array_equal(decoded.pixels[0, :, 0], [0, 64, 128, 255])
    assert any("stretched" in notice for notice in decoded.notices)


def test_float_nan_and_inf_stay_finite():
    values = np.array([[np.nan, 0.0, 0.5, 1.0, np.inf, -np.inf]], dtype=np.float32)

    decoded = decode_image(encode(Image.fromarray(values, "F"), "TIFF"), "nan.tif")

    np.testing.assert_array_equal(decoded.pixels[0, :, 0], [0, 0, 128, 255, 255, 0])
    assert any("NaN" in notice for notice in decoded.notices)


# -- Transparency ---------------------------------------------------------------

def palette_with_trns() -> bytes:
    # Index 0 is transparent through tRNS, index 1 is opaque red.
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 0, 0, 255, 0, 0])
    for y in range(4):
        for x in (2, 3):
            image.putpixel((x, y), 1)
    return encode(image, "PNG", transparency=0)


def half_transparent_rgba() -> np.ndarray:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:, 2:] = (255, 0, 0, 255)
    return rgba


TRANSPARENT_FILES = {
    "P with tRNS": palette_with_trns,
    "RGBA": lambda: encode(Image.fromarray(half_transparent_rgba(), "RGBA"), "PNG"),
    "PA": lambda: encode(Image.open(io.BytesIO(palette_with_trns())).convert("PA"), "TIFF"),
    "RGB with tRNS": lambda: encode(
        Image.fromarray(np.where(np.arange(4)[None, :, None] < 2, (0, 255, 0), (255, 0, 0)).astype(np.uint8).repeat(4, 0)),
        "PNG",
        transparency=(0, 255, 0),
    ),
}


@pytest.mark.parametrize("kind", list(TRANSPARENT_FILES))
def test_transparency_composited_on_white(kind):
    decoded = decode_image(TRANSPARENT_FILES[kind](), f"{kind}.png")

    assert decoded.pixels.shape == (4, 4, 3)
    np.testing.assert_array_equal(decoded.pixels[:, :2].reshape(-1, 3), np.full((8, 3), 255))
    np.testing.assert_array_equal(decoded.pixels[:, 2:].reshape(-1, 3), np.tile([255, 0, 0], (8, 1)))


@pytest.mark.parametrize("alpha", [0, 64, 128, 255])
def test_la_alpha_blends_towards_white(alpha):
    la = np.zeros((2, 2, 2), np.uint8)
    la[..., 0] = 100
    la[..., 1] = alpha

    decoded = decode_image(encode(Image.fromarray(la, "LA"), "PNG"), "la.png")

    expected = round(100 * alpha / 255 + 255 * (1 - alpha / 255))
    assert decoded.grayscale
    np.testing.assert_array_equal(decoded.pixels, np.full((2, 2, 3), expected))


def test_gray_with_trns_key_becomes_white():
    gray = np.array([[10, 50], [50, 10]], np.uint8)

    decoded = decode_image(encode(Image.fromarray(gray), "PNG", transparency=50), "key.png")

    np.testing.assert_array_equal(decoded.pixels[..., 0], [[10, 255], [255, 10]])


def test_opaque_rgba_equals_rgb():
    pixels = distinct_rgb(5, 7)
    rgba = np.dstack([pixels, np.full((5, 7), 255, np.uint8)])

    from_rgba = decode_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"), "opaque.png")
    from_rgb = decode_image(encode(Image.fromarray(pixels), "PNG"), "plain.png")

    np.testing.assert_array_equal(from_rgba.pixels, from_rgb.pixels)


# -- Other modes --------------------------------------------------------------------

def test_cmyk_jpeg_is_red_rgb():
    data = encode(Image.new("CMYK", (4, 4), (0, 255, 255, 0)), "JPEG", quality=100)

    decoded = decode_image(data, "cmyk.jpg")

    assert decoded.source_mode == "CMYK"
    assert decoded.pixels.shape == (4, 4, 3)
    assert np.abs(decoded.pixels.astype(int) - [255, 0, 0]).max() <= 3


def test_bilevel_maps_to_0_and_255():
    bits = np.array([[0, 1], [1, 0]], bool)

    decoded = decode_image(encode(Image.fromarray(bits), "PNG"), "bits.png")

    assert decoded.source_mode == "1"
    np.testing.assert_array_equal(decoded.pixels[..., 1], [[0, 255], [255, 0]])


def test_grayscale_png_is_three_equal_channels():
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4

    decoded = decode_image(encode(Image.fromarray(gray), "PNG"), "gray.png")

    assert decoded.grayscale
    assert decoded.pixels.shape == (8, 8, 3)
    for channel in range(3):
        np.testing.assert_array_equal(decoded.pixels[..., channel], gray)
    np.testing.assert_array_equal(decoded.gray, gray)


@pytest.mark.parametrize("shape", [(1, 1), (1, 50), (50, 1), (3, 3)])
def test_tiny_rgb_png_keeps_shape(shape):
    pixels = distinct_rgb(*shape)

    decoded = decode_image(encode(Image.fromarray(pixels), "PNG"), "tiny.png")

    np.testing.assert_array_equal(decoded.pixels, pixels)
    assert not decoded.grayscale


def test_decoded_pixels_are_read_only():
    decoded = decode_image(encode(Image.fromarray(distinct_rgb(2, 2)), "PNG"), "ro.png")

    with pytest.raises(ValueError):
        decoded.pixels[0, 0, 0] = 1


# -- Animated files -------------------------------------------------------------

@pytest.mark.parametrize("format", ["GIF", "PNG", "WEBP"])
def test_animation_uses_first_frame(format):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [Image.new("RGB", (6, 4), colour) for colour in colours]
    options = {"lossless": True} if format == "WEBP" else {}
    data = encode(frames[0], format, save_all=True, append_images=frames[1:], duration=100, **options)

    decoded = decode_image(data, f"anim.{format.lower()}")

    assert decoded.pixels.shape == (4, 6, 3)
    np.testing.assert_array_equal(decoded.pixels.reshape(-1, 3), np.tile(colours[0], (24, 1)))
    assert any("3 frames" in notice for notice in decoded.notices)


# -- Rejected files -----------------------------------------------------------------

def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares width x height RGB pixels, followed by one tiny IDAT."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("width, height", [(20000, 20000), (9000, 9000), (65535, 1000), (1, 2**31 - 1)])
def test_declared_bomb_rejected_before_decoding(width, height):
    data = png_declaring(width, height)

    tracemalloc.start()
    try:
        with pytest.raises(RepLensError) as raised:
            decode_image(data, "huge.png")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert "huge.png" in str(raised.value)
    assert "too large" in str(raised.value)
    assert peak < 5_000_000  # bytes: nothing near width * height was allocated


def test_limit_itself_is_accepted_by_header_check():
    # One pixel under the limit passes the header check and then fails on the
    # missing pixel data, with the corrupt-data message instead.
    width = MAX_PIXELS // 8000
    with pytest.raises(RepLensError, match="truncated or corrupt"):
        decode_image(png_declaring(width, 8000), "edge.png")


def valid_png() -> bytes:
    return encode(Image.fromarray(distinct_rgb(32, 32)), "PNG")


def valid_jpeg() -> bytes:
    return encode(Image.fromarray(distinct_rgb(64, 64)), "JPEG")


def corrupt_png() -> bytes:
    data = bytearray(valid_png())
    start = data.index(b"IDAT") + 8
    data[start : start + 20] = b"\xff" * 20
    return bytes(data)


BAD_FILES = {
    "empty": (lambda: b"", "empty"),
    "text": (lambda: b"name,value\nalpha,1\n", "not a recognised image"),
    "svg": (lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "SVG"),
    "svg with prolog": (lambda: b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
    "random bytes": (lambda: np.random.default_rng(0).bytes(4096), "not a recognised image"),
    "truncated png": (lambda: valid_png()[: len(valid_png()) // 2], "truncated or corrupt"),
    "truncated jpeg": (lambda: valid_jpeg()[: len(valid_jpeg()) // 2], "truncated or corrupt"),
    "corrupt png data": (corrupt_png, "truncated or corrupt"),
    "png signature only": (lambda: b"\x89PNG\r\n\x1a\n", "not a recognised image"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_bad_file_gets_clear_message(kind):
    make, reason = BAD_FILES[kind]

    with pytest.raises(RepLensError) as raised:
        decode_image(make(), "upload.bin")

    assert "upload.bin" in str(raised.value)
    assert reason in str(raised.value)


# -- Helpers -----------------------------------------------------------------------


def test_to_gray_matches_pillow():
    pixels = distinct_rgb(9, 11)

    expected = np.asarray(Image.fromarray(pixels).convert("L"))

    assert np.abs(to_gray(pixels).astype(int) - expected).max() <= 1


def test_working_copy_downscales_with_notice():
    image = from_array(np.zeros((100, 300, 3), np.uint8), "wide")

    copy = working_copy(image, max_side=150)

    assert copy.pixels.shape == (50, 150, 3)
    assert "300 x 100" in copy.notices[-1]
    assert working_copy(image, max_side=300) is image
