"""Singular value decomposition of an image, one matrix per colour channel.

Each channel is an (H, W) matrix A = U diag(sigma) V^T. Keeping the k largest
singular values gives A_k = sum_{i <= k} sigma_i u_i v_i^T, the best rank-k
approximation in the Frobenius norm (Eckart-Young), with the error
||A - A_k||_F = sqrt(sum_{i > k} sigma_i^2). An RGB image is three such
matrices, so k runs from 1 to min(H, W), never over the 3 colours.

Two decompositions exist: the exact thin SVD and a randomized truncated SVD.
The randomized one (Halko, Martinsson and Tropp, "Finding structure with
randomness", SIAM Review 53(2), 2011, Algorithm 4.4) returns only the top
components. It is fast enough to show a first rank-k image of a large photo
while the exact one runs.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from core.errors import RepLensError
from core.images import to_gray
from core.quality import SSIM_WINDOW, psnr, ssim

logger = logging.getLogger(__name__)

COLOUR_MODES = ("RGB", "Grayscale")

# Images of at most this many pixels get the exact SVD at once. At 512 x 512
# it took about 0.1 s per channel on a 2-core CPU. Larger images show the
# randomized truncation first.
EXACT_AT_ONCE_PIXELS = 512 * 512

# Components that the randomized SVD returns, and the extra random directions
# and power iterations it uses to make the top ones accurate.
TRUNCATED_RANK = 32
OVERSAMPLING = 16
POWER_ITERATIONS = 2


@dataclass(frozen=True)
class SketchSettings:
    """Settings of one randomized SVD: A (H x W) is sketched by A @ Omega, Omega (W x (rank + oversampling))."""

    # Components returned.
    rank: int
    # Extra random directions, discarded at the end; they make the last kept components accurate.
    oversampling: int
    # Passes of A^T then A over the sketch; each one sharpens the decay between kept and discarded values.
    power_iterations: int


# The first result for a large image: 4 passes over each channel matrix,
# enough components for ranks up to 24, so for the usual first k of about 20.
QUICK_SKETCH = SketchSettings(rank=24, oversampling=8, power_iterations=1)
# A background step before the exact SVD of a large image: ranks up to 128
# long before the exact SVD, which takes minutes for 12 megapixels on 2 cores.
WIDE_SKETCH = SketchSettings(rank=128, oversampling=16, power_iterations=2)
# Images above this many pixels get the wide sketch before the exact SVD.
WIDE_SKETCH_PIXELS = 2_000_000

# Ranks between the stored display-size partial sums A_k, so a rank-k display
# image adds or subtracts at most half this many layers to the nearest one.
CHECKPOINT_SPACING = 512

@dataclass(frozen=True)
class ImageSVD:
    """Thin SVD factors of each channel matrix: A_c = U_c diag(S_c) Vt_c."""

    # (C, H, r) float32 left singular vectors; C is 3 for RGB, 1 for grayscale.
    u: np.ndarray
    # (C, r) float32 singular values of each channel, in descending order.
    s: np.ndarray
    # (C, r, W) float32 right singular vectors, one per row.
    vt: np.ndarray
    # (C,) float64 squared Frobenius norm of each channel matrix, ||A_c||_F^2.
    total_energy: np.ndarray
    # True for the full thin SVD (r = min(H, W)), False for the top r of a randomized one.
    exact: bool

    @property
    def channels(self) -> int:
        return int(self.u.shape[0])

    @property
    def height(self) -> int:
        return int(self.u.shape[1])

    @property
    def width(self) -> int:
        return int(self.vt.shape[2])

    @property
    def computed_rank(self) -> int:
        """Number of components stored: min(H, W) when exact, fewer when truncated."""
        return int(self.s.shape[1])

    @property
    def full_rank(self) -> int:
        """Largest k a rank-k approximation can use: min(H, W)."""
        return min(self.height, self.width)


def channel_matrices(pixels: np.ndarray, mode: str) -> np.ndarray:
    """Split (H, W, 3) uint8 RGB pixels into (C, H, W) float32 channel matrices.

    ``mode`` "RGB" gives the three colour channels; "Grayscale" gives one
    BT.601 luminance matrix.
    """
    if mode not in COLOUR_MODES:
        raise RepLensError(f"Unknown colour mode {mode!r}. Use one of: {', '.join(COLOUR_MODES)}.")
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise RepLensError(f"Expected (H, W, 3) RGB pixels but got shape {pixels.shape}.")
    if mode == "Grayscale":
        return to_gray(pixels)[None].astype(np.float32)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)


def reference_image(pixels: np.ndarray, mode: str) -> np.ndarray:
    """Return the uint8 image that rank-k images of ``mode`` are compared with.

    It has the layout ``reconstruct`` returns: (H, W, 3) for RGB, (H, W) for grayscale.
    """
    if mode not in COLOUR_MODES:
        raise RepLensError(f"Unknown colour mode {mode!r}. Use one of: {', '.join(COLOUR_MODES)}.")
    if mode == "Grayscale":
        return to_gray(pixels)
    return pixels


def exact_at_once(height: int, width: int) -> bool:
    """Tell whether the exact SVD of an H x W matrix is quick enough to wait for."""
    return height * width <= EXACT_AT_ONCE_PIXELS or min(height, width) <= QUICK_SKETCH.rank


def background_sketches(height: int, width: int) -> tuple[SketchSettings, ...]:
    """List the randomized SVDs to run in the background, in order, before the exact one."""
    if height * width > WIDE_SKETCH_PIXELS and min(height, width) > WIDE_SKETCH.rank:
        return (WIDE_SKETCH,)
    return ()


def decompose_exact(matrices: np.ndarray) -> ImageSVD:
    """Compute the exact thin SVD of each (H, W) matrix in a (C, H, W) stack."""
    _check_matrices(matrices)
    channels, height, width = matrices.shape
    logger.info("Exact SVD of %d matrices of %d x %d started", channels, height, width)

    a = torch.from_numpy(np.ascontiguousarray(matrices, dtype=np.float32))
    u, s, vt = torch.linalg.svd(a, full_matrices=False)
    return _freeze(u, s, vt, matrices, exact=True)


def decompose_truncated(
    matrices: np.ndarray,
    rank: int = TRUNCATED_RANK,
    oversampling: int = OVERSAMPLING,
    power_iterations: int = POWER_ITERATIONS,
    seed: int = 0,
) -> ImageSVD:
    """Compute the top ``rank`` singular triplets of each matrix by randomized SVD.

    Falls back to the exact SVD when ``rank`` covers the full rank. The random
    test matrix comes from ``seed``, so equal inputs give equal results.
    """
    _check_matrices(matrices)
    channels, height, width = matrices.shape
    if rank < 1:
        raise RepLensError(f"The truncated rank must be at least 1 but got {rank}.")
    if rank >= min(height, width):
        return decompose_exact(matrices)
    sketch_size = min(rank + oversampling, height, width)

    # Range finder with subspace iteration: Q spans the dominant column space of A.
    a = torch.from_numpy(np.ascontiguousarray(matrices, dtype=np.float32))
    generator = torch.Generator().manual_seed(seed)
    omega = torch.randn(channels, width, sketch_size, generator=generator)  # (C, W, q)
    q = _orthonormal_basis(a @ omega)  # (C, H, q)
    for _ in range(power_iterations):
        q_row = _orthonormal_basis(a.mT @ q)  # (C, W, q)
        q = _orthonormal_basis(a @ q_row)

    # SVD of the small projection B = Q^T A, taken through its tall transpose
    # B^T = A^T Q = W_b S Z^T, so that A ~ Q B = (Q Z) S W_b^T.
    w_b, s, z = _tall_svd(a.mT @ q)  # (C, W, q), (C, q), (C, q, q)
    u = (q.double() @ z).float()  # (C, H, q)
    vt = w_b.mT  # (C, q, W)
    return _freeze(u[..., :rank], s[:, :rank], vt[:, :rank], matrices, exact=False)


def _orthonormal_basis(y: torch.Tensor) -> torch.Tensor:
    """Orthonormalize the columns of tall (C, n, q) float32 matrices: a (C, n, q) float32 Q with Q R = y.

    Cholesky QR, applied twice in float64: R = chol(y^T y)^T and Q = y R^-1
    use only matrix products and q x q factorizations. LAPACK's Householder
    QR of (3, 900, 144) took 0.1 to 0.7 s on a busy 2-core CPU against about
    0.03 s for this. When y is close to rank-deficient, the Cholesky
    factorization fails or the second pass still finds an ill-conditioned
    basis, and Householder QR takes over.
    """
    q = y.double()
    for _ in range(2):
        lower, info = torch.linalg.cholesky_ex(q.mT @ q)  # (C, q, q)
        if bool(info.any()):
            return torch.linalg.qr(y)[0]
        inverse, info = torch.linalg.inv_ex(lower.mT)  # R^-1, upper triangular
        if bool(info.any()):
            return torch.linalg.qr(y)[0]
        q = q @ inverse
    # The second pass starts from nearly orthonormal columns, so its pivots are close to 1.
    pivots = torch.diagonal(lower, dim1=-2, dim2=-1)
    if not bool(torch.isfinite(q).all()) or float(pivots.min()) < 0.5:
        return torch.linalg.qr(y)[0]
    return q.float()


def _tall_svd(b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Compute the thin SVD b = W diag(S) Z^T of tall (C, n, q) matrices from their q x q Gram matrices.

    Returns float32 W (C, n, q), S (C, q) in descending order, and float64 Z (C, q, q).
    The eigendecomposition of b^T b in float64 replaces LAPACK's SVD of the
    tall matrix, which took 0.2 to 0.5 s for (3, 4000, 32) on a busy 2-core CPU
    against a few milliseconds here. The float64 Gram matrix keeps singular
    values accurate down to about 1e-6 of the largest. Columns of W whose
    singular value is below that are set to zero, because dividing by it
    would amplify rounding noise.
    """
    b64 = b.double()
    eigenvalues, z = torch.linalg.eigh(b64.mT @ b64)  # ascending
    eigenvalues, z = eigenvalues.flip(-1), z.flip(-1)
    s = eigenvalues.clamp(min=0.0).sqrt()  # (C, q)
    reliable = s > 1e-6 * s[:, :1]
    inverse = torch.where(reliable, 1.0 / torch.where(reliable, s, 1.0), 0.0)
    w = (b64 @ z) * inverse[:, None, :]
    return w.float(), s.float(), z


