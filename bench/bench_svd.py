"""Benchmark the SVD page's compute on a 12-megapixel RGB photo.

Measures, in one run and on the same machine:
- time to the first rank-k image: channel split, randomized truncated SVD of
  the three channels, and the rounded, clipped uint8 rank-k image;
- time of one slider move: the rank-k rebuild from cached factors;
- references side by side: ``numpy.linalg.svd(full_matrices=False)`` of one
  channel matrix (the exact route), and a plain NumPy rebuild of the same rank
  from the same factors. ``--with-replens-exact`` adds RepLens's exact SVD of
  that channel.

The photo is scikit-image's "coffee" (400 x 600) upscaled with Lanczos to
4000 x 3000, so its spectrum decays faster than a native 12 MP photo's.

Run: python bench/bench_svd.py [--skip-exact] [--with-replens-exact]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import skimage.data
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.svd import channel_matrices, decompose_exact, decompose_truncated, reconstruct  # noqa: E402


def timed(function: Callable[[], object], repeats: int) -> tuple[list[float], object]:
    """Run ``function`` ``repeats`` times; return the wall times in seconds and the last result."""
    times = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return times, result


def describe(label: str, times: list[float]) -> float:
    best = min(times)
    print(f"{label:<58} min {best * 1000:9.1f} ms   median {statistics.median(times) * 1000:9.1f} ms   (n={len(times)})")
    return best


def numpy_rebuild(u: np.ndarray, s: np.ndarray, vt: np.ndarray, k: int) -> np.ndarray:
    """Reference rank-k rebuild: one NumPy matmul per channel, then round, clip and stack."""
    channels = [np.clip(np.rint((u[c, :, :k] * s[c, :k]) @ vt[c, :k]), 0, 255).astype(np.uint8) for c in range(u.shape[0])]
    return np.stack(channels, axis=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--rank", type=int, default=20, help="rank k of the first image")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-exact", action="store_true", help="skip the exact one-channel SVD (minutes on 2 cores)")
    parser.add_argument("--with-replens-exact", action="store_true", help="also time RepLens's exact SVD of one channel")
    arguments = parser.parse_args()

    photo = Image.fromarray(skimage.data.coffee()).resize((arguments.width, arguments.height), Image.Resampling.LANCZOS)
    pixels = np.asarray(photo)  # (H, W, 3) uint8
    height, width, _ = pixels.shape
    print(f"image: {width} x {height} RGB ({height * width / 1e6:.1f} MP), coffee upscaled")
    print(f"cpu cores: {os.cpu_count()}, torch threads: {torch.get_num_threads()}, torch {torch.__version__}, numpy {np.__version__}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    k = arguments.rank

    def first_image():
        svd = decompose_truncated(channel_matrices(pixels, "RGB"))
        return svd, reconstruct(svd, k)

    decompose_truncated(channel_matrices(pixels[:512, :512], "RGB"))  # warm up torch kernels
    times, (svd, image) = timed(first_image, arguments.repeats)
    first = describe(f"first rank-{k} image (truncated SVD, {svd.computed_rank} comps)", times)
    assert image.shape == (height, width, 3)
    matrices = channel_matrices(pixels, "RGB")
    decompose_times, _ = timed(lambda: decompose_truncated(matrices), arguments.repeats)
    describe("  of which the truncated SVD alone", decompose_times)

    print()
    move_ratios = []
    for move_rank in (1, 5, k, svd.computed_rank):
        core_times, core_image = timed(lambda: reconstruct(svd, move_rank), arguments.repeats * 2)
        numpy_times, numpy_image = timed(lambda: numpy_rebuild(svd.u, svd.s, svd.vt, move_rank), arguments.repeats * 2)
        core_best = describe(f"slider move k={move_rank}: RepLens rebuild", core_times)
        numpy_best = describe(f"slider move k={move_rank}: plain NumPy rebuild", numpy_times)
        mismatch = int(np.count_nonzero(core_image != numpy_image))
        print(f"{'':<58} ratio RepLens / NumPy {core_best / numpy_best:.2f}, differing pixels {mismatch}")
        move_ratios.append(core_best / numpy_best)

    if arguments.skip_exact:
        return
    print()
    channel = channel_matrices(pixels, "RGB")[:1]  # (1, H, W) float32, red channel
    numpy_times, (_, numpy_s, _) = timed(lambda: np.linalg.svd(channel[0], full_matrices=False), 1)
    numpy_exact = describe("reference: numpy.linalg.svd of one channel (exact)", numpy_times)
    top = svd.s[0]
    relative = np.abs(top - numpy_s[: top.size]) / numpy_s[: top.size]
    print(f"truncated vs numpy exact, red channel: max relative error top 16 {relative[:16].max():.2e}, top {top.size} {relative.max():.2e}")
    print(f"first image / one-channel numpy exact SVD: {first / numpy_exact:.4f}")
    if arguments.with_replens_exact:
        torch_times, _ = timed(lambda: decompose_exact(channel), 1)
        describe("RepLens exact SVD of one channel (background thread)", torch_times)
        print(f"RepLens exact / numpy exact, one channel: {min(torch_times) / numpy_exact:.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
