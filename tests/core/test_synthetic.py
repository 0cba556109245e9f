"""Rendered shape scenes: geometry, colours, reproducibility and held-out data."""

import math

import numpy as np
import pytest

from core.errors import RepLensError
from core.synthetic import (
    BACKGROUNDS, COLOURS, HELD_OUT_COMBOS, MIN_TINT_CONTRAST, MNIST_HOLDOUT_SIZE, SHAPES, TINTED, Scene, Shape,
    mnist_holdout_indices, mnist_train_indices, random_scene, render_scene,
)


def _single(kind: str, colour: str = "red", x: float = 0.5, y: float = 0.5, radius: float = 0.3) -> Scene:
    return Scene("white", (Shape(colour, kind, "large", x, y, radius, COLOURS[colour]),))


def _shape_mask(pixels: np.ndarray) -> np.ndarray:
    return pixels.astype(int).sum(axis=2) < 3 * BACKGROUNDS["white"] - 60


def test_render_shape_and_dtype():
    pixels = render_scene(_single("circle"), size=64)
    assert pixels.shape == (64, 64, 3)
    assert pixels.dtype == np.uint8


def test_circle_area_matches_pi_r_squared():
    size, radius = 128, 0.3
    mask = _shape_mask(render_scene(_single("circle", radius=radius), size=size))
    expected = math.pi * (radius * size) ** 2
    assert mask.sum() == pytest.approx(expected, rel=0.03)


def test_square_area_matches_side_squared():
    size, radius = 128, 0.3
    mask = _shape_mask(render_scene(_single("square", radius=radius), size=size))
    side = 2 * 0.85 * radius * size
    assert mask.sum() == pytest.approx(side**2, rel=0.04)


def test_shape_areas_differ_by_kind():
    areas = {kind: _shape_mask(render_scene(_single(kind), size=96)).sum() for kind in SHAPES}
    assert len(set(areas.values())) == len(SHAPES)
    assert areas["star"] < areas["hexagon"] < areas["circle"]


def test_centre_pixel_has_shape_colour():
    for colour, rgb in COLOURS.items():
        pixels = render_scene(_single("circle", colour), size=64)
        np.testing.assert_array_equal(pixels[32, 32], rgb)


def test_corner_pixel_is_background():
    for name, level in BACKGROUNDS.items():
        scene = Scene(name, _single("circle", radius=0.2).shapes)
        assert tuple(render_scene(scene, size=64)[1, 1]) == (level, level, level)


def test_shape_centred_where_placed():
    mask = _shape_mask(render_scene(_single("circle", x=0.25, y=0.75, radius=0.15), size=100))
    rows, columns = np.nonzero(mask)
    assert columns.mean() == pytest.approx(25, abs=1)
    assert rows.mean() == pytest.approx(75, abs=1)


def test_same_seed_same_scene():
    first = render_scene(random_scene(np.random.default_rng(7), count=3), 64, np.random.default_rng(1))
    second = render_scene(random_scene(np.random.default_rng(7), count=3), 64, np.random.default_rng(1))
    np.testing.assert_array_equal(first, second)


def test_random_scene_respects_exclusions():
    rng = np.random.default_rng(0)
    pairs = {(s.colour, s.kind) for s in (random_scene(rng, exclude=HELD_OUT_COMBOS) for _ in range(600))}
    assert not pairs & set(HELD_OUT_COMBOS)
    assert len(pairs) == len(COLOURS) * len(SHAPES) - len(HELD_OUT_COMBOS)


def test_excluded_pair_requested_raises():
    colour, kind = HELD_OUT_COMBOS[0]
    with pytest.raises(RepLensError, match="excluded"):
        random_scene(np.random.default_rng(0), colour, kind, exclude=HELD_OUT_COMBOS)


def test_any_hue_keeps_held_out_colours_away():
    rng = np.random.default_rng(5)
    centres = {name: np.array(rgb, dtype=float) for name, rgb in COLOURS.items()}
    for held_colour, kind in HELD_OUT_COMBOS:
        nearest_names = set()
        for _ in range(300):
            scene = random_scene(rng, kind=kind, exclude=HELD_OUT_COMBOS, any_hue=True)
            rgb = np.array(scene.shapes[0].rgb, dtype=float)
            held_distance = np.linalg.norm(rgb - centres[held_colour])
            closer = [name for name, centre in centres.items() if np.linalg.norm(rgb - centre) < held_distance]
            assert len(closer) >= 2, (kind, scene.shapes[0].rgb)
            assert scene.kind == kind
            nearest_names.add(scene.colour)
        assert len(nearest_names) >= 5


def test_held_out_test_colours_stay_in_their_region():
    rng = np.random.default_rng(6)
    centres = {name: np.array(rgb, dtype=float) for name, rgb in COLOURS.items()}
    for colour, kind in HELD_OUT_COMBOS:
        for _ in range(50):
            rgb = np.array(random_scene(rng, colour, kind).shapes[0].rgb, dtype=float)
            nearest = min(centres, key=lambda name: np.linalg.norm(rgb - centres[name]))
            assert nearest == colour


def test_tinted_background_contrast_and_render():
    rng = np.random.default_rng(8)
    for _ in range(100):
        scene = random_scene(rng, exclude=HELD_OUT_COMBOS, tinted=True)
        assert scene.background == TINTED
        distance = np.linalg.norm(np.subtract(scene.background_rgb, scene.shapes[0].rgb, dtype=float))
        assert distance >= MIN_TINT_CONTRAST
    plain = Scene(TINTED, scene.shapes, background_rgb=(10, 200, 90))
    corner = render_scene(plain, 64)[0, 0]
    np.testing.assert_array_equal(corner, [10, 200, 90])


def test_any_hue_with_colour_raises():
    with pytest.raises(RepLensError, match="colour"):
        random_scene(np.random.default_rng(0), "red", any_hue=True)


def test_group_shapes_do_not_overlap():
    rng = np.random.default_rng(3)
    for _ in range(50):
        scene = random_scene(rng, count=4)
        assert scene.count == 4
        for i, a in enumerate(scene.shapes):
            for b in scene.shapes[i + 1:]:
                assert math.hypot(a.x - b.x, a.y - b.y) > a.radius + b.radius


def test_count_out_of_range_raises():
    with pytest.raises(RepLensError, match="count"):
        random_scene(np.random.default_rng(0), count=9)


@pytest.mark.parametrize(
    ("x", "y", "position"),
    [(0.5, 0.5, "middle"), (0.4, 0.5, "left"), (0.6, 0.55, "right"), (0.5, 0.35, "top"), (0.55, 0.65, "bottom")],
)
def test_position_names(x, y, position):
    assert _single("circle", x=x, y=y, radius=0.1).position == position


def test_mnist_split_disjoint_and_fixed():
    holdout, train = mnist_holdout_indices(), mnist_train_indices()
    assert len(holdout) == MNIST_HOLDOUT_SIZE
    assert len(train) == 5000 - MNIST_HOLDOUT_SIZE
    assert not np.intersect1d(holdout, train).size
    np.testing.assert_array_equal(holdout, mnist_holdout_indices())


def test_tinted_scene_without_colour_raises():
    shape = Shape("red", "circle", "large", 0.5, 0.5, 0.3, COLOURS["red"])
    with pytest.raises(RepLensError, match="background_rgb"):
        Scene(TINTED, (shape,))


def test_unknown_background_raises():
    shape = Shape("red", "circle", "large", 0.5, 0.5, 0.3, COLOURS["red"])
    with pytest.raises(RepLensError, match="Unknown background"):
        Scene("plaid", (shape,))
