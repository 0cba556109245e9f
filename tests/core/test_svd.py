"""SVD of images: exact rebuilds, Eckart-Young errors, display rounding and the colour axis."""

import numpy as np
import pytest
import skimage.data
from skimage.measure import block_reduce
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from core.errors import RepLensError
from core.images import to_gray
from core.svd import (
    QUICK_SKETCH,
    WIDE_SKETCH,
    background_sketches,
    block_mean_image,
    channel_matrices,
    compression_ratio,
    cumulative_energy,
    curve_ranks,
    decompose_exact,
    decompose_sketch,
    decompose_truncated,
    display_factor,
    display_factors,
    frobenius_errors,
    quality,
    quality_curve,
    rank_one_layers,
    rebuild,
    reconstruct,
    reconstruct_display,
    reference_image,
    signed_to_display,
    spectrum_psnr,
    to_display,
)


@pytest.fixture(scope="module")
def coffee_crop() -> np.ndarray:
    """A real (60, 80, 3) uint8 photo crop."""
    return np.ascontiguousarray(skimage.data.coffee()[150:210, 200:280])


@pytest.fixture(scope="module")
def chelsea() -> np.ndarray:
    """A real (300, 451, 3) uint8 photo."""
    return skimage.data.chelsea()


@pytest.mark.parametrize("mode", ["RGB", "Grayscale"])
def test_full_rank_rebuilds_image(coffee_crop, mode):
    svd = decompose_exact(channel_matrices(coffee_crop, mode))
    assert svd.full_rank == 60
    assert svd.computed_rank == 60
    rebuilt = reconstruct(svd, svd.full_rank)
    np.testing.assert_array_equal(rebuilt, reference_image(coffee_crop, mode))


@pytest.mark.parametrize("mode", ["RGB", "Grayscale"])
def test_frobenius_error_equals_discarded_values(coffee_crop, mode):
    matrices = channel_matrices(coffee_crop, mode)
    svd = decompose_exact(matrices)
    # Reference singular values from LAPACK through NumPy, in float64.
    reference_s = np.linalg.svd(matrices.astype(np.float64), compute_uv=False)  # (C, 60)
    errors = frobenius_errors(svd)
    for k in (1, 5, 30, 59, 60):
        discarded = np.sqrt(np.sum(reference_s[:, k:] ** 2))
        measured = np.linalg.norm(matrices.astype(np.float64) - rebuild(svd, k))
        assert measured == pytest.approx(discarded, rel=1e-4, abs=0.05)
        assert errors[k - 1] == pytest.approx(discarded, rel=1e-4, abs=1e-9)


def test_truncated_frobenius_error_matches_rebuild(chelsea):
    matrices = channel_matrices(chelsea, "RGB")
    svd = decompose_truncated(matrices)
    errors = frobenius_errors(svd)
    for k in (1, 8, svd.computed_rank):
        measured = np.linalg.norm(matrices.astype(np.float64) - rebuild(svd, k))
        assert errors[k - 1] == pytest.approx(measured, rel=1e-4)


def test_rank_one_of_2x2_rounds_then_clips():
    pixels = np.array([[0, 255], [255, 255]], dtype=np.uint8)
    svd = decompose_exact(pixels[None].astype(np.float32))
    np.testing.assert_array_equal(reconstruct(svd, 1), [[114, 185], [185, 255]])
    np.testing.assert_array_equal(reconstruct(svd, 2), pixels)


def test_display_never_wraps_out_of_range_values():
    values = np.array([[[-300.0, -0.6, -0.4, 0.5, 127.5, 254.5, 255.4, 255.6, 300.0, 1000.0]]])
    expected = [[0, 0, 0, 0, 128, 254, 255, 255, 255, 255]]
    np.testing.assert_array_equal(to_display(values), expected)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_reconstruct_clips_real_overshoot(coffee_crop, k):
    matrices = channel_matrices(coffee_crop, "RGB")
    svd = decompose_exact(matrices)
    # Reference rank-k rebuild from NumPy's float64 SVD.
    u, s, vt = np.linalg.svd(matrices.astype(np.float64), full_matrices=False)
    float_rebuild = np.einsum("chk,ck,ckw->hwc", u[..., :k], s[:, :k], vt[:, :k])
    shown = reconstruct(svd, k)
    assert shown.dtype == np.uint8
    np.testing.assert_array_equal(shown[float_rebuild > 255.5], 255)
    np.testing.assert_array_equal(shown[float_rebuild < -0.5], 0)
    expected = np.clip(np.rint(float_rebuild), 0, 255)
    assert np.max(np.abs(shown - expected)) <= 1