def decompose_sketch(matrices: np.ndarray, settings: SketchSettings, seed: int = 0) -> ImageSVD:
    """Compute the randomized truncated SVD of each matrix with the given sketch settings."""
    return decompose_truncated(matrices, settings.rank, settings.oversampling, settings.power_iterations, seed)


def rebuild(svd: ImageSVD, k: int) -> np.ndarray:
    """Compute the rank-k approximation of every channel: (C, H, W) float32, unrounded.

    One matrix product per channel: (U[:, :k] * S[:k]) @ Vt[:k].
    """
    k = _checked_rank(svd, k)
    left = svd.u[:, :, :k] * svd.s[:, None, :k]  # (C, H, k)
    return left @ svd.vt[:, :k, :]


def reconstruct(svd: ImageSVD, k: int) -> np.ndarray:
    """Build the displayable rank-k image: rounded, then clipped to uint8 [0, 255].

    Returns (H, W, 3) for RGB and (H, W) for grayscale.

    >>> matrix = np.array([[[0, 255], [255, 255]]], dtype=np.float32)
    >>> reconstruct(decompose_exact(matrix), 1).tolist()
    [[114, 185], [185, 255]]
    """
    return _rebuild_image(svd.u, svd.s, svd.vt, _checked_rank(svd, k))


