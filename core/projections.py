"""2-D projections of embeddings and the measures that judge them.

PCA (scikit-learn), t-SNE (openTSNE) and UMAP (umap-learn) map an (N, D)
matrix to (N, 2) coordinates. Each ``Projection`` keeps a ``transform`` that
places new vectors, such as a text query, in the same map. Parameters that
the data is too small for are lowered with a notice, and a method that
cannot run at all returns ``coords=None`` with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from core.errors import RepLensError

logger = logging.getLogger(__name__)

METHODS = ("PCA", "t-SNE", "UMAP")

# Neighbourhood size k of the trustworthiness score.
TRUSTWORTHINESS_NEIGHBORS = 5
# scikit-learn's trustworthiness builds dense N x N distance and rank matrices
# (0.8 GB each at N = 10,000), so larger sets are scored on a fixed random subset.
TRUSTWORTHINESS_MAX_POINTS = 2000


@dataclass(frozen=True)
class Projection:
    """Coordinates from one method, the parameters used and what was adjusted."""

    method: str
    coords: np.ndarray | None  # (N, 2) float32, or None when the method cannot run
    params: dict = field(default_factory=dict)
    notices: tuple[str, ...] = ()
    unavailable: str | None = None
    trustworthiness: float | None = None
    # Maps (M, D) vectors to (M, 2) coordinates in this map; None when unsupported.
    transform: Callable[[np.ndarray], np.ndarray] | None = None


# ---------------------------------------------------------------- projections


def project(vectors: np.ndarray, method: str, **params) -> Projection:
    """Project (N, D) ``vectors`` to 2-D with ``method`` from ``METHODS`` and score it.

    >>> project(np.eye(4), "PCA").coords.shape
    (4, 2)
    """
    vectors = _check_vectors(vectors)
    count = len(vectors)
    if method not in METHODS:
        raise RepLensError(f"Unknown projection {method!r}. Choose one of: {', '.join(METHODS)}.")

    if count >= 2 and np.ptp(vectors, axis=0).max() == 0:
        return _identical(method, count)
    projector = {"PCA": _pca, "t-SNE": _tsne, "UMAP": _umap}[method]
    result = projector(vectors, **params)
    if result.coords is None:
        return result
    score, score_notice = trustworthiness_score(vectors, result.coords)
    notices = result.notices + ((score_notice,) if score_notice else ())
    return Projection(result.method, result.coords, result.params, notices, None, score, result.transform)


def _check_vectors(vectors: np.ndarray) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2 or len(array) == 0:
        raise RepLensError(f"Expected a non-empty (N, D) matrix but got shape {array.shape}.")
    if not np.isfinite(array).all():
        raise RepLensError("The embeddings contain NaN or infinite values. Recompute them.")
    return array


def _identical(method: str, count: int) -> Projection:
    """Place identical vectors on the origin, where every method would collapse them."""
    coords = np.zeros((count, 2), dtype=np.float32)
    notice = f"All {count} vectors are identical, so {method} places them on one point."
    return Projection(method, coords, {}, (notice,), transform=lambda new: np.zeros((len(new), 2), np.float32))


def _pca(vectors: np.ndarray, whiten: bool = False) -> Projection:
    from sklearn.decomposition import PCA

    count, dim = vectors.shape
    if count == 1:
        notice = "One point: PCA has no direction of variance, so it sits at the origin."
        return Projection("PCA", np.zeros((1, 2), np.float32), {}, (notice,))

    components = min(2, count - 1, dim)
    notices = ()
    if components < 2:
        notices = (f"{count} points span one direction only, so the second PCA axis is zero.",)
    pca = PCA(n_components=components, whiten=whiten, random_state=0).fit(vectors)

    def transform(new: np.ndarray) -> np.ndarray:
        scores = pca.transform(np.asarray(new, dtype=np.float32)).astype(np.float32)
        return np.pad(scores, ((0, 0), (0, 2 - components)))

    params = {"whiten": whiten, "explained_variance_ratio": [float(value) for value in pca.explained_variance_ratio_]}
    return Projection("PCA", transform(vectors), params, notices, transform=transform)


def _tsne(
    vectors: np.ndarray,
    perplexity: float = 30.0,
    n_iter: int = 500,
    metric: str = "euclidean",
    seed: int = 0,
) -> Projection:
    from openTSNE import TSNE

    count = len(vectors)
    if count <= 2:
        reason = (
            f"t-SNE needs at least 3 points but got {count}. It matches each point's neighbour "
            "distribution to the others', which is undefined with one neighbour or none."
        )
        return Projection("t-SNE", None, {"perplexity": perplexity}, unavailable=reason)

    notices = []
    # openTSNE uses 3 * perplexity neighbours, which must be fewer than the points.
    max_perplexity = (count - 1) / 3
    if perplexity > max_perplexity:
        notices.append(
            f"Perplexity lowered from {perplexity:g} to {max_perplexity:.2f} because t-SNE needs "
            f"3 x perplexity < the number of points ({count})."
        )
        perplexity = max_perplexity

    tsne = TSNE(
        perplexity=perplexity, n_iter=n_iter, metric=metric, initialization="pca",
        random_state=seed, n_jobs=1, verbose=False,
    )
    embedding = tsne.fit(vectors)

    def transform(new: np.ndarray) -> np.ndarray:
        # openTSNE optimises the new points against the fixed map.
        placed = embedding.transform(np.asarray(new, dtype=np.float32), perplexity=min(perplexity, 5.0))
        return np.asarray(placed, dtype=np.float32)

    params = {"perplexity": float(perplexity), "n_iter": n_iter, "metric": metric}
    return Projection("t-SNE", np.asarray(embedding, dtype=np.float32), params, tuple(notices), transform=transform)


def _umap(
    vectors: np.ndarray,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    metric: str = "euclidean",
    seed: int = 0,
) -> Projection:
    import umap

    count = len(vectors)
    if count <= 2:
        reason = f"UMAP needs at least 3 points to build a neighbour graph but got {count}."
        return Projection("UMAP", None, {"n_neighbors": n_neighbors}, unavailable=reason)

    notices = []
    if n_neighbors > count - 1:
        notices.append(
            f"n_neighbors lowered from {n_neighbors} to {count - 1} because each point has only "
            f"{count - 1} other points."
        )
        n_neighbors = count - 1
    # Spectral initialisation runs scipy's eigsh on the neighbour graph, which fails on
    # graphs of a few nodes, so small sets start from random positions.
    init = "spectral" if count > 10 else "random"
    reducer = umap.UMAP(
        n_neighbors=n_neighbors, min_dist=min_dist, metric=metric, init=init, random_state=seed, n_jobs=1,
    )
    coords = reducer.fit_transform(vectors).astype(np.float32)

    def transform(new: np.ndarray) -> np.ndarray:
        return reducer.transform(np.asarray(new, dtype=np.float32)).astype(np.float32)

    params = {"n_neighbors": n_neighbors, "min_dist": min_dist, "metric": metric}
    return Projection("UMAP", coords, params, tuple(notices), transform=transform)


# ---------------------------------------------------------------- scores


def trustworthiness_score(
    vectors: np.ndarray, coords: np.ndarray, n_neighbors: int = TRUSTWORTHINESS_NEIGHBORS
) -> tuple[float | None, str | None]:
    """Return scikit-learn's trustworthiness of ``coords`` and a notice when k was lowered.

    T(k) = 1 - 2 / (n k (2n - 3k - 1)) * sum_i sum_{j in U_i^k} (r(i, j) - k), where
    U_i^k are the points among the k nearest of i in 2-D but not in the original
    space and r(i, j) is j's rank among i's neighbours in the original space.
    scikit-learn requires k < n / 2, so k is lowered for small sets, and the score
    is None below 3 points. Above ``TRUSTWORTHINESS_MAX_POINTS`` points the score
    is computed on a random subset of that size, with a notice.
    """
    from sklearn.manifold import trustworthiness

    count = len(vectors)
    if count > TRUSTWORTHINESS_MAX_POINTS:
        subset = np.sort(np.random.default_rng(0).choice(count, TRUSTWORTHINESS_MAX_POINTS, replace=False))
        score, _ = trustworthiness_score(vectors[subset], coords[subset], n_neighbors)
        notice = f"Trustworthiness is estimated on a random subset of {TRUSTWORTHINESS_MAX_POINTS:,} of the {count:,} points."
        return score, notice
    largest_k = (count - 1) // 2
    if largest_k < 1:
        return None, f"Trustworthiness needs at least 3 points but got {count}."
    k = min(n_neighbors, largest_k)
    notice = f"Trustworthiness uses k = {k} neighbours because there are only {count} points." if k < n_neighbors else None
    return float(trustworthiness(vectors, coords, n_neighbors=k)), notice


def knn_accuracy(vectors: np.ndarray, labels, n_neighbors: int = 5, folds: int = 5, seed: int = 0) -> tuple[float, float, int]:
    """Return the mean and standard deviation of stratified k-fold k-NN accuracy, and the folds used.

    Folds are lowered to the size of the smallest class; at least 2 are needed.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    if labels is None:
        raise RepLensError("k-NN accuracy needs labels. Use a labelled dataset.")
    labels = np.asarray(labels)
    if len(labels) != len(vectors):
        raise RepLensError(f"Expected {len(vectors)} labels but got {len(labels)}.")
    _, counts = np.unique(labels, return_counts=True)
    if len(counts) < 2:
        raise RepLensError("k-NN accuracy needs at least 2 classes. Use a labelled dataset with several classes.")
    folds = min(folds, int(counts.min()))
    if folds < 2:
        raise RepLensError(
            f"The smallest class has {counts.min()} image, too few for cross-validation. "
            "Give each class at least 2 images."
        )
    training_size = len(vectors) * (folds - 1) // folds
    classifier = KNeighborsClassifier(n_neighbors=max(1, min(n_neighbors, training_size)))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_score(classifier, vectors, labels, cv=splitter)
    return float(scores.mean()), float(scores.std()), folds


