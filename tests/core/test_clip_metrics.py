"""Tests for CLIP Score, pairwise CLIP similarity and the Fréchet distance."""

import io
import math
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from core.clip import BUNDLED_CLIP_DIR, BUNDLED_NAME, load_clip
from core.clip_metrics import (
    CLIP_SCORE_WEIGHT,
    TORCHMETRICS_WEIGHT,
    check_captions,
    clip_score,
    compare_image_sets,
    cosine_matrix,
    frechet_distance,
    image_set_from_files,
    match_captions_csv,
    mean_off_diagonal,
    pairwise_similarity,
    score_captions,
)
from core.errors import RepLensError

# --- CLIP Score on stub embeddings -----------------------------------------


def test_clip_score_stub_vectors():
    image = np.array([[3.0, 4.0], [3.0, 4.0]])
    texts = np.array([[4.0, 3.0], [-4.0, -3.0]])

    result = clip_score(image, texts)

    # cos = 24 / 25 = 0.96 and -0.96.
    np.testing.assert_allclose(result.cosines, [0.96, -0.96], atol=1e-12)
    np.testing.assert_allclose(result.scores, [2.4, 0.0], atol=1e-12)
    assert result.weight == 2.5


def test_clip_score_matches_direct_formula():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(500, 16)) * rng.uniform(0.1, 10.0, size=(500, 1))
    texts = rng.normal(size=(500, 16))

    result = clip_score(images, texts)

    expected = []
    for image, text in zip(images, texts):
        cosine = float(image @ text) / (np.linalg.norm(image) * np.linalg.norm(text))
        expected.append(2.5 * max(cosine, 0.0))
    np.testing.assert_allclose(result.scores, expected, rtol=1e-12, atol=1e-12)
    assert (result.cosines < 0).sum() > 100, "the random pairs must include negative cosines"
    assert np.all(result.scores[result.cosines < 0] == 0.0)


def test_clip_score_mean_and_sample_std():
    rng = np.random.default_rng(1)
    images = rng.normal(size=(20, 8))
    texts = images + 0.5 * rng.normal(size=(20, 8))

    result = clip_score(images, texts)

    assert result.mean == pytest.approx(float(np.mean(result.scores)))
    assert result.std == pytest.approx(float(np.std(result.scores, ddof=1)))


def test_clip_score_single_pair_has_no_std():
    result = clip_score(np.array([[1.0, 0.0]]), np.array([[1.0, 0.0]]))

    assert result.mean == pytest.approx(2.5)
    assert math.isnan(result.std)


def test_clip_score_torchmetrics_scale_ratio():
    rng = np.random.default_rng(2)
    images = rng.normal(size=(50, 8))
    texts = rng.normal(size=(50, 8))

    ours = clip_score(images, texts).scores
    hundred = clip_score(images, texts, weight=TORCHMETRICS_WEIGHT).scores

    np.testing.assert_allclose(ours, hundred * 0.025, rtol=1e-12)
    assert CLIP_SCORE_WEIGHT / TORCHMETRICS_WEIGHT == 0.025


def test_clip_score_keeps_truncation_flags():
    result = clip_score(np.eye(3), np.eye(3), truncated=[False, True, False])

    assert result.truncated == (False, True, False)


@pytest.mark.parametrize(
    ("images", "texts", "message"),
    [
        (np.ones((2, 4)), np.ones((3, 4)), "one caption per image"),
        (np.ones((2, 4)), np.ones((2, 5)), "same dimension"),
        (np.array([[0.0, 0.0]]), np.ones((1, 2)), "norm 0"),
        (np.array([[np.nan, 1.0]]), np.ones((1, 2)), "NaN"),
        (np.ones(4), np.ones(4), "(N, D)"),
    ],
)
def test_clip_score_rejects_bad_embeddings(images, texts, message):
    with pytest.raises(RepLensError, match=message):
        clip_score(images, texts)


# --- Pairwise similarity ---------------------------------------------------


def test_self_cosine_matrix_symmetric_unit_diagonal():
    embeddings = np.random.default_rng(3).normal(size=(12, 32))

    matrix = cosine_matrix(embeddings, embeddings)

    np.testing.assert_allclose(matrix, matrix.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-12)
    assert np.all(np.abs(matrix) <= 1.0)


