"""SVD: an image as a sum of rank-1 layers, and what each rank keeps."""

from __future__ import annotations

import io
import math
from concurrent.futures import Future

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image
from plotly.subplots import make_subplots

from components.image_source import current_image, show_image_notices
from components.svd_cache import (
    content_key,
    display_factors_for,
    display_original_for,
    exact_svd,
    exact_svd_job,
    quality_curve_for,
    sketch_svd_job,
    truncated_svd,
)
from core.errors import RepLensError
from core.images import LoadedImage
from core.quality import SSIM_WINDOW
from core.svd import (
    COLOUR_MODES,
    ImageSVD,
    QualityCurve,
    background_sketches,
    compression_ratio,
    cumulative_energy,
    exact_at_once,
    frobenius_errors,
    quality,
    rank_one_layers,
    reconstruct,
    reconstruct_display,
    reference_image,
    signed_to_display,
    spectrum_psnr,
)

RANK_KEY = "svd_rank"
MODE_KEY = "svd_mode"
DEFAULT_RANK = 20
GALLERY_LAYERS = 8
# Maximum side, in pixels, of the images sent to the browser.
DISPLAY_MAX_SIDE = 1024
# Images whose longest side is below this are enlarged by repeating pixels, so each pixel stays visible.
ENLARGE_TO_SIDE = 256
# Above this many pixels SSIM, the quality curve and the PSNR of the rounded
# full-size image are computed only on request. Otherwise the PSNR shown is
# that of the unrounded rebuild, computed from the singular values.
# SSIM took about 0.3 s per megapixel and channel on a busy 2-core CPU.
QUALITY_AUTO_PIXELS = 2_000_000
CHANNEL_COLOURS = {"RGB": ("#d62728", "#2ca02c", "#1f77b4"), "Grayscale": ("#444444",)}
CHANNEL_NAMES = {"RGB": ("R", "G", "B"), "Grayscale": ("gray",)}


def explanation() -> None:
    st.title("SVD: an image as a sum of rank-1 layers")
    st.markdown(
        "A grayscale image is an $m \\times n$ matrix $A$ of intensities. The singular value "
        "decomposition writes it as a product of orthonormal columns $u_i$, singular values "
        "$\\sigma_1 \\ge \\sigma_2 \\ge \\dots \\ge 0$ and orthonormal rows $v_i^\\top$, which is "
        "the same as a sum of rank-1 layers: each layer is a column pattern times a row pattern."
    )
    st.latex(r"A = U \Sigma V^\top = \sum_{i=1}^{r} \sigma_i\, u_i v_i^\top, \qquad r = \min(m, n)")
    st.markdown(
        "Keeping the first $k$ layers gives $A_k$. By the Eckart–Young theorem no matrix of "
        "rank $k$ is closer to $A$ in the Frobenius norm, and the error is exactly the "
        "singular values left out:"
    )
    st.latex(r"A_k = \sum_{i=1}^{k} \sigma_i\, u_i v_i^\top, \qquad \lVert A - A_k \rVert_F = \sqrt{\sum_{i>k} \sigma_i^2}")
    st.markdown(
        "The energy kept is the share of $\\lVert A \\rVert_F^2 = \\sum_i \\sigma_i^2$ in the first "
        "$k$ terms. Storing $A_k$ takes $k$ columns of $m$ numbers, $k$ rows of $n$ numbers and "
        "$k$ singular values instead of $mn$ pixels. A colour image is three matrices, R, G and B, "
        "each decomposed on its own, so $k$ runs from 1 to $\\min(m, n)$ for every channel."
    )
    st.latex(
        r"E(k) = \frac{\sum_{i \le k} \sigma_i^2}{\sum_{i} \sigma_i^2}, \qquad "
        r"\text{compression ratio}(k) = \frac{k\,(m + n + 1)}{m\,n}"
    )


