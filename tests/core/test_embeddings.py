"""Tests for core.embeddings: pixel features, PCA, batching, the disk cache and export."""

from __future__ import annotations

import hashlib
import io
import os
import time

import numpy as np
import pandas as pd
import pytest

from core import embeddings
from core.datasets import mnist_dataset
from core.embeddings import Embedder, EmbeddingCache, embed_images
from core.errors import RepLensError


@pytest.fixture(scope="module")
def digits():
    return mnist_dataset(120)


def counting_embedder(identity: str = "test"):
    calls = []

    def encode(batch):
        calls.append(len(batch))
        return np.stack([image.reshape(-1)[:16].astype(np.float32) for image in batch])

    return Embedder(identity, encode), calls


# ---------------------------------------------------------------- pixels and PCA


def test_pixel_matrix_native_size(digits):
    matrix = embeddings.pixel_matrix(digits.images, side=28, gray=True)
    expected = np.stack([image[..., 0].reshape(-1) for image in digits.images]) / 255.0
    assert matrix.shape == (120, 784)
    assert matrix.dtype == np.float32
    np.testing.assert_allclose(matrix, expected, atol=1e-7)


def test_pixel_matrix_resizes_constant_image():
    images = [np.full((40, 60, 3), (10, 20, 30), np.uint8), np.full((5, 5, 3), 255, np.uint8)]
    matrix = embeddings.pixel_matrix(images, side=8, gray=False)
    assert matrix.shape == (2, 8 * 8 * 3)
    np.testing.assert_allclose(matrix[0].reshape(8, 8, 3)[3, 3], np.array([10, 20, 30]) / 255.0, atol=1e-6)
    np.testing.assert_allclose(matrix[1], 1.0)


def test_is_grayscale(digits):
    assert embeddings.is_grayscale(digits.images)
    assert not embeddings.is_grayscale([np.zeros((2, 2, 3), np.uint8) + np.array([0, 1, 0], np.uint8)])


def test_pixel_pca_matches_numpy_svd(digits):
    pixels = embeddings.pixel_matrix(digits.images)
    result = embeddings.pixel_pca(pixels, 10)

    centred = pixels.astype(np.float64) - pixels.mean(axis=0)
    _, singular, right = np.linalg.svd(centred, full_matrices=False)
    ratio = singular**2 / np.sum(singular**2)
    np.testing.assert_allclose(result.explained_variance_ratio, ratio[:10], rtol=1e-3)
    for axis in range(3):
        assert abs(abs(float(result.components[axis] @ right[axis])) - 1.0) < 1e-3
    np.testing.assert_allclose(np.abs(result.scores[:, 0]), np.abs(centred @ right[0]), rtol=1e-3, atol=1e-3)


def test_pixel_pca_components_capped(digits):
    pixels = embeddings.pixel_matrix(digits.images[:5])
    assert embeddings.pixel_pca(pixels, 50).components.shape == (5, 784)


def test_pixel_pca_needs_two_images(digits):
    with pytest.raises(RepLensError, match="at least 2"):
        embeddings.pixel_pca(embeddings.pixel_matrix(digits.images[:1]), 5)


# ---------------------------------------------------------------- batching and cache


def test_embed_batches_and_progress(digits):
    embedder, calls = counting_embedder()
    reported = []
    result = embed_images(digits.images, embedder, batch_size=50, progress=lambda done, total: reported.append((done, total)))
    assert calls == [50, 50, 20]
    assert reported == [(50, 120), (100, 120), (120, 120)]
    assert result.vectors.shape == (120, 16)
    assert not result.from_cache


def test_cache_hit_returns_same_array(digits, tmp_path):
    cache = EmbeddingCache(tmp_path, max_bytes=10_000_000)
    embedder, calls = counting_embedder()
    first = embed_images(digits.images, embedder, cache)
    calls_after_first = len(calls)
    second = embed_images(digits.images, embedder, cache)
    assert not first.from_cache
    assert second.from_cache
    assert len(calls) == calls_after_first
    assert second.vectors.dtype == first.vectors.dtype
    np.testing.assert_array_equal(second.vectors, first.vectors)


def test_cache_key_content_and_identity(digits):
    images = list(digits.images[:5])
    key = embeddings.content_key(images, "a")
    assert embeddings.content_key([image.copy() for image in images], "a") == key
    assert embeddings.content_key(images, "b") != key
    changed = [image.copy() for image in images]
    changed[2][0, 0, 0] ^= 1
    assert embeddings.content_key(changed, "a") != key
    assert embeddings.content_key(images[::-1], "a") != key


def test_cache_miss_for_other_embedder(digits, tmp_path):
    cache = EmbeddingCache(tmp_path, max_bytes=10_000_000)
    embed_images(digits.images, counting_embedder("one")[0], cache)
    assert not embed_images(digits.images, counting_embedder("two")[0], cache).from_cache


