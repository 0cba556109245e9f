"""The sidebar's CLIP model picker and the cached loader behind it.

Each checkpoint loads once per server process through ``st.cache_resource``
and is shared read-only by every session. The source of the last model that
loaded is kept in ``st.session_state`` under ``ACTIVE_MODEL_KEY``, so a
failed load leaves that model active and shows why.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.clip import BUNDLED_NAME, ClipBundle, choose_default_model, load_clip
from core.errors import RepLensError
from core.zero_shot import ZeroShotResult, classify_images

ACTIVE_MODEL_KEY = "replens_clip_source"

CHOICES = ("Default", "Bundled compact CLIP", "Hub id or folder")


@st.cache_resource(max_entries=4, show_spinner="Loading the CLIP model…")
def load_clip_cached(source: str) -> ClipBundle:
    return load_clip(source)


@st.cache_resource(show_spinner="Checking which CLIP model is available…")
def default_model_cached():
    return choose_default_model()


@st.cache_data(max_entries=32, show_spinner="Running CLIP…")
def classify_cached(
    source: str, images: tuple[np.ndarray, ...], labels: tuple[str, ...], templates: tuple[str, ...]
) -> ZeroShotResult:
    """Zero-shot scores for ``images``, keyed by the model source and the pixel contents."""
    return classify_images(load_clip_cached(source), list(images), labels, templates)


def clip_model_sidebar() -> ClipBundle:
    """Draw the model picker in the sidebar and return the active model."""
    sidebar = st.sidebar
    sidebar.header("CLIP model")
    default = default_model_cached()
    choice = sidebar.radio(
        "Model", CHOICES, key="clip_model_choice",
        help="Default: openai/clip-vit-base-patch32 when it is cached locally or the Hub "
        "responds, else the bundled compact CLIP.",
    )

    if choice == "Default":
        requested, reason = default.source, default.reason
    elif choice == "Bundled compact CLIP":
        requested, reason = BUNDLED_NAME, "You picked the bundled compact CLIP."
    else:
        typed = sidebar.text_input(
            "Hub id or local folder", key="clip_model_typed",
            placeholder="openai/clip-vit-base-patch32 or /path/to/checkpoint",
            help="A Hugging Face Hub id (downloads need network access) or a folder with "
            "config.json, model.safetensors and the processor files.",
        ).strip()
        requested, reason = (typed, f"You entered {typed}.") if typed else (None, "")

    bundle = _load_or_keep(requested, reason, default.source)
    _describe(bundle)
    return bundle


def _load_or_keep(requested: str | None, reason: str, fallback: str) -> ClipBundle:
    """Load ``requested``; on failure show the error and keep the previous model."""
    previous = st.session_state.get(ACTIVE_MODEL_KEY, {"source": fallback, "reason": ""})
    if requested is not None:
        try:
            bundle = load_clip_cached(requested)
        except RepLensError as error:
            st.sidebar.error(f"{error} Still using {previous['source']}.")
        else:
            st.session_state[ACTIVE_MODEL_KEY] = {"source": requested, "reason": reason}
            return bundle

    try:
        bundle = load_clip_cached(previous["source"])
    except RepLensError as error:
        if previous["source"] == BUNDLED_NAME:
            _stop_without_model(error)
        st.sidebar.error(f"{error} Falling back to the bundled compact CLIP.")
        previous = {"source": BUNDLED_NAME, "reason": "The previous model could not be loaded."}
        try:
            bundle = load_clip_cached(BUNDLED_NAME)
        except RepLensError as bundled_error:
            _stop_without_model(bundled_error)
    st.session_state[ACTIVE_MODEL_KEY] = previous
    return bundle


def _stop_without_model(error: RepLensError) -> None:
    st.error(f"No CLIP model could be loaded: {error}")
    st.stop()


def _describe(bundle: ClipBundle) -> None:
    state = st.session_state.get(ACTIVE_MODEL_KEY, {})
    sidebar = st.sidebar
    sidebar.info(f"Active model: **{bundle.name}**. {state.get('reason', '')}")
    sidebar.caption(
        f"{bundle.embedding_dim}-d embeddings, text context {bundle.context_length} tokens, "
        f"logit scale exp({bundle.logit_scale:.3f}) = {_exp(bundle.logit_scale):.1f}."
    )


def _exp(value: float) -> float:
    import math

    return math.exp(value)
