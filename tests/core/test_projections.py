"""Tests for core.projections: small and degenerate inputs, scores and neighbours."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import RepLensError
from core.projections import (
    METHODS,
    coordinates_frame,
    kmeans_labels,
    knn_accuracy,
    nearest_neighbors,
    outlier_scores,
    project,
    trustworthiness_score,
)


def random_vectors(count: int, dim: int = 512, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, dim)).astype(np.float32)


def blobs(per_class: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated Gaussian clusters in 10-D."""
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 10) * 20
    vectors = np.concatenate([centre + rng.normal(size=(per_class, 10)) for centre in centres])
    labels = np.repeat(["a", "b", "c"], per_class)
    return vectors.astype(np.float32), labels


# ---------------------------------------------------------------- small and degenerate sets


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("count", [1, 2, 5])
def test_small_sets_never_raise(method, count):
    result = project(random_vectors(count), method)
    if method != "PCA" and count <= 2:
        assert result.coords is None
        assert "at least 3 points" in result.unavailable
    else:
        assert result.coords.shape == (count, 2)
        assert np.isfinite(result.coords).all()


def test_tsne_perplexity_lowered_on_five_points():
    result = project(random_vectors(5), "t-SNE", perplexity=30.0)
    assert result.params["perplexity"] < 5
    assert 3 * result.params["perplexity"] < 5
    assert any("Perplexity lowered from 30" in notice for notice in result.notices)


@pytest.mark.parametrize("count", [1, 2])
def test_tsne_disabled_with_reason(count):
    result = project(random_vectors(count), "t-SNE")
    assert result.coords is None
    assert f"got {count}" in result.unavailable


def test_umap_neighbors_lowered_on_five_points():
    result = project(random_vectors(5), "UMAP", n_neighbors=15)
    assert result.params["n_neighbors"] == 4
    assert any("n_neighbors lowered from 15 to 4" in notice for notice in result.notices)


@pytest.mark.parametrize("method", METHODS)
def test_identical_points_on_one_spot(method):
    result = project(np.ones((6, 8), np.float32), method)
    np.testing.assert_array_equal(result.coords, np.zeros((6, 2)))
    assert "identical" in result.notices[0]


def test_one_point_pca_at_origin():
    result = project(random_vectors(1), "PCA")
    np.testing.assert_array_equal(result.coords, [[0.0, 0.0]])
    assert result.trustworthiness is None


@pytest.mark.parametrize("bad", [np.zeros((0, 3)), np.zeros(5), np.array([[np.nan, 1.0]])])
def test_invalid_vectors_raise(bad):
    with pytest.raises(RepLensError):
        project(bad, "PCA")


def test_unknown_method_raises():
    with pytest.raises(RepLensError, match="Unknown projection"):
        project(random_vectors(4), "MDS")


# ---------------------------------------------------------------- PCA values and transforms


