"""Zero-shot: CLIP scores an image against labels it was never trained on."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from components.clip_model import classify_cached, clip_model_sidebar
from components.image_source import current_image, decode_image_cached, show_image_notices
from core.clip import ClipBundle
from core.errors import RepLensError
from core.images import UPLOAD_TYPES, LoadedImage, working_copy
from core.zero_shot import (
    BASELINE_LABEL, DEFAULT_TEMPLATES, ZeroShotResult, check_templates, clean_labels, words_outside_vocabulary,
)

IMAGES_MODE_KEY = "zero_shot_images_mode"
# List of LoadedImage for the several-images mode, filled by the uploader.
UPLOADED_IMAGES_KEY = "zero_shot_images"
LABELS_KEY = "zero_shot_labels"
TEMPLATES_KEY = "zero_shot_templates"
PRESENTATION_KEY = "zero_shot_presentation"

IMAGE_MODES = ("Shared image", "Several images")
MAX_IMAGES = 16

# Tick labels in the probability chart are cut to this many characters.
CHART_LABEL_CHARS = 40
SOFTMAX_CAVEAT = (
    "The probabilities compare only the labels given and always sum to 100 %, so the top label wins "
    "even when none fits. The cosines do not depend on the other labels."
)
BUNDLED_LABELS = "red circle\nyellow star\npurple triangle\nblue square\nhandwritten digit seven"
PHOTO_LABELS = "astronaut\ncat\nrocket\ncup of coffee"


def explanation() -> None:
    st.title("Zero-shot classification with CLIP")
    st.markdown(
        "CLIP has two encoders. The **image encoder** (a Vision Transformer) turns the image "
        "into a vector $x$; the **text encoder** (a Transformer) turns each prompt, such as "
        "*a photo of a cat.*, into a vector $t_k$. Both vectors are scaled to length 1 and live "
        "in the same space, so their dot product is the cosine of the angle between them. "
        "Training pulled matching image-caption pairs together, so the label whose prompt "
        "points the same way as the image wins. No classifier was trained on these labels: "
        "that is why it is called *zero-shot*."
    )
    st.latex(
        r"\cos_k = \frac{x \cdot t_k}{\lVert x\rVert\,\lVert t_k\rVert}, \qquad "
        r"p_k = \frac{\exp(s \cos_k)}{\sum_j \exp(s \cos_j)}, \qquad s = e^{\text{logit\_scale}}"
    )
    st.markdown(
        "The temperature $s$ is learned (100 for OpenAI's CLIP). Each label is written into "
        "every template; the label's vector is the mean of its normalised prompt vectors, "
        "normalised again (prompt ensembling). The softmax makes labels compete: the "
        "probabilities always sum to 1, even if no label fits. The **independent score** "
        f"$\\sigma(s(\\cos_k - \\cos_0))$ compares each label alone with the neutral label "
        f"*{BASELINE_LABEL}* ($\\cos_0$), so it does not depend on the other labels."
    )


def bundled_notice(bundle: ClipBundle) -> None:
    if bundle.is_bundled:
        side = bundle.model.config.vision_config.image_size
        st.warning(
            "The bundled compact CLIP only knows its small world: coloured shapes (circle, square, "
            "triangle, star, cross, hexagon in eight colours) and handwritten digits, seen at "
            f"{side} x {side} pixels. On real photos its answers mean nothing, and words outside its "
            "captions get arbitrary embeddings. For photos, pick a real CLIP checkpoint in the sidebar, "
            "such as openai/clip-vit-base-patch32 when the Hugging Face Hub is reachable or the "
            "checkpoint is in the local cache, or a folder with a saved CLIP."
        )


def unknown_words_notice(bundle: ClipBundle, labels: tuple[str, ...]) -> None:
    """Name the label words that the bundled model never saw in its training captions."""
    if not bundle.is_bundled:
        return
    unknown = words_outside_vocabulary(bundle.processor.tokenizer.get_vocab(), labels)
    if unknown:
        st.warning(
            "The bundled model never saw these words in its training captions, so scores of labels "
            f"that use them mean little: {', '.join(unknown)}."
        )


def images_ui() -> list[LoadedImage]:
    """Return the images to classify: the shared image or several uploads."""
    mode = st.radio("Images", IMAGE_MODES, horizontal=True, key=IMAGES_MODE_KEY)
    if mode == "Shared image":
        image = current_image()
        show_image_notices(image)
        return [image]

    uploads = st.file_uploader(
        f"Images (up to {MAX_IMAGES})", type=UPLOAD_TYPES, accept_multiple_files=True, key="zero_shot_upload"
    )
    if uploads:
        decoded = []
        for upload in uploads[:MAX_IMAGES]:
            try:
                decoded.append(working_copy(decode_image_cached(upload.getvalue(), upload.name)))
            except RepLensError as error:
                st.error(str(error))
        st.session_state[UPLOADED_IMAGES_KEY] = decoded
        if len(uploads) > MAX_IMAGES:
            st.warning(f"Only the first {MAX_IMAGES} of {len(uploads)} images are used.")
    images = st.session_state.get(UPLOADED_IMAGES_KEY) or []
    if not images:
        st.info("Upload images to compare them; until then the shared image is used.")
        return [current_image()]
    return list(images)


def labels_ui(bundle: ClipBundle) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Draw the label and template editors and return the cleaned values."""
    if LABELS_KEY not in st.session_state:
        st.session_state[LABELS_KEY] = BUNDLED_LABELS if bundle.is_bundled else PHOTO_LABELS
    if TEMPLATES_KEY not in st.session_state:
        st.session_state[TEMPLATES_KEY] = "\n".join(DEFAULT_TEMPLATES)

    left, right = st.columns(2)
    labels_text = left.text_area("Labels, one per line", key=LABELS_KEY, height=160)
    templates_text = right.text_area(
        "Prompt templates, one per line ({} is replaced by the label)", key=TEMPLATES_KEY, height=160,
        help="Every label is written into every template; the prompt vectors of a label are averaged.",
    )
    return clean_labels(labels_text.splitlines()), check_templates(templates_text.splitlines())