@dataclass(frozen=True)
class DisplayFactors:
    """Factors of an ImageSVD averaged over f x f pixel blocks, for rank-k images at display size.

    Block averaging is linear: with B_h (h x H) and B_w (w x W) the averaging
    matrices, B_h A_k B_w^T = (B_h U_k) diag(S_k) (B_w V_k)^T. Averaging the
    factors once makes every rank-k display image cost h w k per channel
    instead of H W k. Stored partial sums at every ``spacing`` ranks bound
    that cost by h w spacing / 2 at high k.
    """

    # (C, h, r) float32 block means of the rows of U.
    u: np.ndarray
    # (C, r) float32 singular values.
    s: np.ndarray
    # (C, r, w) float32 block means of the columns of Vt.
    vt: np.ndarray
    # Side f of the square pixel blocks; 1 keeps the full size.
    factor: int
    # min(H, W) of the full-size image, the largest k it allows.
    full_rank: int
    # Ranks between stored partial sums.
    spacing: int
    # (n, C, h, w) float32 block-averaged A_k at k = spacing, 2 spacing, .., n spacing <= r.
    checkpoints: np.ndarray

    @property
    def computed_rank(self) -> int:
        return int(self.s.shape[1])


def display_factor(height: int, width: int, max_side: int) -> int:
    """Compute the block side f that brings the longest side to at most ``max_side``.

    >>> display_factor(3000, 4000, 1024)
    4
    """
    if max_side < 1:
        raise RepLensError(f"The maximum display side must be at least 1 pixel but got {max_side}.")
    return max(1, math.ceil(max(height, width) / max_side))


