"""AppTest runs of the CLIP metrics page on a tiny random CLIP saved locally."""

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from components.metrics_inputs import (
    CAPTION_CSV_KEY,
    CAPTION_FILES_KEY,
    CAPTIONS_KEY,
    GENERATED_FILES_KEY,
    REFERENCE_FILES_KEY,
)
from core.clip import BUNDLED_CLIP_DIR, BUNDLED_NAME, load_clip
from core.clip_metrics import compare_image_sets, frechet_distance, score_captions
from core.images import working_copy
from core.samples import DEFAULT_SAMPLE, load_sample

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "clip_metrics.py")


def _png(seed, size=(20, 30)):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue(), pixels


def _zip(entries):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def tiny_bundle(tiny_clip_dir):
    return load_clip(str(tiny_clip_dir))


@pytest.fixture
def page(tiny_clip_dir):
    at = AppTest.from_file(PAGE, default_timeout=90)
    at.session_state["clip_model_choice"] = "Hub id or folder"
    at.session_state["clip_model_typed"] = str(tiny_clip_dir)
    return at


def _metric(at, label_start):
    matches = [metric for metric in at.metric if metric.label.startswith(label_start)]
    assert len(matches) == 1, f"expected one metric starting with {label_start!r}, got {[m.label for m in at.metric]}"
    return matches[0]


def _table(at, column):
    """Return the one shown table that has ``column``. AppTest lists the caption editor as a table too."""
    tables = [frame.value for frame in at.dataframe if column in frame.value.columns]
    assert len(tables) == 1, f"expected one table with column {column!r}, got {len(tables)}"
    return tables[0]


def _texts(elements):
    return " ".join(element.value for element in elements)


def test_page_scores_typed_captions(page, tiny_bundle, tiny_clip_dir):
    files = [("a.png", _png(1)[0]), ("b.png", _png(2)[0]), ("c.png", _png(3)[0])]
    captions = {"a.png": "a red square", "b.png": "two blue circles", "c.png": "one dot"}
    page.session_state[CAPTION_FILES_KEY] = files
    page.session_state[CAPTIONS_KEY] = captions

    page.run()

    assert not page.exception
    pixels = [_png(seed)[1] for seed in (1, 2, 3)]
    expected = score_captions(tiny_bundle, pixels, list(captions.values()))
    model = str(tiny_clip_dir)
    assert _metric(page, "Mean CLIP Score").label == f"Mean CLIP Score · {Path(model).name}"
    assert model in _metric(page, "Mean CLIP Score").help
    assert _metric(page, "Mean CLIP Score").value == f"{expected.mean:.4f}"
    assert _metric(page, "Standard deviation").value == f"{expected.std:.4f}"
    assert _metric(page, "Pairs").value == "3"

    table = _table(page, "clip_score")
    assert list(table["file"]) == ["a.png", "b.png", "c.png"]
    np.testing.assert_allclose(table["clip_score"], expected.scores, atol=1e-6)
    np.testing.assert_allclose(table["torchmetrics_scale"], expected.scores * 40, atol=1e-4)
    assert model in _texts(page.markdown)
    torchmetrics_set_value = max(100 * float(expected.cosines.mean()), 0.0)
    assert f"would report {torchmetrics_set_value:.2f}" in _texts(page.caption)


def test_page_reports_empty_caption(page, tiny_bundle):
    page.session_state[CAPTION_FILES_KEY] = [("a.png", _png(1)[0]), ("b.png", _png(2)[0])]
    page.session_state[CAPTIONS_KEY] = {"a.png": "a red square", "b.png": "  "}

    page.run()

    assert not page.exception
    assert "Empty caption for b.png" in _texts(page.warning)
    assert list(_table(page, "clip_score")["file"]) == ["a.png"]
    expected = score_captions(tiny_bundle, [_png(1)[1]], ["a red square"])
    assert _metric(page, "Mean CLIP Score").value == f"{expected.mean:.4f}"


def test_page_matches_caption_csv(page, tiny_bundle):
    page.session_state[CAPTION_FILES_KEY] = [("a.png", _png(1)[0]), ("b.png", _png(2)[0])]
    page.session_state[CAPTION_CSV_KEY] = b"file_name,caption\nimgs/a.png,a red square\nz.png,unused\n"
    page.session_state["metrics_caption_source"] = "From a CSV file"

    page.run()

    assert not page.exception
    warnings = _texts(page.warning)
    assert "No CSV row for 1 image(s), left out: b.png" in warnings
    assert "match no uploaded image, ignored: z.png" in warnings
    expected = score_captions(tiny_bundle, [_png(1)[1]], ["a red square"])
    assert _metric(page, "Mean CLIP Score").value == f"{expected.mean:.4f}"
    assert _metric(page, "Standard deviation").value == "n/a"
    assert list(_table(page, "clip_score")["file"]) == ["a.png"]


def test_page_flags_truncated_caption(page):
    page.session_state[CAPTION_FILES_KEY] = [("a.png", _png(1)[0])]
    page.session_state[CAPTIONS_KEY] = {"a.png": "a very long caption that goes far past twenty-two letters"}

    page.run()

    assert not page.exception
    assert "longer than the context of 24 tokens" in _texts(page.warning)
    assert list(_table(page, "clip_score")["truncated"]) == [True]


