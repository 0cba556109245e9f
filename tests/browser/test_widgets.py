"""Widgets that AppTest cannot drive: the SVD download button and the custom-kernel grid."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.browser.test_app import _exceptions, _open, _upload, _wait_until_idle

pytestmark = pytest.mark.browser

# Streamlit 1.67 draws each data-editor row, the header included, 35 CSS pixels high (measured on a 3 x 3 grid).
GRID_ROW_HEIGHT = 35


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _noisy_gradient(width: int = 96, height: int = 64) -> np.ndarray:
    """Build RGB ramps plus Gaussian noise, so that every rank changes the rebuilt image."""
    x = np.linspace(0, 255, width)
    y = np.linspace(0, 255, height)
    ramps = np.stack(
        [np.tile(x, (height, 1)), np.tile(y[:, None], (1, width)), np.add.outer(y, x) / 2], axis=2
    )
    noise = np.random.default_rng(7).normal(0.0, 25.0, ramps.shape)
    return np.clip(np.rint(ramps + noise), 0, 255).astype(np.uint8)


def _rank_k_reference(pixels: np.ndarray, k: int) -> np.ndarray:
    """Keep the top k singular triplets of each channel in float64, then round and clip to uint8."""
    channels = []
    for c in range(pixels.shape[2]):
        u, s, vt = np.linalg.svd(pixels[:, :, c].astype(np.float64), full_matrices=False)
        channels.append((u[:, :k] * s[:k]) @ vt[:k])
    return np.clip(np.rint(np.stack(channels, axis=2)), 0, 255).astype(np.uint8)


def _download_rank_image(page, k: int) -> np.ndarray:
    button = page.get_by_test_id("stMain").get_by_role("button", name=f"Download the full-size rank-{k} image")
    with page.expect_download() as download_info:
        button.click()
    download = download_info.value
    assert download.suggested_filename == f"noisy_rank{k}.png"
    with Image.open(download.path()) as downloaded:
        assert downloaded.mode == "RGB"
        return np.asarray(downloaded)


def test_svd_download_matches_rank_k(page):
    pixels = _noisy_gradient()
    _upload(page, "noisy.png", _png(pixels))
    _open(page, "SVD")
    main = page.get_by_test_id("stMain")
    slider = main.get_by_role("slider").first
    main.get_by_test_id("stMetric").first.wait_for()
    k = int(slider.input_value())
    assert main.get_by_test_id("stSliderThumbValue").first.inner_text() == str(k)
    assert main.get_by_test_id("stMetric").first.inner_text().split() == ["Rank", "k", str(k)]

    downloaded = _download_rank_image(page, k)
    assert downloaded.shape == pixels.shape
    difference = np.abs(downloaded.astype(int) - _rank_k_reference(pixels, k).astype(int))
    assert difference.max() <= 1, f"rank-{k} download is up to {difference.max()} levels off"
    # The references at k and k + 3 differ in most pixels, so the comparison above fixes k.
    assert np.mean(_rank_k_reference(pixels, k + 3) != _rank_k_reference(pixels, k)) > 0.3

    slider.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(150)
    _wait_until_idle(page)
    higher = int(slider.input_value())
    assert higher == k + 3
    downloaded_higher = _download_rank_image(page, higher)
    difference = np.abs(downloaded_higher.astype(int) - _rank_k_reference(pixels, higher).astype(int))
    assert difference.max() <= 1, f"rank-{higher} download is up to {difference.max()} levels off"
    assert not np.array_equal(downloaded_higher, downloaded)
    assert _exceptions(page) == []


def _product_count(page) -> int:
    """Count the products in the written-out sum, one per non-zero weight."""
    return page.get_by_test_id("stMain").get_by_test_id("stCode").first.inner_text().count("×")


def _wait_for_products(page, products: int, timeout_ms: int) -> bool:
    """Poll until the written-out sum has ``products`` products; return whether it got there in time.

    The page may still show the previous run's sum for a while after a widget changes.
    """
    for _ in range(timeout_ms // 200):
        if _product_count(page) == products:
            return True
        page.wait_for_timeout(200)
    return _product_count(page) == products


def _type_into_cell(page, grid, row: int, column: int, columns: int, text: str, products: int) -> None:
    """Click data cell (row, column), type ``text``, press Enter, and wait for ``products`` products.

    The index column is taken to be as wide as a data column, which holds for the 3 x 3 editor.
    Keys typed before the cell editor opens are lost on a busy machine, so the edit is tried again,
    with longer pauses, until the sum shows the expected number of non-zero weights.
    """
    box = grid.bounding_box()
    cell_width = box["width"] / (columns + 1)
    x = box["x"] + (column + 1.5) * cell_width
    y = box["y"] + (row + 1.5) * GRID_ROW_HEIGHT
    for attempt in range(1, 4):
        page.mouse.click(x, y)
        page.wait_for_timeout(300 * attempt)
        page.keyboard.type(text)
        page.wait_for_timeout(300 * attempt)
        page.keyboard.press("Enter")
        _wait_until_idle(page)
        if _wait_for_products(page, products, 5_000 * attempt):
            return
    raise AssertionError(f"typing {text!r} into cell ({row}, {column}) left {_product_count(page)} products")


def _metric_value(page, label: str) -> str:
    """Return the value text of the one metric whose label starts with ``label``."""
    texts = page.get_by_test_id("stMain").get_by_test_id("stMetric").all_inner_texts()
    matching = [text for text in texts if text.startswith(label)]
    assert len(matching) == 1, f"expected one metric {label!r} among {texts}"
    return matching[0].split()[-1]


def test_custom_kernel_pixel_arithmetic(page):
    pixels = np.random.default_rng(3).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    _upload(page, "kernel.png", _png(pixels))
    _open(page, "Kernels")
    main = page.get_by_test_id("stMain")
    main.get_by_text("Custom", exact=True).click()
    _wait_until_idle(page)
    # The custom kernel starts as the identity: one non-zero weight. Until then the page may still
    # show the preset, whose weights table is also a data frame.
    assert _wait_for_products(page, 1, 60_000)
    grid = main.get_by_test_id("stDataFrame").first
    grid.scroll_into_view_if_needed()

    # Written weights: 2 at the top left, 1 right of the centre, 0 at the centre.
    _type_into_cell(page, grid, 0, 0, 3, "2", products=2)
    _type_into_cell(page, grid, 1, 2, 3, "1", products=3)
    _type_into_cell(page, grid, 1, 1, 3, "0", products=2)

    assert main.get_by_text("The weights were divided by their sum, 3.").count() == 1
    # Defaults: convolution, reflect border, channel R, pixel (H // 2, W // 2).
    height, width = pixels.shape[:2]
    row, column = height // 2, width // 2
    red = pixels[:, :, 0].astype(np.float64)
    # Convolution flips the kernel: the weight right of the centre reads the pixel to the
    # left, and the top-left weight reads the pixel below and to the right.
    expected = (red[row, column - 1] * 1 + red[row + 1, column + 1] * 2) / 3

    assert float(_metric_value(page, "Output value at this pixel")) == pytest.approx(expected, rel=1e-5)
    assert int(_metric_value(page, "Shown as")) == int(np.clip(np.rint(expected), 0, 255))

    # The written-out sum ends with the same value.
    sum_line = main.get_by_test_id("stCode").first.inner_text()
    assert float(sum_line.rsplit("=", 1)[-1]) == pytest.approx(expected, rel=1e-5)

    # At the last column the weight below-right reads past the edge, where reflect repeats the edge pixel.
    last = width - 1
    column_input = main.get_by_test_id("stNumberInput").filter(has_text="Column").locator("input")
    column_input.fill(str(last))
    column_input.press("Enter")
    _wait_until_idle(page)
    expected_at_edge = (red[row, last - 1] * 1 + red[row + 1, last] * 2) / 3
    assert float(_metric_value(page, "Output value at this pixel")) == pytest.approx(expected_at_edge, rel=1e-5)
    assert _exceptions(page) == []