def test_same_embedding_twice_has_similarity_one():
    vector = np.random.default_rng(4).normal(size=(1, 64))

    result = pairwise_similarity(vector, vector.copy())

    assert result.mean_cross == pytest.approx(1.0, abs=1e-12)


def test_pairwise_means_match_loops():
    rng = np.random.default_rng(5)
    generated = rng.normal(size=(7, 10))
    reference = rng.normal(size=(5, 10))

    result = pairwise_similarity(generated, reference)

    def cosine(a, b):
        return float(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b))

    cross = [cosine(g, r) for g in generated for r in reference]
    within = [cosine(a, b) for i, a in enumerate(generated) for j, b in enumerate(generated) if i != j]
    assert result.cross.shape == (7, 5)
    assert result.mean_cross == pytest.approx(np.mean(cross), abs=1e-12)
    assert result.mean_within_generated == pytest.approx(np.mean(within), abs=1e-12)
    assert result.generated_self.shape == (7, 7)
    assert result.reference_self.shape == (5, 5)


def test_batched_mean_equals_full_mean_for_full_batches():
    rng = np.random.default_rng(6)
    generated = rng.normal(size=(128, 8))
    reference = rng.normal(size=(9, 8))

    full = pairwise_similarity(generated, reference)
    batched = pairwise_similarity(generated, reference, batch_size=64)

    assert len(batched.batch_means) == 2
    assert batched.mean_cross == pytest.approx(full.mean_cross, abs=1e-12)


def test_batched_mean_with_partial_batch():
    rng = np.random.default_rng(7)
    generated = rng.normal(size=(70, 8))
    reference = rng.normal(size=(4, 8))

    full = pairwise_similarity(generated, reference)
    batched = pairwise_similarity(generated, reference, batch_size=64)

    first = full.cross[:64].mean()
    last = full.cross[64:].mean()
    assert batched.batch_means == pytest.approx((first, last))
    assert batched.mean_cross == pytest.approx((first + last) / 2)
    assert batched.mean_cross != pytest.approx(full.mean_cross, abs=1e-9)


def test_pairwise_rejects_batch_size_zero():
    with pytest.raises(RepLensError, match="Batch size"):
        pairwise_similarity(np.eye(2), np.eye(2), batch_size=0)


def test_mean_off_diagonal_of_one_image_is_nan():
    assert math.isnan(mean_off_diagonal(np.ones((1, 1))))


# --- Fréchet distance --------------------------------------------------------