def test_cache_evicts_least_recently_used(tmp_path):
    array = np.zeros(1000, np.float32)  # 4,000 bytes plus a 128-byte header
    cache = EmbeddingCache(tmp_path, max_bytes=2 * 4128)
    cache.put("a", array)
    cache.put("b", array)
    now = time.time()
    os.utime(cache.path_for("a"), (now - 100, now - 100))
    os.utime(cache.path_for("b"), (now - 50, now - 50))
    assert cache.get("a") is not None  # a becomes the most recently used

    cache.put("c", array)

    assert cache.path_for("a").exists()
    assert not cache.path_for("b").exists()
    assert cache.path_for("c").exists()
    assert cache.size_bytes() <= cache.max_bytes


def test_cache_skips_array_over_bound(tmp_path):
    cache = EmbeddingCache(tmp_path, max_bytes=100)
    cache.put("big", np.zeros(1000))
    assert cache.get("big") is None


def test_cache_ignores_corrupt_file(tmp_path):
    cache = EmbeddingCache(tmp_path, max_bytes=10_000)
    tmp_path.joinpath("bad.npy").write_bytes(b"not npy")
    assert cache.get("bad") is None


def test_default_cache_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(embeddings.CACHE_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(embeddings.CACHE_MAX_MB_ENV, "1.5")
    cache = embeddings.default_cache()
    assert cache.directory == tmp_path / "embeddings"
    assert cache.max_bytes == int(1.5 * 1024 * 1024)
    monkeypatch.setenv(embeddings.CACHE_MAX_MB_ENV, "lots")
    with pytest.raises(RepLensError, match="REPLENS_CACHE_MAX_MB"):
        embeddings.default_cache()


def test_embed_empty_raises():
    with pytest.raises(RepLensError, match="empty"):
        embed_images([], counting_embedder()[0])


# ---------------------------------------------------------------- export


def test_npy_round_trip():
    vectors = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.load(io.BytesIO(embeddings.to_npy_bytes(vectors))), vectors)


def test_parquet_round_trip():
    vectors = np.random.default_rng(0).normal(size=(3, 12)).astype(np.float32)
    frame = pd.read_parquet(io.BytesIO(embeddings.to_parquet_bytes(vectors, ["a", "b", "c"], ["x", "y", "x"])))
    assert list(frame["name"]) == ["a", "b", "c"]
    assert list(frame["label"]) == ["x", "y", "x"]
    assert list(frame.columns[2:4]) == ["dim_00", "dim_01"]
    np.testing.assert_array_equal(frame.iloc[:, 2:].to_numpy(), vectors)


def test_pixel_matrix_tiny_images():
    images = [np.full((1, 1, 3), 200, np.uint8), np.full((1, 50, 3), 100, np.uint8), np.full((3, 3, 3), 50, np.uint8)]
    matrix = embeddings.pixel_matrix(images, side=28, gray=True)
    assert matrix.shape == (3, 784)
    np.testing.assert_allclose(matrix.mean(axis=1), np.array([200, 100, 50]) / 255.0, atol=1e-6)


def test_cache_hit_with_precomputed_digest(digits, tmp_path):
    cache = EmbeddingCache(tmp_path, max_bytes=10_000_000)
    embedder, calls = counting_embedder()
    first = embed_images(digits.images, embedder, cache)
    second = embed_images(digits.images, embedder, cache, digest=digits.content_digest)
    assert digits.content_digest == embeddings.content_digest(list(digits.images))
    assert second.from_cache
    np.testing.assert_array_equal(second.vectors, first.vectors)


def test_content_digest_format():
    first = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    second = np.full((2, 1, 3), 7, dtype=np.uint8)
    expected = hashlib.sha256(b"[(1, 2, 3), (2, 1, 3)]" + first.tobytes() + second.tobytes()).hexdigest()
    assert embeddings.content_digest([first, second]) == expected


def test_content_digest_separates_images():
    pixels = np.arange(12, dtype=np.uint8)
    whole = embeddings.content_digest([pixels.reshape(1, 4, 3)])
    halves = embeddings.content_digest([pixels[:6].reshape(1, 2, 3), pixels[6:].reshape(1, 2, 3)])
    swapped = embeddings.content_digest([pixels[6:].reshape(1, 2, 3), pixels[:6].reshape(1, 2, 3)])
    transposed = embeddings.content_digest([pixels.reshape(4, 1, 3)])
    assert len({whole, halves, swapped, transposed}) == 4


def test_content_digest_non_contiguous():
    pixels = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    view = pixels[:, ::2]
    assert not view.flags.c_contiguous
    assert embeddings.content_digest([view]) == embeddings.content_digest([view.copy()])