def colour_mode_ui(image: LoadedImage) -> str:
    if MODE_KEY not in st.session_state:
        st.session_state[MODE_KEY] = "Grayscale" if image.grayscale else "RGB"
    return st.radio(
        "Colour", COLOUR_MODES, horizontal=True, key=MODE_KEY,
        help="RGB decomposes the red, green and blue matrices separately; "
        "Grayscale decomposes one luminance matrix (0.299 R + 0.587 G + 0.114 B).",
    )


def decomposition(image: LoadedImage, mode: str) -> tuple[ImageSVD, list[tuple[int, Future[ImageSVD]]]]:
    """Return the best finished decomposition and the background jobs still running.

    Each job comes with the number of components it computes, in the order they run.
    """
    key = content_key(image.pixels)
    if exact_at_once(image.height, image.width):
        with st.spinner("Computing the SVD…"):
            return exact_svd(key, mode, image.pixels), []
    jobs = [
        (settings.rank, sketch_svd_job(key, mode, settings, image.pixels))
        for settings in background_sketches(image.height, image.width)
    ]
    jobs.append((min(image.height, image.width), exact_svd_job(key, mode, image.pixels)))
    done = [job.done() for _, job in jobs]
    pending = [entry for entry, finished in zip(jobs, done) if not finished]
    finished = [job for (_, job), is_done in zip(jobs, done) if is_done]
    if finished:
        return finished[-1].result(), pending
    return truncated_svd(key, mode, image.pixels), pending


def covering_decomposition(k: int, pending: list[tuple[int, Future[ImageSVD]]]) -> ImageSVD:
    """Wait for the first background job whose components include rank k."""
    rank, job = next((rank, job) for rank, job in pending if rank >= k)
    what = "the exact SVD" if rank == pending[-1][0] else f"a randomized SVD of the top {rank}"
    with st.spinner(f"Rank {k} needs {what}; waiting for it to finish…"):
        return job.result()


def rank_ui(svd: ImageSVD) -> int:
    full_rank = svd.full_rank
    if full_rank == 1:
        st.info(rank_one_note(svd.height, svd.width))
        return 1
    # The slider becomes a new widget when its maximum changes with the image,
    # so the chosen k is written back explicitly to carry it over.
    stored = st.session_state.get(RANK_KEY)
    st.session_state[RANK_KEY] = min(DEFAULT_RANK if stored is None else stored, full_rank)
    k = st.slider(
        "Rank k", min_value=1, max_value=full_rank, key=RANK_KEY,
        help=f"Number of rank-1 layers kept, from 1 to min(m, n) = {full_rank}.",
    )
    if full_rank <= 3:
        st.caption(rank_one_note(svd.height, svd.width))
    return k


def rank_one_note(height: int, width: int) -> str:
    """Say what rank 1 means for a matrix this small."""
    if height == 1 and width == 1:
        return (
            "A 1 x 1 image is a single number a in each channel. Its SVD is a = sigma_1 u_1 v_1 with sigma_1 = |a| and "
            "u_1, v_1 = ±1, so the image has rank 1 at most, k = 1 is the only choice and rebuilds it exactly."
        )
    if min(height, width) == 1:
        length = max(height, width)
        stored = compression_ratio(height, width, 1) * height * width
        return (
            f"A {height} x {width} image is a single {'row' if height == 1 else 'column'} x. "
            f"It is already a rank-1 matrix: sigma_1 = ||x||, the other singular vector is the number ±1 "
            f"and the pattern vector is x / ||x||. So k = 1 is the only choice and rebuilds it exactly, "
            f"while storing it takes {stored:.0f} numbers against {length} pixels: nothing to compress."
        )
    return (
        f"In a {height} x {width} image, rank 1 means every row is a multiple of one row pattern "
        "(and every column a multiple of one column pattern); rank k allows k patterns."
    )