def _frechet_by_eigendecomposition(first, second):
    """d^2 with Tr sqrt(S1 S2) = sum of sqrt(eigenvalues of S1^1/2 S2 S1^1/2), via eigh."""
    mean_difference = first.mean(axis=0) - second.mean(axis=0)
    first_covariance = np.cov(first, rowvar=False)
    second_covariance = np.cov(second, rowvar=False)

    values, vectors = np.linalg.eigh(first_covariance)
    first_root = vectors @ np.diag(np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    product_values = np.linalg.eigvalsh(first_root @ second_covariance @ first_root)
    trace_root = np.sqrt(np.clip(product_values, 0.0, None)).sum()
    return (
        mean_difference @ mean_difference
        + np.trace(first_covariance)
        + np.trace(second_covariance)
        - 2.0 * trace_root
    )


@pytest.mark.parametrize(("count", "dimension"), [(200, 8), (30, 16), (6, 16)])
def test_frechet_matches_eigendecomposition(count, dimension):
    rng = np.random.default_rng(count + dimension)
    first = rng.normal(size=(count, dimension))
    second = 0.7 * rng.normal(size=(count + 3, dimension)) + 0.3

    result = frechet_distance(first, second)

    expected = _frechet_by_eigendecomposition(first, second)
    assert result.distance == pytest.approx(expected, rel=1e-6, abs=1e-8)
    assert result.distance == pytest.approx(result.mean_term + result.covariance_term)


def test_frechet_of_identical_sets_is_zero():
    embeddings = np.random.default_rng(8).normal(size=(50, 8))

    result = frechet_distance(embeddings, embeddings.copy())

    assert result.distance == pytest.approx(0.0, abs=1e-8)
    assert result.warnings == ()


def test_frechet_warns_with_fewer_images_than_dimensions():
    rng = np.random.default_rng(9)

    result = frechet_distance(rng.normal(size=(5, 32)), rng.normal(size=(40, 32)))

    assert len(result.warnings) == 1
    assert "Only 5 images" in result.warnings[0]
    assert "32-dimensional" in result.warnings[0]
    assert np.isfinite(result.distance)


def test_frechet_of_shifted_gaussians_matches_mean_shift():
    # Equal covariances: the covariance term vanishes and d^2 = ||shift||^2.
    base = np.random.default_rng(10).normal(size=(300, 4))
    shift = np.array([1.0, -2.0, 0.5, 0.0])

    result = frechet_distance(base, base + shift)

    assert result.mean_term == pytest.approx(shift @ shift)
    assert result.covariance_term == pytest.approx(0.0, abs=1e-8)


def test_frechet_rejects_single_image():
    with pytest.raises(RepLensError, match="at least 2 images"):
        frechet_distance(np.ones((1, 4)), np.ones((3, 4)))


# --- Captions --------------------------------------------------------------


def test_caption_csv_matches_by_file_name():
    data = "file_name,caption\nimgs/a.png,a red circle\nb.png,  two squares \nz.png,unused\n".encode()

    match = match_captions_csv(data, ["a.png", "b.png", "c.png"])

    assert match.captions == {"a.png": "a red circle", "b.png": "two squares"}
    assert match.missing == ("c.png",)
    assert match.extra == ("z.png",)


def test_caption_csv_accepts_bom_and_other_headers():
    data = "\ufeffImage,Prompt\na.png,\"a cat, sitting\"\n".encode("utf-8")

    match = match_captions_csv(data, ["a.png"])

    assert match.captions == {"a.png": "a cat, sitting"}


def test_caption_csv_without_caption_column_is_rejected():
    with pytest.raises(RepLensError, match="caption column"):
        match_captions_csv(b"file,label\na.png,cat\n", ["a.png"])


def test_caption_csv_that_is_not_utf8_is_rejected():
    with pytest.raises(RepLensError, match="UTF-8"):
        match_captions_csv(b"file,caption\na.png,\xff\xfe\n", ["a.png"])


def test_blank_captions_are_named():
    with pytest.raises(RepLensError, match="b.png, c.png"):
        check_captions(["a.png", "b.png", "c.png"], ["a dog", "  ", None])


# --- With a tiny random CLIP saved locally ----------------------------------


class _TensorFeatureClip(torch.nn.Module):
    """A CLIPModel whose get_*_features return the projected embedding tensor.

    torchmetrics 1.9 calls ``.norm`` on the return value of
    ``get_image_features``, which Transformers 5 wraps in a
    ``BaseModelOutputWithPooling``. torchmetrics documents that
    ``model_name_or_path`` may be a callable returning any model with these
    two methods and a processor, so the test passes this adapter.
    """

    def __init__(self, model):
        super().__init__()
        self.clip = model
        self.config = model.config

    def get_image_features(self, pixel_values):
        return self.clip.get_image_features(pixel_values=pixel_values).pooler_output

    def get_text_features(self, input_ids, attention_mask=None):
        return self.clip.get_text_features(input_ids=input_ids, attention_mask=attention_mask).pooler_output


@pytest.fixture(scope="module")
def tiny_bundle(tiny_clip_dir):
    return load_clip(str(tiny_clip_dir))


@pytest.fixture(scope="module")
def torchmetrics_clip_score(tiny_clip_dir):
    from torchmetrics.multimodal import CLIPScore
    from transformers import CLIPModel, CLIPProcessor

    def load():
        model = CLIPModel.from_pretrained(tiny_clip_dir).eval()
        return _TensorFeatureClip(model), CLIPProcessor.from_pretrained(tiny_clip_dir)

    return CLIPScore(model_name_or_path=load)


CAPTIONS = [
    "a red square",
    "two blue circles",
    "a handwritten digit seven",
    "green triangle on grey",
    "three small yellow stars",
    "a photo of a cat",
    "an empty white page",
    "big purple ring",
    "one dot",
    "stripes",
]


def _random_images(count, seed):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (24 + 5 * index, 40, 3), dtype=np.uint8) for index in range(count)]


