"""CLIP metrics for generated images: CLIP Score, pairwise similarity, Fréchet distance.

The math works on embeddings (NumPy arrays, one row per image or caption), so
it is testable without a model. ``score_captions`` and ``compare_image_sets``
are thin wrappers that encode images and captions with a ``ClipBundle`` first.

References:
    Hessel, Holtzman, Forbes, Le Bras and Choi, "CLIPScore: A Reference-free
    Evaluation Metric for Image Captioning", EMNLP 2021.
    Gal, Alaluf, Atzmon, Patashnik, Bermano, Chechik and Cohen-Or, "An Image
    is Worth One Word: Personalizing Text-to-Image Generation using Textual
    Inversion", 2022 (arXiv:2208.01618).
    Heusel, Ramsauer, Unterthiner, Nessler and Hochreiter, "GANs Trained by a
    Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", NeurIPS
    2017 (the Fréchet distance between Gaussian fits, as in FID).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field
import numpy as np
import scipy.linalg

from core.clip import ClipBundle, Progress, encode_images, encode_texts
from core.datasets import ImageDataset, uploads_dataset, zip_dataset
from core.errors import RepLensError

logger = logging.getLogger(__name__)

# CLIP Score weight w in w * max(cos, 0), as defined by Hessel et al. 2021
# (CLIPScore, EMNLP 2021) to rescale the cosine.
CLIP_SCORE_WEIGHT = 2.5

# Weight that torchmetrics' CLIPScore uses (100 * max(cos, 0), torchmetrics
# 1.9). A RepLens score equals the torchmetrics score times 2.5 / 100 = 0.025.
TORCHMETRICS_WEIGHT = 100.0

# Generated images per batch in the image-similarity evaluation of Gal et
# al. 2022, which averages each batch's cosines against the reference images.
# NOTE: 64 is the batch size that evaluation is described with. The original
# evaluation script was not at hand to confirm it.
GAL_BATCH_SIZE = 64

# Column names accepted for the two columns of a caption CSV (lower case).
_FILE_COLUMNS = ("file", "file_name", "filename", "image", "name", "path")
_CAPTION_COLUMNS = ("caption", "text", "prompt")


# --- Results ----------------------------------------------------------------


@dataclass(frozen=True)
class ClipScores:
    """CLIP Scores of (image, caption) pairs and their summary."""

    # (N,) cosine of each image embedding with its caption embedding.
    cosines: np.ndarray
    # (N,) weight * max(cosine, 0).
    scores: np.ndarray
    # The weight w used for ``scores``.
    weight: float
    # One flag per caption: True when the tokenizer cut it to the context length.
    truncated: tuple[bool, ...]

    @property
    def mean(self) -> float:
        return float(self.scores.mean())

    @property
    def std(self) -> float:
        """Sample standard deviation (ddof=1) of the scores, or NaN for a single pair."""
        if len(self.scores) < 2:
            return math.nan
        return float(self.scores.std(ddof=1))


@dataclass(frozen=True)
class PairwiseSimilarity:
    """Cosine similarities between a generated and a reference image set."""

    # (N_generated, N_reference) cosine of every (generated, reference) pair.
    cross: np.ndarray
    # (N_generated, N_generated) cosines within the generated set, diagonal 1.
    generated_self: np.ndarray
    # (N_reference, N_reference) cosines within the reference set, diagonal 1.
    reference_self: np.ndarray
    # Mean of ``cross`` over all pairs, or the mean of batch means when batched.
    mean_cross: float
    # Mean off-diagonal cosine within each set, or NaN for a set of one image.
    mean_within_generated: float
    mean_within_reference: float
    # Generated images per batch, or None when all pairs are averaged at once.
    batch_size: int | None = None
    # Mean cosine of each batch of generated images against all references.
    batch_means: tuple[float, ...] = ()


@dataclass(frozen=True)
class FrechetDistance:
    """Fréchet distance between Gaussian fits of two embedding sets, and its parts."""

    # The squared distance d^2, the value that FID reports.
    distance: float
    # ||mu1 - mu2||^2
    mean_term: float
    # Tr(S1 + S2 - 2 sqrt(S1 S2))
    covariance_term: float
    # Largest imaginary part dropped from sqrt(S1 S2) (numerical noise).
    discarded_imaginary: float
    # Messages about reliability (few samples, regularised covariances).
    warnings: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class SetComparison:
    """Everything the page shows for a generated set against a reference set."""

    similarity: PairwiseSimilarity
    # None when a set has fewer than 2 images (no covariance can be fitted).
    frechet: FrechetDistance | None
    # (N_generated, D) and (N_reference, D) L2-normalised image embeddings.
    generated_embeddings: np.ndarray
    reference_embeddings: np.ndarray


@dataclass(frozen=True)
class ImageSet:
    """Decoded images from uploaded files and zips, with the files left out."""

    # Unique display name per image: the file name, or the path inside its zip.
    names: tuple[str, ...]
    # One (H, W, 3) uint8 array per image.
    images: tuple[np.ndarray, ...]
    # (file name, reason) of each file or zip member that was not used.
    skipped: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CaptionMatch:
    """Captions from a CSV matched to uploaded files by file name."""

    # Caption for each uploaded file that has a row, by file name.
    captions: dict[str, str]
    # Uploaded files that have no row in the CSV.
    missing: tuple[str, ...]
    # CSV rows whose file name matches no uploaded file.
    extra: tuple[str, ...]


# --- Embedding math ---------------------------------------------------------


def normalize_rows(embeddings: np.ndarray, name: str = "embeddings") -> np.ndarray:
    """Return a float64 copy of an (N, D) array with every row scaled to unit L2 norm.

    Raises ``RepLensError`` for an array that is not 2-D, is empty, has
    non-finite values or has a row of norm 0.
    """
    array = np.asarray(embeddings, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise RepLensError(f"{name}: expected a non-empty (N, D) array but got shape {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise RepLensError(f"{name}: contains NaN or infinite values. Check the model output.")

    norms = np.linalg.norm(array, axis=1, keepdims=True)
    zero_rows = np.flatnonzero(norms[:, 0] == 0)
    if zero_rows.size:
        raise RepLensError(
            f"{name}: row {int(zero_rows[0])} has norm 0, so its cosine is undefined."
        )
    return array / norms


def cosine_matrix(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Return the (N, M) cosine similarity of every row of ``first`` with every row of ``second``."""
    first_unit = normalize_rows(first, "first embeddings")
    second_unit = normalize_rows(second, "second embeddings")
    _check_same_dimension(first_unit, second_unit)
    # Rounding can push the dot product of unit vectors just past 1.
    return np.clip(first_unit @ second_unit.T, -1.0, 1.0)


