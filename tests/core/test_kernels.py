"""Kernel tests: scipy.ndimage is the reference for every filter result."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from core.errors import RepLensError
from core.kernels import (
    BORDER_MODES,
    BOX_BLUR,
    LAPLACIAN,
    PRESETS,
    PREWITT_X,
    SOBEL_X,
    SOBEL_Y,
    apply_kernel,
    apply_preset,
    border_indices,
    flip_kernel,
    pixel_arithmetic,
    prepare_kernel,
    to_display,
)

RNG = np.random.default_rng(7)


def scipy_reference(image: np.ndarray, kernel: np.ndarray, operation: str, border: str) -> np.ndarray:
    """Filter channel by channel in float64 with scipy.ndimage."""
    function = ndi.convolve if operation == "convolution" else ndi.correlate
    mode = BORDER_MODES[border]
    values = np.asarray(image, dtype=np.float64)
    if values.ndim == 2:
        return function(values, kernel, mode=mode, cval=0.0)
    channels = [function(values[..., c], kernel, mode=mode, cval=0.0) for c in range(values.shape[2])]
    return np.stack(channels, axis=-1)


def gaussian(size: int, sigma: float) -> np.ndarray:
    offsets = np.arange(size) - size // 2
    profile = np.exp(-0.5 * (offsets / sigma) ** 2)
    return np.outer(profile, profile) / profile.sum() ** 2


KERNELS = {
    "dense 3x3": RNG.standard_normal((3, 3)),
    "dense 5x5": RNG.standard_normal((5, 5)),
    "dense 3x7": RNG.standard_normal((3, 7)),
    "dense 7x7": RNG.standard_normal((7, 7)),
    "dense 15x15": RNG.standard_normal((15, 15)),
    "sparse 7x7": np.where(RNG.random((7, 7)) < 0.3, RNG.standard_normal((7, 7)), 0.0),
    "gaussian 15x15 (rank 1)": gaussian(15, 2.5),
    "difference of gaussians 9x9 (rank 2)": gaussian(9, 1.0) - gaussian(9, 2.0),
}

IMAGES = {
    "rgb uint8 9x13": RNG.integers(0, 256, (9, 13, 3), dtype=np.uint8),
    "gray float 8x5": RNG.standard_normal((8, 5)).astype(np.float32),
    "rgb uint8 1x1": RNG.integers(0, 256, (1, 1, 3), dtype=np.uint8),
    "gray uint8 1x50": RNG.integers(0, 256, (1, 50), dtype=np.uint8),
    "two channels 4x3": RNG.integers(0, 256, (4, 3, 2), dtype=np.uint8),
}


@pytest.mark.parametrize("border", list(BORDER_MODES))
@pytest.mark.parametrize("operation", ["convolution", "correlation"])
@pytest.mark.parametrize("kernel_name", list(KERNELS))
@pytest.mark.parametrize("image_name", list(IMAGES))
def test_apply_kernel_matches_scipy(image_name, kernel_name, operation, border):
    image, kernel = IMAGES[image_name], KERNELS[kernel_name]

    result = apply_kernel(image, kernel, operation, border)

    expected = scipy_reference(image, kernel, operation, border)
    assert result.dtype == np.float32
    assert result.shape == image.shape
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(result, expected, rtol=0, atol=2e-5 * scale * np.abs(kernel).sum())


@pytest.mark.parametrize("border", list(BORDER_MODES))
@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_border_indices_match_numpy_pad(size, border):
    values = np.arange(size) + 10
    pad = 2 * size + 1  # wider than the image, so padding reflects more than once

    padded = np.pad(values, pad, mode={"reflect": "symmetric", "replicate": "edge", "wrap": "wrap",
                                       "constant": "constant"}[border])
    indices = border_indices(size, pad, border)

    gathered = np.where(indices >= 0, values[np.maximum(indices, 0)], 0)
    np.testing.assert_array_equal(gathered, padded)


# -- Convolution versus correlation -------------------------------------------------

ASYMMETRIC = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=np.float64)


@pytest.mark.parametrize("border", list(BORDER_MODES))
@pytest.mark.parametrize("kernel", [ASYMMETRIC, np.arange(25.0).reshape(5, 5), np.arange(15.0).reshape(3, 5)])
def test_impulse_reveals_the_operation(kernel, border):
    impulse = np.zeros((7, 9))
    impulse[3, 4] = 1.0
    kernel_height, kernel_width = kernel.shape
    window = np.s_[3 - kernel_height // 2 : 3 + kernel_height // 2 + 1, 4 - kernel_width // 2 : 4 + kernel_width // 2 + 1]

    convolved = apply_kernel(impulse, kernel, "convolution", border)
    correlated = apply_kernel(impulse, kernel, "correlation", border)

    # Low-rank kernels run as separable float32 passes: equal up to rounding.
    np.testing.assert_allclose(convolved[window], kernel, atol=1e-5)
    np.testing.assert_allclose(correlated[window], kernel[::-1, ::-1], atol=1e-5)
    assert convolved.sum() == pytest.approx(kernel.sum())


def test_impulse_3x3_values():
    impulse = np.zeros((7, 7))
    impulse[3, 3] = 1.0

    convolved = apply_kernel(impulse, ASYMMETRIC, "convolution")
    correlated = apply_kernel(impulse, ASYMMETRIC, "correlation")

    np.testing.assert_array_equal(convolved[2:5, 2:5], [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    np.testing.assert_array_equal(correlated[2:5, 2:5], [[9, 8, 7], [6, 5, 4], [3, 2, 1]])
    np.testing.assert_array_equal(flip_kernel(ASYMMETRIC), [[9, 8, 7], [6, 5, 4], [3, 2, 1]])


# -- Kernels that sum to zero or one -------------------------------------------------

ZERO_SUM_PRESETS = [name for name, preset in PRESETS.items()
                    if not preset.is_magnitude and abs(preset.kernels[0].sum()) < 1e-12]
UNIT_SUM_PRESETS = [name for name, preset in PRESETS.items()
                    if not preset.is_magnitude and abs(preset.kernels[0].sum() - 1) < 1e-12]


def test_preset_groups_are_not_empty():
    assert {"Laplacian", "Sobel x", "Outline"} <= set(ZERO_SUM_PRESETS)
    assert {"Box blur", "Gaussian blur 5x5", "Sharpen", "Identity"} <= set(UNIT_SUM_PRESETS)


@pytest.mark.parametrize("border", ["reflect", "replicate", "wrap"])
@pytest.mark.parametrize("name", ZERO_SUM_PRESETS + ["Sobel magnitude", "Scharr magnitude"])
def test_zero_sum_kernel_on_flat_image_is_zero(name, border):
    flat = np.full((5, 5), 100, np.uint8)

    result = apply_preset(flat, PRESETS[name], "convolution", border)

    assert np.all(np.isfinite(result))
    np.testing.assert_allclose(result, 0.0, atol=1e-4)


@pytest.mark.parametrize("border", ["reflect", "replicate", "wrap"])
@pytest.mark.parametrize("name", UNIT_SUM_PRESETS)
@pytest.mark.parametrize("value", [100, 200])
def test_unit_sum_kernel_keeps_flat_image(name, border, value):
    flat = np.full((5, 5, 3), value, np.uint8)

    result = apply_preset(flat, PRESETS[name], "convolution", border)

    assert result.shape == flat.shape
    np.testing.assert_allclose(result, value, atol=1e-3)
    np.testing.assert_array_equal(to_display(result, "clip"), flat)


def test_constant_border_darkens_edges_only():
    flat = np.full((5, 5), 200, np.uint8)

    result = apply_kernel(flat, BOX_BLUR, border="constant")

    assert result[2, 2] == pytest.approx(200)
    assert result[0, 0] == pytest.approx(200 * 4 / 9, rel=1e-6)


def test_normalise_divides_by_nonzero_sum():
    kernel, notices = prepare_kernel(np.ones((3, 3)), normalise=True)

    np.testing.assert_allclose(kernel, np.full((3, 3), 1 / 9))
    assert "sum, 9" in notices[0]
    flat = np.full((5, 5), 100, np.uint8)
    np.testing.assert_allclose(apply_kernel(flat, kernel), 100, atol=1e-4)


def test_normalise_skips_zero_sum():
    kernel, notices = prepare_kernel(LAPLACIAN, normalise=True)

    np.testing.assert_array_equal(kernel, LAPLACIAN)
    assert "sum to 0" in notices[0]


def test_all_zero_kernel_gives_zeros_and_notice():
    kernel, notices = prepare_kernel(np.zeros((5, 5)), normalise=True)

    result = apply_kernel(np.full((5, 5, 3), 100, np.uint8), kernel)

    np.testing.assert_array_equal(result, 0.0)
    assert "Every weight is 0" in notices[0]


@pytest.mark.parametrize("weights", [np.ones((2, 2)), np.ones((3,)), np.ones((3, 4))])
def test_even_or_flat_kernel_rejected(weights):
    with pytest.raises(RepLensError, match="odd sides"):
        prepare_kernel(weights, normalise=False)


def test_nan_weight_rejected():
    weights = np.ones((3, 3))
    weights[1, 1] = np.nan

    with pytest.raises(RepLensError, match="NaN"):
        prepare_kernel(weights, normalise=True)


def test_unknown_border_and_operation_rejected():
    image = np.zeros((3, 3))

    with pytest.raises(RepLensError, match="border mode"):
        apply_kernel(image, BOX_BLUR, border="mirror-ish")
    with pytest.raises(RepLensError, match="operation"):
        apply_kernel(image, BOX_BLUR, operation="dilation")


# -- Presets against independent filters -----------------------------------------------

def test_sobel_and_prewitt_match_scipy():
    image = RNG.integers(0, 256, (12, 10), dtype=np.uint8).astype(np.float64)

    np.testing.assert_allclose(apply_kernel(image, SOBEL_X, "correlation"), ndi.sobel(image, axis=1), atol=1e-3)
    np.testing.assert_allclose(apply_kernel(image, SOBEL_Y, "correlation"), ndi.sobel(image, axis=0), atol=1e-3)
    np.testing.assert_allclose(apply_kernel(image, PREWITT_X, "correlation"), ndi.prewitt(image, axis=1), atol=1e-3)
    np.testing.assert_allclose(apply_kernel(image, LAPLACIAN, "correlation"), ndi.laplace(image), atol=1e-3)


def test_sobel_magnitude_is_hypot():
    image = RNG.integers(0, 256, (12, 10), dtype=np.uint8).astype(np.float64)

    result = apply_preset(image, PRESETS["Sobel magnitude"], "correlation")

    expected = np.hypot(ndi.sobel(image, axis=1), ndi.sobel(image, axis=0))
    np.testing.assert_allclose(result, expected, atol=1e-3)


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_are_odd_and_finite(name):
    for kernel in PRESETS[name].kernels:
        assert kernel.ndim == 2
        assert kernel.shape[0] % 2 == 1
        assert kernel.shape[1] % 2 == 1
        assert np.all(np.isfinite(kernel))
        assert not kernel.flags.writeable


# -- The arithmetic at one pixel ---------------------------------------------------------

@pytest.mark.parametrize("border", list(BORDER_MODES))
@pytest.mark.parametrize("operation", ["convolution", "correlation"])
@pytest.mark.parametrize("y, x", [(0, 0), (3, 4), (8, 12), (0, 12)])
def test_pixel_arithmetic_equals_filter_output(y, x, operation, border):
    channel = IMAGES["rgb uint8 9x13"][..., 1]
    kernel = KERNELS["dense 5x5"]

    arithmetic = pixel_arithmetic(channel, kernel, y, x, operation, border)

    result = apply_kernel(channel, kernel, operation, border)
    assert arithmetic.value == pytest.approx(float(result[y, x]), abs=1e-3)
    np.testing.assert_allclose(arithmetic.products, arithmetic.neighbourhood * arithmetic.applied_kernel)
    expected_kernel = kernel[::-1, ::-1] if operation == "convolution" else kernel
    np.testing.assert_array_equal(arithmetic.applied_kernel, expected_kernel)


def test_pixel_arithmetic_neighbourhood_values():
    channel = np.arange(20, dtype=np.uint8).reshape(4, 5)

    arithmetic = pixel_arithmetic(channel, np.ones((3, 3)), 0, 0, border="replicate")

    np.testing.assert_array_equal(arithmetic.neighbourhood, [[0, 0, 1], [0, 0, 1], [5, 5, 6]])
    assert arithmetic.value == 18.0


def test_pixel_outside_image_rejected():
    with pytest.raises(RepLensError, match="outside"):
        pixel_arithmetic(np.zeros((4, 4)), BOX_BLUR, 4, 0)


# -- Display of signed responses ----------------------------------------------------------

def test_display_never_wraps():
    response = np.array([[-300.0, -10.0, 0.0, 10.4, 254.6, 300.0]])

    np.testing.assert_array_equal(to_display(response, "clip"), [[0, 0, 0, 10, 255, 255]])
    np.testing.assert_array_equal(to_display(response, "absolute"), [[255, 10, 0, 10, 255, 255]])
    # (r - min) * 255 / (max - min): -10 -> 123.25, 254.6 -> 235.7
    np.testing.assert_array_equal(to_display(response, "rescale"), [[0, 123, 128, 132, 236, 255]])


def test_display_rescale_of_flat_response_is_zero():
    np.testing.assert_array_equal(to_display(np.full((2, 2), 7.0), "rescale"), np.zeros((2, 2)))


def test_signed_edges_from_uint8_are_not_wrapped():
    step = np.zeros((5, 6), np.uint8)
    step[:, 3:] = 200

    response = apply_kernel(step, SOBEL_X, "convolution")

    # True convolution flips Sobel x, so a dark-to-bright step is negative.
    assert response.min() == pytest.approx(-800)
    assert to_display(response, "absolute").max() == 255
    assert to_display(response, "clip").max() == 0