def test_score_equals_torchmetrics_times_0_025(tiny_bundle, torchmetrics_clip_score):
    # Every image with every caption, so that both signs of the cosine occur.
    pairs = [(image, caption) for image in _random_images(4, seed=11) for caption in CAPTIONS]
    images = [image for image, _ in pairs]
    captions = [caption for _, caption in pairs]

    ours = score_captions(tiny_bundle, images, captions)

    theirs = []
    for image, caption in pairs:
        torchmetrics_clip_score.reset()
        torchmetrics_clip_score.update(torch.from_numpy(image).permute(2, 0, 1), caption)
        theirs.append(float(torchmetrics_clip_score.compute()))
    np.testing.assert_allclose(ours.scores, np.array(theirs) * 0.025, atol=1e-5)
    assert np.sum(ours.cosines > 0) >= 3, "the check needs pairs with positive cosines"
    assert np.sum(ours.cosines < 0) >= 3, "the check needs pairs with negative cosines"


def test_torchmetrics_clamps_the_set_mean_not_each_pair(tiny_bundle, torchmetrics_clip_score):
    images = _random_images(len(CAPTIONS), seed=11)
    ours = score_captions(tiny_bundle, images, CAPTIONS)

    torchmetrics_clip_score.reset()
    torchmetrics_clip_score.update([torch.from_numpy(image).permute(2, 0, 1) for image in images], CAPTIONS)
    theirs = float(torchmetrics_clip_score.compute())

    assert theirs == pytest.approx(max(100.0 * float(ours.cosines.mean()), 0.0), abs=1e-3)
    assert ours.mean > theirs * 0.025 + 1e-3


def test_score_does_not_jump_at_truncation(tiny_bundle):
    # The tiny tokenizer has one token per character and a context of 24 tokens:
    # 22 letters plus the start and end tokens fill it exactly.
    at_limit = "abcdefghijklmnopqrstuv"
    longer = at_limit + " and many more words"
    image = _random_images(1, seed=12)[0]

    result = score_captions(tiny_bundle, [image, image], [at_limit, longer])

    assert tiny_bundle.context_length == 24
    assert result.truncated == (False, True)
    assert result.cosines[0] == pytest.approx(result.cosines[1], abs=1e-6)
    assert result.scores[0] == pytest.approx(result.scores[1], abs=1e-6)


def test_score_captions_rejects_empty_caption(tiny_bundle):
    with pytest.raises(RepLensError, match="Empty caption for b.png"):
        score_captions(tiny_bundle, _random_images(2, seed=13), ["a cat", " "], names=["a.png", "b.png"])


def test_score_captions_rejects_no_images(tiny_bundle):
    with pytest.raises(RepLensError, match="No images to score"):
        score_captions(tiny_bundle, [], [])


def test_same_image_twice_has_similarity_one(tiny_bundle):
    image = _random_images(1, seed=14)[0]

    comparison = compare_image_sets(tiny_bundle, [image], [image.copy()])

    assert comparison.similarity.mean_cross == pytest.approx(1.0, abs=1e-5)
    assert comparison.frechet is None


def test_set_against_itself_with_model(tiny_bundle):
    images = _random_images(5, seed=15)

    comparison = compare_image_sets(tiny_bundle, images, images)

    matrix = comparison.similarity.cross
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-6)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-5)
    assert comparison.frechet.distance == pytest.approx(0.0, abs=1e-4)
    assert len(comparison.frechet.warnings) == 1, "5 images in 16 dimensions must warn"


def test_compare_image_sets_rejects_empty_set(tiny_bundle):
    with pytest.raises(RepLensError, match="0 reference"):
        compare_image_sets(tiny_bundle, _random_images(2, seed=16), [])