def clip_score(
    image_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    weight: float = CLIP_SCORE_WEIGHT,
    truncated: Sequence[bool] | None = None,
) -> ClipScores:
    """Compute the CLIP Score w * max(cos(E_I, E_C), 0) of each (image, caption) row pair.

    Row i of ``image_embeddings`` is paired with row i of ``text_embeddings``.
    Embeddings need not be normalised: the cosine normalises them.

    >>> clip_score(np.array([[3.0, 4.0]]), np.array([[4.0, 3.0]])).scores
    array([2.4])
    """
    images = normalize_rows(image_embeddings, "image embeddings")
    texts = normalize_rows(text_embeddings, "text embeddings")
    _check_same_dimension(images, texts)
    if len(images) != len(texts):
        raise RepLensError(
            f"Expected one caption per image but got {len(images)} images and {len(texts)} captions."
        )
    flags = tuple(bool(flag) for flag in truncated) if truncated is not None else (False,) * len(images)
    if len(flags) != len(images):
        raise RepLensError(f"Expected {len(images)} truncation flags but got {len(flags)}.")

    cosines = np.clip(np.sum(images * texts, axis=1), -1.0, 1.0)
    scores = weight * np.maximum(cosines, 0.0)
    return ClipScores(cosines=cosines, scores=scores, weight=float(weight), truncated=flags)


