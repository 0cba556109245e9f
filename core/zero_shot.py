"""Zero-shot classification with a CLIP model: labels in, probabilities out.

Each label is written into every prompt template ("a photo of a {}."), the
prompts are encoded and normalised, and their mean, normalised again, is the
label's embedding (prompt ensembling, Radford et al. 2021, "Learning
Transferable Visual Models From Natural Language Supervision", section 3.1.4).
For an image embedding x and label embeddings t_k, all of unit length:

    cosine_k      = x . t_k
    probability_k = softmax_k(exp(logit_scale) * cosine_k)

``logit_scale`` is the learned log temperature stored in the checkpoint and is
applied here exactly once. The softmax makes the labels compete: the
probabilities always sum to 1, even when no label fits. The independent score
``sigmoid(exp(logit_scale) * (cosine_k - cosine_baseline))`` judges each label
alone against a neutral baseline prompt, so labels do not compete and a single
label still gets a meaningful number.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from core.clip import ClipBundle, Progress, encode_images, encode_texts
from core.errors import RepLensError

# Prompt templates in the style of the ensembles of Radford et al. (2021). The
# bundled compact CLIP was trained with captions written in these templates too.
DEFAULT_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "a drawing of a {}.",
    "a close-up photo of a {}.",
    "a photo of the {}.",
)

# Label whose prompts give the baseline of the independent score.
BASELINE_LABEL = "thing"

# Placeholder that each template must contain once.
PLACEHOLDER = "{}"


@dataclass(frozen=True)
class ZeroShotResult:
    """Scores of every image against every label."""

    labels: tuple[str, ...]
    templates: tuple[str, ...]
    # (images, labels): softmax over labels of exp(logit_scale) * cosine.
    probabilities: np.ndarray
    # (images, labels): cosine between the image and the label ensemble.
    cosines: np.ndarray
    # (images, labels): sigmoid(exp(logit_scale) * (cosine - baseline cosine)).
    independent: np.ndarray
    # (images,): cosine with the baseline label's ensemble.
    baseline_cosines: np.ndarray
    # exp(logit_scale): the factor applied to cosines before the softmax.
    scale: float
    # Prompts that the tokenizer cut to the context length.
    truncated_prompts: tuple[str, ...]

    @property
    def single_label(self) -> bool:
        """True when there is one label, so every probability is 1 and means nothing."""
        return len(self.labels) == 1


def clean_labels(labels: Sequence[str]) -> tuple[str, ...]:
    """Strip labels, drop empty ones and duplicates, keeping the first order."""
    seen: dict[str, None] = {}
    for label in labels:
        text = str(label).strip()
        if text and text not in seen:
            seen[text] = None
    return tuple(seen)


def words_outside_vocabulary(vocabulary: Mapping[str, int], labels: Sequence[str]) -> list[str]:
    """List the words of ``labels`` that are not whole-word tokens of a CLIP BPE vocabulary.

    A CLIP tokenizer marks a word's last token with "</w>". In a vocabulary
    learned from a small caption corpus without reaching its size limit, as
    the bundled CLIP's is, every corpus word is one whole-word token, so a
    word found here never occurred in the training captions. Words are split
    as CLIPTokenizer does: runs of letters, and single digits.
    """
    unknown: list[str] = []
    for label in labels:
        for word in re.findall(r"[^\W\d_]+|\d", label.lower()):
            if f"{word}</w>" not in vocabulary and word not in unknown:
                unknown.append(word)
    return unknown


def check_templates(templates: Sequence[str]) -> tuple[str, ...]:
    """Return the non-empty templates; raise when one lacks exactly one ``{}``."""
    cleaned = tuple(str(template).strip() for template in templates if str(template).strip())
    if not cleaned:
        raise RepLensError('No prompt template given. Enter at least one, such as "a photo of a {}.".')
    for template in cleaned:
        if template.count(PLACEHOLDER) != 1:
            raise RepLensError(
                f"Template {template!r} must contain {PLACEHOLDER} exactly once, where the label goes."
            )
    return cleaned


def label_embeddings(
    bundle: ClipBundle,
    labels: Sequence[str],
    templates: Sequence[str] = DEFAULT_TEMPLATES,
    progress: Progress | None = None,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Encode each label through every template and ensemble the prompts.

    Returns the (labels, D) unit-norm ensembles and the prompts that were
    truncated. Each ensemble is the mean of the label's normalised prompt
    embeddings, normalised again.
    """
    templates = check_templates(templates)
    prompts = [template.format(label) for label in labels for template in templates]
    encoded = encode_texts(bundle, prompts, progress=progress)

    per_label = encoded.embeddings.reshape(len(labels), len(templates), -1)
    mean = per_label.mean(axis=1)
    ensembles = mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
    truncated = tuple(prompt for prompt, cut in zip(prompts, encoded.truncated) if cut)
    return ensembles.astype(np.float32), truncated


def classify_embeddings(
    bundle: ClipBundle,
    image_embeddings: np.ndarray,
    labels: Sequence[str],
    templates: Sequence[str] = DEFAULT_TEMPLATES,
) -> ZeroShotResult:
    """Score unit-norm (N, D) image embeddings against ``labels``."""
    labels = clean_labels(labels)
    if not labels:
        raise RepLensError("No labels given. Enter at least one label, such as cat.")
    templates = check_templates(templates)

    label_texts, truncated = label_embeddings(bundle, labels, templates)
    baseline_text = label_embeddings(bundle, [BASELINE_LABEL], templates)[0][0]
    scale = math.exp(bundle.logit_scale)

    cosines = image_embeddings.astype(np.float64) @ label_texts.T.astype(np.float64)
    baseline = image_embeddings.astype(np.float64) @ baseline_text.astype(np.float64)
    probabilities = softmax(scale * cosines)
    independent = 1.0 / (1.0 + np.exp(-scale * (cosines - baseline[:, None])))
    return ZeroShotResult(
        labels=labels,
        templates=templates,
        probabilities=probabilities,
        cosines=cosines,
        independent=independent,
        baseline_cosines=baseline,
        scale=scale,
        truncated_prompts=truncated,
    )


def classify_images(
    bundle: ClipBundle,
    images: Sequence[np.ndarray],
    labels: Sequence[str],
    templates: Sequence[str] = DEFAULT_TEMPLATES,
    progress: Progress | None = None,
) -> ZeroShotResult:
    """Encode ``images`` and score each against ``labels``.

    Example: one image and labels ["cat", "dog"] give ``probabilities`` of
    shape (1, 2) whose row sums to 1.
    """
    embeddings = encode_images(bundle, images, progress=progress)
    return classify_embeddings(bundle, embeddings, labels, templates)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Return the softmax over the last axis, computed stably in float64."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum(axis=-1, keepdims=True)