def test_pca_matches_svd():
    vectors = random_vectors(30, 20)
    centred = vectors.astype(np.float64) - vectors.mean(axis=0)
    left, singular, _ = np.linalg.svd(centred, full_matrices=False)
    expected = left[:, :2] * singular[:2]
    result = project(vectors, "PCA")
    np.testing.assert_allclose(np.abs(result.coords), np.abs(expected), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("method", ["PCA", "UMAP"])
def test_transform_places_training_points(method):
    vectors, _ = blobs()
    result = project(vectors, method)
    placed = result.transform(vectors[:3])
    assert placed.shape == (3, 2)
    if method == "PCA":
        np.testing.assert_allclose(placed, result.coords[:3], atol=1e-4)


def test_tsne_transform_places_query_near_its_cluster():
    vectors, labels = blobs()
    result = project(vectors, "t-SNE", perplexity=10.0)
    placed = result.transform(vectors[:1] + 0.01)[0]
    distances = np.linalg.norm(result.coords - placed, axis=1)
    nearest = np.argsort(distances)[:5]
    assert (labels[nearest] == "a").all()


# ---------------------------------------------------------------- scores


def test_trustworthiness_perfect_for_two_dimensional_data():
    vectors = random_vectors(40, 2)
    score, notice = trustworthiness_score(vectors, vectors * 3.0)
    assert score == pytest.approx(1.0)
    assert notice is None


def test_trustworthiness_low_for_shuffled_map():
    vectors = random_vectors(200, 2)
    shuffled = vectors[np.random.default_rng(1).permutation(200)]
    score, _ = trustworthiness_score(vectors, shuffled)
    assert score < 0.7


def test_trustworthiness_small_sets():
    assert trustworthiness_score(random_vectors(2), random_vectors(2, 2))[0] is None
    score, notice = trustworthiness_score(random_vectors(5), random_vectors(5, 2))
    assert 0.0 <= score <= 1.0
    assert "k = 2" in notice


def test_projection_scores_separated_blobs():
    vectors, _ = blobs()
    for method in METHODS:
        assert project(vectors, method).trustworthiness > 0.9, method


def test_knn_accuracy_separable_and_random():
    vectors, labels = blobs()
    mean, std, folds = knn_accuracy(vectors, labels)
    assert mean == 1.0
    assert folds == 5
    random_labels = np.random.default_rng(0).choice(["a", "b", "c"], size=len(labels))
    assert knn_accuracy(vectors, random_labels)[0] < 0.7


def test_knn_accuracy_matches_numpy_one_nn():
    from sklearn.model_selection import StratifiedKFold

    vectors, labels = blobs(per_class=10, seed=3)
    vectors = vectors + np.random.default_rng(4).normal(scale=15, size=vectors.shape).astype(np.float32)
    mean, _, folds = knn_accuracy(vectors, labels, n_neighbors=1, folds=5, seed=0)

    # The same stratified splits, classified by a plain NumPy 1-nearest-neighbour rule.
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    accuracies = []
    for train, test in splitter.split(vectors, labels):
        distances = np.linalg.norm(vectors[test][:, None] - vectors[train][None], axis=2)
        predicted = labels[train][distances.argmin(axis=1)]
        accuracies.append(np.mean(predicted == labels[test]))
    assert 0.0 < mean < 1.0
    assert mean == pytest.approx(np.mean(accuracies))


def test_knn_accuracy_folds_lowered_and_rejected():
    vectors, labels = blobs(per_class=3)
    assert knn_accuracy(vectors, labels)[2] == 3
    with pytest.raises(RepLensError, match="at least 2 classes"):
        knn_accuracy(vectors, ["a"] * len(vectors))
    with pytest.raises(RepLensError, match="smallest class"):
        knn_accuracy(vectors[:7], list(labels[:7]))


# ---------------------------------------------------------------- neighbours, outliers, clusters


def test_nearest_neighbors_match_brute_force():
    vectors = random_vectors(50, 8)
    indices, distances = nearest_neighbors(vectors, vectors[3], k=5, metric="cosine", exclude=3)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = 1 - unit @ unit[3]
    cosine[3] = np.inf
    expected = np.argsort(cosine)[:5]
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_allclose(distances, cosine[expected], atol=1e-5)


def test_outlier_scores_find_far_point():
    vectors, _ = blobs()
    vectors = np.concatenate([vectors, np.full((1, 10), 100.0, np.float32)])
    scores = outlier_scores(vectors, k=3)
    assert int(np.argmax(scores)) == len(vectors) - 1
    distances = np.sort(np.linalg.norm(vectors[:, None] - vectors[None], axis=2), axis=1)
    np.testing.assert_allclose(scores, distances[:, 3], rtol=1e-4, atol=1e-4)


def test_outlier_scores_single_point():
    np.testing.assert_array_equal(outlier_scores(random_vectors(1)), [0.0])


def test_kmeans_recovers_blobs():
    vectors, labels = blobs()
    clusters = kmeans_labels(vectors, 3)
    for label in "abc":
        assert len(set(clusters[labels == label])) == 1
    assert len(set(kmeans_labels(vectors[:2], 10))) <= 2


def test_coordinates_frame_columns():
    vectors, labels = blobs(per_class=4)
    results = [project(vectors, "PCA"), project(vectors[:2], "t-SNE")]
    frame = coordinates_frame(results, [f"n{i}" for i in range(12)], labels, clusters=np.zeros(12, int))
    assert list(frame.columns) == ["name", "label", "cluster", "pca_x", "pca_y"]
    np.testing.assert_allclose(frame["pca_x"], results[0].coords[:, 0])


def test_trustworthiness_subsampled_for_large_sets(monkeypatch):
    import core.projections as projections

    monkeypatch.setattr(projections, "TRUSTWORTHINESS_MAX_POINTS", 50)
    vectors = random_vectors(200, 2)
    score, notice = trustworthiness_score(vectors, vectors)
    assert score == pytest.approx(1.0)
    assert "subset of 50 of the 200 points" in notice
