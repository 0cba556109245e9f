"""Inputs and cached computations for the CLIP metrics page.

Uploaded files are read as ``(file name, bytes)`` pairs. When a file
uploader is empty, the page falls back to pairs stored in
``st.session_state`` under the keys below, so tests and other pages can
provide files without a browser.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Sequence

import numpy as np
import streamlit as st
from PIL import Image

from core.clip import ClipBundle
from core.clip_metrics import ClipScores, ImageSet, SetComparison, compare_image_sets, image_set_from_files, score_captions

# Session-state fallbacks: lists of (file name, bytes), a {file name: caption}
# dict that pre-fills the caption editor, and the bytes of a caption CSV.
CAPTION_FILES_KEY = "clip_metrics_caption_files"
CAPTIONS_KEY = "clip_metrics_captions"
CAPTION_CSV_KEY = "clip_metrics_caption_csv"
GENERATED_FILES_KEY = "clip_metrics_generated_files"
REFERENCE_FILES_KEY = "clip_metrics_reference_files"

# Maximum width and height of the thumbnails in tables, in pixels.
THUMBNAIL_SIDE = 96


def uploaded_files(label: str, key: str, types: Sequence[str], fallback_key: str, help_text: str) -> list[tuple[str, bytes]]:
    """Draw a multi-file uploader and return its files, or the session-state fallback when empty."""
    uploads = st.file_uploader(label, type=list(types), accept_multiple_files=True, key=key, help=help_text)
    if uploads:
        return [(upload.name, upload.getvalue()) for upload in uploads]
    return [(str(name), bytes(data)) for name, data in st.session_state.get(fallback_key, [])]


def files_digest(files: Sequence[tuple[str, bytes]]) -> str:
    """Return a SHA-256 hex digest of the names and contents of ``files``, in order."""
    digest = hashlib.sha256()
    for name, data in files:
        digest.update(name.encode("utf-8"))
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


@st.cache_data(max_entries=8, show_spinner="Decoding images…")
def load_image_set(files: tuple[tuple[str, bytes], ...], set_name: str) -> ImageSet:
    return image_set_from_files(files, set_name)


@st.cache_data(max_entries=16, show_spinner="Encoding images and captions…")
def cached_caption_scores(
    _bundle: ClipBundle,
    model_key: str,
    images_key: str,
    _images: tuple[np.ndarray, ...],
    captions: tuple[str, ...],
    names: tuple[str, ...],
) -> ClipScores:
    """``score_captions``, cached by model, image content digest and captions."""
    return score_captions(_bundle, list(_images), list(captions), names=list(names))


@st.cache_data(max_entries=8, show_spinner="Encoding both image sets…")
def cached_set_comparison(
    _bundle: ClipBundle,
    model_key: str,
    sets_key: str,
    _generated: tuple[np.ndarray, ...],
    _reference: tuple[np.ndarray, ...],
    batch_size: int | None,
) -> SetComparison:
    """``compare_image_sets``, cached by model, image content digest and batch size."""
    return compare_image_sets(_bundle, list(_generated), list(_reference), batch_size=batch_size)


@st.cache_data(max_entries=16, show_spinner=False)
def cached_thumbnails(images_key: str, _images: tuple[np.ndarray, ...]) -> list[str]:
    """PNG data URLs of ``_images`` for ``ImageColumn``, cached by ``images_key``."""
    return [thumbnail_data_url(pixels) for pixels in _images]


def model_key(bundle: ClipBundle) -> str:
    """Return a cache key that identifies the loaded checkpoint."""
    return f"{bundle.name}|{bundle.source}"


def thumbnail_data_url(pixels: np.ndarray, side: int = THUMBNAIL_SIDE) -> str:
    """Encode a small PNG copy of an (H, W, 3) uint8 image as a data URL for ``ImageColumn``."""
    image = Image.fromarray(pixels)
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
