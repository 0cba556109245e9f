"""Cached loaders and computations for the dataset explorer.

Datasets and projections use ``st.cache_resource``, so reruns get the same
objects instead of a pickled copy, which would copy a 10,000-image dataset
on every rerun. None of them is mutated after it is built.
Embeddings are kept per session and on disk through ``core.embeddings``.
"""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

from core import datasets, embeddings, projections

# Embedding results kept per session, newest last.
_SESSION_KEY = "explorer_embeddings"
_SESSION_ENTRIES = 8

# Set once per server process after the first UMAP run, which compiles numba code.
_UMAP_COMPILED = {"done": False}


@st.cache_resource(max_entries=8, show_spinner="Loading MNIST digits…")
def load_mnist(count: int) -> datasets.ImageDataset:
    return datasets.mnist_dataset(count)


@st.cache_resource(max_entries=1, show_spinner="Loading the sample photos…")
def load_photos() -> datasets.ImageDataset:
    return datasets.photo_dataset()


@st.cache_resource(max_entries=1, show_spinner="Loading the face set…")
def load_faces() -> datasets.ImageDataset:
    return datasets.faces_dataset()


@st.cache_resource(max_entries=4, show_spinner="Reading the zip archive…")
def load_zip(data: bytes, name: str) -> datasets.ImageDataset:
    return datasets.zip_dataset(data, name)


@st.cache_resource(max_entries=4, show_spinner="Decoding the uploaded files…")
def load_uploads(files: tuple[tuple[str, bytes], ...]) -> datasets.ImageDataset:
    return datasets.uploads_dataset(files)


@st.cache_resource(max_entries=4, ttl=300, show_spinner="Reading the folder…")
def load_folder(folder: str, root: str) -> datasets.ImageDataset:
    return datasets.folder_dataset(folder, root)


@st.cache_resource(show_spinner="Loading the digit CNN…")
def load_digit_cnn():
    from core.cnn import DIGIT_CNN_SOURCE, load_cnn

    return load_cnn(DIGIT_CNN_SOURCE)


@st.cache_resource(max_entries=8, show_spinner=False)
def pixel_matrix(dataset_token: str, _dataset: datasets.ImageDataset, side: int, gray: bool) -> np.ndarray:
    matrix = embeddings.pixel_matrix(_dataset.images, side, gray)
    matrix.setflags(write=False)
    return matrix


@st.cache_resource(max_entries=8, show_spinner="Fitting PCA to the pixels…")
def pixel_pca(dataset_token: str, pixels: np.ndarray, n_components: int) -> embeddings.PixelPca:
    return embeddings.pixel_pca(pixels, n_components)


@st.cache_resource(max_entries=16, show_spinner=False)
def project(vectors: np.ndarray, method: str, params: tuple[tuple[str, object], ...]) -> projections.Projection:
    result = projections.project(vectors, method, **dict(params))
    if method == "UMAP":
        _UMAP_COMPILED["done"] = True
    return result


def umap_compiled() -> bool:
    """Return True once UMAP has run in this server process."""
    return _UMAP_COMPILED["done"]


@st.cache_data(max_entries=32, show_spinner=False)
def knn_accuracy(vectors: np.ndarray, labels: tuple[str, ...]) -> tuple[float, float, int]:
    return projections.knn_accuracy(vectors, list(labels))


@st.cache_data(max_entries=16, show_spinner=False)
def outlier_scores(vectors: np.ndarray, k: int) -> np.ndarray:
    return projections.outlier_scores(vectors, k)


@st.cache_data(max_entries=16, show_spinner="Clustering…")
def kmeans_labels(vectors: np.ndarray, clusters: int) -> np.ndarray:
    return projections.kmeans_labels(vectors, clusters)


def embed_dataset(
    dataset_token: str, dataset: datasets.ImageDataset, embedder: embeddings.Embedder, label: str
) -> embeddings.Embeddings:
    """Embed ``dataset`` with a progress bar, reusing this session's and the disk cache."""
    store: dict = st.session_state.setdefault(_SESSION_KEY, {})
    key = (dataset_token, embedder.identity)
    if key in store:
        return store[key]

    bar = st.progress(0.0, text=f"{label}: embedding {len(dataset)} images…")

    def report(done: int, total: int) -> None:
        bar.progress(done / total, text=f"{label}: {done} / {total} images embedded")

    disk_cache = embeddings.default_cache()
    start = time.perf_counter()
    result = embeddings.embed_images(
        dataset.images, embedder, disk_cache, progress=report, digest=dataset.content_digest
    )
    seconds = time.perf_counter() - start
    bar.empty()
    action = "read from the cache" if result.from_cache else "computed and cached"
    st.caption(f"{label}: {len(dataset)} embeddings {action} in {seconds:.2f} s (cache folder {disk_cache.directory}).")
    store[key] = result
    while len(store) > _SESSION_ENTRIES:
        store.pop(next(iter(store)))
    return result
