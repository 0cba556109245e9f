"""Image quality against a reference: PSNR and SSIM.

SSIM follows Wang et al., "Image quality assessment: from error visibility to
structural similarity", IEEE TIP 13(4), 2004, with the settings that
scikit-image's ``structural_similarity`` uses by default: a uniform 7 x 7
window, K1 = 0.01, K2 = 0.03, sample covariance (divided by N - 1), and the
mean over the windows that lie wholly inside the image. For colour images the
SSIM is the mean of the per-channel values.
"""

from __future__ import annotations

import math

import numpy as np

from core.errors import RepLensError

# Side of the square SSIM window, in pixels.
SSIM_WINDOW = 7
# Stabilising constants of the SSIM formula, as fractions of the data range.
SSIM_K1 = 0.01
SSIM_K2 = 0.03

# Elements per chunk when summing squared errors: 8 MB of float64.
_CHUNK = 1 << 20


def psnr(reference: np.ndarray, test: np.ndarray, data_range: float = 255.0) -> float:
    """Compute the peak signal-to-noise ratio in dB, 10 log10(R^2 / MSE).

    Returns ``math.inf`` when the two arrays are equal.

    >>> psnr(np.array([[0, 0]]), np.array([[0, 255]]))
    3.010299956639812
    """
    _check_same_shape(reference, test)
    mse = _mean_squared_error(reference, test)
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range * data_range / mse)


def _mean_squared_error(reference: np.ndarray, test: np.ndarray) -> float:
    """Mean of (reference - test)^2 in float64, a chunk at a time to stay in the CPU cache."""
    flat_reference = reference.reshape(-1)
    flat_test = test.reshape(-1)
    total = 0.0
    for start in range(0, flat_reference.size, _CHUNK):
        difference = flat_reference[start : start + _CHUNK].astype(np.float64) - flat_test[start : start + _CHUNK]
        total += float(difference @ difference)
    return total / max(flat_reference.size, 1)


def ssim(
    reference: np.ndarray, test: np.ndarray, data_range: float = 255.0, channel_axis: int | None = None
) -> float:
    """Compute the mean structural similarity of two images.

    ``reference`` and ``test`` are (H, W) arrays, or arrays with one more axis
    of channels at ``channel_axis``. Both sides must be at least 7 pixels.

    Raises ``RepLensError`` when the shapes differ or the image is smaller
    than the 7 x 7 window.
    """
    _check_same_shape(reference, test)
    if channel_axis is None:
        return _ssim_2d(reference, test, data_range)
    references = np.moveaxis(reference, channel_axis, 0)
    tests = np.moveaxis(test, channel_axis, 0)
    return float(np.mean([_ssim_2d(a, b, data_range) for a, b in zip(references, tests)]))


def _ssim_2d(reference: np.ndarray, test: np.ndarray, data_range: float) -> float:
    if reference.ndim != 2:
        raise RepLensError(
            f"SSIM expects (H, W) matrices per channel but got shape {reference.shape}. "
            "Pass channel_axis for colour images."
        )
    height, width = reference.shape
    if min(height, width) < SSIM_WINDOW:
        raise RepLensError(
            f"SSIM needs an image of at least {SSIM_WINDOW} x {SSIM_WINDOW} pixels "
            f"but got {width} x {height}."
        )

    x = reference.astype(np.float64)
    y = test.astype(np.float64)
    mean_x = _window_means(x)
    mean_y = _window_means(y)

    # Sample (co)variances over each window: N / (N - 1) * (E[ab] - E[a] E[b]).
    count = SSIM_WINDOW * SSIM_WINDOW
    sample_correction = count / (count - 1)
    var_x = sample_correction * (_window_means(x * x) - mean_x * mean_x)
    var_y = sample_correction * (_window_means(y * y) - mean_y * mean_y)
    cov_xy = sample_correction * (_window_means(x * y) - mean_x * mean_y)

    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    numerator = (2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)
    denominator = (mean_x * mean_x + mean_y * mean_y + c1) * (var_x + var_y + c2)
    return float(np.mean(numerator / denominator))


def _window_means(values: np.ndarray) -> np.ndarray:
    """Mean of every 7 x 7 window wholly inside ``values``: (H - 6, W - 6)."""
    sums = _sliding_sums(_sliding_sums(values, axis=0), axis=1)
    return sums / (SSIM_WINDOW * SSIM_WINDOW)


def _sliding_sums(values: np.ndarray, axis: int) -> np.ndarray:
    """Sums of ``SSIM_WINDOW`` consecutive entries along ``axis``, from cumulative sums.

    With c the inclusive cumulative sum, window j sums to c[j + w - 1] - c[j - 1],
    and the first window is c[w - 1] itself.
    """
    cumulative = np.cumsum(values, axis=axis)
    moved = np.moveaxis(cumulative, axis, 0)
    sums = moved[SSIM_WINDOW - 1 :].copy()
    sums[1:] -= moved[: -SSIM_WINDOW]
    return np.moveaxis(sums, 0, axis)


def _check_same_shape(reference: np.ndarray, test: np.ndarray) -> None:
    if reference.shape != test.shape:
        raise RepLensError(
            f"Cannot compare images of different shapes: {reference.shape} and {test.shape}."
        )
