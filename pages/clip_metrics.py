"""CLIP metrics: CLIP Score for captioned images, CLIP similarity between image sets."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from components.clip_model import clip_model_sidebar
from components.image_source import current_image
from components.metrics_inputs import (
    CAPTION_CSV_KEY,
    CAPTION_FILES_KEY,
    CAPTIONS_KEY,
    GENERATED_FILES_KEY,
    REFERENCE_FILES_KEY,
    cached_caption_scores,
    cached_set_comparison,
    cached_thumbnails,
    files_digest,
    load_image_set,
    model_key,
    uploaded_files,
)
from core.clip import ClipBundle
from core.clip_metrics import (
    CLIP_SCORE_WEIGHT,
    GAL_BATCH_SIZE,
    TORCHMETRICS_WEIGHT,
    ClipScores,
    ImageSet,
    SetComparison,
    match_captions_csv,
)
from core.errors import RepLensError
from core.images import UPLOAD_TYPES

# Largest matrix drawn with the value written in each cell.
ANNOTATED_HEATMAP_MAX_CELLS = 400


def short_model_name(bundle: ClipBundle) -> str:
    """Return the model name for metric labels: a folder's last component, or the name itself."""
    return Path(bundle.name).name if bundle.name == bundle.source and Path(bundle.source).is_dir() else bundle.name


def format_value(value: float, digits: int = 4) -> str:
    """Format a metric value, or "n/a" for NaN."""
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


# --- Introduction ------------------------------------------------------------


def introduction() -> None:
    st.title("CLIP metrics")
    st.markdown(
        "Papers on image generation judge their outputs in CLIP's embedding space. "
        "**CLIP Score** measures how well an image matches its caption. **Pairwise CLIP "
        "similarity** measures how close generated images are to reference images of a "
        "concept. Both are cosines between L2-normalised CLIP embeddings, but tools scale "
        "and average them differently. This page computes each one exactly and shows how."
    )
    st.latex(
        rf"\text{{CLIP-S}}(I, C) = w \cdot \max\big(\cos(E_I, E_C),\, 0\big), \qquad w = {CLIP_SCORE_WEIGHT}"
    )


def worked_example(bundle: ClipBundle) -> None:
    """Score the shared sidebar image against a caption the user types."""
    image = current_image()
    # The sample name up to its source in brackets and any comment after a comma.
    default_caption = "a photo of " + re.sub(r"\s*\(.*\)$", "", image.name).split(",")[0].lower()
    left, right = st.columns([1, 2])
    left.image(image.pixels, caption=image.name, width="stretch")
    # One text box per image, so that picking another image brings up its own default caption.
    caption = right.text_input(
        "Caption for the sidebar image", value=default_caption, key=f"metrics_example_caption_{image.name}"
    )
    if not caption.strip():
        right.warning("Type a caption to score the image.")
        return

    key = files_digest([(image.name, image.pixels.tobytes())])
    try:
        result = cached_caption_scores(bundle, model_key(bundle), key, (image.pixels,), (caption,), (image.name,))
    except RepLensError as error:
        right.error(str(error))
        return

    cosine = float(result.cosines[0])
    score = float(result.scores[0])
    right.latex(
        rf"\cos = {cosine:.4f} \;\Rightarrow\; {CLIP_SCORE_WEIGHT} \cdot \max({cosine:.4f}, 0) = {score:.4f}"
    )
    first, second = right.columns(2)
    label_model = short_model_name(bundle)
    first.metric(f"Cosine · {label_model}", f"{cosine:.4f}", help=f"Computed with {bundle.name}.")
    second.metric(f"CLIP Score · {label_model}", f"{score:.4f}", help=f"Computed with {bundle.name}.")
    if bundle.is_bundled:
        right.caption(
            "The bundled compact CLIP only knows coloured shapes and handwritten digits, so scores on "
            "photos mean little. Pick a real CLIP checkpoint in the sidebar for photos."
        )
    if result.truncated[0]:
        right.warning(
            f"The caption is longer than the model's context of {bundle.context_length} tokens, "
            "so the tokenizer kept the first tokens and the end token."
        )


