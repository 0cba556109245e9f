"""Benchmark batched CLIP image encoding against the Transformers pipeline.

Usage:
    python bench/bench_clip_encode.py [--images 64] [--threads 2] [--labels 5]

Builds a CLIP with ``CLIPConfig()`` defaults and random weights. That is
ViT-B/32 (224 x 224 input, 32 x 32 patches, width 768, 12 layers), the same
compute as openai/clip-vit-base-patch32. The script saves it to a temporary
folder and encodes the same random 640 x 480 images three ways in one run:

1. reference: ``pipeline("zero-shot-image-classification")`` called once per
   image, as an app that classifies uploads one by one would do;
2. ``core.clip.encode_images`` in float32, batches of 32;
3. ``core.clip.encode_images`` under bfloat16 autocast.

It prints images per second, the speed-up over the reference, the share of
the CPU's bf16 peak that the batched paths reach, and the cosine between the
bf16 and float32 embeddings. The peak is an estimate from the CPU flags and
the clock in /proc/cpuinfo, not a measurement.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.clip import encode_images, load_clip  # noqa: E402


def save_vit_b32(folder: Path) -> None:
    """Save a random ViT-B/32 CLIP with a character-level tokenizer to ``folder``."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPProcessor, CLIPTokenizer

    alphabet = sorted(ByteLevel.alphabet())
    tokens = ["<|startoftext|>", "<|endoftext|>", *alphabet, *(f"{char}</w>" for char in alphabet)]
    tokenizer = CLIPTokenizer(vocab={token: i for i, token in enumerate(tokens)}, merges=[])
    torch.manual_seed(0)
    config = CLIPConfig(text_config={"eos_token_id": tokenizer.eos_token_id, "bos_token_id": 0, "pad_token_id": 1})
    CLIPModel(config).save_pretrained(folder)
    CLIPProcessor(image_processor=CLIPImageProcessorPil(), tokenizer=tokenizer).save_pretrained(folder)


def image_flops(config) -> float:
    """Multiply-adds x 2 of one image through the vision tower and projection."""
    vision = config.vision_config
    tokens = (vision.image_size // vision.patch_size) ** 2 + 1
    width, hidden = vision.hidden_size, vision.intermediate_size
    patch = (tokens - 1) * 3 * vision.patch_size**2 * width
    per_layer = tokens * (4 * width * width + 2 * width * hidden) + 2 * tokens * tokens * width
    projection = width * config.projection_dim
    return 2.0 * (patch + vision.num_hidden_layers * per_layer + projection)


def estimated_bf16_peak(threads: int) -> tuple[float, str]:
    """Estimate the bf16 FLOP/s peak of ``threads`` cores from /proc/cpuinfo.

    Assumes two FMA pipes per core. AVX512_BF16 dot products (VDPBF16PS) do
    twice the FLOPs of fp32 FMAs per register width. AMD Zen 4 executes
    512-bit instructions as two 256-bit halves, so its width counts as 256.
    """
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = set(re.search(r"^flags\s*:(.*)$", text, re.M).group(1).split()) if "flags" in text else set()
    mhz_match = re.search(r"^cpu MHz\s*:\s*([\d.]+)", text, re.M)
    ghz = float(mhz_match.group(1)) / 1000 if mhz_match else 2.0
    model = re.search(r"^model name\s*:(.*)$", text, re.M)
    name = model.group(1).strip() if model else "unknown CPU"

    amd = "AMD" in name or "EPYC" in name or "Ryzen" in name
    if "avx512f" in flags:
        width = 256 if amd else 512
    elif "avx2" in flags:
        width = 256
    else:
        width = 128
    fp32_per_cycle = 2 * 2 * width // 32
    bf16_per_cycle = fp32_per_cycle * (2 if "avx512_bf16" in flags or "amx_bf16" in flags else 1)
    peak = bf16_per_cycle * ghz * 1e9 * threads
    note = (f"{name}, {threads} cores x {ghz:.2f} GHz x {bf16_per_cycle} bf16 FLOP/cycle "
            f"(estimate from flags: avx512_bf16={'avx512_bf16' in flags}, vector width {width} bits)")
    return peak, note


def run_pipeline(folder: Path, images: list[np.ndarray], labels: list[str]) -> float:
    from transformers import pipeline

    classifier = pipeline("zero-shot-image-classification", model=str(folder))
    pictures = [Image.fromarray(image) for image in images]
    classifier(pictures[0], candidate_labels=labels)  # warm-up
    started = time.perf_counter()
    for picture in pictures:
        classifier(picture, candidate_labels=labels, hypothesis_template="a photo of a {}.")
    return time.perf_counter() - started


def run_batched(bundle, images: list[np.ndarray], bf16: bool) -> tuple[float, np.ndarray]:
    encode_images(bundle, images[:2], bf16=bf16)  # warm-up
    started = time.perf_counter()
    embeddings = encode_images(bundle, images, batch_size=32, bf16=bf16)
    return time.perf_counter() - started, embeddings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--labels", type=int, default=5, help="candidate labels per pipeline call")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(args.images)]
    labels = ["cat", "dog", "car", "tree", "house", "boat", "bird", "cup"][: args.labels]

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        save_vit_b32(folder)
        bundle = load_clip(str(folder))
        flops = image_flops(bundle.model.config)

        reference_s = run_pipeline(folder, images, labels)
        fp32_s, fp32 = run_batched(bundle, images, bf16=False)
        bf16_s, bf16 = run_batched(bundle, images, bf16=True)

    peak, note = estimated_bf16_peak(args.threads)
    cosines = np.sum(fp32 * bf16, axis=1)
    count = len(images)
    print(f"CPU: {note}")
    print(f"Estimated bf16 peak: {peak / 1e9:.0f} GFLOP/s; ViT-B/32 image: {flops / 1e9:.2f} GFLOP")
    print(f"{'path':<34}{'seconds':>9}{'images/s':>10}{'speed-up':>10}{'% bf16 peak':>13}")
    for name, seconds in (
        (f"pipeline per image ({len(labels)} labels)", reference_s),
        ("encode_images fp32, batch 32", fp32_s),
        ("encode_images bf16 autocast", bf16_s),
    ):
        share = 100 * flops * count / seconds / peak
        print(f"{name:<34}{seconds:>9.2f}{count / seconds:>10.2f}{reference_s / seconds:>9.2f}x{share:>12.1f}%")
    print(f"bf16 vs fp32 cosine: min {cosines.min():.5f}, mean {cosines.mean():.5f}")
    verdict = "PASS" if reference_s / fp32_s >= 2 else "FAIL"
    print(f"{verdict}: fp32 batched is {reference_s / fp32_s:.2f}x the pipeline (target >= 2x)")


if __name__ == "__main__":
    main()
