"""Convolution kernels: a preset library, normalisation and a fast 2-D filter.

``apply_kernel`` computes either the correlation

    out[y, x] = sum_{i, j} K[i, j] * img[y + i - a, x + j - b]

or the true convolution, which is the same sum with the kernel flipped in
both axes (K[::-1, ::-1]). Here ``a = kh // 2`` and ``b = kw // 2`` for a
kernel of odd shape (kh, kw). Pixels outside the image come from the border
mode. The result is float32, so signed responses such as edges stay signed
until the caller chooses how to display them (``to_display``).

The filter runs in Numba on row strips in parallel, by one of three paths.
A kernel of low rank (box and Gaussian blurs are rank 1) runs as a sum of
separable terms, each a vertical and a horizontal 1-D pass. A large dense
kernel computes two output rows per pass, so that each load serves both.
Any other kernel sums its non-zero taps.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numba
import numpy as np

from core.errors import RepLensError

logger = logging.getLogger(__name__)

OPERATIONS = ("convolution", "correlation")

# Border mode -> scipy.ndimage mode with the same padding:
# reflect   d c b a | a b c d | d c b a   (the edge pixel is repeated)
# replicate a a a a | a b c d | d d d d
# constant  0 0 0 0 | a b c d | 0 0 0 0
# wrap      a b c d | a b c d | a b c d
BORDER_MODES = {"reflect": "reflect", "replicate": "nearest", "constant": "constant", "wrap": "wrap"}
DEFAULT_BORDER = "reflect"

DISPLAY_MODES = ("clip", "absolute", "rescale")

CUSTOM_SIZES = (3, 5, 7)

# Singular values below this fraction of the largest are treated as 0 when
# a kernel is split into separable (rank-1) terms.
_RANK_TOLERANCE = 1e-6
# Output rows per parallel task. Each task also converts kh - 1 extra rows.
_STRIP_ROWS = 32
# Floats per chunk of an output row (16 KiB), small enough for L1 cache.
_CHUNK = 4096

# Numba's default "workqueue" threading layer fails when two threads launch
# parallel kernels at once, and Streamlit runs each session in its own thread.
_PARALLEL_LOCK = threading.Lock()


def _weights(rows: list[list[float]], scale: float = 1.0) -> np.ndarray:
    array = np.array(rows, dtype=np.float64) * scale
    array.setflags(write=False)
    return array


# -- Preset weights. Each is written as it is usually printed, that is as the
# -- correlation weights; the true convolution flips it.

# Leaves the image unchanged: the discrete delta.
IDENTITY = _weights([[0, 0, 0], [0, 1, 0], [0, 0, 0]])

# Mean of the 3x3 neighbourhood (moving-average filter).
BOX_BLUR = _weights([[1, 1, 1], [1, 1, 1], [1, 1, 1]], 1 / 9)

# Binomial weights (1, 2, 1) / 4 in each axis, the distribution of two fair
# coin flips: a discrete Gaussian with variance 0.5 per axis.
GAUSSIAN_BLUR_3 = _weights([[1, 2, 1], [2, 4, 2], [1, 2, 1]], 1 / 16)

# Binomial weights (1, 4, 6, 4, 1) / 16 in each axis (row 4 of Pascal's
# triangle): a discrete Gaussian with variance 4 / 4 = 1 per axis.
_BINOMIAL_5 = np.array([1, 4, 6, 4, 1], dtype=np.float64) / 16
GAUSSIAN_BLUR_5 = _weights(np.outer(_BINOMIAL_5, _BINOMIAL_5).tolist())

# The 5-point Laplacian stencil, the finite-difference approximation of
# d2/dx2 + d2/dy2. Its weights sum to 0, so flat regions give 0.
LAPLACIAN = _weights([[0, 1, 0], [1, -4, 1], [0, 1, 0]])

# Identity minus the 5-point Laplacian: adds the local contrast back.
SHARPEN = _weights([[0, -1, 0], [-1, 5, -1], [0, -1, 0]])

# Unsharp masking with amount 1: image + (image - blurred) = 2 * delta - G,
# where G is the 5x5 binomial Gaussian above.
_DELTA_5 = np.zeros((5, 5))
_DELTA_5[2, 2] = 1.0
UNSHARP_MASK = _weights((2 * _DELTA_5 - GAUSSIAN_BLUR_5).tolist())

# Sobel-Feldman operator (I. Sobel and G. Feldman, "A 3x3 isotropic gradient
# operator for image processing", Stanford AI Project, 1968): central
# difference in one axis times (1, 2, 1) smoothing in the other.
SOBEL_X = _weights([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
SOBEL_Y = _weights([[-1, -2, -1], [0, 0, 0], [1, 2, 1]])

# Prewitt operator (J. M. S. Prewitt, "Object enhancement and extraction",
# Picture Processing and Psychopictorics, 1970): central difference times
# (1, 1, 1) smoothing.
PREWITT_X = _weights([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]])
PREWITT_Y = _weights([[-1, -1, -1], [0, 0, 0], [1, 1, 1]])

# Scharr operator (H. Scharr, "Optimale Operatoren in der Digitalen
# Bildverarbeitung", PhD thesis, Heidelberg, 2000): smoothing (3, 10, 3),
# chosen for better rotational symmetry than Sobel's (1, 2, 1).
SCHARR_X = _weights([[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]])
SCHARR_Y = _weights([[-3, -10, -3], [0, 0, 0], [3, 10, 3]])

# Diagonal derivative (bottom right minus top left) plus the identity, so
# that flat regions keep their value and edges look raised.
EMBOSS = _weights([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])

# 9 * delta minus the 3x3 box of ones: the negated 8-neighbour Laplacian.
# Its weights sum to 0, so only edges remain.
OUTLINE = _weights([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]])


@dataclass(frozen=True)
class Preset:
    """A named kernel, or a pair of derivative kernels combined as a gradient magnitude."""

    name: str
    # One kernel, or (x kernel, y kernel) for sqrt(gx**2 + gy**2).
    kernels: tuple[np.ndarray, ...]
    # Effect of the weights and their source, one sentence.
    description: str

    @property
    def is_magnitude(self) -> bool:
        return len(self.kernels) == 2


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset("Identity", (IDENTITY,), "The discrete delta: the output equals the input."),
        Preset("Box blur", (BOX_BLUR,), "Mean of the 3x3 neighbourhood."),
        Preset("Gaussian blur 3x3", (GAUSSIAN_BLUR_3,), "Binomial (1, 2, 1)/4 in each axis, variance 0.5."),
        Preset("Gaussian blur 5x5", (GAUSSIAN_BLUR_5,), "Binomial (1, 4, 6, 4, 1)/16 in each axis, variance 1."),
        Preset("Sharpen", (SHARPEN,), "Identity minus the 5-point Laplacian."),
        Preset("Unsharp mask", (UNSHARP_MASK,), "2 x identity minus the 5x5 Gaussian: image + (image - blur)."),
        Preset("Laplacian", (LAPLACIAN,), "5-point stencil of d2/dx2 + d2/dy2; the weights sum to 0."),
        Preset("Sobel x", (SOBEL_X,), "Sobel-Feldman (1968) horizontal derivative."),
        Preset("Sobel y", (SOBEL_Y,), "Sobel-Feldman (1968) vertical derivative."),
        Preset("Sobel magnitude", (SOBEL_X, SOBEL_Y), "sqrt(Gx^2 + Gy^2) of the two Sobel responses."),
        Preset("Prewitt x", (PREWITT_X,), "Prewitt (1970) horizontal derivative."),
        Preset("Prewitt y", (PREWITT_Y,), "Prewitt (1970) vertical derivative."),
        Preset("Prewitt magnitude", (PREWITT_X, PREWITT_Y), "sqrt(Gx^2 + Gy^2) of the two Prewitt responses."),
        Preset("Scharr x", (SCHARR_X,), "Scharr (2000) horizontal derivative."),
        Preset("Scharr y", (SCHARR_Y,), "Scharr (2000) vertical derivative."),
        Preset("Scharr magnitude", (SCHARR_X, SCHARR_Y), "sqrt(Gx^2 + Gy^2) of the two Scharr responses."),
        Preset("Emboss", (EMBOSS,), "Diagonal derivative plus identity."),
        Preset("Outline", (OUTLINE,), "Negated 8-neighbour Laplacian; the weights sum to 0."),
    )
}


def prepare_kernel(weights: np.ndarray, normalise: bool) -> tuple[np.ndarray, list[str]]:
    """Validate a kernel and divide it by its sum when asked and the sum is not 0.

    Returns the float64 kernel and notices for the user: that normalisation
    was skipped because the weights sum to 0, or that every weight is 0.

    >>> float(prepare_kernel(np.ones((3, 3)), normalise=True)[0][0, 0])
    0.1111111111111111
    """
    kernel = np.array(weights, dtype=np.float64)
    if kernel.ndim != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise RepLensError(f"Expected a 2-D kernel with odd sides, such as 3x3, but got shape {kernel.shape}.")
    if not np.all(np.isfinite(kernel)):
        raise RepLensError("The kernel contains an empty, NaN or infinite weight. Enter a number in every cell.")

    notices = []
    total = float(kernel.sum())
    if not np.any(kernel):
        notices.append("Every weight is 0, so the output is 0 everywhere.")
    elif normalise and np.isclose(total, 0.0, atol=1e-12):
        notices.append("The weights sum to 0, so they are not normalised (division by 0).")
    elif normalise and total != 1.0:
        kernel = kernel / total
        notices.append(f"The weights were divided by their sum, {total:g}.")
    return kernel, notices


def flip_kernel(kernel: np.ndarray) -> np.ndarray:
    """Return the kernel rotated by 180 degrees, as true convolution applies it."""
    return np.ascontiguousarray(np.asarray(kernel)[::-1, ::-1])


def apply_kernel(
    image: np.ndarray,
    kernel: np.ndarray,
    operation: str = "convolution",
    border: str = DEFAULT_BORDER,
) -> np.ndarray:
    """Filter an (H, W) or (H, W, C) image with a 2-D kernel, channel by channel.

    Returns float32 of the image's shape. ``operation`` is "convolution"
    (kernel flipped) or "correlation"; ``border`` is one of ``BORDER_MODES``.
    The result equals ``scipy.ndimage.convolve`` / ``correlate`` with the
    matching mode and cval 0, up to float32 rounding.
    """
    pixels = _as_hwc(image)
    weights = _check_kernel(kernel)
    if operation not in OPERATIONS:
        raise RepLensError(f"Unknown operation {operation!r}. Choose one of: {', '.join(OPERATIONS)}.")
    if operation == "convolution":
        weights = flip_kernel(weights)

    kernel_height, kernel_width = weights.shape
    height, width, _ = pixels.shape
    row_index = border_indices(height, kernel_height // 2, border)
    col_index = border_indices(width, kernel_width // 2, border)
    factors = _separable_terms(weights)
    pair_weights = _dense_pair_weights(weights) if factors is None else None
    # NumPy allocates the output because it requests transparent huge pages
    # (madvise) for large arrays, so the first write to a 12-MP result causes
    # far fewer page faults than memory from Numba's allocator.
    result = np.empty(pixels.shape, dtype=np.float32)

    if factors is not None:
        path = "separable"
    elif pair_weights is not None:
        path = "dense pairs"
    else:
        path = "sparse taps"
    logger.debug("filtering %s with a %dx%d kernel by %s", pixels.shape, kernel_height, kernel_width, path)
    with _PARALLEL_LOCK:
        if factors is not None:
            columns, rows = factors
            _correlate_low_rank(pixels, columns, rows, row_index, col_index, result, _STRIP_ROWS, _CHUNK)
        elif pair_weights is not None:
            first, second = pair_weights
            _correlate_dense_pairs(
                pixels, first, second, kernel_height, row_index, col_index, result, _STRIP_ROWS, _CHUNK,
            )
        else:
            tap_rows, tap_columns = np.nonzero(weights)
            tap_weights = weights[tap_rows, tap_columns].astype(np.float32)
            tap_offsets = tap_columns * pixels.shape[2]
            _correlate_direct(
                pixels, tap_rows, tap_offsets, tap_weights, kernel_height,
                row_index, col_index, result, _STRIP_ROWS, _CHUNK,
            )
    return result if np.ndim(image) == 3 else result[..., 0]


def gradient_magnitude(
    image: np.ndarray,
    kernel_x: np.ndarray,
    kernel_y: np.ndarray,
    operation: str = "convolution",
    border: str = DEFAULT_BORDER,
) -> np.ndarray:
    """Compute sqrt(gx**2 + gy**2) of two derivative responses, as float32."""
    gx = apply_kernel(image, kernel_x, operation, border)
    gy = apply_kernel(image, kernel_y, operation, border)
    return np.hypot(gx, gy, out=gx)


def apply_preset(
    image: np.ndarray, preset: Preset, operation: str = "convolution", border: str = DEFAULT_BORDER
) -> np.ndarray:
    """Filter ``image`` with a preset: one kernel, or the magnitude of a derivative pair."""
    if preset.is_magnitude:
        return gradient_magnitude(image, *preset.kernels, operation=operation, border=border)
    return apply_kernel(image, preset.kernels[0], operation, border)


@dataclass(frozen=True)
class PixelArithmetic:
    """The sum that produces one output value: neighbourhood times kernel."""

    # (kh, kw) input values around the pixel, borders filled by the border mode.
    neighbourhood: np.ndarray
    # (kh, kw) weights as multiplied: flipped for convolution.
    applied_kernel: np.ndarray
    # neighbourhood * applied_kernel, element by element.
    products: np.ndarray
    # Sum of the products: the output value at the pixel.
    value: float


def pixel_arithmetic(
    channel: np.ndarray,
    kernel: np.ndarray,
    y: int,
    x: int,
    operation: str = "convolution",
    border: str = DEFAULT_BORDER,
) -> PixelArithmetic:
    """Spell out the weighted sum at pixel (y, x) of an (H, W) channel.

    >>> pixel_arithmetic(np.eye(3), np.ones((3, 3)), 1, 1).value
    3.0
    """
    values = np.asarray(channel)
    if values.ndim != 2:
        raise RepLensError(f"Expected one (H, W) channel but got shape {values.shape}.")
    height, width = values.shape
    if not (0 <= y < height and 0 <= x < width):
        raise RepLensError(f"Pixel (row {y}, column {x}) is outside the {height} x {width} image.")
    weights = _check_kernel(kernel)
    applied = flip_kernel(weights) if operation == "convolution" else weights

    neighbourhood = neighbourhood_of(values, y, x, weights.shape, border)
    products = neighbourhood * applied
    # Sum in float32, the precision of apply_kernel.
    value = float(np.float32(products.astype(np.float32).sum(dtype=np.float32)))
    return PixelArithmetic(neighbourhood, applied, products, value)


def neighbourhood_of(
    channel: np.ndarray, y: int, x: int, shape: tuple[int, int], border: str = DEFAULT_BORDER
) -> np.ndarray:
    """Return the (kh, kw) float64 window centred on (y, x), padded by the border mode."""
    kernel_height, kernel_width = shape
    height, width = channel.shape
    rows = border_indices(height, kernel_height // 2, border)[y : y + kernel_height]
    cols = border_indices(width, kernel_width // 2, border)[x : x + kernel_width]
    window = np.zeros((kernel_height, kernel_width), dtype=np.float64)
    inside = (rows[:, None] >= 0) & (cols[None, :] >= 0)
    window[inside] = np.asarray(channel, dtype=np.float64)[np.ix_(np.maximum(rows, 0), np.maximum(cols, 0))][inside]
    return window


def border_indices(size: int, pad: int, border: str) -> np.ndarray:
    """Map padded positions -pad .. size + pad - 1 to source indices; -1 means zero.

    >>> border_indices(3, 2, "reflect").tolist()
    [1, 0, 0, 1, 2, 2, 1]
    """
    if border not in BORDER_MODES:
        raise RepLensError(f"Unknown border mode {border!r}. Choose one of: {', '.join(BORDER_MODES)}.")
    positions = np.arange(-pad, size + pad, dtype=np.int64)
    if border == "reflect":
        period = positions % (2 * size)
        return np.where(period < size, period, 2 * size - 1 - period)
    if border == "replicate":
        return np.clip(positions, 0, size - 1)
    if border == "wrap":
        return positions % size
    return np.where((positions >= 0) & (positions < size), positions, -1)


def to_display(response: np.ndarray, mode: str) -> np.ndarray:
    """Map a float response to uint8 for display, never wrapping around 256.

    ``clip`` rounds and clips to 0..255; ``absolute`` shows abs(response),
    clipped; ``rescale`` maps min..max linearly onto 0..255.
    """
    values = np.asarray(response, dtype=np.float32)
    if mode == "absolute":
        values = np.abs(values)
    elif mode == "rescale":
        low, high = float(values.min()), float(values.max())
        if high > low:
            values = (values - low) * (255.0 / (high - low))
        else:
            values = np.zeros_like(values)
    elif mode != "clip":
        raise RepLensError(f"Unknown display mode {mode!r}. Choose one of: {', '.join(DISPLAY_MODES)}.")
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _as_hwc(image: np.ndarray) -> np.ndarray:
    pixels = np.asarray(image)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise RepLensError(f"Expected an (H, W) or (H, W, C) image but got shape {pixels.shape}.")
    if pixels.dtype != np.uint8:
        pixels = pixels.astype(np.float32)
    return np.ascontiguousarray(pixels)


def _check_kernel(kernel: np.ndarray) -> np.ndarray:
    weights = np.asarray(kernel, dtype=np.float64)
    if weights.ndim != 2 or weights.shape[0] % 2 == 0 or weights.shape[1] % 2 == 0:
        raise RepLensError(f"Expected a 2-D kernel with odd sides, such as 3x3, but got shape {weights.shape}.")
    if not np.all(np.isfinite(weights)):
        raise RepLensError("The kernel contains a NaN or infinite weight.")
    return weights


def _separable_terms(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Split the kernel into rank-1 terms, sum_t outer(columns[t], rows[t]), when cheaper.

    Returns float32 (rank, kh) and (rank, kw) factors from the SVD, or None
    when the direct sum over the non-zero taps needs fewer multiplications.
    """
    if not np.any(kernel):
        return None
    u, s, vt = np.linalg.svd(kernel)
    rank = int(np.sum(s > _RANK_TOLERANCE * s[0]))
    kernel_height, kernel_width = kernel.shape
    if rank * (kernel_height + kernel_width) >= np.count_nonzero(kernel):
        return None
    scale = np.sqrt(s[:rank])
    columns = (u[:, :rank] * scale).T
    rows = vt[:rank] * scale[:, None]
    return np.ascontiguousarray(columns, dtype=np.float32), np.ascontiguousarray(rows, dtype=np.float32)