# --- CLIP Score ----------------------------------------------------------------


def caption_inputs() -> tuple[ImageSet | None, str, dict[str, str]]:
    """Draw the image uploader and the caption editor or CSV.

    Returns the images, a digest of the uploaded files and the captions by file name.
    """
    files = uploaded_files(
        "Images to caption", "metrics_caption_upload", UPLOAD_TYPES + ["zip"], CAPTION_FILES_KEY,
        "One caption per image. A zip of images works too.",
    )
    if not files:
        st.info("Upload images (or a zip of images) to score them against their captions.")
        return None, "", {}
    files_key = files_digest(files)
    try:
        image_set = load_image_set(tuple(files), "captioned")
    except RepLensError as error:
        st.error(str(error))
        return None, "", {}
    show_skipped(image_set)

    source = st.radio("Captions", ["Type them", "From a CSV file"], horizontal=True, key="metrics_caption_source")
    if source == "Type them":
        return image_set, files_key, typed_captions(image_set, files_key)
    return image_set, files_key, csv_captions(image_set)


def typed_captions(image_set: ImageSet, files_key: str) -> dict[str, str]:
    initial = st.session_state.get(CAPTIONS_KEY, {})
    table = pd.DataFrame(
        {
            "image": cached_thumbnails(files_key, image_set.images),
            "file": list(image_set.names),
            "caption": [initial.get(name, "") for name in image_set.names],
        }
    )
    # One editor per set of files, so that edits never land on the rows of other files.
    edited = st.data_editor(
        table,
        key=f"metrics_caption_editor_{files_key[:16]}",
        hide_index=True,
        disabled=["image", "file"],
        column_config={
            "image": st.column_config.ImageColumn("Image", width="small"),
            "file": st.column_config.TextColumn("File"),
            "caption": st.column_config.TextColumn("Caption", width="large", required=True),
        },
    )
    captions = dict(zip(edited["file"], edited["caption"].fillna("").astype(str)))
    # Typed captions carry over, by file name, when files are added or removed.
    st.session_state[CAPTIONS_KEY] = {**initial, **captions}
    return captions


def csv_captions(image_set: ImageSet) -> dict[str, str]:
    upload = st.file_uploader(
        "Caption CSV", type=["csv"], key="metrics_caption_csv_upload",
        help="A header with a file column (file, file_name, image ...) and a caption column "
        "(caption, text or prompt). Rows match images by file name.",
    )
    data = upload.getvalue() if upload is not None else st.session_state.get(CAPTION_CSV_KEY)
    if data is None:
        st.info("Upload a CSV with one row per image: file name and caption.")
        return {}
    try:
        match = match_captions_csv(data, image_set.names)
    except RepLensError as error:
        st.error(str(error))
        return {}
    if match.missing:
        st.warning(f"No CSV row for {len(match.missing)} image(s), left out: {', '.join(match.missing)}")
    if match.extra:
        st.warning(f"{len(match.extra)} CSV row(s) match no uploaded image, ignored: {', '.join(match.extra)}")
    return match.captions


def clip_score_section(bundle: ClipBundle) -> None:
    st.subheader("CLIP Score of captioned images")
    image_set, files_key, captions = caption_inputs()
    if image_set is None or not captions:
        return
    if not any(caption.strip() for caption in captions.values()):
        st.info("Type a caption for each image to see its CLIP Score.")
        return
    blank = [name for name in image_set.names if name in captions and not captions[name].strip()]
    if blank:
        st.warning(f"Empty caption for {', '.join(blank)}. These images are left out until they have a caption.")

    chosen = [
        index for index, name in enumerate(image_set.names) if name in captions and captions[name].strip()
    ]
    names = tuple(image_set.names[index] for index in chosen)
    images = tuple(image_set.images[index] for index in chosen)
    texts = tuple(captions[name] for name in names)
    # The uploaded files and the chosen names identify the images.
    images_key = f"{files_key}|{names}"
    try:
        result = cached_caption_scores(bundle, model_key(bundle), images_key, images, texts, names)
    except RepLensError as error:
        st.error(str(error))
        return
    thumbnails = cached_thumbnails(images_key, images)
    show_clip_scores(bundle, result, names, thumbnails, texts)