def test_colour_channels_decompose_separately():
    ramp = np.array([1, 2, 3, 4], dtype=np.float64)
    ones = np.ones(4)
    red = 20 * np.outer(ramp, ones)
    green = 20 * np.outer(ones, ramp[::-1])
    blue = np.full((4, 4), 100.0)
    pixels = np.stack([red, green, blue], axis=-1).astype(np.uint8)  # (4, 4, 3)

    matrices = channel_matrices(pixels, "RGB")
    assert matrices.shape == (3, 4, 4)
    svd = decompose_exact(matrices)
    assert svd.full_rank == 4
    assert svd.computed_rank == 4
    assert svd.s.shape == (3, 4)
    np.testing.assert_array_equal(reconstruct(svd, 1), pixels)
    np.testing.assert_allclose(svd.s[:, 1:], 0.0, atol=1e-3)
    with pytest.raises(RepLensError, match=r"1\.\.4"):
        reconstruct(svd, 5)


@pytest.mark.parametrize("height, width", [(5, 7), (9, 2), (2, 2)])
def test_rank_runs_over_pixels_not_colours(height, width):
    pixels = np.random.default_rng(3).integers(0, 256, (height, width, 3), dtype=np.uint8)
    svd = decompose_exact(channel_matrices(pixels, "RGB"))
    assert svd.full_rank == min(height, width)
    assert svd.channels == 3
    for channel in range(3):
        alone = decompose_exact(pixels[None, :, :, channel].astype(np.float32))
        np.testing.assert_array_equal(reconstruct(svd, 1)[..., channel], reconstruct(alone, 1))


def test_truncated_matches_exact_top_values(chelsea):
    for mode in ("RGB", "Grayscale"):
        matrices = channel_matrices(chelsea, mode)
        exact = decompose_exact(matrices)
        truncated = decompose_truncated(matrices)
        assert not truncated.exact
        assert truncated.computed_rank == 32
        relative = np.abs(truncated.s - exact.s[:, :32]) / exact.s[:, :32]
        assert relative[:, :16].max() < 1e-3
        assert relative.max() < 5e-2


def test_truncated_is_reproducible(chelsea):
    matrices = channel_matrices(chelsea[:100, :120], "Grayscale")
    first = decompose_truncated(matrices, rank=10)
    second = decompose_truncated(matrices, rank=10)
    np.testing.assert_array_equal(first.s, second.s)


def test_truncated_falls_back_to_exact_for_small_images():
    pixels = np.random.default_rng(4).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    svd = decompose_truncated(channel_matrices(pixels, "RGB"), rank=32)
    assert svd.exact
    assert svd.computed_rank == 20


def test_truncated_rejects_rank_beyond_stored(chelsea):
    svd = decompose_truncated(channel_matrices(chelsea, "Grayscale"), rank=8)
    with pytest.raises(RepLensError, match="exact SVD"):
        reconstruct(svd, 9)


def test_cumulative_energy_matches_numpy(coffee_crop):
    matrices = channel_matrices(coffee_crop, "RGB")
    svd = decompose_exact(matrices)
    reference_s = np.linalg.svd(matrices.astype(np.float64), compute_uv=False)
    squared = (reference_s**2).sum(axis=0)
    expected = np.cumsum(squared) / squared.sum()
    np.testing.assert_allclose(cumulative_energy(svd), expected, rtol=1e-5)
    assert cumulative_energy(svd)[-1] == 1.0


def test_energy_of_black_image_is_complete():
    svd = decompose_exact(np.zeros((1, 4, 5), dtype=np.float32))
    np.testing.assert_array_equal(cumulative_energy(svd), 1.0)
    np.testing.assert_array_equal(frobenius_errors(svd), 0.0)
    np.testing.assert_array_equal(reconstruct(svd, 1), 0)


def test_compression_ratio_formula():
    assert compression_ratio(512, 512, 20) == 20 * 1025 / 262144
    assert compression_ratio(3000, 4000, 1) == 7001 / 12_000_000
    assert compression_ratio(1, 50, 1) == pytest.approx(1.04)
    with pytest.raises(RepLensError, match="1..2"):
        compression_ratio(2, 3, 3)
    with pytest.raises(RepLensError):
        compression_ratio(2, 3, 0)


def test_rank_one_layers_sum_to_rebuild(coffee_crop):
    svd = decompose_exact(channel_matrices(coffee_crop, "RGB"))
    layers = rank_one_layers(svd, 8)
    assert layers.shape == (8, 3, 60, 80)
    np.testing.assert_allclose(layers.sum(axis=0), rebuild(svd, 8), atol=1e-2)