def decomposition_notice(svd: ImageSVD, pending: list[tuple[int, Future[ImageSVD]]]) -> None:
    if svd.exact or not pending:
        st.caption(f"Exact SVD: all {svd.full_rank} singular values of each channel.")
        return
    wider = [rank for rank, _ in pending[:-1] if rank > svd.computed_rank]
    steps = f"a randomized SVD of the top {wider[0]} and then " if wider else ""
    st.info(
        f"Showing a randomized truncated SVD: the top {svd.computed_rank} singular values of each "
        f"channel, approximate for the last few of them. In the background, {steps}the exact SVD of all "
        f"{svd.full_rank} are being computed; each replaces it when ready, and ranks above "
        f"{svd.computed_rank} wait for the first that includes them."
    )
    refresh_when_done(pending[0][1])


@st.fragment(run_every=1.0)
def refresh_when_done(job: Future[ImageSVD]) -> None:
    if job.done():
        st.rerun()


def quality_ui(image: LoadedImage) -> bool:
    """Return whether to compute SSIM and the quality curve; large images ask first."""
    if image.height * image.width <= QUALITY_AUTO_PIXELS:
        return True
    return st.checkbox(
        "Compute SSIM, the PSNR/SSIM curve and the PSNR of the rounded image at full size", key="svd_quality",
        help=f"Off by default above {QUALITY_AUTO_PIXELS / 1e6:.0f} megapixels: SSIM takes seconds per rank at this size.",
    )


def ssim_text(similarity: float | None, height: int, width: int) -> str:
    if similarity is not None:
        return f"{similarity:.4f}"
    return "n/a" if min(height, width) < SSIM_WINDOW else "off"


def metrics_row(svd: ImageSVD, k: int, psnr_db: float, similarity: float | None, psnr_rounded: bool) -> None:
    ratio = compression_ratio(svd.height, svd.width, k)
    energy = cumulative_energy(svd)[k - 1]
    error = frobenius_errors(svd)[k - 1]
    columns = st.columns(6)
    columns[0].metric("Rank k", str(k), help=f"Full rank min(m, n) = {svd.full_rank}.")
    columns[1].metric(
        "Compression ratio", f"{ratio:.4f}",
        help="k (m + n + 1) / (m n): numbers stored per pixel of one channel; above 1 the factors are larger than the image.",
    )
    columns[2].metric("Energy kept", f"{100 * energy:.2f} %", help="Sum of sigma_i^2 for i <= k divided by the sum over all i.")
    if psnr_rounded:
        psnr_help = "PSNR of the full-size rank-k image, rounded and clipped, against the original; data range 255."
    else:
        psnr_help = (
            "PSNR of the unrounded full-size rank-k rebuild against the original, data range 255, exact from "
            "the singular values: MSE = ‖A − A_k‖²_F / (channels · m · n). Rounding and clipping change it slightly."
        )
    columns[3].metric("PSNR", format_psnr(psnr_db), help=psnr_help)
    columns[4].metric(
        "SSIM", ssim_text(similarity, svd.height, svd.width),
        help="Mean SSIM, uniform 7 x 7 window, K1 = 0.01, K2 = 0.03; needs at least 7 x 7 pixels.",
    )
    columns[5].metric("Frobenius error", f"{error:,.1f}", help="||A - A_k||_F over all channels, before rounding.")


def format_psnr(psnr_db: float) -> str:
    return "∞ (exact)" if math.isinf(psnr_db) else f"{psnr_db:.2f} dB"


def images_row(original: np.ndarray, shown: np.ndarray, k: int, factor: int) -> None:
    """Show the display-size original, rank-k image and error map; ``factor`` is their block side in pixels."""
    averaged = f", averaged over {factor} x {factor} pixel blocks" if factor > 1 else ""
    left, middle, right = st.columns(3)
    left.image(for_display(original), caption=f"Original{averaged}", width="stretch")
    middle.image(for_display(shown), caption=f"Rank {k}{averaged}, rounded and clipped to 0..255", width="stretch")

    error = np.abs(original.astype(np.int16) - shown.astype(np.int16)).astype(np.float32)
    if error.ndim == 3:
        error = error.mean(axis=2)
    peak = float(error.max())
    scaled = error * (255.0 / peak) if peak > 0 else error
    right.image(
        for_display(np.rint(scaled).astype(np.uint8)), width="stretch",
        caption=f"Error map |A - A_k|{averaged}: black = 0, white = {peak:.0f} levels; mean {error.mean():.2f}",
    )


