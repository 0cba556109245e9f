"""Helpers shared by the AppTest runs of single pages."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from components.image_source import IMAGE_KEY
from core.images import decode_image

PAGES_DIR = Path(__file__).resolve().parents[2] / "pages"


def png_bytes(pixels: np.ndarray) -> bytes:
    """Encode a uint8 array as PNG file bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def run_page(page: str, upload: np.ndarray | None = None, timeout: float = 60) -> AppTest:
    """Run ``pages/<page>`` once, with ``upload`` decoded as the shared image when given."""
    at = AppTest.from_file(str(PAGES_DIR / page), default_timeout=timeout)
    if upload is not None:
        at.session_state[IMAGE_KEY] = decode_image(png_bytes(upload), "upload.png")
    return at.run()


def shown_metrics(at: AppTest) -> dict[str, str]:
    """Map each st.metric label on the page to its shown value."""
    return {metric.label: metric.value for metric in at.metric}
