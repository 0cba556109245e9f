"""Benchmark the SVD page's compute on a 12-megapixel RGB photo, against references in the same run.

Measures, on the same machine and in one run:
- time to the first displayed rank-k image: channel split, quick randomized
  SVD of the three channels, block-averaged factors, block-averaged original
  and the rounded, clipped display-size rank-k image. Reference:
  ``numpy.linalg.svd`` of a copy downscaled to the same display size, the
  plain route to a rank-k image of that size.
- one slider move: the display-size rebuild from block-averaged factors, and
  the full-size rebuild used for downloads and full-size quality. Reference:
  a plain NumPy full-size rebuild from the same factors.
- the display-size rebuild at high k after the exact SVD, on factors of the
  exact SVD's shapes filled with random numbers: its cost depends only on the
  shapes, and the exact SVD of 12 megapixels takes minutes.
- checks: PSNR from the singular values against PSNR of the float rebuild,
  and the top singular values against the exact SVD of one channel with
  ``--with-exact``.

The photo is scikit-image's "coffee" (400 x 600) upscaled with Lanczos to
4000 x 3000, so its spectrum decays faster than a native 12 MP photo's.
Timings are the minimum and median of repeats; on a shared machine compare
the ratios, which are measured side by side.

Run: python bench/bench_svd.py [--repeats 5] [--with-exact]
"""

from __future__ import annotations

import argparse
import math
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

from core.svd import (  # noqa: E402
    QUICK_SKETCH,
    WIDE_SKETCH,
    ImageSVD,
    block_mean_image,
    channel_matrices,
    decompose_exact,
    decompose_sketch,
    display_factors,
    rebuild,
    reconstruct,
    reconstruct_display,
    spectrum_psnr,
)

# Maximum side of the images the SVD page sends to the browser, as in pages/svd.py.
DISPLAY_MAX_SIDE = 1024


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
    print(f"{label:<62} min {best * 1000:9.1f} ms   median {statistics.median(times) * 1000:9.1f} ms   (n={len(times)})")
    return best


def compare(label: str, measured: float, reference: float) -> None:
    print(f"{'':<4}ratio {label}: {measured / reference:.3f}")


def numpy_rebuild(svd: ImageSVD, k: int) -> np.ndarray:
    """Reference rank-k rebuild: one NumPy matmul per channel, then round, clip and stack."""
    channels = [
        np.clip(np.rint((svd.u[c, :, :k] * svd.s[c, :k]) @ svd.vt[c, :k]), 0, 255).astype(np.uint8)
        for c in range(svd.channels)
    ]
    return np.stack(channels, axis=-1)


def first_displayed_image(pixels: np.ndarray, k: int) -> tuple[ImageSVD, np.ndarray, np.ndarray]:
    """Run what the page runs before it can show the first rank-k image of a large photo."""
    svd = decompose_sketch(channel_matrices(pixels, "RGB"), QUICK_SKETCH)
    factors = display_factors(svd, DISPLAY_MAX_SIDE)
    original = block_mean_image(pixels, factors.factor)
    return svd, original, reconstruct_display(factors, k)


def reference_first_image(pixels: np.ndarray, k: int, factor: int) -> np.ndarray:
    """Downscale to display size, then take NumPy's exact SVD of each channel and rebuild rank k."""
    small = np.asarray(Image.fromarray(pixels).reduce(factor), dtype=np.float32).transpose(2, 0, 1)
    u, s, vt = np.linalg.svd(small, full_matrices=False)
    values = (u[:, :, :k] * s[:, None, :k]) @ vt[:, :k]
    return np.clip(np.rint(values), 0, 255).astype(np.uint8).transpose(1, 2, 0)