def test_rank_one_layers_downscale_by_block_means(coffee_crop):
    svd = decompose_exact(channel_matrices(coffee_crop, "RGB"))
    full = rank_one_layers(svd, 3)
    small = rank_one_layers(svd, 3, max_side=40)  # block side 2
    assert small.shape == (3, 3, 30, 40)
    expected = block_reduce(full, (1, 1, 2, 2), np.mean)
    np.testing.assert_allclose(small, expected, atol=1e-2)


def test_signed_display_centres_zero():
    values = np.array([[[-2.0, 0.0, 1.0, 2.0]]])
    np.testing.assert_array_equal(signed_to_display(values), [[1, 128, 192, 255]])
    np.testing.assert_array_equal(signed_to_display(np.zeros((1, 2, 2))), 128)


def test_quality_matches_skimage(coffee_crop):
    svd = decompose_exact(channel_matrices(coffee_crop, "RGB"))
    shown = reconstruct(svd, 6)
    psnr_db, similarity = quality(coffee_crop, shown)
    assert psnr_db == pytest.approx(peak_signal_noise_ratio(coffee_crop, shown, data_range=255), rel=1e-12)
    expected = structural_similarity(coffee_crop, shown, data_range=255, channel_axis=-1)
    assert similarity == pytest.approx(expected, abs=1e-10)


def test_quality_without_ssim_for_tiny_images():
    pixels = np.array([[10, 200, 30]], dtype=np.uint8)
    psnr_db, similarity = quality(pixels, pixels)
    assert psnr_db == np.inf
    assert similarity is None


def test_quality_curve_matches_skimage(coffee_crop):
    gray = to_gray(coffee_crop)
    svd = decompose_exact(channel_matrices(coffee_crop, "Grayscale"))
    ranks = curve_ranks(svd.computed_rank, 5)
    curve = quality_curve(gray, svd, ranks)
    np.testing.assert_array_equal(curve.ranks, ranks)
    for index, k in enumerate(ranks[:-1]):
        shown = reconstruct(svd, int(k))
        assert curve.psnr[index] == pytest.approx(peak_signal_noise_ratio(gray, shown, data_range=255))
        assert curve.ssim[index] == pytest.approx(structural_similarity(gray, shown, data_range=255), abs=1e-10)
    assert curve.psnr[-1] == np.inf
    assert np.all(np.diff(curve.psnr) > 0)


@pytest.mark.parametrize("max_rank, count", [(1, 12), (2, 12), (60, 5), (3000, 12)])
def test_curve_ranks_cover_range(max_rank, count):
    ranks = curve_ranks(max_rank, count)
    assert ranks[0] == 1
    assert ranks[-1] == max_rank
    assert np.all(np.diff(ranks) > 0)
    assert len(ranks) <= count


def test_invalid_inputs_raise():
    pixels = np.zeros((4, 4, 3), dtype=np.uint8)
    with pytest.raises(RepLensError, match="colour mode"):
        channel_matrices(pixels, "CMYK")
    with pytest.raises(RepLensError, match=r"\(H, W, 3\)"):
        channel_matrices(pixels[..., 0], "RGB")
    svd = decompose_exact(channel_matrices(pixels, "RGB"))
    for bad_rank in (0, 5, 2.5, True):
        with pytest.raises(RepLensError, match="Rank k"):
            reconstruct(svd, bad_rank)
    with pytest.raises(RepLensError, match="finite"):
        decompose_exact(np.full((1, 2, 2), np.nan, dtype=np.float32))


@pytest.mark.parametrize("settings, accurate_top, rank", [(QUICK_SKETCH, 8, 24), (WIDE_SKETCH, 32, 128)])
def test_sketch_matches_exact_top_values(chelsea, settings, accurate_top, rank):
    matrices = channel_matrices(chelsea, "RGB")
    # Reference singular values from LAPACK through NumPy, in float64.
    reference_s = np.linalg.svd(matrices.astype(np.float64), compute_uv=False)[:, :rank]
    svd = decompose_sketch(matrices, settings)
    assert svd.computed_rank == rank
    relative = np.abs(svd.s - reference_s) / reference_s
    assert relative[:, :accurate_top].max() < 1e-3
    assert relative.max() < 0.1


def test_background_sketches_only_for_large_images():
    assert background_sketches(3000, 4000) == (WIDE_SKETCH,)
    assert background_sketches(768, 1024) == ()
    assert background_sketches(20_000, 120) == ()