def download_ui(svd: ImageSVD, k: int, name: str) -> None:
    """Offer the full-size rank-k image as a PNG, built only when the button is clicked."""

    def png_bytes() -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(reconstruct(svd, k)).save(buffer, format="PNG")
        return buffer.getvalue()

    stem = name.rsplit(".", 1)[0] or "image"
    st.download_button(
        f"Download the full-size rank-{k} image ({svd.width} x {svd.height} PNG)", png_bytes,
        file_name=f"{stem}_rank{k}.png", mime="image/png", on_click="ignore",
    )


def for_display(pixels: np.ndarray) -> np.ndarray:
    """Box-downscale large images and enlarge tiny ones with visible pixels."""
    longest = max(pixels.shape[:2])
    if longest > DISPLAY_MAX_SIDE:
        factor = math.ceil(longest / DISPLAY_MAX_SIDE)
        return np.asarray(Image.fromarray(pixels).reduce(factor))
    if longest < ENLARGE_TO_SIDE:
        factor = math.ceil(ENLARGE_TO_SIDE / longest)
        return np.repeat(np.repeat(pixels, factor, axis=0), factor, axis=1)
    return pixels


def spectrum_chart(svd: ImageSVD, mode: str, k: int) -> go.Figure:
    figure = go.Figure()
    ranks = np.arange(1, svd.computed_rank + 1)
    for values, name, colour in zip(svd.s, CHANNEL_NAMES[mode], CHANNEL_COLOURS[mode]):
        # A log axis cannot show zeros, which exact arithmetic gives for low-rank images.
        positive = np.where(values > 0, values, np.nan)
        figure.add_trace(go.Scatter(x=ranks, y=positive, name=name, mode="lines", line={"color": colour}))
    mark_rank(figure, k, f"k = {k}", log_x=False)
    figure.update_layout(title="Singular values σᵢ", xaxis_title="i", yaxis_title="σᵢ", yaxis_type="log", height=340)
    return figure


def energy_chart(svd: ImageSVD, k: int) -> go.Figure:
    energy = 100 * cumulative_energy(svd)
    ranks = np.arange(1, svd.computed_rank + 1)
    figure = go.Figure(go.Scatter(x=ranks, y=energy, mode="lines", name="energy"))
    mark_rank(figure, k, f"k = {k}: {energy[k - 1]:.2f} %", log_x=True)
    figure.update_layout(title="Cumulative energy E(k)", xaxis_title="k", xaxis_type="log", yaxis_title="% of ‖A‖²_F", height=340)
    # Full labels at powers of ten; plotly's default log ticks print 20 and 200 as "2".
    figure.update_xaxes(dtick=1)
    return figure


def quality_chart(curve: QualityCurve, k: int) -> go.Figure:
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    # An exact rebuild has infinite PSNR, which a chart cannot draw.
    finite_psnr = np.where(np.isinf(curve.psnr), np.nan, curve.psnr)
    figure.add_trace(go.Scatter(x=curve.ranks, y=finite_psnr, name="PSNR (dB)", mode="lines+markers"), secondary_y=False)
    figure.add_trace(go.Scatter(x=curve.ranks, y=curve.ssim, name="SSIM", mode="lines+markers"), secondary_y=True)
    mark_rank(figure, k, f"k = {k}", log_x=True)
    figure.update_layout(title="PSNR and SSIM against k", height=340, legend={"orientation": "h", "y": -0.25})
    figure.update_xaxes(title_text="k", type="log", dtick=1)
    figure.update_yaxes(title_text="PSNR (dB)", secondary_y=False)
    lowest_ssim = float(np.nanmin(curve.ssim)) if np.isfinite(curve.ssim).any() else 0.0
    figure.update_yaxes(title_text="SSIM", range=[min(0.0, lowest_ssim), 1.0], tickmode="auto", secondary_y=True)
    return figure