RESULT_COLUMNS = {
    "probability": st.column_config.NumberColumn(format="%.4f", help="Softmax over the labels: sums to 1."),
    "cosine": st.column_config.NumberColumn(format="%.4f", help="Cosine of the image and label embeddings."),
    "independent score": st.column_config.NumberColumn(
        format="%.4f",
        help="sigmoid(s (cos_label - cos_thing)): above 0.5 when the label fits better than the neutral "
        "label 'thing'. It judges each label alone, so it is no probability that the label is right.",
    ),
}


def result_table(result: ZeroShotResult, row: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "label": result.labels,
            "probability": result.probabilities[row],
            "cosine": result.cosines[row],
            "independent score": result.independent[row],
        }
    )


def short_label(label: str, limit: int = CHART_LABEL_CHARS) -> str:
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


def probability_chart(result: ZeroShotResult, row: int) -> go.Figure:
    order = np.argsort(result.probabilities[row])
    labels = [result.labels[i] for i in order]
    # Bars sit at positions 0..n-1 with shortened tick texts, so long labels leave room for the bars
    # and two labels that shorten alike keep separate bars. Hovering shows the whole label. Plotly reads
    # tags such as <b> in these texts, so labels are escaped to show as typed.
    figure = go.Figure(
        go.Bar(
            x=result.probabilities[row][order], y=list(range(len(labels))), orientation="h",
            text=[f"p = {result.probabilities[row][i]:.3f}   cos = {result.cosines[row][i]:.3f}" for i in order],
            hovertext=[html.escape(label) for label in labels], hoverinfo="text+x",
            textposition="outside", marker_color="#4c78a8",
        )
    )
    figure.update_layout(
        xaxis={"range": [0, 1.3], "tickvals": [0, 0.25, 0.5, 0.75, 1], "title": "probability (softmax over the labels)"},
        yaxis={"tickvals": list(range(len(labels))), "ticktext": [html.escape(short_label(label)) for label in labels]},
        height=80 + 40 * len(labels), margin={"l": 10, "r": 10, "t": 10, "b": 40},
    )
    return figure


def single_image_results(image: LoadedImage, result: ZeroShotResult) -> None:
    left, right = st.columns([1, 2])
    left.image(image.pixels, caption=image.name, width="stretch")
    if result.single_label:
        right.info(
            "With a single label the softmax is always 1, so a probability means nothing here. "
            "Read the cosine and the independent score instead, or add more labels."
        )
        right.metric(f"Cosine with “{result.labels[0]}”", f"{result.cosines[0, 0]:.4f}")
        right.metric("Independent score", f"{result.independent[0, 0]:.3f}")
    else:
        right.plotly_chart(probability_chart(result, 0), width="stretch")
    right.dataframe(result_table(result, 0), hide_index=True, width="stretch", column_config=RESULT_COLUMNS)
    right.caption(SOFTMAX_CAVEAT)


