"""AppTest runs of the kernels page on a bundled sample and on uploads."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.images import working_copy
from core.kernels import BORDER_MODES, EMBOSS, PRESETS, SOBEL_X, apply_kernel, apply_preset, to_display
from core.samples import DEFAULT_SAMPLE, load_sample
from tests.pages import support
from tests.pages.support import shown_metrics

PAGE = "convolution_kernels.py"
OUTPUT_LABEL = "Output value at this pixel (float32)"
SHOWN_LABEL = "Shown as (uint8)"


def run_page(upload: np.ndarray | None = None) -> AppTest:
    return support.run_page(PAGE, upload)


def set_pixel(at: AppTest, row: int, column: int) -> None:
    at.number_input(key="kernels_row").set_value(row)
    at.number_input(key="kernels_column").set_value(column)


def sample_pixels() -> np.ndarray:
    return working_copy(load_sample(DEFAULT_SAMPLE)).pixels


def test_sample_default_is_sobel_convolution():
    at = run_page()
    pixels = sample_pixels()
    row, column = pixels.shape[0] // 2, pixels.shape[1] // 2

    expected = apply_kernel(pixels, SOBEL_X, "convolution", "reflect")[row, column, 0]

    assert not at.exception
    assert shown_metrics(at)[OUTPUT_LABEL] == f"{expected:.6g}"
    assert shown_metrics(at)[SHOWN_LABEL] == str(to_display(np.array([expected]), "absolute")[0])
    assert at.code[0].value.endswith(f"= {expected:.6g}")


@pytest.mark.parametrize("operation", ["convolution", "correlation"])
@pytest.mark.parametrize("border", list(BORDER_MODES))
def test_sample_corner_pixel_matches_core(operation, border):
    at = run_page()
    pixels = sample_pixels()

    at.radio(key="kernels_operation").set_value(operation)
    at.selectbox(key="kernels_border").set_value(border)
    at.radio(key="kernels_channel").set_value("G")
    set_pixel(at, 0, pixels.shape[1] - 1)
    at.run()

    expected = apply_kernel(pixels, SOBEL_X, operation, border)[0, pixels.shape[1] - 1, 1]
    assert not at.exception
    assert shown_metrics(at)[OUTPUT_LABEL] == f"{expected:.6g}"


def test_sample_grayscale_and_magnitude():
    at = run_page()
    image = working_copy(load_sample(DEFAULT_SAMPLE))

    at.radio(key="kernels_colour").set_value("Grayscale")
    at.selectbox(key="kernels_preset").set_value("Sobel magnitude")
    set_pixel(at, 100, 200)
    at.run()

    expected = apply_preset(image.gray, PRESETS["Sobel magnitude"], "convolution", "reflect")[100, 200]
    assert not at.exception
    assert float(shown_metrics(at)[OUTPUT_LABEL]) == pytest.approx(float(expected), rel=1e-5)
    assert len(at.code) == 2  # the Gx and Gy sums


def test_flipped_kernel_is_shown():
    at = run_page()

    at.selectbox(key="kernels_preset").set_value("Emboss")
    at.run()

    written, applied = at.dataframe[0].value.to_numpy(), at.dataframe[1].value.to_numpy()
    np.testing.assert_array_equal(written, EMBOSS)
    np.testing.assert_array_equal(applied, EMBOSS[::-1, ::-1])
    assert any("flipped" in markdown.value for markdown in at.markdown)

    at.radio(key="kernels_operation").set_value("correlation").run()
    np.testing.assert_array_equal(at.dataframe[1].value.to_numpy(), EMBOSS)


@pytest.mark.parametrize(
    "operation, expected", [("convolution", SOBEL_X[1, 0]), ("correlation", SOBEL_X[1, 2])]
)
def test_upload_impulse_reveals_operation(operation, expected):
    impulse = np.zeros((7, 7), np.uint8)
    impulse[3, 3] = 1

    at = run_page(impulse)
    at.radio(key="kernels_operation").set_value(operation)
    set_pixel(at, 3, 2)
    at.run()

    assert not at.exception
    assert shown_metrics(at)[OUTPUT_LABEL] == f"{expected:g}"


@pytest.mark.parametrize("preset, value", [("Laplacian", 0), ("Outline", 0), ("Box blur", 100), ("Sharpen", 100)])
def test_upload_flat_image(preset, value):
    flat = np.full((5, 5), 100, np.uint8)

    at = run_page(flat)
    at.selectbox(key="kernels_preset").set_value(preset)
    set_pixel(at, 0, 4)
    at.run()

    assert not at.exception
    assert float(shown_metrics(at)[OUTPUT_LABEL]) == pytest.approx(value, abs=1e-4)
    assert shown_metrics(at)[SHOWN_LABEL] == str(value)


@pytest.mark.parametrize("row, column", [(0, 0), (2, 2), (4, 4)])
def test_upload_box_blur_keeps_flat_200(row, column):
    flat = np.full((5, 5, 3), 200, np.uint8)

    at = run_page(flat)
    at.selectbox(key="kernels_preset").set_value("Box blur")
    set_pixel(at, row, column)
    at.run()

    assert not at.exception
    assert shown_metrics(at)[SHOWN_LABEL] == "200"
    assert any("Response range 200 to 200" in caption.value for caption in at.caption)


def test_custom_kernel_starts_as_identity():
    pixels = np.random.default_rng(2).integers(0, 256, (6, 9, 3), dtype=np.uint8)

    at = run_page(pixels)
    at.radio(key="kernels_source").set_value("Custom").run()
    at.radio(key="kernels_custom_size").set_value(5)
    at.radio(key="kernels_channel").set_value("B")
    set_pixel(at, 1, 7)
    at.run()

    assert not at.exception
    assert shown_metrics(at)[OUTPUT_LABEL] == str(pixels[1, 7, 2])


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 50, 3), (3, 3, 3), (8, 8)])
def test_tiny_uploads(shape):
    pixels = np.random.default_rng(4).integers(0, 256, shape, dtype=np.uint8)

    at = run_page(pixels)

    height, width = shape[:2]
    source = pixels[..., 0] if len(shape) == 3 else pixels
    expected = apply_kernel(source, SOBEL_X, "convolution", "reflect")[height // 2, width // 2]
    assert not at.exception
    assert shown_metrics(at)[OUTPUT_LABEL] == f"{expected:.6g}"
