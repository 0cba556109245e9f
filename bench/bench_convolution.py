"""Time RepLens's convolution against OpenCV's cv2.filter2D on a 12-MP RGB image.

Run from the repository root:

    python bench/bench_convolution.py [--repeats 9] [--threads N]

Both libraries filter the same uint8 RGB image into a float32 result with
the same kernel and the same border (scipy's "reflect", OpenCV's
BORDER_REFLECT), using the same number of threads. Each repeat times one
call of each, in alternating order, so that load from other processes hits
both alike; the table reports the median of the per-repeat ratios
RepLens / OpenCV (below 1 means RepLens is faster). OpenCV is a benchmark
dependency only; RepLens's core never imports it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numba
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.kernels import apply_kernel  # noqa: E402
from core.samples import load_sample  # noqa: E402

WIDTH, HEIGHT = 4000, 3000  # 12 MP


def upscaled_sample() -> np.ndarray:
    """Return the astronaut photo resized to 4000 x 3000, (3000, 4000, 3) uint8."""
    photo = load_sample("Astronaut (scikit-image)").pixels
    return np.asarray(Image.fromarray(photo).resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC))


def gaussian_kernel(size: int) -> np.ndarray:
    """Sampled Gaussian with sigma = size / 6, normalised to sum 1 (separable, rank 1)."""
    offsets = np.arange(size) - size // 2
    profile = np.exp(-0.5 * (offsets / (size / 6)) ** 2)
    kernel = np.outer(profile, profile)
    return kernel / kernel.sum()


def dense_kernel(size: int, seed: int = 0) -> np.ndarray:
    """Random normal weights: full rank, no zero taps, the general case."""
    return np.random.default_rng(seed).standard_normal((size, size))


def time_call(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def compare(image: np.ndarray, kernel: np.ndarray, repeats: int) -> dict[str, float]:
    """Time both libraries on one kernel; return median times, ratio and max difference."""
    # cv2.filter2D computes correlation, so it gets the flipped kernel.
    flipped = np.ascontiguousarray(kernel[::-1, ::-1], dtype=np.float32)

    def run_opencv():
        return cv2.filter2D(image, cv2.CV_32F, flipped, borderType=cv2.BORDER_REFLECT)

    def run_replens():
        return apply_kernel(image, kernel, "convolution", "reflect")

    difference = float(np.max(np.abs(run_replens() - run_opencv())))  # also warms both up
    opencv_times, replens_times, ratios = [], [], []
    for repeat in range(repeats):
        if repeat % 2 == 0:
            opencv_time, replens_time = time_call(run_opencv), time_call(run_replens)
        else:
            replens_time, opencv_time = time_call(run_replens), time_call(run_opencv)
        opencv_times.append(opencv_time)
        replens_times.append(replens_time)
        ratios.append(replens_time / opencv_time)
    return {
        "opencv_ms": 1000 * statistics.median(opencv_times),
        "replens_ms": 1000 * statistics.median(replens_times),
        "ratio": statistics.median(ratios),
        "difference": difference,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed calls per library and kernel")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for both libraries")
    arguments = parser.parse_args()

    cv2.setNumThreads(arguments.threads)
    numba.set_num_threads(min(arguments.threads, numba.config.NUMBA_NUM_THREADS))
    image = upscaled_sample()
    height, width, channels = image.shape
    print(f"image {width} x {height} x {channels} uint8 -> float32, border reflect, "
          f"{arguments.threads} threads, {arguments.repeats} repeats, OpenCV {cv2.__version__}")
    print(f"{'kernel':<18}{'OpenCV ms':>11}{'RepLens ms':>12}{'ratio':>8}{'max diff':>10}")

    for size in (3, 5, 15):
        for label, kernel in (("Gaussian", gaussian_kernel(size)), ("dense random", dense_kernel(size))):
            result = compare(image, kernel, arguments.repeats)
            name = f"{size}x{size} {label}"
            print(f"{name:<18}{result['opencv_ms']:>11.1f}{result['replens_ms']:>12.1f}"
                  f"{result['ratio']:>8.2f}{result['difference']:>10.2g}")


if __name__ == "__main__":
    main()
