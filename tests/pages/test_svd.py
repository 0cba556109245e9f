"""AppTest runs of the SVD page on a bundled sample and on uploads."""

import io
import threading
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

import components.svd_cache
from core.images import decode_image
from core.samples import DEFAULT_SAMPLE, load_sample
from core.svd import (
    QUICK_SKETCH,
    channel_matrices,
    compression_ratio,
    cumulative_energy,
    decompose_exact,
    decompose_sketch,
    quality,
    reconstruct,
    reference_image,
    spectrum_psnr,
)

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "svd.py")


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def run_page(upload: np.ndarray | None = None, name: str = "upload.png") -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    if upload is not None:
        at.session_state["replens_image"] = decode_image(png_bytes(upload), name)
    return at.run()


def shown_metrics(at: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


def expected_metrics(pixels: np.ndarray, mode: str, k: int, exact: bool = True) -> dict[str, str]:
    """The metric texts the page should show, computed with core directly."""
    matrices = channel_matrices(pixels, mode)
    svd = decompose_exact(matrices) if exact else decompose_sketch(matrices, QUICK_SKETCH)
    psnr_db, similarity = quality(reference_image(pixels, mode), reconstruct(svd, k))
    height, width = pixels.shape[:2]
    return {
        "Rank k": str(k),
        "Compression ratio": f"{compression_ratio(height, width, k):.4f}",
        "Energy kept": f"{100 * cumulative_energy(svd)[k - 1]:.2f} %",
        "PSNR": "∞ (exact)" if np.isinf(psnr_db) else f"{psnr_db:.2f} dB",
        "SSIM": "n/a" if similarity is None else f"{similarity:.4f}",
    }


def assert_metrics(at: AppTest, expected: dict[str, str]) -> None:
    shown = shown_metrics(at)
    for label, value in expected.items():
        assert shown[label] == value, label


def test_default_sample_shows_core_values():
    at = run_page()
    assert not at.exception
    assert any("Eckart" in block.value for block in at.markdown)
    assert len(at.latex) >= 3
    assert any(caption.value.startswith("Exact SVD: all 512") for caption in at.caption)

    pixels = load_sample(DEFAULT_SAMPLE).pixels
    assert at.slider(key="svd_rank").max == 512
    assert_metrics(at, expected_metrics(pixels, "RGB", 20))
    assert len(at.get("plotly_chart")) == 3
    assert len(at.get("image")) == 3 + 8


def test_slider_move_changes_values():
    at = run_page()
    before = shown_metrics(at)
    at.slider(key="svd_rank").set_value(5).run()
    assert not at.exception
    after = shown_metrics(at)
    for label in ("Rank k", "Compression ratio", "PSNR", "SSIM"):
        assert after[label] != before[label], label
    assert_metrics(at, expected_metrics(load_sample(DEFAULT_SAMPLE).pixels, "RGB", 5))


def test_grayscale_mode_on_upload():
    pixels = np.ascontiguousarray(skimage.data.coffee()[100:250, 150:350])  # (150, 200, 3)
    at = run_page(pixels)
    assert not at.exception
    assert_metrics(at, expected_metrics(pixels, "RGB", 20))

    at.radio(key="svd_mode").set_value("Grayscale").run()
    assert not at.exception
    assert_metrics(at, expected_metrics(pixels, "Grayscale", 20))

    at.slider(key="svd_rank").set_value(150).run()
    assert shown_metrics(at)["PSNR"] == "∞ (exact)"
    assert shown_metrics(at)["Energy kept"] == "100.00 %"


def test_large_upload_shows_truncated_then_exact(monkeypatch):
    release = threading.Event()

    def delayed_exact(matrices):
        release.wait(timeout=120)
        return decompose_exact(matrices)

    monkeypatch.setattr(components.svd_cache, "decompose_exact", delayed_exact)
    # A real photo above the size that gets the exact SVD at once.
    pixels = np.asarray(Image.fromarray(skimage.data.chelsea()).resize((700, 600)))
    try:
        at = run_page(pixels)
        assert not at.exception
        assert any("randomized truncated SVD" in block.value for block in at.info)
        assert at.slider(key="svd_rank").max == 600
        assert_metrics(at, expected_metrics(pixels, "RGB", 20, exact=False))
    finally:
        release.set()

    at.slider(key="svd_rank").set_value(100).run()
    assert not at.exception
    assert not at.info
    assert any(caption.value.startswith("Exact SVD: all 600") for caption in at.caption)
    assert_metrics(at, expected_metrics(pixels, "RGB", 100))


@pytest.mark.parametrize("height, width", [(1, 1), (1, 50), (50, 1)])
def test_single_row_or_pixel_images_have_rank_one(height, width):
    pixels = np.random.default_rng(6).integers(0, 256, (height, width, 3), dtype=np.uint8)
    at = run_page(pixels)
    assert not at.exception
    assert len(at.slider) == 0
    assert "k = 1 is the only choice" in at.info[0].value
    assert_metrics(at, expected_metrics(pixels, "RGB", 1))
    assert shown_metrics(at)["PSNR"] == "∞ (exact)"
    assert shown_metrics(at)["SSIM"] == "n/a"


def test_three_by_three_image_has_rank_three():
    pixels = np.random.default_rng(7).integers(0, 256, (3, 3, 3), dtype=np.uint8)
    at = run_page(pixels)
    assert not at.exception
    slider = at.slider(key="svd_rank")
    assert slider.max == 3
    assert any("every row is a multiple of one row pattern" in caption.value for caption in at.caption)
    slider.set_value(1).run()
    assert_metrics(at, expected_metrics(pixels, "RGB", 1))
    at.slider(key="svd_rank").set_value(3).run()
    assert shown_metrics(at)["PSNR"] == "∞ (exact)"


def test_large_image_computes_ssim_on_request(monkeypatch):
    release = threading.Event()

    def never_finished_exact(matrices):
        release.wait(timeout=120)
        raise RuntimeError("the exact SVD is not needed in this test")

    def quick_sketch_only(matrices, settings):
        if settings != QUICK_SKETCH:
            release.wait(timeout=120)
        return decompose_sketch(matrices, settings)

    monkeypatch.setattr(components.svd_cache, "decompose_exact", never_finished_exact)
    monkeypatch.setattr(components.svd_cache, "decompose_sketch", quick_sketch_only)
    # A real photo of 2.1 megapixels, above the size where SSIM runs without asking.
    pixels = np.asarray(Image.fromarray(skimage.data.coffee()).resize((1500, 1400)))
    try:
        at = AppTest.from_file(PAGE, default_timeout=120)
        at.session_state["replens_image"] = decode_image(png_bytes(pixels), "large.png")
        at.session_state["replens_full_size"] = True
        at.run()
        assert not at.exception
        assert shown_metrics(at)["SSIM"] == "off"
        assert len(at.get("plotly_chart")) == 2
        assert any("randomized SVD of the top 128" in block.value for block in at.info)

        # Without the full-size rebuild the PSNR is that of the unrounded rebuild, from the spectrum.
        svd = decompose_sketch(channel_matrices(pixels, "RGB"), QUICK_SKETCH)
        assert shown_metrics(at)["PSNR"] == f"{spectrum_psnr(svd, 20):.2f} dB"
        assert any(caption.value.startswith("PSNR is that of the unrounded") for caption in at.caption)
        captions = [shown.caption for image in at.get("image") for shown in image.proto.imgs]
        assert "Rank 20, averaged over 2 x 2 pixel blocks, rounded and clipped to 0..255" in captions
        assert len(at.get("download_button")) == 1

        at.checkbox(key="svd_quality").check().run()
        assert not at.exception
        assert_metrics(at, expected_metrics(pixels, "RGB", 20, exact=False))
        assert len(at.get("plotly_chart")) == 3
    finally:
        release.set()
