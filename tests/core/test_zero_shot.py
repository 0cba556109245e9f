"""Zero-shot probabilities, cosines, ensembling and the single-label case."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from core.clip import encode_images, encode_texts, load_clip
from core.errors import RepLensError
from core.zero_shot import (
    BASELINE_LABEL, DEFAULT_TEMPLATES, check_templates, classify_images, clean_labels, label_embeddings, softmax,
    words_outside_vocabulary,
)


@pytest.fixture(scope="module")
def tiny(tiny_clip_dir):
    return load_clip(str(tiny_clip_dir))


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(3).integers(0, 256, (48, 40, 3), dtype=np.uint8)


def test_probabilities_match_transformers_pipeline(tiny, image):
    from transformers import pipeline

    classifier = pipeline(
        "zero-shot-image-classification", model=tiny.model,
        tokenizer=tiny.processor.tokenizer, image_processor=tiny.processor.image_processor,
    )
    labels = ["cat", "dog", "red car", "owl"]
    template = "a photo of a {}."
    reference = classifier(Image.fromarray(image), candidate_labels=labels, hypothesis_template=template)
    expected = {row["label"]: row["score"] for row in reference}

    result = classify_images(tiny, [image], labels, [template])
    for index, label in enumerate(labels):
        assert result.probabilities[0, index] == pytest.approx(expected[label], abs=1e-4)


def test_logits_equal_model_logits_per_image(tiny, image):
    labels = ["cat", "dog"]
    template = "a photo of a {}."
    inputs = tiny.processor(
        text=[template.format(label) for label in labels], images=Image.fromarray(image),
        return_tensors="pt", padding=True,
    )
    with torch.no_grad():
        logits = tiny.model(**inputs).logits_per_image[0].numpy()

    result = classify_images(tiny, [image], labels, [template])
    np.testing.assert_allclose(result.scale * result.cosines[0], logits, atol=1e-4)
    np.testing.assert_allclose(result.probabilities[0], softmax(logits), atol=1e-6)


def test_scale_applied_once(tiny, image):
    result = classify_images(tiny, [image], ["cat", "dog"], ["a photo of a {}."])
    cosine_gap = result.cosines[0, 0] - result.cosines[0, 1]
    expected_ratio = math.exp(math.exp(tiny.logit_scale) * cosine_gap)
    assert result.scale == pytest.approx(math.exp(tiny.logit_scale))
    assert result.probabilities[0, 0] / result.probabilities[0, 1] == pytest.approx(expected_ratio, rel=1e-6)
    assert result.probabilities[0].sum() == pytest.approx(1.0, abs=1e-9)


def test_single_label_flagged(tiny, image):
    both = classify_images(tiny, [image], ["cat", "dog"], ["a photo of a {}."])
    alone = classify_images(tiny, [image], ["cat"], ["a photo of a {}."])
    assert alone.single_label
    assert not both.single_label
    assert alone.probabilities[0, 0] == pytest.approx(1.0)
    assert alone.cosines[0, 0] == pytest.approx(both.cosines[0, 0], abs=1e-6)
    assert alone.templates == ("a photo of a {}.",)


def test_ensemble_is_normalised_mean(tiny):
    templates = ["a photo of a {}.", "a drawing of a {}.", "{} in the wild"]
    ensembles, _ = label_embeddings(tiny, ["cat"], templates)
    prompts = encode_texts(tiny, [t.format("cat") for t in templates]).embeddings
    mean = prompts.mean(axis=0)
    np.testing.assert_allclose(ensembles[0], mean / np.linalg.norm(mean), atol=1e-6)
    assert np.linalg.norm(ensembles[0]) == pytest.approx(1.0, abs=1e-6)


def test_independent_score_against_baseline(tiny, image):
    result = classify_images(tiny, [image], ["cat", "dog"])
    baseline, _ = label_embeddings(tiny, [BASELINE_LABEL], DEFAULT_TEMPLATES)
    embedding = encode_images(tiny, [image])[0]
    baseline_cosine = float(embedding @ baseline[0])
    expected = 1 / (1 + np.exp(-result.scale * (result.cosines[0] - baseline_cosine)))
    np.testing.assert_allclose(result.independent[0], expected, atol=1e-6)


def test_independent_score_ignores_other_labels(tiny, image):
    two = classify_images(tiny, [image], ["cat", "dog"])
    three = classify_images(tiny, [image], ["cat", "dog", "bird"])
    np.testing.assert_allclose(two.independent[0], three.independent[0, :2], atol=1e-6)
    assert not np.allclose(two.probabilities[0], three.probabilities[0, :2])


def test_several_images_rows(tiny):
    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, (30, 30, 3), dtype=np.uint8) for _ in range(3)]
    result = classify_images(tiny, images, ["cat", "dog", "bird"])
    assert result.probabilities.shape == (3, 3)
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0, atol=1e-9)


def test_truncated_prompts_reported(tiny, image):
    long_label = "very " * 30 + "long label"
    result = classify_images(tiny, [image], ["cat", long_label], ["a photo of a {}."])
    assert result.truncated_prompts == (f"a photo of a {long_label}.",)


def test_clean_labels_drops_empty_and_duplicates():
    assert clean_labels([" cat", "dog", "", "cat ", "  "]) == ("cat", "dog")


def test_no_labels_raises(tiny, image):
    with pytest.raises(RepLensError, match="No labels"):
        classify_images(tiny, [image], ["", " "])


def test_template_without_placeholder_raises():
    with pytest.raises(RepLensError, match="exactly once"):
        check_templates(["a photo of a cat"])


def test_no_template_raises():
    with pytest.raises(RepLensError, match="No prompt template"):
        check_templates(["", "  "])


def test_softmax_matches_scipy():
    from scipy.special import softmax as scipy_softmax

    logits = np.array([[1.0, 2.0, 30.0], [-5.0, 0.0, 5.0]])
    np.testing.assert_allclose(softmax(logits), scipy_softmax(logits, axis=-1), atol=1e-12)


def test_words_outside_vocabulary():
    vocabulary = {"red</w>": 0, "circle</w>": 1, "7</w>": 2, "a</w>": 3, "do": 4}
    labels = ["Red circle", "a dog", "red DOG 7", "banana-circle 42"]
    assert words_outside_vocabulary(vocabulary, labels) == ["dog", "banana", "4", "2"]