def several_images_results(images: list[LoadedImage], result: ZeroShotResult) -> None:
    values = result.cosines if result.single_label else result.probabilities
    title = "cosine" if result.single_label else "probability"
    names = [f"{index + 1}. {image.name}" for index, image in enumerate(images)]
    figure = px.imshow(
        values, x=list(result.labels), y=names, text_auto=".2f", aspect="auto",
        color_continuous_scale="Blues", labels={"color": title, "x": "label", "y": "image"},
    )
    st.plotly_chart(figure, width="stretch")
    if result.single_label:
        st.info("With a single label every probability is 1; the heatmap shows cosines instead.")
    table = pd.DataFrame(values, index=names, columns=list(result.labels))
    number_format = {label: st.column_config.NumberColumn(format="%.4f") for label in result.labels}
    st.dataframe(table, width="stretch", column_config=number_format)
    st.caption(SOFTMAX_CAVEAT)
    thumbnails = st.columns(min(len(images), 8))
    for index, image in enumerate(images):
        thumbnails[index % len(thumbnails)].image(image.pixels, caption=names[index], width="stretch")


def presentation(images: list[LoadedImage], result: ZeroShotResult, model_name: str) -> None:
    """Show each image with its top label in large type, the runner-up, and what the numbers mean."""
    st.caption(f"Model: {model_name}. {SOFTMAX_CAVEAT}")
    for row, image in enumerate(images):
        left, right = st.columns([1, 1])
        left.image(image.pixels, caption=image.name, width="stretch")
        ranking = np.argsort(-result.probabilities[row])
        best = int(ranking[0])
        label = html.escape(result.labels[best])
        if result.single_label:
            value = f"cosine {result.cosines[row, best]:.3f}"
        else:
            value = f"{100 * result.probabilities[row, best]:.1f} %"
        runner_up = ""
        if len(ranking) > 1:
            second = int(ranking[1])
            runner_up = (
                f"<div style='font-size:1.5rem;opacity:0.75'>next: {html.escape(result.labels[second])} "
                f"{100 * result.probabilities[row, second]:.1f} %</div>"
            )
        right.markdown(
            f"<div style='font-size:3.5rem;font-weight:700;line-height:1.1'>{label}</div>"
            f"<div style='font-size:2.5rem'>{value}</div>{runner_up}",
            unsafe_allow_html=True,
        )


def main() -> None:
    bundle = clip_model_sidebar()
    presenting = st.sidebar.toggle("Presentation mode", key=PRESENTATION_KEY,
                                   help="Large type; only the image and the top label.")
    if not presenting:
        explanation()
        st.caption(f"Active model: {bundle.name}")
        bundled_notice(bundle)

    try:
        if presenting:
            images = st.session_state.get(UPLOADED_IMAGES_KEY) or [current_image()]
            labels = clean_labels(st.session_state.get(LABELS_KEY, "").splitlines())
            templates = check_templates(st.session_state.get(TEMPLATES_KEY, "\n".join(DEFAULT_TEMPLATES)).splitlines())
        else:
            images = images_ui()
            labels, templates = labels_ui(bundle)
            unknown_words_notice(bundle, labels)
        result = classify_cached(bundle.source, tuple(image.pixels for image in images), labels, templates)
    except RepLensError as error:
        st.error(str(error))
        return

    if presenting:
        presentation(images, result, bundle.name)
        return

    st.markdown("**Templates in use:** " + " · ".join(f"`{template}`" for template in result.templates))
    if result.truncated_prompts:
        st.warning(
            f"{len(result.truncated_prompts)} prompts were longer than the model's {bundle.context_length} "
            f"tokens, so only their first {bundle.context_length - 2} tokens, between the start and end tokens, were read: "
            + "; ".join(short_label(prompt, 80) for prompt in result.truncated_prompts[:3])
        )
    st.caption(f"Logit scale s = exp({bundle.logit_scale:.4f}) = {result.scale:.2f}, applied once.")
    if len(images) == 1:
        single_image_results(images[0], result)
    else:
        several_images_results(images, result)


main()
