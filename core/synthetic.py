"""Render small scenes of coloured shapes, the world the bundled CLIP learned.

A ``Scene`` is a background and one or more shapes of one colour and kind.
``render_scene`` draws it at 4x the output size and downsamples with a box
filter, which gives anti-aliased edges. ``random_scene`` draws the attributes
from a NumPy generator, so the same seed gives the same scenes. Besides the
named colours on white, gray or black, it can draw shapes in any hue and
backgrounds in any colour. Training uses those scenes so that shape features
depend less on colour.

``HELD_OUT_COMBOS`` lists colour-shape pairs that the bundled CLIP never saw
in training; ``mnist_holdout_indices`` fixes the MNIST digits it never saw.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from core.errors import RepLensError

# Colour name -> RGB centre; rendered colours are jittered around it.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 35),
    "orange": (245, 140, 20),
    "yellow": (240, 220, 35),
    "green": (35, 165, 55),
    "blue": (35, 80, 225),
    "purple": (135, 45, 185),
    "pink": (250, 125, 195),
    "brown": (125, 75, 35),
}
SHAPES = ("circle", "square", "triangle", "star", "cross", "hexagon")

# Background name -> gray level before noise and gradient.
BACKGROUNDS: dict[str, int] = {"white": 245, "gray": 128, "black": 12}

# Background name of a scene whose background has an arbitrary colour.
TINTED = "tinted"
# Smallest Euclidean RGB distance between a tinted background and the shapes on it.
MIN_TINT_CONTRAST = 80.0

# Object radius as a fraction of the image side.
SIZES: dict[str, tuple[float, float]] = {"small": (0.15, 0.20), "large": (0.25, 0.33)}

# Colour-shape pairs that never appear in the bundled CLIP's training data.
HELD_OUT_COMBOS: tuple[tuple[str, str], ...] = (
    ("purple", "triangle"),
    ("orange", "circle"),
    ("green", "star"),
    ("pink", "square"),
    ("blue", "cross"),
    ("yellow", "hexagon"),
)

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# A single shape's centre lies at most this far from the image centre, in
# fractions of the side, so that test scenes place shapes where the small ViT was trained on them.
SINGLE_SPREAD = 0.16

# A single shape whose centre is closer than this to the image centre, on both
# axes, is "in the middle"; otherwise the larger offset names its side.
MIDDLE_RADIUS = 0.07

# Largest number of shapes in one scene.
MAX_COUNT = 4

# Size of the fixed MNIST split kept out of training, and the seed that picks it.
MNIST_HOLDOUT_SIZE = 1000
MNIST_HOLDOUT_SEED = 1234

_COLOUR_JITTER = 18
_SUPERSAMPLE = 4


@dataclass(frozen=True)
class Shape:
    """One shape in a scene; coordinates are fractions of the image side."""

    colour: str
    kind: str
    size: str
    # Centre, 0 = left or top edge, 1 = right or bottom edge.
    x: float
    y: float
    # Radius as a fraction of the image side.
    radius: float
    # RGB actually drawn: the colour's centre plus jitter.
    rgb: tuple[int, int, int]


@dataclass(frozen=True)
class Scene:
    """A background and the shapes on it, all of one colour and kind."""

    # A name in BACKGROUNDS, or TINTED with the colour in background_rgb.
    background: str
    shapes: tuple[Shape, ...]
    # Standard deviation of the Gaussian pixel noise, in gray levels.
    noise: float = 0.0
    # Brightness change from top to bottom, in gray levels.
    gradient: float = 0.0
    background_rgb: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        if self.background == TINTED and self.background_rgb is None:
            raise RepLensError(f"A {TINTED!r} scene needs background_rgb. Pass the background colour.")
        if self.background != TINTED and self.background not in BACKGROUNDS:
            raise RepLensError(
                f"Unknown background {self.background!r}. Choose one of {', '.join(BACKGROUNDS)} or {TINTED!r}."
            )

    @property
    def count(self) -> int:
        return len(self.shapes)

    @property
    def colour(self) -> str:
        return self.shapes[0].colour

    @property
    def kind(self) -> str:
        return self.shapes[0].kind

    @property
    def position(self) -> str:
        """Where a single shape sits: "left", "right", "top", "bottom" or "middle"."""
        shape = self.shapes[0]
        dx, dy = shape.x - 0.5, shape.y - 0.5
        if max(abs(dx), abs(dy)) < MIDDLE_RADIUS:
            return "middle"
        if abs(dx) >= abs(dy):
            return "left" if dx < 0 else "right"
        return "top" if dy < 0 else "bottom"


def random_scene(
    rng: np.random.Generator,
    colour: str | None = None,
    kind: str | None = None,
    count: int = 1,
    exclude: tuple[tuple[str, str], ...] = (),
    any_hue: bool = False,
    tinted: bool = False,
) -> Scene:
    """Draw a random scene of ``count`` shapes of one colour and kind.

    Unset attributes are drawn uniformly; pairs in ``exclude`` are never drawn.
    Several shapes are small and placed without overlap. With ``any_hue`` the
    shapes get one colour from the whole hue circle instead of a jittered named
    colour (see ``any_hue_colour``), and ``colour`` must be unset. With
    ``tinted`` the background gets a uniformly drawn RGB colour at least
    MIN_TINT_CONTRAST away from the shapes' colour.
    """
    if not 1 <= count <= MAX_COUNT:
        raise RepLensError(f"count must be between 1 and {MAX_COUNT} but got {count}.")
    if any_hue:
        if colour is not None:
            raise RepLensError(
                f"colour must be unset when any_hue is set, because any_hue draws the colour, but got {colour!r}."
            )
        chosen_kind = kind or str(rng.choice(SHAPES))
        nearest, rgb = any_hue_colour(rng, chosen_kind, exclude)
        return _finish_scene(rng, nearest, chosen_kind, count, tinted, rgb)
    while True:
        chosen_colour = colour or str(rng.choice(list(COLOURS)))
        chosen_kind = kind or str(rng.choice(SHAPES))
        if (chosen_colour, chosen_kind) not in exclude:
            break
        if colour and kind:
            raise RepLensError(f"The pair ({colour}, {kind}) is excluded; choose another pair.")
    return _finish_scene(rng, chosen_colour, chosen_kind, count, tinted)


def any_hue_colour(
    rng: np.random.Generator, kind: str, exclude: tuple[tuple[str, str], ...] = (),
) -> tuple[str, tuple[int, int, int]]:
    """Draw a colour from the whole hue circle for a shape of ``kind``.

    Returns the nearest named colour (Euclidean distance in RGB) and the RGB.
    A colour is drawn again while its nearest or second-nearest named colour
    forms a pair in ``exclude`` with ``kind``, so the colours of a held-out
    pair, and those on the border of its region, never reach that shape.
    """
    names = list(COLOURS)
    centres = np.array([COLOURS[name] for name in names], dtype=np.float64)
    while True:
        hue, saturation, value = rng.uniform(0, 1), rng.uniform(0.3, 1), rng.uniform(0.3, 1)
        rgb = np.rint(np.array(colorsys.hsv_to_rgb(hue, saturation, value)) * 255)
        order = np.argsort(np.linalg.norm(centres - rgb, axis=1))
        if not any((names[index], kind) in exclude for index in order[:2]):
            return names[order[0]], tuple(int(channel) for channel in rgb)


def _finish_scene(
    rng: np.random.Generator, colour: str, kind: str, count: int, tinted: bool,
    rgb: tuple[int, int, int] | None = None,
) -> Scene:
    background = str(rng.choice(list(BACKGROUNDS)))
    size = "small" if count > 1 else str(rng.choice(list(SIZES)))
    shapes = _place(rng, colour, kind, size, count, rgb)
    noise = float(rng.choice([0.0, rng.uniform(2, 12)]))
    gradient = float(rng.choice([0.0, rng.uniform(-40, 40)]))
    if not tinted:
        return Scene(background, shapes, noise, gradient)

    shape_rgb = np.array(shapes[0].rgb, dtype=np.float64)
    while True:
        tint = rng.integers(0, 256, 3)
        if np.linalg.norm(tint - shape_rgb) >= MIN_TINT_CONTRAST:
            return Scene(TINTED, shapes, noise, gradient, tuple(int(channel) for channel in tint))


def render_scene(scene: Scene, size: int = 64, rng: np.random.Generator | None = None) -> np.ndarray:
    """Render ``scene`` as a (size, size, 3) uint8 RGB array.

    Noise needs ``rng``; without one the scene is drawn without noise.
    """
    if size < 8:
        raise RepLensError(f"size must be at least 8 pixels but got {size}.")
    big = size * _SUPERSAMPLE
    fill = scene.background_rgb or (BACKGROUNDS[scene.background],) * 3
    canvas = Image.new("RGB", (big, big), fill)
    draw = ImageDraw.Draw(canvas)
    for shape in scene.shapes:
        _draw_shape(draw, shape, big)
    pixels = np.asarray(canvas.resize((size, size), Image.Resampling.BOX)).astype(np.float32)

    if scene.gradient:
        ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)[:, None, None]
        pixels = pixels + scene.gradient * ramp
    if scene.noise and rng is not None:
        pixels = pixels + rng.normal(0.0, scene.noise, pixels.shape).astype(np.float32)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def mnist_holdout_indices(total: int = 5000) -> np.ndarray:
    """Return the sorted indices of the MNIST digits kept out of training."""
    order = np.random.default_rng(MNIST_HOLDOUT_SEED).permutation(total)
    return np.sort(order[:MNIST_HOLDOUT_SIZE])


def mnist_train_indices(total: int = 5000) -> np.ndarray:
    """Return the sorted indices of the MNIST digits used in training."""
    return np.setdiff1d(np.arange(total), mnist_holdout_indices(total))


def _place(
    rng: np.random.Generator, colour: str, kind: str, size: str, count: int, rgb: tuple[int, int, int] | None,
) -> tuple[Shape, ...]:
    """Place ``count`` shapes without overlap, starting over when the last one does not fit.

    Without ``rgb`` each shape gets the named colour's centre plus jitter.
    """
    low, high = SIZES[size]
    for _ in range(100):
        shapes: list[Shape] = []
        for _ in range(30):
            radius = float(rng.uniform(low, high))
            margin = radius + 0.02
            low_centre, high_centre = margin, 1 - margin
            if count == 1:
                low_centre, high_centre = max(margin, 0.5 - SINGLE_SPREAD), min(1 - margin, 0.5 + SINGLE_SPREAD)
            x, y = (float(v) for v in rng.uniform(low_centre, high_centre, 2))
            if all(math.hypot(x - s.x, y - s.y) > radius + s.radius + 0.03 for s in shapes):
                shape_rgb = rgb
                if shape_rgb is None:
                    jitter = rng.integers(-_COLOUR_JITTER, _COLOUR_JITTER + 1, 3)
                    shape_rgb = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(COLOURS[colour], jitter))
                shapes.append(Shape(colour, kind, size, x, y, radius, shape_rgb))
                if len(shapes) == count:
                    return tuple(shapes)
    raise RepLensError(f"Could not place {count} {size} shapes without overlap; use fewer shapes.")


def _draw_shape(draw: ImageDraw.ImageDraw, shape: Shape, side: int) -> None:
    cx, cy, r = shape.x * side, shape.y * side, shape.radius * side
    if shape.kind == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=shape.rgb)
    elif shape.kind == "square":
        half = r * 0.85
        draw.rectangle((cx - half, cy - half, cx + half, cy + half), fill=shape.rgb)
    elif shape.kind == "triangle":
        draw.polygon(_regular_polygon(cx, cy + 0.2 * r, 1.15 * r, 3, -90), fill=shape.rgb)
    elif shape.kind == "hexagon":
        draw.polygon(_regular_polygon(cx, cy, r, 6, 0), fill=shape.rgb)
    elif shape.kind == "star":
        draw.polygon(_star(cx, cy, r), fill=shape.rgb)
    elif shape.kind == "cross":
        arm = r * 0.33
        draw.rectangle((cx - r, cy - arm, cx + r, cy + arm), fill=shape.rgb)
        draw.rectangle((cx - arm, cy - r, cx + arm, cy + r), fill=shape.rgb)
    else:
        raise RepLensError(f"Unknown shape {shape.kind!r}; choose one of {', '.join(SHAPES)}.")


def _regular_polygon(cx: float, cy: float, r: float, sides: int, start_deg: float) -> list[tuple[float, float]]:
    angles = np.deg2rad(start_deg + 360.0 * np.arange(sides) / sides)
    return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in angles]


def _star(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    points = []
    for index in range(10):
        radius = r if index % 2 == 0 else r * 0.45
        angle = math.radians(-90 + 36 * index)
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points