# ---------------------------------------------------------------- neighbours


def nearest_neighbors(vectors: np.ndarray, query: np.ndarray, k: int = 8, metric: str = "cosine", exclude: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return the indices and distances of the ``k`` rows of ``vectors`` closest to ``query``.

    ``exclude`` drops one index, such as the query image itself.
    """
    from sklearn.metrics import pairwise_distances

    distances = pairwise_distances(np.asarray(query, np.float32).reshape(1, -1), vectors, metric=metric)[0]
    order = np.argsort(distances, kind="stable")
    if exclude is not None:
        order = order[order != exclude]
    order = order[:k]
    return order, distances[order]


def outlier_scores(vectors: np.ndarray, k: int = 5, metric: str = "euclidean") -> np.ndarray:
    """Return each point's distance to its ``k``-th nearest other point (larger is more isolated).

    ``k`` is lowered to N - 1; a single point scores 0.
    """
    from sklearn.neighbors import NearestNeighbors

    count = len(vectors)
    if count < 2:
        return np.zeros(count, dtype=np.float32)
    k = min(k, count - 1)
    distances, _ = NearestNeighbors(n_neighbors=k + 1, metric=metric).fit(vectors).kneighbors(vectors)
    return distances[:, k].astype(np.float32)


def kmeans_labels(vectors: np.ndarray, clusters: int, seed: int = 0) -> np.ndarray:
    """Return k-means cluster indices, with ``clusters`` lowered to N."""
    from sklearn.cluster import KMeans

    clusters = max(1, min(clusters, len(vectors)))
    return KMeans(n_clusters=clusters, n_init=4, random_state=seed).fit_predict(vectors)


def coordinates_frame(results: list[Projection], names, labels=None, clusters=None):
    """Return a pandas DataFrame with name, label, cluster and x/y columns per projection."""
    import pandas as pd

    frame = pd.DataFrame({"name": list(names)})
    if labels is not None:
        frame["label"] = list(labels)
    if clusters is not None:
        frame["cluster"] = np.asarray(clusters)
    for result in results:
        if result.coords is None:
            continue
        column = result.method.lower().replace("-", "")
        frame[f"{column}_x"] = result.coords[:, 0]
        frame[f"{column}_y"] = result.coords[:, 1]
    return frame
