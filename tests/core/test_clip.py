"""Loading CLIP checkpoints from folders and encoding images and texts."""

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from core.clip import (
    BUNDLED_NAME, DEFAULT_HUB_ID, choose_default_model, encode_images, encode_texts, load_clip, to_rgb,
)
from core.errors import RepLensError
from core.images import decode_image


@pytest.fixture(scope="module")
def tiny(tiny_clip_dir):
    return load_clip(str(tiny_clip_dir))


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_load_folder_fields(tiny, tiny_clip_dir):
    assert tiny.source == str(tiny_clip_dir)
    assert tiny.embedding_dim == 16
    assert tiny.context_length == 24
    assert tiny.logit_scale == pytest.approx(float(tiny.model.logit_scale))
    assert not tiny.model.training


def test_load_missing_folder_raises(tmp_path):
    with pytest.raises(RepLensError, match="not found"):
        load_clip(str(tmp_path / "nowhere"))


def test_load_unknown_hub_id_offline_raises():
    with pytest.raises(RepLensError, match="Could not load"):
        load_clip("no-such-owner/no-such-clip-model")


def test_load_pickle_only_folder_raises(tiny_clip_dir, tmp_path):
    folder = tmp_path / "pickle_only"
    folder.mkdir()
    for path in tiny_clip_dir.iterdir():
        if path.name != "model.safetensors":
            (folder / path.name).write_bytes(path.read_bytes())
    torch.save({}, folder / "pytorch_model.bin")
    with pytest.raises(RepLensError, match="Could not load"):
        load_clip(str(folder))


def test_load_non_clip_model_raises(tmp_path):
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, vocab_size=50)).save_pretrained(tmp_path)
    with pytest.raises(RepLensError):
        load_clip(str(tmp_path))


def test_encode_images_unit_norm_and_batches(tiny):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8) for i in range(5)]
    calls = []
    batched = encode_images(tiny, images, batch_size=2, progress=lambda done, total: calls.append((done, total)))
    single = encode_images(tiny, images, batch_size=5)

    assert batched.shape == (5, 16)
    assert batched.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert calls == [(2, 5), (4, 5), (5, 5)]


def test_encode_images_matches_model_directly(tiny):
    image = np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    inputs = tiny.processor(images=Image.fromarray(image), return_tensors="pt")
    with torch.no_grad():
        reference = tiny.model.get_image_features(**inputs).pooler_output[0].numpy()
    reference = reference / np.linalg.norm(reference)
    np.testing.assert_allclose(encode_images(tiny, [image])[0], reference, atol=1e-5)


def test_grayscale_png_equals_rgb_copy(tiny):
    gray = np.random.default_rng(2).integers(0, 256, (8, 8), dtype=np.uint8)
    from_gray_png = decode_image(_png(gray), "gray.png").pixels
    rgb_copy = np.repeat(gray[..., None], 3, axis=2)
    embeddings = encode_images(tiny, [gray, from_gray_png, rgb_copy])

    assert float(embeddings[0] @ embeddings[2]) >= 0.9999
    assert float(embeddings[1] @ embeddings[2]) >= 0.9999


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 1), (1, 50, 3), (3, 3, 3), (3, 3), (2, 2, 4)])
def test_tiny_images_encode(tiny, shape):
    image = np.full(shape, 180, dtype=np.uint8)
    embedding = encode_images(tiny, [image])
    assert embedding.shape == (1, 16)
    assert np.isfinite(embedding).all()


def test_one_pixel_channels_last(tiny):
    # A 1 x 1 red pixel must be read as RGB, not as 1 channel of width 3.
    red = encode_images(tiny, [np.array([[[255, 0, 0]]], dtype=np.uint8)])
    big_red = encode_images(tiny, [np.tile(np.array([255, 0, 0], dtype=np.uint8), (32, 32, 1))])
    assert float(red[0] @ big_red[0]) >= 0.9999


def test_to_rgb_rejects_float():
    with pytest.raises(RepLensError, match="uint8"):
        to_rgb(np.zeros((4, 4, 3), dtype=np.float32))


def test_to_rgb_rejects_two_channels():
    with pytest.raises(RepLensError, match="expected shape"):
        to_rgb(np.zeros((4, 4, 2), dtype=np.uint8))


def test_encode_texts_truncation_keeps_end_token(tiny):
    long_text = "word " * 40
    result = encode_texts(tiny, ["a cat", long_text])
    assert result.truncated == (False, True)
    np.testing.assert_allclose(np.linalg.norm(result.embeddings, axis=1), 1.0, atol=1e-5)

    tokenizer = tiny.processor.tokenizer
    ids = tokenizer([long_text], truncation=True, max_length=tiny.context_length)["input_ids"][0]
    assert len(ids) == tiny.context_length
    assert ids[-1] == tokenizer.eos_token_id


def test_encode_texts_matches_model_directly(tiny):
    tokens = tiny.processor.tokenizer(["a red circle"], return_tensors="pt")
    with torch.no_grad():
        reference = tiny.model.get_text_features(**tokens).pooler_output[0].numpy()
    reference = reference / np.linalg.norm(reference)
    np.testing.assert_allclose(encode_texts(tiny, ["a red circle"]).embeddings[0], reference, atol=1e-5)


def test_encode_texts_padding_independent(tiny):
    alone = encode_texts(tiny, ["dog"]).embeddings[0]
    with_long = encode_texts(tiny, ["dog", "a much longer caption about a dog"]).embeddings[0]
    np.testing.assert_allclose(alone, with_long, atol=1e-5)


def test_default_model_offline_is_bundled(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    choose_default_model.cache_clear()
    try:
        choice = choose_default_model()
    finally:
        choose_default_model.cache_clear()
    assert choice.source == BUNDLED_NAME
    assert "HF_HUB_OFFLINE" in choice.reason


def test_default_model_cached_hub_checkpoint(monkeypatch, tmp_path):
    snapshot = tmp_path / f"models--{DEFAULT_HUB_ID.replace('/', '--')}" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({}))
    (snapshot / "model.safetensors").write_bytes(b"")
    refs = snapshot.parent.parent / "refs"
    refs.mkdir()
    (refs / "main").write_text("abc")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    choose_default_model.cache_clear()
    try:
        choice = choose_default_model()
    finally:
        choose_default_model.cache_clear()
    assert choice.source == DEFAULT_HUB_ID
