"""Image representations for whole datasets, and their on-disk cache.

A representation turns N images into an (N, D) float32 matrix: raw pixels
resized to a common side, PCA of those pixels, CNN features or CLIP image
embeddings. Embeddings are computed in batches and stored in
``EmbeddingCache``, keyed by the SHA-256 of every image's pixels plus the
embedder's identity (model and preprocessing), so opening the same dataset
again reads one ``.npy`` file instead of running the model.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.errors import RepLensError

logger = logging.getLogger(__name__)

# Environment variables that configure the cache.
CACHE_DIR_ENV = "REPLENS_CACHE_DIR"
CACHE_MAX_MB_ENV = "REPLENS_CACHE_MAX_MB"
DEFAULT_CACHE_DIR = Path("~/.cache/replens")
DEFAULT_CACHE_MAX_MB = 2048

# Side, in pixels, that the pixel representation resizes every image to.
DEFAULT_PIXEL_SIDE = 28

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Embedder:
    """A named function from a batch of images to vectors."""

    # Model and preprocessing, such as "pixels side=28 gray"; part of the cache key.
    identity: str
    # Maps a list of (H, W, 3) uint8 images to a (B, D) float32 array.
    encode: Callable[[list[np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class Embeddings:
    """Vectors for a dataset and whether they came from the cache."""

    vectors: np.ndarray  # (N, D) float32
    identity: str
    from_cache: bool


@dataclass(frozen=True)
class PixelPca:
    """PCA of a pixel matrix: scores, eigenimages and explained variance."""

    scores: np.ndarray  # (N, K) float32 coordinates on the principal axes
    components: np.ndarray  # (K, D) unit principal axes; each row reshapes to an eigenimage
    explained_variance_ratio: np.ndarray  # (K,) fraction of the total variance per axis
    mean: np.ndarray  # (D,) mean image, flattened


# ---------------------------------------------------------------- pixels and PCA


def is_grayscale(images: Sequence[np.ndarray]) -> bool:
    """Return True when every image has three equal channels."""
    return all(
        np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2])
        for image in images
    )


def pixel_matrix(images: Sequence[np.ndarray], side: int = DEFAULT_PIXEL_SIDE, gray: bool = True) -> np.ndarray:
    """Resize every image to ``side`` x ``side`` and flatten it into one row in [0, 1].

    Returns (N, side * side) float32 when ``gray``, else (N, side * side * 3).
    Images are resized with bilinear filtering and without keeping the
    aspect ratio, so non-square images are stretched.
    """
    if side < 1:
        raise RepLensError(f"Pixel side {side} is invalid. Choose 1 or more pixels.")
    channels = 1 if gray else 3
    rows = np.empty((len(images), side * side * channels), dtype=np.float32)
    for index, image in enumerate(images):
        resized = _resize(image, side)
        if gray:
            resized = resized[..., 0]
        rows[index] = resized.reshape(-1) / 255.0
    return rows


def _resize(image: np.ndarray, side: int) -> np.ndarray:
    height, width = image.shape[:2]
    if (height, width) == (side, side):
        return image
    return np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BILINEAR))


def pixel_embedder(side: int = DEFAULT_PIXEL_SIDE, gray: bool = True) -> Embedder:
    """Return the raw-pixel representation at ``side`` x ``side``."""
    mode = "gray" if gray else "rgb"
    return Embedder(f"pixels side={side} {mode}", lambda batch: pixel_matrix(batch, side, gray))


def pixel_pca(pixels: np.ndarray, n_components: int) -> PixelPca:
    """Fit PCA to an (N, D) pixel matrix and return scores and eigenimages.

    ``n_components`` is lowered to min(N, D) when larger. Needs N >= 2.
    """
    from sklearn.decomposition import PCA

    count, dim = pixels.shape
    if count < 2:
        raise RepLensError(f"PCA needs at least 2 images but the dataset has {count}. Add images.")
    components = max(1, min(n_components, count, dim))
    pca = PCA(n_components=components, svd_solver="auto", random_state=0)
    scores = pca.fit_transform(pixels).astype(np.float32)
    return PixelPca(
        scores=scores,
        components=pca.components_.astype(np.float32),
        explained_variance_ratio=np.nan_to_num(pca.explained_variance_ratio_),
        mean=pca.mean_.astype(np.float32),
    )


# ---------------------------------------------------------------- models


def clip_embedder(bundle, batch_size: int = 32) -> Embedder:
    """Return the embedder for L2-normalised CLIP image embeddings of a loaded ``core.clip.ClipBundle``."""
    from core.clip import encode_images

    # NOTE: the identity names the checkpoint, not its weights, so a checkpoint
    # replaced in place under the same source keeps its old cache entries.
    identity = f"clip source={bundle.source} name={bundle.name} dim={bundle.embedding_dim}"
    return Embedder(identity, lambda batch: encode_images(bundle, batch, batch_size=batch_size))


def cnn_embedder(bundle) -> Embedder:
    """Return the embedder for pooled penultimate-layer features of a loaded ``core.cnn.CnnBundle``."""
    import json

    from core.cnn import cnn_features

    # The digit CNN's record (training settings and measured accuracy) changes when it is retrained.
    record = hashlib.sha256(json.dumps(bundle.record, sort_keys=True, default=str).encode()).hexdigest()[:12]
    identity = f"cnn source={bundle.source} name={bundle.name} record={record}"
    return Embedder(identity, lambda batch: cnn_features(bundle, batch))


# ---------------------------------------------------------------- batching and cache


def content_digest(images: Sequence[np.ndarray]) -> str:
    """Return the SHA-256 hex digest of the images' shapes and bytes, in order.

    The same pixels in the same order give the same digest, whatever the file
    names were. All shapes go into one update before the bytes, because an
    extra update per image added about 0.6 ms to the 1.5 ms that hashing the
    bytes of 1,000 MNIST digits takes. The shapes fix where each image's bytes
    end, so two different sequences of uint8 images never give the same input.
    """
    digest = hashlib.sha256(repr([image.shape for image in images]).encode("ascii"))
    for image in images:
        digest.update(np.ascontiguousarray(image).data)
    return digest.hexdigest()


def content_key(images: Sequence[np.ndarray], identity: str, digest: str | None = None) -> str:
    """Return the cache key of ``images`` embedded by ``identity``.

    ``digest`` is ``content_digest(images)`` when the caller already has it.
    """
    images_digest = digest if digest is not None else content_digest(images)
    return hashlib.sha256(f"{identity}\n{images_digest}".encode("utf-8")).hexdigest()


def embed_images(
    images: Sequence[np.ndarray],
    embedder: Embedder,
    cache: EmbeddingCache | None = None,
    batch_size: int = 64,
    progress: Progress | None = None,
    digest: str | None = None,
) -> Embeddings:
    """Embed ``images`` in batches, reading and filling ``cache`` when given.

    ``progress(done, total)`` is called after each batch. ``digest`` is
    ``content_digest(images)`` when the caller already has it, which saves
    hashing the pixels again.
    """
    if not images:
        raise RepLensError("The dataset is empty. Load at least one image.")
    key = content_key(images, embedder.identity, digest) if cache is not None else None
    if cache is not None:
        cached = cache.get(key)
        if cached is not None and len(cached) == len(images):
            if progress is not None:
                progress(len(images), len(images))
            return Embeddings(cached, embedder.identity, from_cache=True)

    batches = []
    total = len(images)
    for start in range(0, total, batch_size):
        batch = list(images[start : start + batch_size])
        batches.append(np.asarray(embedder.encode(batch), dtype=np.float32))
        if progress is not None:
            progress(min(start + batch_size, total), total)
    vectors = np.concatenate(batches, axis=0)

    if cache is not None:
        cache.put(key, vectors)
    return Embeddings(vectors, embedder.identity, from_cache=False)


class EmbeddingCache:
    """A folder of ``.npy`` files with a size bound and least-recently-used eviction.

    Each read sets the file's modification time to now, and each write removes
    the files with the oldest modification times until the folder fits in
    ``max_bytes``. Writes go to a temporary file first and are renamed into
    place, so a reader never sees a partial file.
    """

    def __init__(self, directory: str | os.PathLike, max_bytes: int):
        if max_bytes < 0:
            raise RepLensError(f"Cache size bound {max_bytes} bytes is invalid. Use 0 or more.")
        self.directory = Path(directory).expanduser()
        self.max_bytes = max_bytes

    def path_for(self, key: str) -> Path:
        return self.directory / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        """Return the cached array for ``key``, or None when absent or unreadable."""
        path = self.path_for(key)
        try:
            array = np.load(path, allow_pickle=False)
            os.utime(path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            logger.warning("Ignoring unreadable cache file %s: %s", path, error)
            return None
        return array

    def put(self, key: str, array: np.ndarray) -> None:
        """Store ``array`` under ``key`` and evict old entries beyond the size bound."""
        if array.nbytes > self.max_bytes:
            logger.info("Not caching %s: %d bytes exceed the bound of %d", key, array.nbytes, self.max_bytes)
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                np.save(file, array, allow_pickle=False)
            os.replace(temporary, self.path_for(key))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self.evict()

    def evict(self) -> list[Path]:
        """Delete least-recently-used files until the total size fits; return them."""
        entries = []
        for path in self.directory.glob("*.npy"):
            try:
                info = path.stat()
            except FileNotFoundError:
                continue
            entries.append((info.st_mtime, info.st_size, path))
        entries.sort()
        total = sum(size for _, size, _ in entries)
        removed = []
        for _, size, path in entries:
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
            removed.append(path)
        if removed:
            logger.info("Evicted %d cache files from %s", len(removed), self.directory)
        return removed

    def size_bytes(self) -> int:
        """Return the total size of the cached arrays, in bytes."""
        return sum(path.stat().st_size for path in self.directory.glob("*.npy"))


def default_cache() -> EmbeddingCache:
    """Return the cache configured by ``REPLENS_CACHE_DIR`` and ``REPLENS_CACHE_MAX_MB``.

    Defaults: ``~/.cache/replens/embeddings`` and 2048 MB.
    """
    directory = Path(os.environ.get(CACHE_DIR_ENV, "") or DEFAULT_CACHE_DIR).expanduser()
    raw_limit = os.environ.get(CACHE_MAX_MB_ENV, "") or str(DEFAULT_CACHE_MAX_MB)
    try:
        max_mb = float(raw_limit)
    except ValueError as error:
        raise RepLensError(
            f"{CACHE_MAX_MB_ENV}={raw_limit!r} is not a number. Set it to a size in megabytes, such as 2048."
        ) from error
    return EmbeddingCache(directory / "embeddings", int(max_mb * 1024 * 1024))


# ---------------------------------------------------------------- export


def to_npy_bytes(vectors: np.ndarray) -> bytes:
    """Serialise an array in NumPy's ``.npy`` format."""
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.asarray(vectors), allow_pickle=False)
    return buffer.getvalue()


def to_parquet_bytes(vectors: np.ndarray, names: Sequence[str], labels: Sequence[str] | None) -> bytes:
    """Serialise embeddings as Parquet: ``name``, ``label`` and one float32 column per dimension."""
    import io

    import pandas as pd

    count, dim = vectors.shape
    width = len(str(dim - 1))
    frame = pd.DataFrame(np.asarray(vectors, np.float32), columns=[f"dim_{index:0{width}d}" for index in range(dim)])
    frame.insert(0, "label", list(labels) if labels is not None else [None] * count)
    frame.insert(0, "name", list(names))
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()
