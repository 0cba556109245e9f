"""Cached SVD decompositions, keyed by the content of the image and the colour mode.

The factors of a 12-megapixel RGB photo take about 250 MB. They are kept with
``st.cache_resource``, which shares them without copying, under a content
hash and with a bound on entries. For a large image a quick randomized SVD
comes first. Wider randomized SVDs and then the exact SVD run on a background
thread, so a page can show the best finished one meanwhile.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import streamlit as st

from core.svd import (
    QUICK_SKETCH,
    DisplayFactors,
    ImageSVD,
    QualityCurve,
    SketchSettings,
    block_mean_image,
    channel_matrices,
    curve_ranks,
    decompose_exact,
    decompose_sketch,
    display_factors,
    quality_curve,
    reference_image,
)

# One worker, so background exact decompositions run one at a time.
_EXACT_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="replens-exact-svd")

# Session-state entry containing (pixels array, its content hash), to skip rehashing on reruns.
_HASH_MEMO_KEY = "svd_content_hash"


def content_key(pixels: np.ndarray) -> str:
    """Hash the pixels and their shape; the hash is reused while the array object is the same."""
    memo = st.session_state.get(_HASH_MEMO_KEY)
    if memo is not None and memo[0] is pixels:
        return memo[1]
    digest = hashlib.blake2b(np.ascontiguousarray(pixels).data, digest_size=16)
    digest.update(repr(pixels.shape).encode())
    key = digest.hexdigest()
    st.session_state[_HASH_MEMO_KEY] = (pixels, key)
    return key


@st.cache_resource(max_entries=4, show_spinner=False)
def truncated_svd(key: str, mode: str, _pixels: np.ndarray) -> ImageSVD:
    """Return the quick randomized truncated SVD of the image with content hash ``key``."""
    return decompose_sketch(channel_matrices(_pixels, mode), QUICK_SKETCH)


@st.cache_resource(max_entries=4, show_spinner=False)
def sketch_svd_job(key: str, mode: str, settings: SketchSettings, _pixels: np.ndarray) -> Future[ImageSVD]:
    """Queue a randomized SVD of the image with content hash ``key`` on the background thread.

    Jobs run in the order they are queued, so queue this before ``exact_svd_job``.
    """
    return _EXACT_WORKER.submit(decompose_sketch, channel_matrices(_pixels, mode), settings)


@st.cache_resource(max_entries=4, show_spinner=False)
def exact_svd(key: str, mode: str, _pixels: np.ndarray) -> ImageSVD:
    """Return the exact SVD of a small image with content hash ``key``, computed in this thread."""
    return decompose_exact(channel_matrices(_pixels, mode))


@st.cache_resource(max_entries=2, show_spinner=False)
def exact_svd_job(key: str, mode: str, _pixels: np.ndarray) -> Future[ImageSVD]:
    """Start the exact SVD of the image with content hash ``key`` on the background thread."""
    return _EXACT_WORKER.submit(decompose_exact, channel_matrices(_pixels, mode))


@st.cache_resource(max_entries=4, show_spinner="Computing PSNR and SSIM across ranks…")
def quality_curve_for(key: str, mode: str, exact: bool, _pixels: np.ndarray, _svd: ImageSVD) -> QualityCurve:
    """Return PSNR and SSIM at a log-spaced set of ranks for one decomposition."""
    ranks = curve_ranks(_svd.computed_rank)
    return quality_curve(reference_image(_pixels, mode), _svd, ranks)


# The display factors of an exact 12-megapixel RGB SVD, with their partial sums, take about 110 MB.
@st.cache_resource(max_entries=4, show_spinner=False)
def display_factors_for(key: str, mode: str, exact: bool, rank: int, max_side: int, _svd: ImageSVD) -> DisplayFactors:
    """Return the block-averaged factors of one decomposition, identified by image, mode, exactness and rank."""
    return display_factors(_svd, max_side)


@st.cache_resource(max_entries=4, show_spinner=False)
def display_original_for(key: str, mode: str, factor: int, _pixels: np.ndarray) -> np.ndarray:
    """Return the block-averaged uint8 reference image that display-size rank-k images are compared with."""
    return block_mean_image(reference_image(_pixels, mode), factor)
