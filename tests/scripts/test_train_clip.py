"""The compact-CLIP training script: tokenizer, matching table and loss."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.clip import BUNDLED_CLIP_DIR
from core.synthetic import COLOURS

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_clip.py"


@pytest.fixture(scope="module")
def train_clip():
    spec = importlib.util.spec_from_file_location("train_clip", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tokenizer_ids_repeat(train_clip):
    corpus = train_clip.caption_corpus(np.random.default_rng(3), size=500)
    first = train_clip.build_tokenizer(corpus)
    second = train_clip.build_tokenizer(corpus)
    assert first.get_vocab() == second.get_vocab()


def test_bundled_tokenizer_matches_script(train_clip):
    from transformers import CLIPTokenizer

    bundled = CLIPTokenizer.from_pretrained(BUNDLED_CLIP_DIR)
    # The bundled model's first stage ran with seed 0, and the corpus seed is the stage seed + 1.
    rebuilt = train_clip.build_tokenizer(train_clip.caption_corpus(np.random.default_rng(1)))
    assert rebuilt.get_vocab() == bundled.get_vocab()


def test_any_hue_captions_name_no_colour(train_clip):
    rng = np.random.default_rng(4)
    batches = train_clip.Batches(rng, batch=48, digit_share=0.0, image_size=48, any_hue_share=1.0)
    images, captions, positives = batches.next()
    assert images.shape == (48, 3, 48, 48)
    colour_words = set(COLOURS)
    for caption in captions:
        assert not colour_words & set(caption.replace(".", "").split()), caption
    # Each picture fits its own caption.
    assert positives.diagonal().all()


def test_loss_equals_clip_loss_for_one_positive(train_clip):
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 6, generator=generator) * 4
    expected = (F.cross_entropy(logits, torch.arange(6)) + F.cross_entropy(logits.T, torch.arange(6))) / 2
    loss = train_clip.multi_positive_loss(logits, torch.eye(6, dtype=torch.bool))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_loss_counts_every_positive(train_clip):
    logits = torch.zeros(2, 2)
    positives = torch.ones(2, 2, dtype=torch.bool)
    # Every caption fits every picture, so all softmax mass is on positives and the loss is 0.
    assert train_clip.multi_positive_loss(logits, positives).item() == pytest.approx(0.0, abs=1e-7)