def show_clip_scores(
    bundle: ClipBundle, result: ClipScores, names: tuple[str, ...], thumbnails: list[str], captions: tuple[str, ...]
) -> None:
    model = bundle.name
    label_model = short_model_name(bundle)
    columns = st.columns(4)
    columns[0].metric(
        f"Mean CLIP Score · {label_model}", format_value(result.mean),
        help=f"Mean of {CLIP_SCORE_WEIGHT} * max(cos, 0) over the pairs, computed with {model}.",
    )
    columns[1].metric(
        f"Standard deviation · {label_model}", format_value(result.std),
        help=f"Sample standard deviation (n - 1 in the denominator) of the scores, computed with {model}. "
        "It is n/a for a single pair.",
    )
    columns[2].metric(
        f"Mean cosine · {label_model}", format_value(float(result.cosines.mean())),
        help=f"Mean cosine before clamping and weighting, computed with {model}.",
    )
    columns[3].metric("Pairs", len(names))
    torchmetrics_set_value = max(TORCHMETRICS_WEIGHT * float(result.cosines.mean()), 0.0)
    st.caption(
        f"torchmetrics' CLIPScore over these pairs would report {torchmetrics_set_value:.2f}: it clamps "
        f"the mean of {TORCHMETRICS_WEIGHT:g} cos, not each pair. The RepLens mean on that scale is "
        f"{result.mean * TORCHMETRICS_WEIGHT / CLIP_SCORE_WEIGHT:.2f}."
    )

    truncated_count = sum(result.truncated)
    if truncated_count:
        st.warning(
            f"{truncated_count} caption(s) are longer than the context of {bundle.context_length} tokens "
            f"of {model}, so the tokenizer kept the first tokens and the end token. They are marked in the table."
        )
    if len(names) == 1:
        st.info("A single pair has no spread. Add more images for a mean and a standard deviation.")

    table = pd.DataFrame(
        {
            "image": thumbnails,
            "file": list(names),
            "caption": list(captions),
            "cosine": result.cosines,
            "clip_score": result.scores,
            "torchmetrics_scale": result.scores * (TORCHMETRICS_WEIGHT / CLIP_SCORE_WEIGHT),
            "truncated": list(result.truncated),
        }
    )
    st.markdown(f"**Per-pair scores, {model}.** Click a column header to sort.")
    st.dataframe(
        table,
        key="metrics_score_table",
        hide_index=True,
        column_config={
            "image": st.column_config.ImageColumn("Image", width="small"),
            "file": st.column_config.TextColumn("File"),
            "caption": st.column_config.TextColumn("Caption", width="large"),
            "cosine": st.column_config.NumberColumn("Cosine", format="%.4f"),
            "clip_score": st.column_config.NumberColumn(f"CLIP Score (w = {CLIP_SCORE_WEIGHT})", format="%.4f"),
            "torchmetrics_scale": st.column_config.NumberColumn(
                f"torchmetrics scale (w = {TORCHMETRICS_WEIGHT:g})", format="%.2f"
            ),
            "truncated": st.column_config.CheckboxColumn("Truncated"),
        },
    )
    export = table.drop(columns=["image"]).assign(model=model)
    st.download_button(
        "Download the scores as CSV", export.to_csv(index=False).encode("utf-8"),
        file_name="clip_scores.csv", mime="text/csv", key="metrics_scores_download",
    )


# --- Generated vs reference ------------------------------------------------------