def synthetic_exact_factors(channels: int, height: int, width: int) -> ImageSVD:
    """Random factors with the shapes of an exact SVD; only the shapes matter for rebuild timings."""
    rng = np.random.default_rng(0)
    rank = min(height, width)
    u = rng.standard_normal((channels, height, rank), dtype=np.float32) / math.sqrt(height)
    vt = rng.standard_normal((channels, rank, width), dtype=np.float32) / math.sqrt(width)
    s = np.sort(rng.uniform(0, 100, (channels, rank)).astype(np.float32), axis=1)[:, ::-1].copy()
    return ImageSVD(u, s, vt, total_energy=np.zeros(channels), exact=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--rank", type=int, default=20, help="rank k of the first image")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--with-exact", action="store_true", help="also time the exact SVD of one channel (minutes on 2 cores)")
    arguments = parser.parse_args()

    photo = Image.fromarray(skimage.data.coffee()).resize((arguments.width, arguments.height), Image.Resampling.LANCZOS)
    pixels = np.asarray(photo)  # (H, W, 3) uint8
    height, width, _ = pixels.shape
    k = arguments.rank
    repeats = arguments.repeats
    print(f"image: {width} x {height} RGB ({height * width / 1e6:.1f} MP), coffee upscaled; first k = {k}")
    print(f"cpu cores: {os.cpu_count()}, torch threads: {torch.get_num_threads()}, torch {torch.__version__}, numpy {np.__version__}")
    print(f"load average (1, 5, 15 min) before: {', '.join(f'{value:.2f}' for value in os.getloadavg())}")
    decompose_sketch(channel_matrices(pixels[:512, :512], "RGB"), QUICK_SKETCH)  # warm up torch kernels

    print("\nTime to the first displayed rank-k image")
    times, (svd, original, shown) = timed(lambda: first_displayed_image(pixels, k), repeats)
    first = describe(f"RepLens: quick randomized SVD (top {svd.computed_rank}), display size {shown.shape[1]} x {shown.shape[0]}", times)
    factor = math.ceil(max(height, width) / DISPLAY_MAX_SIDE)
    times, reference = timed(lambda: reference_first_image(pixels, k, factor), repeats)
    reference_first = describe("reference: numpy.linalg.svd of the display-size copy", times)
    compare("RepLens / reference", first, reference_first)
    assert shown.shape == reference.shape == original.shape
    print(f"{'':<4}mean |difference| to the reference image: {np.abs(shown.astype(int) - reference).mean():.2f} levels")

    print("\nOne slider move (rebuild from cached factors)")
    factors = display_factors(svd, DISPLAY_MAX_SIDE)
    for move_rank in (1, 5, k, svd.computed_rank):
        display_times, _ = timed(lambda: reconstruct_display(factors, move_rank), repeats * 4)
        full_times, full_image = timed(lambda: reconstruct(svd, move_rank), repeats)
        numpy_times, numpy_image = timed(lambda: numpy_rebuild(svd, move_rank), repeats)
        display_best = describe(f"k={move_rank}: RepLens display-size rebuild", display_times)
        full_best = describe(f"k={move_rank}: RepLens full-size rebuild", full_times)
        numpy_best = describe(f"k={move_rank}: reference plain NumPy full-size rebuild", numpy_times)
        compare("display-size / reference", display_best, numpy_best)
        compare("full-size / reference", full_best, numpy_best)
        print(f"{'':<4}full-size pixels differing from the reference: {np.count_nonzero(full_image != numpy_image)}")

    print("\nDisplay-size rebuild at high k, on random factors of the exact SVD's shapes")
    exact_shaped = synthetic_exact_factors(3, height, width)
    start = time.perf_counter()
    exact_factors = display_factors(exact_shaped, DISPLAY_MAX_SIDE)
    print(f"{'':<4}block-averaged factors with partial sums, once per decomposition: {(time.perf_counter() - start) * 1000:.0f} ms")
    # Ranks halfway between stored partial sums, 256 and 768, are the slowest.
    full_rank = exact_shaped.full_rank
    for move_rank in sorted({min(rank, full_rank) for rank in (128, 256, 768, full_rank // 2, full_rank)}):
        display_times, _ = timed(lambda: reconstruct_display(exact_factors, move_rank), repeats * 2)
        describe(f"k={move_rank}: RepLens display-size rebuild", display_times)

    print("\nBackground steps")
    matrices = channel_matrices(pixels, "RGB")
    times, wide = timed(lambda: decompose_sketch(matrices, WIDE_SKETCH), 1)
    describe(f"wide randomized SVD (top {wide.computed_rank})", times)

    print("\nChecks")
    float_rebuild = rebuild(svd, k).astype(np.float64)
    mse = np.mean((matrices.astype(np.float64) - float_rebuild) ** 2)
    print(f"{'':<4}PSNR of rank {k}: {spectrum_psnr(svd, k):.4f} dB from the singular values, "
          f"{10 * math.log10(255**2 / mse):.4f} dB from the float rebuild")
    if arguments.with_exact:
        channel = matrices[:1]  # (1, H, W) red channel
        times, (_, numpy_s, _) = timed(lambda: np.linalg.svd(channel[0], full_matrices=False), 1)
        describe("reference: numpy.linalg.svd of one full-size channel", times)
        times, _ = timed(lambda: decompose_exact(channel), 1)
        describe("RepLens exact SVD of one channel (background thread)", times)
        for name, sketch in (("quick", svd), ("wide", wide)):
            relative = np.abs(sketch.s[0] - numpy_s[: sketch.computed_rank]) / numpy_s[: sketch.computed_rank]
            print(f"{'':<4}{name} sketch vs exact, red channel: max relative error of sigma_1..8 "
                  f"{relative[:8].max():.1e}, of all {sketch.computed_rank}: {relative.max():.1e}")
    print(f"\nload average (1, 5, 15 min) after: {', '.join(f'{value:.2f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()