def test_page_lists_non_image_upload(page):
    page.session_state[CAPTION_FILES_KEY] = [("a.png", _png(1)[0]), ("notes.txt", b"not an image")]
    page.session_state[CAPTIONS_KEY] = {"a.png": "a red square"}

    page.run()

    assert not page.exception
    assert "notes.txt" in _texts(page.warning)
    assert list(_table(page, "clip_score")["file"]) == ["a.png"]


def test_page_compares_sets_from_files_and_zip(page, tiny_bundle):
    generated = [_png(seed) for seed in (4, 5, 6)]
    reference = [_png(seed) for seed in (7, 8)]
    archive = _zip(
        [
            ("ref/r1.png", reference[0][0]),
            ("ref/r2.png", reference[1][0]),
            ("__MACOSX/ref/._r1.png", b"junk"),
            ("ref/.DS_Store", b"junk"),
            ("../evil.png", reference[0][0]),
        ]
    )
    page.session_state[GENERATED_FILES_KEY] = [(f"g{index}.png", data) for index, (data, _) in enumerate(generated)]
    page.session_state[REFERENCE_FILES_KEY] = [("reference.zip", archive)]

    page.run()

    assert not page.exception
    expected = compare_image_sets(tiny_bundle, [pixels for _, pixels in generated], [pixels for _, pixels in reference])
    assert _metric(page, "Generated-reference similarity").value == f"{expected.similarity.mean_cross:.4f}"
    assert _metric(page, "Within generated").value == f"{expected.similarity.mean_within_generated:.4f}"
    assert _metric(page, "Within reference").value == f"{expected.similarity.mean_within_reference:.4f}"
    frechet = frechet_distance(expected.generated_embeddings, expected.reference_embeddings)
    assert _metric(page, "Fréchet distance").value == f"{frechet.distance:.4f}"

    warnings = _texts(page.warning)
    assert "../evil.png" in warnings
    assert "__MACOSX" not in warnings
    assert "16-dimensional" in warnings
    assert "2 reference image(s)." in _texts(page.caption)

    assert len(page.get("plotly_chart")) == 1
    per_image = _table(page, "mean_cosine")
    assert list(per_image["generated"]) == ["g0.png", "g1.png", "g2.png"]
    np.testing.assert_allclose(per_image["mean_cosine"], expected.similarity.cross.mean(axis=1), atol=1e-6)


def test_page_same_image_in_both_sets(page):
    data, _ = _png(9)
    page.session_state[GENERATED_FILES_KEY] = [("x.png", data)]
    page.session_state[REFERENCE_FILES_KEY] = [("y.png", data)]

    page.run()

    assert not page.exception
    assert _metric(page, "Generated-reference similarity").value == "1.0000"
    assert _metric(page, "Within generated").value == "n/a"
    assert _metric(page, "Fréchet distance").value == "n/a"
    assert "single image" in _texts(page.warning)


def test_page_reports_empty_sets(page):
    page.run()

    assert not page.exception
    infos = _texts(page.info)
    assert "The generated set is empty" in infos
    assert "The reference set is empty" in infos


def test_page_worked_example_on_shared_image(page, tiny_bundle, tiny_clip_dir):
    page.run()

    assert not page.exception
    image = working_copy(load_sample(DEFAULT_SAMPLE))
    caption = page.text_input(key=f"metrics_example_caption_{image.name}").value
    assert caption == "a photo of astronaut"
    expected = score_captions(tiny_bundle, [image.pixels], [caption])
    assert _metric(page, "Cosine ·").value == f"{expected.cosines[0]:.4f}"
    assert _metric(page, "CLIP Score ·").value == f"{expected.scores[0]:.4f}"
    assert f"Active CLIP model: **{tiny_clip_dir}**" in _texts(page.caption)

    page.text_input(key=f"metrics_example_caption_{image.name}").set_value("a red square").run()

    typed = score_captions(tiny_bundle, [image.pixels], ["a red square"])
    assert _metric(page, "CLIP Score ·").value == f"{typed.scores[0]:.4f}"


def test_page_states_formulas_and_torchmetrics_scale(page):
    page.run()

    assert not page.exception
    text = _texts(page.markdown)
    assert "w = 2.5" in text
    assert "score / 40" in text
    assert "Hessel et al. 2021" in text
    assert "Gal et al. 2022" in text


@pytest.mark.skipif(not (BUNDLED_CLIP_DIR / "config.json").is_file(), reason="the bundled CLIP is not trained yet")
def test_page_with_bundled_model():
    bundle = load_clip(BUNDLED_NAME)
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state[CAPTION_FILES_KEY] = [("a.png", _png(1)[0]), ("b.png", _png(2)[0])]
    at.session_state[CAPTIONS_KEY] = {"a.png": "a red circle", "b.png": "two blue squares"}

    at.run()

    assert not at.exception
    expected = score_captions(bundle, [_png(1)[1], _png(2)[1]], ["a red circle", "two blue squares"])
    assert _metric(at, "Mean CLIP Score").label == f"Mean CLIP Score · {BUNDLED_NAME}"
    assert _metric(at, "Mean CLIP Score").value == f"{expected.mean:.4f}"
    assert f"Active CLIP model: **{BUNDLED_NAME}**" in _texts(at.caption)