@dataclass(frozen=True)
class UploadedSet:
    """A decoded image set and the SHA-256 digest of the files it came from."""

    image_set: ImageSet
    key: str


def image_set_inputs() -> tuple[UploadedSet | None, UploadedSet | None]:
    left, right = st.columns(2)
    loaded = []
    for column, set_name, key, fallback in (
        (left, "generated", "metrics_generated_upload", GENERATED_FILES_KEY),
        (right, "reference", "metrics_reference_upload", REFERENCE_FILES_KEY),
    ):
        with column:
            files = uploaded_files(
                f"{set_name.capitalize()} images", key, UPLOAD_TYPES + ["zip"], fallback,
                "Several image files, or one zip of images per set.",
            )
            loaded.append(load_set(files, set_name))
    return loaded[0], loaded[1]


def load_set(files: list[tuple[str, bytes]], set_name: str) -> UploadedSet | None:
    if not files:
        st.info(f"The {set_name} set is empty. Upload images or a zip.")
        return None
    try:
        image_set = load_image_set(tuple(files), set_name)
    except RepLensError as error:
        st.error(str(error))
        return None
    st.caption(f"{len(image_set.names)} {set_name} image(s).")
    show_skipped(image_set)
    return UploadedSet(image_set, files_digest(files))


def show_skipped(image_set: ImageSet) -> None:
    if not image_set.skipped:
        return
    listed = "\n".join(f"- {name}: {reason}" for name, reason in image_set.skipped[:20])
    more = f"\n- … and {len(image_set.skipped) - 20} more" if len(image_set.skipped) > 20 else ""
    st.warning(f"{len(image_set.skipped)} file(s) left out:\n{listed}{more}")


def set_similarity_section(bundle: ClipBundle) -> None:
    st.subheader("Generated images against reference images")
    generated, reference = image_set_inputs()
    if generated is None or reference is None:
        return

    batched = st.checkbox(
        f"Average in batches of {GAL_BATCH_SIZE} generated images, as Gal et al. (2022) did",
        key="metrics_batched",
        help="The mean of per-batch means. Equal to the mean over all pairs when every batch is full.",
    )
    batch_size = GAL_BATCH_SIZE if batched else None
    try:
        comparison = cached_set_comparison(
            bundle, model_key(bundle), f"{generated.key}|{reference.key}",
            generated.image_set.images, reference.image_set.images, batch_size,
        )
    except RepLensError as error:
        st.error(str(error))
        return
    show_set_comparison(bundle, comparison, generated, reference)


def show_set_comparison(
    bundle: ClipBundle, comparison: SetComparison, generated: UploadedSet, reference: UploadedSet
) -> None:
    model = bundle.name
    label_model = short_model_name(bundle)
    similarity = comparison.similarity
    columns = st.columns(4)
    columns[0].metric(
        f"Generated-reference similarity · {label_model}", format_value(similarity.mean_cross),
        help=f"Mean cosine over all (generated, reference) pairs, computed with {model}.",
    )
    columns[1].metric(
        f"Within generated · {label_model}", format_value(similarity.mean_within_generated),
        help=f"Mean cosine between distinct generated images, computed with {model}. "
        "Higher means less diverse.",
    )
    columns[2].metric(
        f"Within reference · {label_model}", format_value(similarity.mean_within_reference),
        help=f"Mean cosine between distinct reference images, computed with {model}. "
        "Higher means less diverse.",
    )
    frechet_value = comparison.frechet.distance if comparison.frechet is not None else math.nan
    columns[3].metric(
        f"Fréchet distance · {label_model}", format_value(frechet_value),
        help=f"Between Gaussian fits of the two sets of image embeddings from {model}.",
    )

    if similarity.batch_means:
        listed = ", ".join(f"{mean:.4f}" for mean in similarity.batch_means)
        st.caption(f"Batch means ({similarity.batch_size} generated images per batch): {listed}.")
    if len(generated.image_set.names) < 2 or len(reference.image_set.names) < 2:
        st.warning(
            "A set with a single image has no within-set similarity and no covariance, so "
            "those values and the Fréchet distance are n/a. Add a second image to each set."
        )
    if comparison.frechet is not None:
        for warning in comparison.frechet.warnings:
            st.warning(warning)

    show_similarity_heatmap(model, comparison, generated.image_set, reference.image_set)
    show_nearest_references(model, comparison, generated, reference.image_set)


