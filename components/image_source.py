"""The sidebar's image source and the one image that every page shows.

The chosen image lives in ``st.session_state`` under ``IMAGE_KEY`` so that it
stays selected while the user moves between pages. A file that fails to
decode leaves the previous image in place and shows why it failed.
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from core.errors import RepLensError
from core.images import UPLOAD_TYPES, WORKING_MAX_SIDE, LoadedImage, decode_image, working_copy
from core.samples import DEFAULT_SAMPLE, load_sample, sample_names

IMAGE_KEY = "replens_image"
FULL_SIZE_KEY = "replens_full_size"
WORKING_COPY_KEY = "replens_working_copy"
THUMBNAIL_KEY = "replens_thumbnail"

SOURCES = ("Sample", "Upload", "Camera")


# cache_resource returns the same object on every call, so the working copy
# below can be reused while the image stays the same. Decoded pixels are read-only.
@st.cache_resource(max_entries=32, show_spinner=False)
def load_sample_cached(name: str) -> LoadedImage:
    return load_sample(name)


@st.cache_resource(max_entries=16, show_spinner="Decoding the image…")
def decode_image_cached(data: bytes, name: str) -> LoadedImage:
    return decode_image(data, name)


def image_source_sidebar() -> None:
    """Draw the image-source widgets in the sidebar and store the chosen image."""
    sidebar = st.sidebar
    sidebar.header("Image")
    source = sidebar.radio("Source", SOURCES, horizontal=True, key="image_source")

    if source == "Sample":
        names = sample_names()
        name = sidebar.selectbox("Sample", names, index=names.index(DEFAULT_SAMPLE), key="sample_name")
        st.session_state[IMAGE_KEY] = load_sample_cached(name)
    elif source == "Upload":
        upload = sidebar.file_uploader(
            "Image file", type=UPLOAD_TYPES, key="image_upload",
            help="PNG, JPEG, WebP, BMP, GIF or TIFF. Animated files use their first frame.",
        )
        if upload is not None:
            _store_decoded(upload.getvalue(), upload.name)
    else:
        shot = sidebar.camera_input("Camera", key="image_camera")
        if shot is not None:
            _store_decoded(shot.getvalue(), "camera photo")

    image = st.session_state.get(IMAGE_KEY)
    if image is None:
        image = load_sample_cached(DEFAULT_SAMPLE)
        st.session_state[IMAGE_KEY] = image
    _describe(image)


def current_image() -> LoadedImage:
    """Return the image that pages work on: the working copy unless full size is on.

    Falls back to the default sample when no image was chosen yet, which is
    the case when a page runs on its own (as in tests).
    """
    ensure_app_shell()
    image = st.session_state.get(IMAGE_KEY)
    if image is None:
        image = load_sample_cached(DEFAULT_SAMPLE)
        st.session_state[IMAGE_KEY] = image
    if st.session_state.get(FULL_SIZE_KEY, False):
        return image
    return _derived_copy(WORKING_COPY_KEY, image, WORKING_MAX_SIDE)


def ensure_app_shell() -> None:
    """Rerun through ``app.py`` when Streamlit ran a file of ``pages/`` on its own.

    Streamlit 1.67 treats a ``pages/`` folder beside the entry script as
    standalone pages until ``st.navigation`` has run once in the server
    process, so the first visit of a page URL (``/svd``) after a start skips
    ``app.py`` and its sidebar. Clearing that flag and rerunning sends the
    request through ``app.py``, which keeps the requested page.
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def show_image_notices(image: LoadedImage) -> None:
    """Show a page-level caption for each conversion applied to ``image``."""
    for notice in image.notices:
        st.caption(notice)


def _derived_copy(key: str, image: LoadedImage, max_side: int) -> LoadedImage:
    """Return ``working_copy(image, max_side)``, computed once per image and session."""
    source, copy = st.session_state.get(key, (None, None))
    if source is not image:
        copy = working_copy(image, max_side)
        st.session_state[key] = (image, copy)
    return copy


def _store_decoded(data: bytes, name: str) -> None:
    try:
        st.session_state[IMAGE_KEY] = decode_image_cached(data, name)
    except RepLensError as error:
        previous = st.session_state.get(IMAGE_KEY)
        kept = f" Still showing {previous.name}." if previous is not None else ""
        st.sidebar.error(f"{error}{kept}")


def _describe(image: LoadedImage) -> None:
    sidebar = st.sidebar
    sidebar.image(_derived_copy(THUMBNAIL_KEY, image, 256).pixels, caption=image.name, width="stretch")
    kind = "grayscale" if image.grayscale else "colour"
    sidebar.caption(f"{image.width} x {image.height} pixels, {kind}, decoded from mode {image.source_mode}.")
    for notice in image.notices:
        sidebar.caption(notice)
    if max(image.width, image.height) > WORKING_MAX_SIDE:
        sidebar.checkbox(
            "Work at full size", key=FULL_SIZE_KEY,
            help="Large images are downscaled for the interactive views. "
            "Full size is exact but slower.",
        )