def display_factors(svd: ImageSVD, max_side: int, spacing: int = CHECKPOINT_SPACING) -> DisplayFactors:
    """Average the factors of ``svd`` over pixel blocks so that images have sides of at most ``max_side``.

    Blocks start at the top left corner; the last row and column of blocks may
    be smaller. The partial sums at every ``spacing`` ranks cost one display-size
    rebuild at the full computed rank.
    """
    if spacing < 1:
        raise RepLensError(f"The checkpoint spacing must be at least 1 rank but got {spacing}.")
    factor = display_factor(svd.height, svd.width, max_side)
    u = _block_means(svd.u, factor, axis=1) if factor > 1 else svd.u  # (C, h, r)
    vt = _block_means(svd.vt, factor, axis=2) if factor > 1 else svd.vt  # (C, r, w)

    checkpoints = []
    total = np.zeros((svd.channels, u.shape[1], vt.shape[2]), dtype=np.float32)  # (C, h, w)
    for end in range(spacing, svd.computed_rank + 1, spacing):
        total = total + _layer_sum(u, svd.s, vt, end - spacing, end)
        checkpoints.append(total)
    stacked = np.stack(checkpoints) if checkpoints else np.empty((0, *total.shape), dtype=np.float32)
    return DisplayFactors(u, svd.s, vt, factor, svd.full_rank, spacing, stacked)


