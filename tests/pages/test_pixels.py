"""AppTest runs of the pixels page on a bundled sample and on uploads."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.images import working_copy
from core.samples import DEFAULT_SAMPLE, load_sample
from tests.pages import support
from tests.pages.support import shown_metrics

PAGE = "pixels.py"


def run_page(upload: np.ndarray | None = None) -> AppTest:
    return support.run_page(PAGE, upload)


def patch_table(at: AppTest):
    return at.dataframe[0].value


def expected_patch(pixels: np.ndarray, top: int, left: int, size: int, channels: int) -> list[tuple]:
    patch = pixels[top : top + size, left : left + size, :channels]
    names = ["R", "G", "B"] if channels == 3 else ["Gray"]
    return [
        (top + y, left + x, names[c], int(patch[y, x, c]))
        for y in range(patch.shape[0]) for x in range(patch.shape[1]) for c in range(channels)
    ]


def test_sample_dimensions_and_patch():
    at = run_page()
    pixels = working_copy(load_sample(DEFAULT_SAMPLE)).pixels
    height, width, _ = pixels.shape

    assert not at.exception
    assert shown_metrics(at) == {
        "Height H": str(height),
        "Width W": str(width),
        "Channels C": "3",
        "Numbers N = H x W x C": f"{height * width * 3:,}",
    }
    table = patch_table(at)
    assert len(table) == 27
    assert list(table.itertuples(index=False, name=None)) == expected_patch(pixels, height // 2, width // 2, 3, 3)
    assert any("3 x 3 x 3 = 27 values" in markdown.value for markdown in at.markdown)


def test_sample_patch_follows_widgets():
    at = run_page()
    pixels = working_copy(load_sample(DEFAULT_SAMPLE)).pixels

    at.slider(key="pixels_patch_size").set_value(4)
    at.number_input(key="pixels_patch_row").set_value(10)
    at.number_input(key="pixels_patch_column").set_value(20)
    at.run()

    assert not at.exception
    table = patch_table(at)
    assert len(table) == 48
    assert list(table.itertuples(index=False, name=None)) == expected_patch(pixels, 10, 20, 4, 3)
    assert any("4 x 4 x 3 = 48 values" in markdown.value for markdown in at.markdown)


def test_sample_vector_preview_and_range():
    at = run_page()
    pixels = working_copy(load_sample(DEFAULT_SAMPLE)).pixels

    preview = at.code[0].value
    expected = ", ".join([
        f"I[0, 0, R] = {pixels[0, 0, 0]}",
        f"I[0, 0, G] = {pixels[0, 0, 1]}",
        f"I[0, 0, B] = {pixels[0, 0, 2]}",
        f"I[0, 1, R] = {pixels[0, 1, 0]}",
    ])
    assert preview.startswith(expected + ", ")
    assert any(f"**{pixels.min()}** to **{pixels.max()}**" in markdown.value for markdown in at.markdown)


def test_upload_colour_patch_values():
    pixels = np.random.default_rng(3).integers(0, 256, (20, 30, 3), dtype=np.uint8)

    at = run_page(pixels)

    assert not at.exception
    assert shown_metrics(at)["Numbers N = H x W x C"] == f"{20 * 30 * 3:,}"
    assert list(patch_table(at).itertuples(index=False, name=None)) == expected_patch(pixels, 10, 15, 3, 3)


def test_upload_grayscale_shows_one_channel():
    gray = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 3).astype(np.uint8)

    at = run_page(gray)

    assert not at.exception
    assert shown_metrics(at)["Channels C"] == "1"
    assert shown_metrics(at)["Numbers N = H x W x C"] == "64"
    assert [tab.label for tab in at.tabs] == ["Gray", "Gray"]
    table = patch_table(at)
    assert list(table.itertuples(index=False, name=None)) == expected_patch(gray[..., None], 4, 4, 3, 1)
    assert any("3 x 3 x 1 = 9 values" in markdown.value for markdown in at.markdown)


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 50, 3), (3, 3, 3)])
def test_tiny_uploads(shape):
    pixels = np.random.default_rng(5).integers(0, 256, shape, dtype=np.uint8)

    at = run_page(pixels)

    assert not at.exception
    height, width, _ = shape
    size = min(3, height, width)
    top, left = min(height // 2, height - size), min(width // 2, width - size)
    assert shown_metrics(at)["Numbers N = H x W x C"] == f"{height * width * 3:,}"
    assert list(patch_table(at).itertuples(index=False, name=None)) == expected_patch(pixels, top, left, size, 3)
