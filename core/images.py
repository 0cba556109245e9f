"""Decode image files of any Pillow mode into one RGB uint8 array.

Every view in RepLens works on the same representation: a ``LoadedImage``
whose ``pixels`` array has shape (height, width, 3) and dtype uint8. Decoding
applies EXIF orientation, composites transparency onto white, scales 16-bit
and float data into 8 bits, and rejects files that are not images or that
declare more pixels than ``MAX_PIXELS`` before any pixel is decoded.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import RepLensError

# Largest decoded image, in pixels (width * height). 64 MP covers every phone
# and most camera photos and stays around 200 MB as RGB uint8.
MAX_PIXELS = 64_000_000

# Maximum side length, in pixels, of the working copy that the interactive views use
# unless the user asks for full size.
WORKING_MAX_SIDE = 1024

UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff"]

# Modes whose values are integers in 0..65535 (16-bit PNG and TIFF).
_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N"}


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image and what decoding did to it."""

    name: str
    # (height, width, 3) uint8 RGB, also for grayscale sources.
    pixels: np.ndarray
    # Pillow mode of the file before conversion, such as "P", "I;16" or "CMYK".
    source_mode: str
    # True when the source had a single channel (1, L, I, F, I;16 ...).
    grayscale: bool
    # Messages about conversions the user should know of.
    notices: tuple[str, ...] = field(default_factory=tuple)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def gray(self) -> np.ndarray:
        """The (height, width) uint8 luminance, ITU-R BT.601 weights."""
        return to_gray(self.pixels)


def to_gray(pixels: np.ndarray) -> np.ndarray:
    """Convert an (H, W, 3) uint8 RGB array to (H, W) uint8 luminance.

    Uses the ITU-R BT.601 weights that Pillow's ``convert("L")`` uses:
    L = 0.299 R + 0.587 G + 0.114 B.
    """
    if pixels.ndim == 2:
        return pixels
    weights = np.array([0.299, 0.587, 0.114])
    luminance = pixels[..., :3].astype(np.float64) @ weights
    return np.clip(np.rint(luminance), 0, 255).astype(np.uint8)


def decode_image(data: bytes, name: str = "image") -> LoadedImage:
    """Decode the bytes of an image file into a ``LoadedImage``.

    Raises ``RepLensError`` naming the file and the reason when the bytes are
    empty, not an image, an SVG, truncated, or larger than ``MAX_PIXELS``.
    """
    if not data:
        raise RepLensError(f"{name}: the file is empty (0 bytes). Choose another file.")
    if _looks_like_svg(data):
        raise RepLensError(
            f"{name}: SVG is a vector format, not a pixel image. "
            "Export it as PNG and upload that."
        )

    image = _open_lazily(data, name)
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise RepLensError(
            f"{name}: the image is too large; its header declares {width} x {height} pixels "
            f"({width * height / 1e6:.0f} MP), more than the limit of "
            f"{MAX_PIXELS / 1e6:.0f} MP. Resize it before uploading."
        )

    notices = []
    try:
        # Counting frames walks the whole file for GIF, so it sits inside the
        # handler that reports corrupt data.
        frame_count = getattr(image, "n_frames", 1)
        if frame_count > 1:
            notices.append(f"{name} has {frame_count} frames; RepLens uses the first.")
            image.seek(0)
        image.load()
        image = ImageOps.exif_transpose(image)
        source_mode = image.mode
        pixels, grayscale = _to_rgb8(image, notices)
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise RepLensError(
            f"{name}: the image data is truncated or corrupt ({error}). "
            "Open it in an image editor and save it again."
        ) from error

    pixels = np.ascontiguousarray(pixels)
    pixels.setflags(write=False)
    return LoadedImage(name, pixels, source_mode, grayscale, tuple(notices))


def from_array(pixels: np.ndarray, name: str, grayscale: bool | None = None) -> LoadedImage:
    """Wrap an in-memory uint8 array, (H, W) or (H, W, 3), as a ``LoadedImage``."""
    array = np.asarray(pixels)
    if array.dtype != np.uint8:
        raise RepLensError(f"{name}: expected uint8 pixels but got {array.dtype}.")
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
        grayscale = True if grayscale is None else grayscale
    if array.ndim != 3 or array.shape[2] != 3:
        raise RepLensError(f"{name}: expected shape (H, W) or (H, W, 3) but got {array.shape}.")
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return LoadedImage(name, array, "RGB", bool(grayscale), ())