def mean_off_diagonal(similarity: np.ndarray) -> float:
    """Return the mean of a square matrix without its diagonal, or NaN for a 1 x 1 matrix.

    For a set's cosine matrix this is the mean similarity between distinct
    images: high values mean a set of near-duplicates (low diversity).
    """
    count = similarity.shape[0]
    if similarity.ndim != 2 or similarity.shape[1] != count:
        raise RepLensError(f"Expected a square matrix but got shape {similarity.shape}.")
    if count < 2:
        return math.nan
    off_diagonal_sum = similarity.sum() - np.trace(similarity)
    return float(off_diagonal_sum / (count * (count - 1)))


def pairwise_similarity(
    generated: np.ndarray,
    reference: np.ndarray,
    batch_size: int | None = None,
) -> PairwiseSimilarity:
    """Compute the CLIP-space cosine similarities between a generated and a reference set.

    Without ``batch_size`` the mean is taken over all N_generated x N_reference
    pairs. With ``batch_size`` the generated images are split in order into
    batches of that many images, the last possibly smaller. Each batch gets
    the mean cosine of its pairs with every reference image, and
    ``mean_cross`` is the unweighted mean of those batch means, as in Gal et
    al. 2022 with 64 images per batch. When every batch is full the two means
    are equal. Otherwise each pair of the smaller last batch weighs more.
    """
    cross = cosine_matrix(generated, reference)
    generated_self = cosine_matrix(generated, generated)
    reference_self = cosine_matrix(reference, reference)

    if batch_size is None:
        mean_cross = float(cross.mean())
        batch_means: tuple[float, ...] = ()
    else:
        if batch_size < 1:
            raise RepLensError(f"Batch size must be at least 1 but got {batch_size}.")
        batch_means = tuple(
            float(cross[start : start + batch_size].mean())
            for start in range(0, cross.shape[0], batch_size)
        )
        mean_cross = float(np.mean(batch_means))

    return PairwiseSimilarity(
        cross=cross,
        generated_self=generated_self,
        reference_self=reference_self,
        mean_cross=mean_cross,
        mean_within_generated=mean_off_diagonal(generated_self),
        mean_within_reference=mean_off_diagonal(reference_self),
        batch_size=batch_size,
        batch_means=batch_means,
    )


def frechet_distance(first: np.ndarray, second: np.ndarray) -> FrechetDistance:
    """Compute the Fréchet distance between Gaussian fits of two (N, D) embedding sets.

    d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)), with sample means mu
    and sample covariances S (ddof=1), as in FID (Heusel et al. 2017) but on
    the embeddings given here. Like FID, ``distance`` is the squared value d^2. The matrix square root comes from
    ``scipy.linalg.sqrtm``. Its imaginary parts, which are rounding noise
    because S1 S2 has real non-negative eigenvalues, are dropped and their
    size is reported. If the square root is not finite, both covariances get
    1e-6 added to their diagonals and a warning records it.

    With fewer samples than dimensions the covariances are singular and the
    distance is biased upwards and noisy, so the result then carries a warning.
    """
    first_array = _as_sample_matrix(first, "first set")
    second_array = _as_sample_matrix(second, "second set")
    _check_same_dimension(first_array, second_array)
    dimension = first_array.shape[1]

    messages = []
    smallest = min(len(first_array), len(second_array))
    if smallest < dimension:
        messages.append(
            f"Only {smallest} images in the smaller set for {dimension}-dimensional embeddings: "
            "the covariances are singular, so the distance is biased upwards and varies a lot "
            "between samples. Compare distances only between sets of equal size, or use "
            "more images than dimensions."
        )

    mean_difference = first_array.mean(axis=0) - second_array.mean(axis=0)
    first_covariance = np.atleast_2d(np.cov(first_array, rowvar=False))
    second_covariance = np.atleast_2d(np.cov(second_array, rowvar=False))

    ranks = (np.linalg.matrix_rank(first_covariance), np.linalg.matrix_rank(second_covariance))
    if not messages and min(ranks) < dimension:
        messages.append(
            f"The covariances have ranks {ranks[0]} and {ranks[1]}, below the {dimension} dimensions: "
            "the embeddings lie in a subspace, so the covariances are singular and the square root "
            "is less accurate. Treat the distance as approximate."
        )

    root = scipy.linalg.sqrtm(first_covariance @ second_covariance)
    if not np.all(np.isfinite(root)):
        offset = 1e-6 * np.eye(dimension)
        messages.append("The covariance product had no finite square root, so 1e-6 was added to both diagonals.")
        logger.warning("sqrtm(S1 S2) was not finite. Retrying with 1e-6 added to the diagonals.")
        root = scipy.linalg.sqrtm((first_covariance + offset) @ (second_covariance + offset))

    discarded_imaginary = 0.0
    if np.iscomplexobj(root):
        discarded_imaginary = float(np.max(np.abs(root.imag)))
        root = root.real

    mean_term = float(mean_difference @ mean_difference)
    covariance_term = float(np.trace(first_covariance) + np.trace(second_covariance) - 2.0 * np.trace(root))
    return FrechetDistance(
        distance=mean_term + covariance_term,
        mean_term=mean_term,
        covariance_term=covariance_term,
        discarded_imaginary=discarded_imaginary,
        warnings=tuple(messages),
    )