def reconstruct_display(factors: DisplayFactors, k: int) -> np.ndarray:
    """Build the block-averaged rank-k image, rounded and clipped to uint8: (h, w, 3) or (h, w).

    It is the block mean of the unrounded full-size A_k, rounded once, so it
    can differ by one level from block means of the rounded full-size image,
    and by more where clipping at 0 or 255 changes full-size pixels.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise RepLensError(f"Rank k must be an integer but got {k!r}.")
    if k < 1 or k > factors.full_rank:
        raise RepLensError(f"Rank k must be in 1..{factors.full_rank} but got {k}.")
    if k > factors.computed_rank:
        raise RepLensError(
            f"Rank {k} needs the exact SVD because this truncated decomposition contains only the top "
            f"{factors.computed_rank} components. Use the exact decomposition or choose k <= {factors.computed_rank}."
        )
    k = int(k)

    # Start from the nearest stored partial sum and add or remove the layers in between.
    index = min(round(k / factors.spacing), len(factors.checkpoints))
    start = index * factors.spacing
    if index == 0:
        values = _layer_sum(factors.u, factors.s, factors.vt, 0, k)
    elif start <= k:
        values = factors.checkpoints[index - 1] + _layer_sum(factors.u, factors.s, factors.vt, start, k)
    else:
        values = factors.checkpoints[index - 1] - _layer_sum(factors.u, factors.s, factors.vt, k, start)
    return to_display(values)


def _layer_sum(u: np.ndarray, s: np.ndarray, vt: np.ndarray, start: int, end: int) -> np.ndarray:
    """Sum the layers sigma_i u_i v_i^T for start <= i < end (0-based): (C, h, w) float32."""
    return (u[:, :, start:end] * s[:, None, start:end]) @ vt[:, start:end, :]


def block_mean_image(pixels: np.ndarray, factor: int) -> np.ndarray:
    """Average uint8 (H, W, 3) or (H, W) pixels over ``factor`` x ``factor`` blocks, rounding halves up.

    The blocks are those of ``display_factors``.
    """
    if factor == 1:
        return pixels
    return np.asarray(Image.fromarray(pixels).reduce(factor))


def spectrum_psnr(svd: ImageSVD, k: int) -> float:
    """Compute the PSNR (dB, data range 255) of the unrounded rank-k rebuild from the singular values.

    MSE = ||A - A_k||_F^2 / (C H W), summed over channels, with the Frobenius
    error of ``frobenius_errors``, so no full-size rebuild is needed. Rounding
    and clipping for display change the PSNR slightly, mostly at high k.
    """
    k = _checked_rank(svd, k)
    squared_error = float(frobenius_errors(svd)[k - 1]) ** 2
    mse = squared_error / (svd.channels * svd.height * svd.width)
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / mse)


def to_display(values: np.ndarray) -> np.ndarray:
    """Round (C, H, W) values to the nearest integer, clip to [0, 255], channels last.

    Rounding comes first and clipping second, so values never wrap around.
    """
    rounded = np.clip(np.rint(values), 0, 255).astype(np.uint8)  # (C, H, W)
    if rounded.shape[0] == 1:
        return rounded[0]
    return np.ascontiguousarray(rounded.transpose(1, 2, 0))


def frobenius_errors(svd: ImageSVD) -> np.ndarray:
    """List ||A - A_k||_F over all channels for k = 1 .. computed_rank.

    For the exact SVD entry k - 1 is sqrt(sum_{i > k} sigma_i^2), summed over
    channels. A truncated SVD lacks the discarded values, so it uses
    sqrt(||A||_F^2 - sum_{i <= k} sigma_i^2): the same number, because its
    A_k is the orthogonal projection of A onto the top k left vectors.
    """
    squared = svd.s.astype(np.float64) ** 2  # (C, r)
    if svd.exact:
        # Sum of the squares after position k, per row: total minus the inclusive cumulative sum.
        discarded = np.cumsum(squared[:, ::-1], axis=1)[:, ::-1]
        discarded = np.concatenate([discarded[:, 1:], np.zeros((svd.channels, 1))], axis=1)
        return np.sqrt(discarded.sum(axis=0))
    kept = np.cumsum(squared, axis=1).sum(axis=0)
    return np.sqrt(np.maximum(svd.total_energy.sum() - kept, 0.0))


def cumulative_energy(svd: ImageSVD) -> np.ndarray:
    """List the fraction of ||A||_F^2 kept by rank k, for k = 1 .. computed_rank.

    An all-zero image keeps all of its (zero) energy at every rank.
    """
    kept = np.cumsum(svd.s.astype(np.float64) ** 2, axis=1).sum(axis=0)
    total = kept[-1] if svd.exact else svd.total_energy.sum()
    if total == 0.0:
        return np.ones_like(kept)
    return np.minimum(kept / total, 1.0)


def compression_ratio(height: int, width: int, k: int) -> float:
    """Compute the stored fraction k (m + n + 1) / (m n) of one m x n channel.

    Rank k stores k left vectors (m numbers each), k right vectors (n each)
    and k singular values, against m n pixels. The ratio is the same for each
    colour channel. Above 1 the factors take more numbers than the pixels.

    >>> compression_ratio(512, 512, 20)
    0.0782012939453125
    """
    if k < 1 or k > min(height, width):
        raise RepLensError(f"Rank k must be in 1..{min(height, width)} for a {height} x {width} matrix but got {k}.")
    return k * (height + width + 1) / (height * width)


def rank_one_layers(svd: ImageSVD, count: int, max_side: int | None = None) -> np.ndarray:
    """Compute the first rank-1 layers sigma_i u_i v_i^T of each channel: (count, C, h, w).

    With ``max_side`` the layers are averaged over f x f pixel blocks so the
    longest side is at most ``max_side``. Averaging u_i and v_i first gives
    the same result at a cost of h w per layer instead of H W. Each layer does
    not depend on the sign convention of the singular vectors, because u_i
    and v_i flip together.
    """
    count = min(count, svd.computed_rank)
    factor = 1 if max_side is None else max(1, math.ceil(max(svd.height, svd.width) / max_side))
    u = _block_means(svd.u[:, :, :count], factor, axis=1)  # (C, h, count)
    vt = _block_means(svd.vt[:, :count, :], factor, axis=2)  # (C, count, w)
    scaled_u = u * svd.s[:, None, :count]
    # layers[i, c] = outer(scaled_u[c, :, i], vt[c, i, :])
    return np.einsum("chi,ciw->ichw", scaled_u, vt)


def signed_to_display(values: np.ndarray) -> np.ndarray:
    """Map signed (C, H, W) values to uint8 with 0 at mid-grey 128, channels last.

    The largest absolute value over all channels maps to 1 or 255, so the
    colours of a layer keep their ratios. All zeros give mid-grey.
    """
    peak = float(np.abs(values).max()) if values.size else 0.0
    scale = 127.0 / peak if peak > 0.0 else 0.0
    return to_display(128.0 + values * scale)


def quality(original: np.ndarray, shown: np.ndarray, with_ssim: bool = True) -> tuple[float, float | None]:
    """Compute PSNR (dB) and SSIM of a displayed uint8 image against ``original``.

    Both are (H, W, 3) or (H, W) uint8 with data range 255. SSIM is None when
    ``with_ssim`` is False or a side is shorter than the 7-pixel SSIM window.
    """
    if shown.shape != original.shape:
        raise RepLensError(f"The original has shape {original.shape} but the rebuilt image has {shown.shape}.")
    height, width = original.shape[:2]
    channel_axis = -1 if shown.ndim == 3 else None
    similarity = None
    if with_ssim and min(height, width) >= SSIM_WINDOW:
        similarity = ssim(original, shown, data_range=255.0, channel_axis=channel_axis)
    return psnr(original, shown, data_range=255.0), similarity


@dataclass(frozen=True)
class QualityCurve:
    """PSNR and SSIM of the displayed rank-k image at a set of ranks."""

    # (n,) int ranks k, ascending.
    ranks: np.ndarray
    # (n,) PSNR in dB; inf where the rebuild is exact.
    psnr: np.ndarray
    # (n,) SSIM; NaN when the image is smaller than the SSIM window.
    ssim: np.ndarray


def curve_ranks(max_rank: int, count: int = 12) -> np.ndarray:
    """Pick about ``count`` ranks from 1 to ``max_rank``, spaced evenly on a log scale.

    >>> curve_ranks(512, 6).tolist()
    [1, 3, 12, 42, 147, 512]
    """
    if max_rank < 1:
        raise RepLensError(f"The maximum rank must be at least 1 but got {max_rank}.")
    spaced = np.geomspace(1, max_rank, num=max(count, 2))
    return np.unique(np.rint(spaced).astype(int))


def quality_curve(original: np.ndarray, svd: ImageSVD, ranks: np.ndarray) -> QualityCurve:
    """Compute PSNR and SSIM of the displayed rank-k image at each rank in ``ranks``.

    ``original`` is the uint8 image in the layout that ``reconstruct`` returns.
    """
    psnr_values = []
    ssim_values = []
    for k in ranks:
        peak_ratio, similarity = quality(original, reconstruct(svd, int(k)))
        psnr_values.append(peak_ratio)
        ssim_values.append(math.nan if similarity is None else similarity)
    return QualityCurve(np.asarray(ranks, dtype=int), np.asarray(psnr_values), np.asarray(ssim_values))


def _rebuild_image(u: np.ndarray, s: np.ndarray, vt: np.ndarray, k: int) -> np.ndarray:
    """Rebuild rank k straight into uint8, (H, W, C) or (H, W), one channel at a time.

    Each channel takes one float32 matrix product, then rounds and clips in
    place before the cast, so no full-size temporary is created beyond the product.
    """
    channels, height, _ = u.shape
    width = vt.shape[2]
    image = np.empty((height, width, channels), dtype=np.uint8)
    for channel in range(channels):
        values = (u[channel, :, :k] * s[channel, :k]) @ vt[channel, :k]  # (H, W) float32
        np.rint(values, out=values)
        np.clip(values, 0, 255, out=values)
        image[:, :, channel] = values
    if channels == 1:
        return image[:, :, 0]
    return image


def _checked_rank(svd: ImageSVD, k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise RepLensError(f"Rank k must be an integer but got {k!r}.")
    if k < 1 or k > svd.full_rank:
        raise RepLensError(
            f"Rank k must be in 1..{svd.full_rank} for a {svd.height} x {svd.width} image but got {k}."
        )
    if k > svd.computed_rank:
        raise RepLensError(
            f"Rank {k} needs the exact SVD because this truncated decomposition contains only the top "
            f"{svd.computed_rank} components. Use the exact decomposition or choose k <= {svd.computed_rank}."
        )
    return int(k)


def _check_matrices(matrices: np.ndarray) -> None:
    if matrices.ndim != 3 or min(matrices.shape) < 1:
        raise RepLensError(f"Expected a (C, H, W) stack of non-empty matrices but got shape {matrices.shape}.")
    if not np.all(np.isfinite(matrices)):
        raise RepLensError("The matrices contain NaN or infinite values; SVD needs finite numbers.")


def _freeze(
    u: torch.Tensor, s: torch.Tensor, vt: torch.Tensor, matrices: np.ndarray, exact: bool
) -> ImageSVD:
    """Wrap torch factors as contiguous numpy arrays.

    The arrays stay writable because ``torch.from_numpy`` warns on read-only
    ones; callers share them through caches and must not modify them.
    """
    arrays = [np.ascontiguousarray(t.numpy(), dtype=np.float32) for t in (u, s, vt)]
    return ImageSVD(*arrays, total_energy=_squared_norms(matrices), exact=exact)


def _squared_norms(matrices: np.ndarray) -> np.ndarray:
    """Compute ||A_c||_F^2 of each (H, W) matrix in float64, without a float64 copy of the stack.

    Each row norm is a float32 reduction (torch sums in blocks, relative error
    about 1e-7), and the squared row norms are added in float64. A float64
    copy of a 12-megapixel RGB stack took about 0.1 s; this takes about 0.01 s.
    """
    a = torch.from_numpy(np.ascontiguousarray(matrices, dtype=np.float32))
    row_norms = torch.linalg.vector_norm(a, dim=2).double()  # (C, H)
    return row_norms.square().sum(dim=1).numpy()


def _block_means(values: np.ndarray, factor: int, axis: int) -> np.ndarray:
    """Average consecutive blocks of ``factor`` entries along ``axis``; the last may be shorter."""
    length = values.shape[axis]
    starts = np.arange(0, length, factor)
    sums = np.add.reduceat(values, starts, axis=axis)
    counts = np.diff(np.append(starts, length)).astype(np.float32)
    shape = [1] * values.ndim
    shape[axis] = counts.size
    return np.ascontiguousarray(sums / counts.reshape(shape), dtype=np.float32)
