"""Benchmark the explorer's projections against the libraries they wrap.

Measures, in one run and on the same machine, on a mixture of 10 Gaussian
clusters in 512 dimensions (float32, like CLIP embeddings):
- PCA to 2-D of 10,000 points: RepLens's ``project(..., "PCA")`` without the
  score, scikit-learn's ``PCA(2).fit_transform`` side by side, and the
  trustworthiness score on its 2,000-point subset;
- t-SNE: RepLens's wrapper and ``openTSNE.TSNE(...).fit`` with the same
  parameters (perplexity 30, 500 iterations, PCA initialisation, one thread);
- UMAP: RepLens's wrapper and ``umap.UMAP(...).fit_transform`` with the same
  parameters, after one warm-up call that compiles numba's code.

The wrappers call the same library functions, so the ratio shows the wrapper
overhead (input checks, transform closure, notices). Wrapper and library
runs alternate, and the minimum of each is compared. t-SNE and UMAP run on
``--points`` points (3,000 by default) because 10,000 take minutes on a
shared 2-core machine.

Run: python bench/bench_projections.py [--points 3000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import timed  # noqa: E402
from core import projections  # noqa: E402


def clustered(count: int, dim: int = 512, clusters: int = 10, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(clusters, dim))
    members = rng.integers(clusters, size=count)
    return (centres[members] + rng.normal(size=(count, dim))).astype(np.float32)


def interleaved(first: Callable[[], object], second: Callable[[], object], repeats: int) -> tuple[list[float], list[float]]:
    """Time two functions in alternation, so that load from other processes hits both alike."""
    first_times, second_times = [], []
    for _ in range(repeats):
        first_times += timed(first, 1)
        second_times += timed(second, 1)
    return first_times, second_times


def describe(label: str, times: list[float]) -> float:
    best = min(times)
    print(f"{label:<52} min {best:8.3f} s   median {statistics.median(times):8.3f} s   (n={len(times)})")
    return best


def bench_pca(vectors: np.ndarray, repeats: int) -> None:
    from sklearn.decomposition import PCA

    print(f"\nPCA, {vectors.shape[0]:,} x {vectors.shape[1]}")
    ours = describe("RepLens PCA wrapper (no score)", timed(lambda: projections._pca(vectors), repeats))
    reference = describe("sklearn PCA(2).fit_transform", timed(lambda: PCA(2, random_state=0).fit_transform(vectors), repeats))
    coords = projections._pca(vectors).coords
    score = describe("trustworthiness on 2,000-point subset", timed(lambda: projections.trustworthiness_score(vectors, coords), 1))
    total = describe("RepLens project(PCA) with score", timed(lambda: projections.project(vectors, "PCA"), repeats))
    print(f"  wrapper / sklearn = {ours / reference:.2f}x; project() with score {total:.3f} s (target < 1 s); score alone {score:.3f} s")


def bench_tsne(vectors: np.ndarray, repeats: int) -> None:
    from openTSNE import TSNE

    print(f"\nt-SNE, {vectors.shape[0]:,} x {vectors.shape[1]}")

    def reference():
        TSNE(perplexity=30.0, n_iter=500, metric="euclidean", initialization="pca", random_state=0,
             n_jobs=1, verbose=False).fit(vectors)

    ours_times, their_times = interleaved(lambda: projections._tsne(vectors, 30.0, 500), reference, repeats)
    ours = describe("RepLens t-SNE wrapper (no score)", ours_times)
    theirs = describe("openTSNE TSNE.fit", their_times)
    median_ratio = statistics.median(ours_times) / statistics.median(their_times)
    print(f"  wrapper / openTSNE = {ours / theirs:.3f}x by minimum, {median_ratio:.3f}x by median (target <= 1.1x)")


def bench_umap(vectors: np.ndarray, repeats: int) -> None:
    import umap

    print(f"\nUMAP, {vectors.shape[0]:,} x {vectors.shape[1]}")
    start = time.perf_counter()
    umap.UMAP(n_neighbors=15, random_state=0, n_jobs=1).fit_transform(vectors)
    print(f"  warm-up on the same points (includes numba compilation): {time.perf_counter() - start:.1f} s")

    def reference():
        umap.UMAP(n_neighbors=15, min_dist=0.1, metric="euclidean", init="spectral", random_state=0,
                  n_jobs=1).fit_transform(vectors)

    ours_times, their_times = interleaved(lambda: projections._umap(vectors, 15, 0.1), reference, repeats)
    ours = describe("RepLens UMAP wrapper (no score)", ours_times)
    theirs = describe("umap-learn UMAP.fit_transform", their_times)
    median_ratio = statistics.median(ours_times) / statistics.median(their_times)
    print(f"  wrapper / umap-learn = {ours / theirs:.3f}x by minimum, {median_ratio:.3f}x by median (target <= 1.1x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=3000, help="points for t-SNE and UMAP")
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()

    bench_pca(clustered(10_000), max(arguments.repeats, 5))
    subset = clustered(arguments.points, seed=1)
    bench_umap(subset, arguments.repeats)
    bench_tsne(subset, arguments.repeats)


if __name__ == "__main__":
    main()
