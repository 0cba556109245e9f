"""Zero-shot accuracy of the bundled compact CLIP on data it never saw.

Scenes are rendered fresh from a seed that training did not use. The colour
and shape tasks use colour-shape pairs seen in training. The combination task
uses only the held-out pairs, and the digit task uses the fixed MNIST split
kept out of training.
"""

import numpy as np
import pytest

from core.clip import BUNDLED_CLIP_DIR, BUNDLED_NAME, load_clip
from core.samples import load_sample, mnist_digits
from core.synthetic import (
    COLOURS, HELD_OUT_COMBOS, NUMBER_WORDS, SHAPES, mnist_holdout_indices, random_scene, render_scene,
)
from core.zero_shot import DEFAULT_TEMPLATES, classify_images

SEED = 424242
PER_TASK = 240
MAX_BYTES = 25 * 1024 * 1024


@pytest.fixture(scope="module")
def bundled():
    return load_clip(BUNDLED_NAME)


@pytest.fixture(scope="module")
def seen_scenes():
    rng = np.random.default_rng(SEED)
    scenes = [random_scene(rng, exclude=HELD_OUT_COMBOS) for _ in range(PER_TASK)]
    return scenes, [render_scene(scene, 64, rng) for scene in scenes]


def _accuracy(probabilities: np.ndarray, truth: list[int]) -> float:
    return float(np.mean(probabilities.argmax(axis=1) == np.asarray(truth)))


def test_folder_size_and_files():
    files = {path.name: path.stat().st_size for path in BUNDLED_CLIP_DIR.iterdir() if path.is_file()}
    assert "model.safetensors" in files
    assert "config.json" in files
    assert "MODEL_CARD.md" in files
    assert not any(name.endswith((".bin", ".pt", ".pth", ".pkl")) for name in files)
    assert sum(files.values()) <= MAX_BYTES


def test_colour_accuracy(bundled, seen_scenes):
    scenes, pictures = seen_scenes
    result = classify_images(bundled, pictures, [f"{colour} shape" for colour in COLOURS], DEFAULT_TEMPLATES)
    accuracy = _accuracy(result.probabilities, [list(COLOURS).index(s.colour) for s in scenes])
    assert accuracy >= 0.90


def test_shape_accuracy(bundled, seen_scenes):
    scenes, pictures = seen_scenes
    result = classify_images(bundled, pictures, list(SHAPES), DEFAULT_TEMPLATES)
    accuracy = _accuracy(result.probabilities, [SHAPES.index(s.kind) for s in scenes])
    assert accuracy >= 0.90


def test_held_out_combination_accuracy(bundled):
    """Accuracy over all 48 "colour shape" labels on pairs never rendered in training."""
    rng = np.random.default_rng(SEED + 1)
    scenes = [random_scene(rng, *HELD_OUT_COMBOS[i % len(HELD_OUT_COMBOS)]) for i in range(PER_TASK)]
    pictures = [render_scene(scene, 64, rng) for scene in scenes]
    labels = [f"{colour} {shape}" for colour in COLOURS for shape in SHAPES]
    result = classify_images(bundled, pictures, labels, DEFAULT_TEMPLATES)
    accuracy = _accuracy(result.probabilities, [labels.index(f"{s.colour} {s.kind}") for s in scenes])
    assert accuracy >= 0.70


def test_held_out_mnist_accuracy(bundled):
    digits, labels = mnist_digits()
    holdout = mnist_holdout_indices(len(digits))
    result = classify_images(bundled, list(digits[holdout]), list(NUMBER_WORDS), ("a handwritten digit {}",))
    accuracy = _accuracy(result.probabilities, list(labels[holdout]))
    assert accuracy >= 0.80


@pytest.mark.parametrize(
    ("sample", "label"),
    [
        ("Rendered red circle (RepLens)", "red circle"),
        ("Rendered three yellow stars (RepLens)", "yellow star"),
        ("Rendered purple triangle, a pair held out from CLIP training (RepLens)", "purple triangle"),
    ],
)
def test_scene_samples_top_label(bundled, sample, label):
    labels = [f"{colour} {shape}" for colour in COLOURS for shape in SHAPES]
    result = classify_images(bundled, [load_sample(sample).pixels], labels, DEFAULT_TEMPLATES)
    assert labels[int(result.probabilities[0].argmax())] == label