@pytest.mark.parametrize("exact", [True, False])
def test_spectrum_psnr_matches_skimage(chelsea, exact):
    matrices = channel_matrices(chelsea, "RGB")
    svd = decompose_exact(matrices) if exact else decompose_sketch(matrices, QUICK_SKETCH)
    for k in (1, 7, 24):
        # PSNR of the unrounded float rebuild, channels first, by scikit-image.
        expected = peak_signal_noise_ratio(matrices.astype(np.float64), rebuild(svd, k).astype(np.float64), data_range=255)
        assert spectrum_psnr(svd, k) == pytest.approx(expected, rel=1e-4)


def test_spectrum_psnr_of_full_rank_is_infinite(coffee_crop):
    svd = decompose_exact(channel_matrices(coffee_crop, "Grayscale"))
    assert spectrum_psnr(svd, svd.full_rank) == np.inf


@pytest.mark.parametrize("mode, spacing", [("RGB", 512), ("Grayscale", 512), ("RGB", 64)])
def test_display_rebuild_is_block_mean_of_rebuild(chelsea, mode, spacing):
    svd = decompose_exact(channel_matrices(chelsea, mode))  # (C, 300, 451)
    factors = display_factors(svd, max_side=100, spacing=spacing)
    assert factors.factor == 5
    assert len(factors.checkpoints) == 300 // spacing
    # Ranks on, just below and just above stored partial sums when spacing is 64.
    for k in (1, 10, 63, 64, 65, 100, 160, 255, 256, 299, 300):
        # Reference: block means of the full-size float rebuild. block_reduce pads the
        # last partial column of blocks with zeros, so only whole blocks are compared.
        expected = block_reduce(rebuild(svd, k).astype(np.float64), (1, 5, 5), np.mean)[:, :60, :90]
        shown = reconstruct_display(factors, k).reshape(60, 91, -1).transpose(2, 0, 1)[:, :, :90]
        assert np.abs(shown - np.clip(np.rint(expected), 0, 255)).max() <= 1


def test_display_rebuild_averages_partial_blocks():
    svd = decompose_exact(2 * np.arange(35, dtype=np.float32).reshape(1, 5, 7))
    shown = reconstruct_display(display_factors(svd, max_side=4), 5)  # 2 x 2 blocks
    # Block means of 0, 2, .., 68 laid out in rows of 7: the last block of each row and column is smaller.
    expected = [[8, 12, 16, 19], [36, 40, 44, 47], [57, 61, 65, 68]]
    np.testing.assert_array_equal(shown, expected)


def test_display_rebuild_checks_rank(chelsea):
    factors = display_factors(decompose_sketch(channel_matrices(chelsea, "Grayscale"), QUICK_SKETCH), 100)
    with pytest.raises(RepLensError, match="exact SVD"):
        reconstruct_display(factors, 25)
    for bad_rank in (0, 301, 2.5):
        with pytest.raises(RepLensError, match="Rank k"):
            reconstruct_display(factors, bad_rank)


def test_display_factor_bounds_longest_side():
    assert display_factor(3000, 4000, 1024) == 4
    assert display_factor(300, 451, 451) == 1
    assert display_factor(1, 5000, 1000) == 5
    with pytest.raises(RepLensError, match="at least 1"):
        display_factor(10, 10, 0)


def test_block_mean_image_rounds_half_up():
    pixels = np.ascontiguousarray(skimage.data.coffee()[:400, :600])
    expected = np.floor(pixels.reshape(100, 4, 150, 4, 3).mean(axis=(1, 3)) + 0.5)
    np.testing.assert_array_equal(block_mean_image(pixels, 4), expected)
    np.testing.assert_array_equal(block_mean_image(pixels, 1), pixels)


def test_sketch_of_rank_one_image_is_exact():
    # The sketch of a rank-1 matrix is rank-deficient, so its basis comes from Householder QR.
    column = np.arange(100) % 16 + 1
    row = np.arange(120) % 15 + 1
    pixels = np.outer(column, row).astype(np.uint8)  # (100, 120), values 1..240, rank 1
    svd = decompose_sketch(pixels[None].astype(np.float32), QUICK_SKETCH)
    assert svd.s[0, 0] == pytest.approx(np.linalg.norm(column) * np.linalg.norm(row), rel=1e-5)
    np.testing.assert_array_equal(reconstruct(svd, 1), pixels)
    # Zero up to float32 rounding of ||A||_F^2 - sigma_1^2.
    assert frobenius_errors(svd)[0] <= 1e-3 * np.linalg.norm(pixels.astype(np.float64))
