"""Bundled samples: every listed name loads, and rendered scenes have their stated colours."""

import numpy as np
import pytest

from core.errors import RepLensError
from core.samples import SCENE_SAMPLE_SIZE, SCENE_SAMPLES, load_sample, sample_names
from core.synthetic import BACKGROUNDS, COLOURS, HELD_OUT_COMBOS


@pytest.mark.parametrize("name", sample_names())
def test_every_sample_loads_as_rgb(name):
    image = load_sample(name)
    assert image.pixels.dtype == np.uint8
    assert image.pixels.ndim == 3
    assert image.pixels.shape[2] == 3
    assert image.name == name


def test_red_circle_colours():
    pixels = load_sample("Rendered red circle (RepLens)").pixels
    centre = SCENE_SAMPLE_SIZE // 2
    assert pixels.shape == (SCENE_SAMPLE_SIZE, SCENE_SAMPLE_SIZE, 3)
    assert tuple(pixels[centre, centre]) == COLOURS["red"]
    assert tuple(pixels[0, 0]) == (BACKGROUNDS["white"],) * 3


def test_held_out_sample_is_held_out():
    held_out = [scene for name, scene in SCENE_SAMPLES.items() if "held out" in name]
    assert len(held_out) == 1
    assert (held_out[0].colour, held_out[0].kind) in HELD_OUT_COMBOS


def test_unknown_sample_raises():
    with pytest.raises(RepLensError, match="Unknown sample"):
        load_sample("Rendered green moon (RepLens)")