def _dense_pair_weights(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Lay out a dense kernel for ``_correlate_dense_pairs``, or return None when sparse taps are cheaper.

    The pair path computes kw * R products per output value, where R is kh + 1
    rounded up to a multiple of 8. Each product costs about 0.75 memory
    accesses there and 1.25 in the tap path, which computes one product per
    non-zero weight.
    """
    kernel_height, kernel_width = kernel.shape
    padded_rows = -(-(kernel_height + 1) // 8) * 8
    if 0.75 * kernel_width * padded_rows >= np.count_nonzero(kernel):
        return None
    first = np.zeros((kernel_width, padded_rows), dtype=np.float32)
    second = np.zeros((kernel_width, padded_rows), dtype=np.float32)
    first[:, :kernel_height] = kernel.T
    second[:, 1 : kernel_height + 1] = kernel.T
    return first, second


# -- Numba kernels. Arrays are (H, W, C) and rows are processed as flat
# -- W * C vectors, so the inner loops are contiguous and vectorise.


@numba.njit(cache=True, nogil=True)
def _fill_padded_rows(image, y0, rows, row_index, col_index, buffer):  # pragma: no cover - compiled
    """Write padded float32 rows row_index[y0 : y0 + rows] of ``image`` into ``buffer``."""
    height, width, channels = image.shape
    pad_left = (col_index.shape[0] - width) // 2
    padded_width = col_index.shape[0]
    for r in range(rows):
        source = row_index[y0 + r]
        if source < 0:
            buffer[r, :] = 0.0
            continue
        line = image[source].reshape(width * channels)
        target = buffer[r, pad_left * channels : (pad_left + width) * channels]
        for n in range(width * channels):
            target[n] = line[n]
        for xp in range(padded_width):
            if pad_left <= xp < pad_left + width:
                continue
            source_x = col_index[xp]
            for c in range(channels):
                buffer[r, xp * channels + c] = 0.0 if source_x < 0 else image[source, source_x, c]


@numba.njit(cache=True, nogil=True)
def _axpy(target, line, weight, offset, assign):  # pragma: no cover - compiled
    """target = (0 if assign else target) + weight * line[offset : offset + len(target)]."""
    source = line[offset : offset + target.shape[0]]
    if assign:
        for n in range(target.shape[0]):
            target[n] = weight * source[n]
    else:
        for n in range(target.shape[0]):
            target[n] += weight * source[n]


@numba.njit(cache=True, nogil=True)
def _madd4(target, s0, s1, s2, s3, w0, w1, w2, w3, assign):  # pragma: no cover - compiled
    """target = (0 if assign else target) + w0 * s0 + w1 * s1 + w2 * s2 + w3 * s3."""
    if assign:
        for n in range(target.shape[0]):
            target[n] = w0 * s0[n] + w1 * s1[n] + w2 * s2[n] + w3 * s3[n]
    else:
        for n in range(target.shape[0]):
            target[n] += w0 * s0[n] + w1 * s1[n] + w2 * s2[n] + w3 * s3[n]


@numba.njit(cache=True, nogil=True)
def _madd8(target, sources, weights, assign):  # pragma: no cover - compiled
    """target = (0 if assign else target) + sum_k weights[k] * sources[k] for 8 sources."""
    s0, s1, s2, s3, s4, s5, s6, s7 = sources
    w0, w1, w2, w3, w4, w5, w6, w7 = weights
    if assign:
        for n in range(target.shape[0]):
            target[n] = (w0 * s0[n] + w1 * s1[n] + w2 * s2[n] + w3 * s3[n]
                         + w4 * s4[n] + w5 * s5[n] + w6 * s6[n] + w7 * s7[n])
    else:
        for n in range(target.shape[0]):
            target[n] += (w0 * s0[n] + w1 * s1[n] + w2 * s2[n] + w3 * s3[n]
                          + w4 * s4[n] + w5 * s5[n] + w6 * s6[n] + w7 * s7[n])


@numba.njit(parallel=True, cache=True)
def _correlate_direct(image, tap_rows, tap_offsets, tap_weights, kernel_height, row_index, col_index, out, strip_rows, chunk):  # pragma: no cover - compiled
    """Sum the non-zero taps: out[y, n] = sum_t tap_weights[t] * padded[y + tap_rows[t], n + tap_offsets[t]]."""
    height, width, channels = image.shape
    span = width * channels
    taps = tap_weights.shape[0]
    flat_out = out.reshape(height, span)
    strips = (height + strip_rows - 1) // strip_rows
    for strip in numba.prange(strips):
        y0 = strip * strip_rows
        y1 = min(height, y0 + strip_rows)
        rows = y1 - y0 + kernel_height - 1
        buffer = np.empty((rows, col_index.shape[0] * channels), dtype=np.float32)
        _fill_padded_rows(image, y0, rows, row_index, col_index, buffer)
        for y in range(y0, y1):
            # Chunks of the output row stay in L1 cache across all taps, and
            # summing 8 (then 4) taps per pass cuts the loads and stores of the
            # chunk by that factor.
            for n0 in range(0, span, chunk):
                target = flat_out[y, n0 : min(span, n0 + chunk)]
                m = target.shape[0]
                if taps == 0:
                    target[:] = 0.0
                t = 0
                while t + 8 <= taps:
                    base = y - y0
                    _madd8(
                        target,
                        (
                            buffer[base + tap_rows[t], n0 + tap_offsets[t] : n0 + tap_offsets[t] + m],
                            buffer[base + tap_rows[t + 1], n0 + tap_offsets[t + 1] : n0 + tap_offsets[t + 1] + m],
                            buffer[base + tap_rows[t + 2], n0 + tap_offsets[t + 2] : n0 + tap_offsets[t + 2] + m],
                            buffer[base + tap_rows[t + 3], n0 + tap_offsets[t + 3] : n0 + tap_offsets[t + 3] + m],
                            buffer[base + tap_rows[t + 4], n0 + tap_offsets[t + 4] : n0 + tap_offsets[t + 4] + m],
                            buffer[base + tap_rows[t + 5], n0 + tap_offsets[t + 5] : n0 + tap_offsets[t + 5] + m],
                            buffer[base + tap_rows[t + 6], n0 + tap_offsets[t + 6] : n0 + tap_offsets[t + 6] + m],
                            buffer[base + tap_rows[t + 7], n0 + tap_offsets[t + 7] : n0 + tap_offsets[t + 7] + m],
                        ),
                        (
                            tap_weights[t], tap_weights[t + 1], tap_weights[t + 2], tap_weights[t + 3],
                            tap_weights[t + 4], tap_weights[t + 5], tap_weights[t + 6], tap_weights[t + 7],
                        ),
                        t == 0,
                    )
                    t += 8
                while t + 4 <= taps:
                    s0 = buffer[y - y0 + tap_rows[t], n0 + tap_offsets[t] : n0 + tap_offsets[t] + m]
                    s1 = buffer[y - y0 + tap_rows[t + 1], n0 + tap_offsets[t + 1] : n0 + tap_offsets[t + 1] + m]
                    s2 = buffer[y - y0 + tap_rows[t + 2], n0 + tap_offsets[t + 2] : n0 + tap_offsets[t + 2] + m]
                    s3 = buffer[y - y0 + tap_rows[t + 3], n0 + tap_offsets[t + 3] : n0 + tap_offsets[t + 3] + m]
                    _madd4(target, s0, s1, s2, s3, tap_weights[t], tap_weights[t + 1],
                           tap_weights[t + 2], tap_weights[t + 3], t == 0)
                    t += 4
                while t < taps:
                    _axpy(target, buffer[y - y0 + tap_rows[t]], tap_weights[t], n0 + tap_offsets[t], t == 0)
                    t += 1


@numba.njit(parallel=True, cache=True)
def _correlate_low_rank(image, columns, rows_1d, row_index, col_index, out, strip_rows, chunk):  # pragma: no cover - compiled
    """Sum over t of a vertical pass with columns[t] followed by a horizontal pass with rows_1d[t]."""
    height, width, channels = image.shape
    rank, kernel_height = columns.shape
    kernel_width = rows_1d.shape[1]
    span = width * channels
    halo = (kernel_width - 1) * channels
    flat_out = out.reshape(height, span)
    strips = (height + strip_rows - 1) // strip_rows
    for strip in numba.prange(strips):
        y0 = strip * strip_rows
        y1 = min(height, y0 + strip_rows)
        rows = y1 - y0 + kernel_height - 1
        buffer = np.empty((rows, col_index.shape[0] * channels), dtype=np.float32)
        _fill_padded_rows(image, y0, rows, row_index, col_index, buffer)
        vertical_buffer = np.empty(chunk + halo, dtype=np.float32)
        for y in range(y0, y1):
            for n0 in range(0, span, chunk):
                target = flat_out[y, n0 : min(span, n0 + chunk)]
                vertical = vertical_buffer[: target.shape[0] + halo]
                for t in range(rank):
                    for i in range(kernel_height):
                        _axpy(vertical, buffer[y - y0 + i], columns[t, i], n0, i == 0)
                    for j in range(kernel_width):
                        _axpy(target, vertical, rows_1d[t, j], j * channels, t == 0 and j == 0)


@numba.njit(cache=True, nogil=True)
def _pair8(first, second, sources, weights_first, weights_second, assign):  # pragma: no cover - compiled
    """Add 8 weighted source rows to two output rows at once, so each load serves two sums."""
    s0, s1, s2, s3, s4, s5, s6, s7 = sources
    a0, a1, a2, a3, a4, a5, a6, a7 = weights_first
    b0, b1, b2, b3, b4, b5, b6, b7 = weights_second
    for n in range(first.shape[0]):
        v0, v1, v2, v3 = s0[n], s1[n], s2[n], s3[n]
        v4, v5, v6, v7 = s4[n], s5[n], s6[n], s7[n]
        sum_first = a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3 + a4 * v4 + a5 * v5 + a6 * v6 + a7 * v7
        sum_second = b0 * v0 + b1 * v1 + b2 * v2 + b3 * v3 + b4 * v4 + b5 * v5 + b6 * v6 + b7 * v7
        if assign:
            first[n] = sum_first
            second[n] = sum_second
        else:
            first[n] += sum_first
            second[n] += sum_second


@numba.njit(parallel=True, cache=True)
def _correlate_dense_pairs(image, weights_first, weights_second, kernel_height, row_index, col_index, out, strip_rows, chunk):  # pragma: no cover - compiled
    """Correlate two output rows per pass.

    weights_first[j, r] is the weight of padded row y + r, column offset j,
    for output row y, and weights_second[j, r] the same for row y + 1. Both
    are zero-padded to a multiple of 8 rows.
    """
    height, width, channels = image.shape
    kernel_width, padded_rows = weights_first.shape
    span = width * channels
    flat_out = out.reshape(height, span)
    strips = (height + strip_rows - 1) // strip_rows
    for strip in numba.prange(strips):
        y0 = strip * strip_rows
        y1 = min(height, y0 + strip_rows)
        rows = y1 - y0 + kernel_height - 1
        # Extra zero rows let every pass read 8 rows and a lone last row pair up.
        buffer = np.zeros((rows + padded_rows, col_index.shape[0] * channels), dtype=np.float32)
        _fill_padded_rows(image, y0, rows, row_index, col_index, buffer)
        scratch = np.empty(min(chunk, span), dtype=np.float32)
        for y in range(y0, y1, 2):
            base = y - y0
            for n0 in range(0, span, chunk):
                first = flat_out[y, n0 : min(span, n0 + chunk)]
                m = first.shape[0]
                second = flat_out[y + 1, n0 : n0 + m] if y + 1 < y1 else scratch[:m]
                for j in range(kernel_width):
                    start = n0 + j * channels
                    for r in range(0, padded_rows, 8):
                        _pair8(
                            first,
                            second,
                            (
                                buffer[base + r, start : start + m],
                                buffer[base + r + 1, start : start + m],
                                buffer[base + r + 2, start : start + m],
                                buffer[base + r + 3, start : start + m],
                                buffer[base + r + 4, start : start + m],
                                buffer[base + r + 5, start : start + m],
                                buffer[base + r + 6, start : start + m],
                                buffer[base + r + 7, start : start + m],
                            ),
                            (
                                weights_first[j, r], weights_first[j, r + 1], weights_first[j, r + 2],
                                weights_first[j, r + 3], weights_first[j, r + 4], weights_first[j, r + 5],
                                weights_first[j, r + 6], weights_first[j, r + 7],
                            ),
                            (
                                weights_second[j, r], weights_second[j, r + 1], weights_second[j, r + 2],
                                weights_second[j, r + 3], weights_second[j, r + 4], weights_second[j, r + 5],
                                weights_second[j, r + 6], weights_second[j, r + 7],
                            ),
                            j == 0 and r == 0,
                        )