def show_similarity_heatmap(model: str, comparison: SetComparison, generated: ImageSet, reference: ImageSet) -> None:
    similarity = comparison.similarity
    choices = {
        "Generated x reference": (similarity.cross, generated.names, reference.names),
        "Generated x generated": (similarity.generated_self, generated.names, generated.names),
        "Reference x reference": (similarity.reference_self, reference.names, reference.names),
    }
    choice = st.radio("Similarity matrix", list(choices), horizontal=True, key="metrics_matrix_choice")
    matrix, rows, columns = choices[choice]

    figure = px.imshow(
        matrix, x=list(columns), y=list(rows), color_continuous_scale="Viridis", aspect="auto",
        labels={"color": "cosine"}, text_auto=".2f" if matrix.size <= ANNOTATED_HEATMAP_MAX_CELLS else False,
        title=f"{choice} cosine similarity, {model}",
    )
    st.plotly_chart(figure, width="stretch", key="metrics_heatmap")

    long_table = pd.DataFrame(
        [
            {"generated": row_name, "reference": column_name, "cosine": float(similarity.cross[row, column]), "model": model}
            for row, row_name in enumerate(generated.names)
            for column, column_name in enumerate(reference.names)
        ]
    )
    st.download_button(
        "Download the generated x reference cosines as CSV", long_table.to_csv(index=False).encode("utf-8"),
        file_name="clip_similarity_pairs.csv", mime="text/csv", key="metrics_pairs_download",
    )


def show_nearest_references(model: str, comparison: SetComparison, generated: UploadedSet, reference: ImageSet) -> None:
    cross = comparison.similarity.cross
    nearest = cross.argmax(axis=1)
    table = pd.DataFrame(
        {
            "image": cached_thumbnails(generated.key, generated.image_set.images),
            "generated": list(generated.image_set.names),
            "mean_cosine": cross.mean(axis=1),
            "nearest_reference": [reference.names[index] for index in nearest],
            "nearest_cosine": cross[np.arange(len(nearest)), nearest],
        }
    )
    st.markdown(f"**Each generated image against the reference set, {model}.**")
    st.dataframe(
        table,
        key="metrics_set_table",
        hide_index=True,
        column_config={
            "image": st.column_config.ImageColumn("Image", width="small"),
            "generated": st.column_config.TextColumn("Generated image"),
            "mean_cosine": st.column_config.NumberColumn("Mean cosine to references", format="%.4f"),
            "nearest_reference": st.column_config.TextColumn("Nearest reference"),
            "nearest_cosine": st.column_config.NumberColumn("Cosine to nearest", format="%.4f"),
        },
    )
    summary = pd.DataFrame(
        [
            {"metric": "mean generated-reference cosine", "value": comparison.similarity.mean_cross},
            {"metric": "mean cosine within generated", "value": comparison.similarity.mean_within_generated},
            {"metric": "mean cosine within reference", "value": comparison.similarity.mean_within_reference},
            {"metric": "Fréchet distance", "value": comparison.frechet.distance if comparison.frechet else math.nan},
        ]
    ).assign(model=model, batch_size=comparison.similarity.batch_size or 0)
    left, right = st.columns(2)
    left.download_button(
        "Download the per-image table as CSV",
        table.drop(columns=["image"]).assign(model=model).to_csv(index=False).encode("utf-8"),
        file_name="clip_set_per_image.csv", mime="text/csv", key="metrics_per_image_download",
    )
    right.download_button(
        "Download the summary as CSV", summary.to_csv(index=False).encode("utf-8"),
        file_name="clip_set_summary.csv", mime="text/csv", key="metrics_summary_download",
    )