def working_copy(image: LoadedImage, max_side: int = WORKING_MAX_SIDE) -> LoadedImage:
    """Return ``image`` downscaled so that its longest side is ``max_side`` at most.

    The original is returned unchanged when it already fits. The copy carries
    a notice stating the original size.
    """
    longest = max(image.height, image.width)
    if longest <= max_side:
        return image
    scale = max_side / longest
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    resized = Image.fromarray(image.pixels).resize(size, Image.Resampling.LANCZOS)
    notice = (
        f"Shown at {size[0]} x {size[1]}, downscaled from the original "
        f"{image.width} x {image.height}."
    )
    pixels = np.asarray(resized)
    pixels.setflags(write=False)
    return LoadedImage(image.name, pixels, image.source_mode, image.grayscale, (*image.notices, notice))


def _looks_like_svg(data: bytes) -> bool:
    head = data[:512].lstrip().lower()
    return head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in data[:4096].lower())


def _open_lazily(data: bytes, name: str) -> Image.Image:
    """Open the file and read its header only; no pixel is decoded here."""
    with warnings.catch_warnings():
        # Pillow warns and then raises for bombs; our own limit applies first.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as error:
            # Pillow rejects headers above twice Image.MAX_IMAGE_PIXELS itself.
            raise RepLensError(
                f"{name}: the image is too large; its header declares more pixels than "
                f"the limit of {MAX_PIXELS / 1e6:.0f} MP ({error}). Resize it before uploading."
            ) from error
        except UnidentifiedImageError as error:
            raise RepLensError(
                f"{name}: not a recognised image file. "
                f"Upload one of: {', '.join(UPLOAD_TYPES)}."
            ) from error
        except OSError as error:
            raise RepLensError(f"{name}: the file could not be read ({error}).") from error


def _to_rgb8(image: Image.Image, notices: list[str]) -> tuple[np.ndarray, bool]:
    """Convert a loaded Pillow image to (H, W, 3) uint8 RGB and a grayscale flag."""
    mode = image.mode
    # A tRNS chunk on a non-palette image names one colour (or gray level)
    # that is fully transparent.
    key = image.info.get("transparency")
    if mode in _SIXTEEN_BIT_MODES or mode in {"I", "F"}:
        values = np.asarray(image)
        gray = _scale_to_uint8(values, mode, notices)
        if isinstance(key, (int, float)):
            gray = np.where(values == key, np.uint8(255), gray)
        return _gray_to_rgb(gray), True
    if mode in {"1", "L"}:
        if key is not None:
            return _composite_on_white(image.convert("RGBA")), True
        return _gray_to_rgb(np.asarray(image.convert("L"))), True
    if mode == "LA" or mode == "La":
        rgba = image.convert("RGBA")
        return _composite_on_white(rgba), True
    if mode == "P" or mode == "PA":
        has_alpha = "transparency" in image.info or mode == "PA"
        if has_alpha:
            return _composite_on_white(image.convert("RGBA")), False
        return np.asarray(image.convert("RGB")), False
    if mode in {"RGBA", "RGBa"} or (mode == "RGB" and key is not None):
        return _composite_on_white(image.convert("RGBA")), False
    # RGB, CMYK, YCbCr, LAB, HSV: Pillow's own conversions.
    return np.asarray(image.convert("RGB")), False


def _scale_to_uint8(values: np.ndarray, mode: str, notices: list[str]) -> np.ndarray:
    """Map 16-bit, 32-bit integer or float samples to 0..255 without clipping."""
    data = values.astype(np.float64)
    finite = np.isfinite(data)
    if not finite.all():
        lowest = float(data[finite].min()) if finite.any() else 0.0
        highest = float(data[finite].max()) if finite.any() else 0.0
        data = np.nan_to_num(data, nan=lowest, posinf=highest, neginf=lowest)
        notices.append("NaN and -inf samples are shown as the lowest finite value, +inf as the highest.")
    low, high = float(data.min()), float(data.max())
    if mode == "F":
        if 0.0 <= low and high <= 1.0:
            scaled = data * 255.0
            notices.append("Float samples in [0, 1] were scaled by 255.")
        else:
            scaled = _stretch(data, low, high)
            notices.append(f"Float samples in [{low:g}, {high:g}] were stretched to 0..255.")
    elif 0.0 <= low and high <= 65535.0:
        scaled = data / 257.0
        notices.append("16-bit samples (0..65535) were scaled to 8 bits by dividing by 257.")
    else:
        scaled = _stretch(data, low, high)
        notices.append(f"Integer samples in [{low:g}, {high:g}] were stretched to 0..255.")
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _stretch(data: np.ndarray, low: float, high: float) -> np.ndarray:
    if high == low:
        return np.zeros_like(data)
    return (data - low) * (255.0 / (high - low))


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))


def _composite_on_white(rgba: Image.Image) -> np.ndarray:
    """Blend an RGBA image over an opaque white background."""
    array = np.asarray(rgba).astype(np.float64)
    alpha = array[..., 3:4] / 255.0
    blended = array[..., :3] * alpha + 255.0 * (1.0 - alpha)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)