def mark_rank(figure: go.Figure, k: int, label: str, log_x: bool) -> None:
    """Draw a dashed vertical line at rank k with a label above the plot."""
    figure.add_vline(x=k, line_dash="dash", line_color="black")
    # Plotly places annotations on a log axis by log10 of the value, but shapes by the value itself.
    position = math.log10(k) if log_x else k
    figure.add_annotation(x=position, y=1.0, yref="paper", text=label, showarrow=False, yanchor="bottom")


def gallery(svd: ImageSVD, mode: str) -> None:
    st.subheader("The first rank-1 layers σᵢ uᵢ vᵢᵀ")
    st.caption("Mid-grey is 0, lighter is positive, darker is negative; each layer is scaled to its own largest value.")
    layers = rank_one_layers(svd, GALLERY_LAYERS, max_side=256)
    columns = st.columns(4)
    for index, layer in enumerate(layers):
        sigmas = ", ".join(f"{name} {value:,.0f}" for name, value in zip(CHANNEL_NAMES[mode], svd.s[:, index]))
        columns[index % 4].image(for_display(signed_to_display(layer)), caption=f"i = {index + 1}: σ = {sigmas}", width="stretch")


explanation()
image = current_image()
show_image_notices(image)
mode = colour_mode_ui(image)
with_ssim = quality_ui(image)

try:
    svd, pending = decomposition(image, mode)
    k = rank_ui(svd)
    if k > svd.computed_rank and pending:
        svd = covering_decomposition(k, pending)
        pending = [(rank, job) for rank, job in pending if not job.done()]
    decomposition_notice(svd, pending)

    # Slider moves rebuild only the display-size image from block-averaged factors.
    key = content_key(image.pixels)
    factors = display_factors_for(key, mode, svd.exact, svd.computed_rank, DISPLAY_MAX_SIDE, svd)
    shown = reconstruct_display(factors, k)
    original_shown = display_original_for(key, mode, factors.factor, image.pixels)

    # Full-size quality needs the full-size rebuild, so large images compute it on request.
    if with_ssim:
        psnr_db, similarity = quality(reference_image(image.pixels, mode), reconstruct(svd, k))
        curve = quality_curve_for(key, mode, svd.exact, image.pixels, svd)
    else:
        psnr_db, similarity, curve = spectrum_psnr(svd, k), None, None
except RepLensError as error:
    st.error(str(error))
    st.stop()

metrics_row(svd, k, psnr_db, similarity, psnr_rounded=with_ssim)
if not with_ssim:
    st.caption(
        "PSNR is that of the unrounded full-size rank-k rebuild, exact from the singular values. "
        "Tick the full-size quality box above for the PSNR of the rounded image and SSIM."
    )
images_row(original_shown, shown, k, factors.factor)
download_ui(svd, k, image.name)
if min(svd.height, svd.width) < SSIM_WINDOW:
    st.caption(f"SSIM needs at least {SSIM_WINDOW} x {SSIM_WINDOW} pixels, so it is not shown for this image.")

spectrum_column, energy_column, quality_column = st.columns(3)
spectrum_column.plotly_chart(spectrum_chart(svd, mode, k), width="stretch")
energy_column.plotly_chart(energy_chart(svd, k), width="stretch")
if curve is None:
    quality_column.caption("Tick the full-size quality box above to draw PSNR and SSIM against k.")
else:
    quality_column.plotly_chart(quality_chart(curve, k), width="stretch")
    quality_column.caption(
        f"Computed at {len(curve.ranks)} rank{'s' if len(curve.ranks) != 1 else ''} spaced on a log scale; full rank rebuilds exactly (infinite PSNR, not drawn)."
    )
gallery(svd, mode)
