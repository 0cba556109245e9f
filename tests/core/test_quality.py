"""PSNR and SSIM against scikit-image's implementations."""

import math

import numpy as np
import pytest
import skimage.data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from core.errors import RepLensError
from core.quality import psnr, ssim


def noisy_copy(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = image.astype(np.float64) + rng.normal(0.0, sigma, image.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def camera_crop() -> np.ndarray:
    return skimage.data.camera()[100:228, 150:310]


@pytest.fixture(scope="module")
def astronaut_crop() -> np.ndarray:
    return skimage.data.astronaut()[50:146, 200:330]


@pytest.mark.parametrize("sigma", [1.0, 10.0, 60.0])
def test_psnr_matches_skimage_uint8(camera_crop, sigma):
    test = noisy_copy(camera_crop, sigma)
    expected = peak_signal_noise_ratio(camera_crop, test, data_range=255)
    assert psnr(camera_crop, test) == pytest.approx(expected, rel=1e-12)


def test_psnr_matches_skimage_float_range(camera_crop):
    reference = camera_crop / 255.0
    test = noisy_copy(camera_crop, 5.0) / 255.0
    expected = peak_signal_noise_ratio(reference, test, data_range=1.0)
    assert psnr(reference, test, data_range=1.0) == pytest.approx(expected, rel=1e-12)


def test_psnr_of_equal_images_is_infinite(camera_crop):
    assert psnr(camera_crop, camera_crop.copy()) == math.inf


@pytest.mark.parametrize("sigma", [2.0, 25.0])
def test_ssim_matches_skimage_grayscale(camera_crop, sigma):
    test = noisy_copy(camera_crop, sigma)
    expected = structural_similarity(camera_crop, test, data_range=255)
    assert ssim(camera_crop, test) == pytest.approx(expected, abs=1e-10)


def test_ssim_matches_skimage_rgb(astronaut_crop):
    test = noisy_copy(astronaut_crop, 15.0)
    expected = structural_similarity(astronaut_crop, test, data_range=255, channel_axis=-1)
    assert ssim(astronaut_crop, test, channel_axis=-1) == pytest.approx(expected, abs=1e-10)


def test_ssim_matches_skimage_channels_first(astronaut_crop):
    reference = np.moveaxis(astronaut_crop, -1, 0)
    test = np.moveaxis(noisy_copy(astronaut_crop, 15.0), -1, 0)
    expected = structural_similarity(reference, test, data_range=255, channel_axis=0)
    assert ssim(reference, test, channel_axis=0) == pytest.approx(expected, abs=1e-10)


def test_ssim_matches_skimage_float_data(camera_crop):
    reference = camera_crop / 255.0
    test = np.clip(reference + np.random.default_rng(1).normal(0, 0.05, reference.shape), 0, 1)
    expected = structural_similarity(reference, test, data_range=1.0)
    assert ssim(reference, test, data_range=1.0) == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("shape", [(7, 7), (7, 13), (20, 9)])
def test_ssim_matches_skimage_small_shapes(shape):
    rng = np.random.default_rng(2)
    reference = rng.integers(0, 256, shape, dtype=np.uint8)
    test = noisy_copy(reference, 30.0)
    expected = structural_similarity(reference, test, data_range=255)
    assert ssim(reference, test) == pytest.approx(expected, abs=1e-10)


def test_ssim_of_equal_images_is_one(camera_crop):
    assert ssim(camera_crop, camera_crop.copy()) == pytest.approx(1.0, abs=1e-12)


def test_ssim_rejects_image_below_window():
    small = np.zeros((6, 30), dtype=np.uint8)
    with pytest.raises(RepLensError, match="at least 7 x 7"):
        ssim(small, small)


def test_metrics_reject_shape_mismatch():
    with pytest.raises(RepLensError, match="different shapes"):
        psnr(np.zeros((8, 8)), np.zeros((8, 9)))
    with pytest.raises(RepLensError, match="different shapes"):
        ssim(np.zeros((8, 8)), np.zeros((9, 8)))