# --- Formulas and sources ------------------------------------------------------


def formulas() -> None:
    st.subheader("Formulas, sources and how other tools differ")
    st.markdown(
        "Every embedding is L2-normalised, so a cosine is a dot product of unit vectors: "
        r"$\cos(u, v) = \frac{u \cdot v}{\lVert u \rVert\,\lVert v \rVert}$."
    )

    st.markdown(
        "**CLIP Score**, from Hessel et al. 2021, *CLIPScore: A Reference-free Evaluation Metric "
        f"for Image Captioning*, EMNLP 2021. Per (image, caption) pair with w = {CLIP_SCORE_WEIGHT}, "
        "so a negative cosine counts as 0. The set value is the mean over pairs."
    )
    st.latex(rf"\text{{CLIP-S}}(I, C) = {CLIP_SCORE_WEIGHT} \cdot \max\big(\cos(E_I, E_C),\, 0\big)")
    st.markdown(
        f"**torchmetrics** (`CLIPScore`, version 1.9) uses w = {TORCHMETRICS_WEIGHT:g}, so "
        f"RepLens's score = torchmetrics' score / {TORCHMETRICS_WEIGHT / CLIP_SCORE_WEIGHT:g} "
        f"(times {CLIP_SCORE_WEIGHT / TORCHMETRICS_WEIGHT:g}) for each pair. For a set, torchmetrics "
        "averages 100 cos first and clamps the mean at 0, while RepLens clamps each pair. "
        "The two agree when no cosine is negative. torchmetrics also cuts long captions after the "
        "context length without keeping the end token, while RepLens keeps it."
    )

    st.markdown(
        "**Pairwise CLIP similarity**, from Gal et al. 2022, *An Image is Worth One Word*, the "
        "image-similarity evaluation of textual inversion: the mean cosine over all "
        "(generated, reference) pairs."
    )
    st.latex(r"\text{sim}(G, R) = \frac{1}{N_g N_r} \sum_{i=1}^{N_g} \sum_{j=1}^{N_r} \cos(g_i, r_j)")
    st.markdown(
        f"With batches of {GAL_BATCH_SIZE} generated images, the value is the unweighted mean of "
        "the batch means. It equals the mean over all pairs when every batch is full, and a "
        "smaller last batch weighs more per pair."
    )

    st.markdown(
        "**Within-set similarity** leaves the diagonal out. It is a diversity measure: "
        "a value near 1 means near-duplicate images."
    )
    st.latex(r"\text{sim}(X) = \frac{1}{N(N-1)} \sum_{i \ne j} \cos(x_i, x_j)")

    st.markdown(
        "**Fréchet distance** between Gaussian fits (sample means and covariances) of the two sets "
        "of normalised CLIP image embeddings: the formula of FID (Heusel et al. 2017) in CLIP space, "
        "reported as the squared distance d², as FID is. "
        "With fewer images than embedding dimensions the covariances are singular and the "
        "value is biased upwards, so compare it only between sets of the same size."
    )
    st.latex(
        r"d^2 = \lVert \mu_1 - \mu_2 \rVert^2 + \operatorname{Tr}\big(\Sigma_1 + \Sigma_2 - 2 (\Sigma_1 \Sigma_2)^{1/2}\big)"
    )


# --- Page ------------------------------------------------------------------------

introduction()
try:
    active_bundle = clip_model_sidebar()
except RepLensError as error:
    st.error(str(error))
    st.stop()
st.caption(f"Active CLIP model: **{active_bundle.name}**. Every number on this page comes from it.")

worked_example(active_bundle)
score_tab, sets_tab, formulas_tab = st.tabs(["CLIP Score", "Generated vs reference", "Formulas and sources"])
with score_tab:
    clip_score_section(active_bundle)
with sets_tab:
    set_similarity_section(active_bundle)
with formulas_tab:
    formulas()