def test_frechet_warns_for_rank_deficient_embeddings():
    # 60 samples in 8 dimensions that span only a 3-dimensional subspace.
    rng = np.random.default_rng(17)
    basis = rng.normal(size=(3, 8))
    first = rng.normal(size=(60, 3)) @ basis
    second = rng.normal(size=(60, 3)) @ basis

    result = frechet_distance(first, second)

    assert len(result.warnings) == 1
    assert "ranks 3 and 3" in result.warnings[0]
    assert result.distance == pytest.approx(_frechet_by_eigendecomposition(first, second), rel=1e-4, abs=1e-6)


# --- Image sets from uploads and zips ----------------------------------------


def _png_bytes(seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _zip_bytes(entries):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def test_image_set_reads_files_and_zips():
    archive = _zip_bytes(
        [
            ("set/a.png", _png_bytes(1)),
            ("set/b.png", _png_bytes(2)),
            ("__MACOSX/set/._a.png", b"junk"),
            ("set/.DS_Store", b"junk"),
            ("../evil.png", _png_bytes(3)),
            ("/tmp/abs.png", _png_bytes(3)),
        ]
    )
    files = [("c.png", _png_bytes(4)), ("notes.txt", b"hello"), ("set.zip", archive)]

    image_set = image_set_from_files(files, "generated")

    assert image_set.names == ("c.png", "set/a.png", "set/b.png")
    assert all(image.shape == (6, 5, 3) for image in image_set.images)
    skipped = dict(image_set.skipped)
    assert set(skipped) == {"notes.txt", "../evil.png", "/tmp/abs.png"}
    assert "not a recognised image" in skipped["notes.txt"]


def test_image_set_duplicate_zip_paths():
    first = _zip_bytes([("a.png", _png_bytes(1))])
    second = _zip_bytes([("a.png", _png_bytes(2))])

    image_set = image_set_from_files([("one.zip", first), ("two.zip", second)], "reference")

    assert image_set.names == ("a.png", "two.zip/a.png")


def test_image_set_without_images_is_rejected():
    with pytest.raises(RepLensError, match="reference set is empty"):
        image_set_from_files([], "reference")
    with pytest.raises(RepLensError, match="no readable image"):
        image_set_from_files([("notes.txt", b"hello")], "reference")


def test_caption_csv_matches_zip_members_by_base_name():
    match = match_captions_csv(b"file,caption\na.png,a cat\nb.png,a dog\n", ["cats/a.png", "x/b.png", "y/b.png"])

    assert match.captions == {"cats/a.png": "a cat"}
    assert match.extra == ("b.png",), "an ambiguous base name matches nothing"
    assert match.missing == ("x/b.png", "y/b.png")


# --- With the bundled compact CLIP -------------------------------------------

requires_bundled_clip = pytest.mark.skipif(
    not (BUNDLED_CLIP_DIR / "config.json").is_file(), reason="the bundled CLIP is not trained yet"
)


@requires_bundled_clip
def test_bundled_clip_scores_matching_captions_higher():
    from core.synthetic import random_scene, render_scene

    bundle = load_clip(BUNDLED_NAME)
    rng = np.random.default_rng(0)
    pairs = [("red", "circle", "a blue star"), ("blue", "square", "a red star"), ("green", "triangle", "a blue star")]
    images = [render_scene(random_scene(rng, colour=colour, kind=kind), rng=rng) for colour, kind, _ in pairs]

    matching = score_captions(bundle, images, [f"a {colour} {kind}" for colour, kind, _ in pairs])
    mismatched = score_captions(bundle, images, [wrong for _, _, wrong in pairs])

    assert np.all(matching.scores > mismatched.scores)
    assert matching.mean > 0.5


@requires_bundled_clip
def test_bundled_clip_same_concept_sets_are_closer():
    from core.synthetic import random_scene, render_scene

    bundle = load_clip(BUNDLED_NAME)
    rng = np.random.default_rng(1)

    def render(colour, kind):
        return [render_scene(random_scene(rng, colour=colour, kind=kind), rng=rng) for _ in range(6)]

    red_circles = render("red", "circle")
    same = compare_image_sets(bundle, red_circles, render("red", "circle"))
    different = compare_image_sets(bundle, red_circles, render("blue", "square"))

    assert same.similarity.mean_cross > different.similarity.mean_cross
    assert same.frechet.distance < different.frechet.distance