def _as_sample_matrix(embeddings: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(embeddings, dtype=np.float64)
    if array.ndim != 2:
        raise RepLensError(f"{name}: expected an (N, D) array but got shape {array.shape}.")
    if array.shape[0] < 2:
        raise RepLensError(
            f"{name}: a covariance needs at least 2 images but got {array.shape[0]}. Add more images."
        )
    if not np.all(np.isfinite(array)):
        raise RepLensError(f"{name}: contains NaN or infinite values. Check the model output.")
    return array


def _check_same_dimension(first: np.ndarray, second: np.ndarray) -> None:
    if first.shape[1] != second.shape[1]:
        raise RepLensError(
            f"Embeddings must have the same dimension but got {first.shape[1]} and {second.shape[1]}. "
            "Encode both with the same model."
        )


# --- With a CLIP model ------------------------------------------------------


def score_captions(
    bundle: ClipBundle,
    images: Sequence[np.ndarray],
    captions: Sequence[str],
    names: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> ClipScores:
    """Encode images and their captions with ``bundle`` and return their CLIP Scores.

    ``images`` are (H, W, 3) uint8 arrays, ``captions`` one string per image,
    ``names`` the file names used in error messages. A caption longer than
    the model's context is cut by the tokenizer, which keeps the end token,
    and its flag in ``truncated`` is True.
    """
    if not images:
        raise RepLensError("No images to score. Upload at least one image with a caption.")
    labels = list(names) if names is not None else [f"image {index + 1}" for index in range(len(images))]
    check_captions(labels, captions)
    if len(images) != len(captions):
        raise RepLensError(
            f"Expected one caption per image but got {len(images)} images and {len(captions)} captions."
        )

    image_embeddings = encode_images(bundle, list(images), progress=progress)
    text = encode_texts(bundle, [caption.strip() for caption in captions])
    return clip_score(image_embeddings, text.embeddings, truncated=text.truncated)


def compare_image_sets(
    bundle: ClipBundle,
    generated: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    batch_size: int | None = None,
    progress: Progress | None = None,
) -> SetComparison:
    """Encode two image sets with ``bundle`` and compare them in CLIP space.

    Returns the pairwise similarities and, when both sets have at least 2
    images, the Fréchet distance between their L2-normalised embeddings.
    """
    if not generated or not reference:
        raise RepLensError(
            f"Both sets need images but got {len(generated)} generated and {len(reference)} reference images."
        )

    total = len(generated) + len(reference)

    def report_reference(done: int, _: int) -> None:
        if progress is not None:
            progress(len(generated) + done, total)

    def report_generated(done: int, _: int) -> None:
        if progress is not None:
            progress(done, total)

    generated_embeddings = encode_images(bundle, list(generated), progress=report_generated)
    reference_embeddings = encode_images(bundle, list(reference), progress=report_reference)

    similarity = pairwise_similarity(generated_embeddings, reference_embeddings, batch_size)
    frechet = None
    if len(generated) >= 2 and len(reference) >= 2:
        frechet = frechet_distance(generated_embeddings, reference_embeddings)
    return SetComparison(similarity, frechet, generated_embeddings, reference_embeddings)


# --- Inputs: image files and captions ----------------------------------------------


def image_set_from_files(files: Sequence[tuple[str, bytes]], set_name: str) -> ImageSet:
    """Decode ``(file name, bytes)`` uploads into one image set, unpacking files that end in .zip.

    Zips are read in memory by ``core.datasets.zip_dataset``, which skips
    junk entries and rejects unsafe members. Files that are not images, and
    zips without a readable image, are left out and listed in ``skipped``.
    Raises ``RepLensError`` when no image remains.
    """
    if not files:
        raise RepLensError(f"The {set_name} set is empty. Upload image files or a zip of images.")

    skipped: list[tuple[str, str]] = []
    sources: list[tuple[str, ImageDataset]] = []
    loose = [(name, data) for name, data in files if not name.lower().endswith(".zip")]
    if loose:
        try:
            sources.append(("", uploads_dataset(loose)))
        except RepLensError as error:
            skipped.append(("uploaded files", str(error)))
    for archive_name, data in files:
        if not archive_name.lower().endswith(".zip"):
            continue
        try:
            sources.append((archive_name, zip_dataset(data, archive_name)))
        except RepLensError as error:
            skipped.append((archive_name, str(error)))

    names: list[str] = []
    images: list[np.ndarray] = []
    for archive_name, dataset in sources:
        skipped.extend((item.name, item.reason) for item in dataset.skipped)
        for name, pixels in zip(dataset.names, dataset.images):
            # Two zips may contain the same path, so the later one gets its archive name as a prefix.
            names.append(f"{archive_name}/{name}" if name in names else name)
            images.append(pixels)

    if not images:
        reasons = "; ".join(f"{name}: {reason}" for name, reason in skipped[:5])
        raise RepLensError(f"The {set_name} set has no readable image. {reasons}".strip())
    return ImageSet(tuple(names), tuple(images), tuple(skipped))


def check_captions(names: Sequence[str], captions: Sequence[str | None]) -> None:
    """Raise ``RepLensError`` naming every image whose caption is missing or blank."""
    blank = [name for name, caption in zip(names, captions) if caption is None or not str(caption).strip()]
    if blank:
        raise RepLensError(
            f"Empty caption for {', '.join(blank)}. Type a caption for every image or remove the image."
        )


def match_captions_csv(data: bytes, file_names: Sequence[str]) -> CaptionMatch:
    """Read a CSV of file names and captions and match its rows to uploaded files.

    The CSV needs a header with a file column (file, file_name, filename,
    image, name or path) and a caption column (caption, text or prompt),
    case-insensitive. A row matches the file of the same name, or else the
    only file with the same base name, so "imgs/a.png" matches an upload
    named "a.png" and "a.png" matches the zip member "cats/a.png".
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise RepLensError(f"The caption CSV is not UTF-8 text ({error}). Save it as UTF-8.") from error

    reader = csv.DictReader(io.StringIO(text))
    header = {column.strip().lower(): column for column in (reader.fieldnames or [])}
    file_column = next((header[name] for name in _FILE_COLUMNS if name in header), None)
    caption_column = next((header[name] for name in _CAPTION_COLUMNS if name in header), None)
    if file_column is None or caption_column is None:
        raise RepLensError(
            f"The caption CSV needs a header with a file column ({', '.join(_FILE_COLUMNS)}) "
            f"and a caption column ({', '.join(_CAPTION_COLUMNS)}) but has {list(reader.fieldnames or [])}."
        )

    by_base_name: dict[str, list[str]] = {}
    for name in file_names:
        by_base_name.setdefault(posixpath.basename(name), []).append(name)

    captions: dict[str, str] = {}
    extra = []
    for row in reader:
        row_name = (row.get(file_column) or "").strip().replace("\\", "/")
        if not row_name:
            continue
        match = _match_file_name(row_name, file_names, by_base_name)
        if match is None:
            extra.append(row_name)
        else:
            captions[match] = (row.get(caption_column) or "").strip()

    missing = tuple(name for name in file_names if name not in captions)
    return CaptionMatch(captions=captions, missing=missing, extra=tuple(extra))


def _match_file_name(row_name: str, file_names: Sequence[str], by_base_name: dict[str, list[str]]) -> str | None:
    if row_name in file_names:
        return row_name
    candidates = by_base_name.get(posixpath.basename(row_name), [])
    return candidates[0] if len(candidates) == 1 else None
