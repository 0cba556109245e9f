"""Load CLIP-family checkpoints and turn images and texts into unit vectors.

A checkpoint comes from a Hugging Face Hub id, a local folder, or the compact
CLIP bundled under ``models/replens-clip``. All three go through the same
``from_pretrained`` path with safetensors weights only and without
``trust_remote_code``. Embeddings come back as float32 NumPy arrays with unit
L2 norm, so a dot product between an image row and a text row is their cosine.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from transformers import AutoModel, AutoProcessor

from core.errors import RepLensError

logger = logging.getLogger(__name__)

BUNDLED_CLIP_DIR = Path(__file__).resolve().parent.parent / "models" / "replens-clip"
DEFAULT_HUB_ID = "openai/clip-vit-base-patch32"
# Name that the model picker shows for the bundled checkpoint; load_clip accepts it too.
BUNDLED_NAME = "RepLens compact CLIP (bundled)"

# Seconds to wait for the Hub before falling back to the bundled model.
HUB_TIMEOUT_S = 3.0

# Called after each batch with (items done, items in total).
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ClipBundle:
    """A loaded CLIP-family model with its processor, ready for inference."""

    model: torch.nn.Module
    # Transformers processor: an image processor and a tokenizer.
    processor: object
    # Requested source: a Hub id, a folder path or BUNDLED_NAME.
    source: str
    # Short display name.
    name: str
    # Maximum number of tokens the text encoder accepts, start and end tokens included.
    context_length: int
    # The learned temperature as stored: logits are exp(logit_scale) * cosine.
    logit_scale: float
    # Length of the shared image-text embedding.
    embedding_dim: int

    @property
    def is_bundled(self) -> bool:
        return self.name == BUNDLED_NAME


@dataclass(frozen=True)
class TextEmbeddings:
    """Unit-norm text embeddings and which texts the tokenizer truncated."""

    # (N, D) float32, unit L2 norm per row.
    embeddings: np.ndarray
    # One flag per text: True when it was longer than the context length.
    truncated: tuple[bool, ...]


@dataclass(frozen=True)
class DefaultChoice:
    """The checkpoint to use when the user has not picked one, and why."""

    source: str
    reason: str


def load_clip(source: str) -> ClipBundle:
    """Load a CLIP-family model and its processor from a Hub id or a folder.

    ``source`` may be a Hub id such as ``"openai/clip-vit-base-patch32"``, a
    local folder holding ``config.json`` and ``model.safetensors``, or
    ``BUNDLED_NAME`` for the bundled model. Raises ``RepLensError`` when the
    folder or id is not found, the weights are not safetensors, or the model
    has no image and text encoders.
    """
    location = _resolve_source(source)
    try:
        model = AutoModel.from_pretrained(
            location, use_safetensors=True, trust_remote_code=False, dtype=torch.float32
        )
        processor = AutoProcessor.from_pretrained(location, trust_remote_code=False)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise RepLensError(
            f"Could not load a CLIP model from {source!r}: {_first_line(error)} "
            "Enter a Hub id such as openai/clip-vit-base-patch32 (needs network access or the "
            "local Hugging Face cache) or a folder with config.json, model.safetensors and "
            "the processor files."
        ) from error

    _check_clip_family(model, processor, source)
    model.eval()
    model.requires_grad_(False)

    config = model.config
    text_config = getattr(config, "text_config", config)
    context_length = int(getattr(text_config, "max_position_embeddings", 77))
    tokenizer_limit = getattr(processor.tokenizer, "model_max_length", context_length)
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < context_length:
        context_length = tokenizer_limit

    name = BUNDLED_NAME if location == str(BUNDLED_CLIP_DIR) else str(source)
    logger.info("Loaded CLIP model %s from %s", name, location)
    return ClipBundle(
        model=model,
        processor=processor,
        source=str(source),
        name=name,
        context_length=context_length,
        logit_scale=float(model.logit_scale.detach()),
        embedding_dim=int(getattr(config, "projection_dim", 0) or _probe_dim(model)),
    )


def encode_images(
    bundle: ClipBundle,
    images: Sequence[np.ndarray],
    batch_size: int = 32,
    progress: Progress | None = None,
    bf16: bool = False,
) -> np.ndarray:
    """Encode images into (N, D) float32 unit vectors with the image encoder.

    Each image is a uint8 array of shape (H, W), (H, W, 1), (H, W, 3) or
    (H, W, 4). Grayscale is repeated into three channels and alpha is dropped,
    so every image reaches the processor as 3-channel RGB, 1 x 1 included.
    ``bf16`` runs the encoder under CPU autocast to bfloat16; the weights stay
    float32 and the result is float32.
    """
    if batch_size < 1:
        raise RepLensError(f"batch_size must be at least 1 but got {batch_size}.")
    rgb_images = [to_rgb(image, index) for index, image in enumerate(images)]
    total = len(rgb_images)
    if total == 0:
        return np.zeros((0, bundle.embedding_dim), dtype=np.float32)

    chunks = []
    for start in range(0, total, batch_size):
        batch = rgb_images[start : start + batch_size]
        # An explicit channel layout: the processor cannot infer it for 1 x 1 or 3 x 3 images.
        inputs = bundle.processor.image_processor(
            images=batch, return_tensors="pt", input_data_format="channels_last"
        )
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            features = _features(bundle.model.get_image_features(pixel_values=inputs["pixel_values"]))
        chunks.append(_normalise(features))
        if progress is not None:
            progress(min(start + batch_size, total), total)
    return np.concatenate(chunks, axis=0)


def encode_texts(
    bundle: ClipBundle,
    texts: Sequence[str],
    batch_size: int = 64,
    progress: Progress | None = None,
) -> TextEmbeddings:
    """Encode texts into (N, D) float32 unit vectors with the text encoder.

    A text longer than ``bundle.context_length`` tokens is cut by the
    tokenizer, which keeps the start and end tokens, and is flagged in
    ``truncated``.
    """
    if batch_size < 1:
        raise RepLensError(f"batch_size must be at least 1 but got {batch_size}.")
    texts = [str(text) for text in texts]
    total = len(texts)
    if total == 0:
        return TextEmbeddings(np.zeros((0, bundle.embedding_dim), dtype=np.float32), ())

    tokenizer = bundle.processor.tokenizer
    full_lengths = [len(ids) for ids in tokenizer(texts, truncation=False, verbose=False)["input_ids"]]
    truncated = tuple(length > bundle.context_length for length in full_lengths)

    chunks = []
    for start in range(0, total, batch_size):
        batch = texts[start : start + batch_size]
        tokens = tokenizer(
            batch, padding=True, truncation=True, max_length=bundle.context_length, return_tensors="pt"
        )
        with torch.inference_mode():
            features = _features(
                bundle.model.get_text_features(
                    input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
                )
            )
        chunks.append(_normalise(features))
        if progress is not None:
            progress(min(start + batch_size, total), total)
    return TextEmbeddings(np.concatenate(chunks, axis=0), truncated)


def to_rgb(image: np.ndarray, index: int = 0) -> np.ndarray:
    """Return ``image`` as a contiguous (H, W, 3) uint8 array.

    Accepts (H, W), (H, W, 1), (H, W, 3) and (H, W, 4) uint8 arrays; alpha is
    dropped. Raises ``RepLensError`` for other shapes and dtypes.
    """
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise RepLensError(f"Image {index}: expected uint8 pixels but got {array.dtype}.")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or 0 in array.shape[:2]:
        raise RepLensError(
            f"Image {index}: expected shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) "
            f"with H, W >= 1 but got {array.shape}."
        )
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array[..., :3])


@lru_cache(maxsize=1)
def choose_default_model() -> DefaultChoice:
    """Decide which checkpoint to load by default, once per process.

    Picks ``DEFAULT_HUB_ID`` when its weights are in the local Hugging Face
    cache, or when the Hub responds within ``HUB_TIMEOUT_S`` seconds and
    ``HF_HUB_OFFLINE`` is not set. Otherwise picks the bundled model. The
    reason is a sentence for the page.
    """
    if _in_local_cache(DEFAULT_HUB_ID):
        return DefaultChoice(DEFAULT_HUB_ID, f"{DEFAULT_HUB_ID} was found in the local Hugging Face cache.")

    bundled = DefaultChoice(
        BUNDLED_NAME,
        f"{DEFAULT_HUB_ID} is not in the local Hugging Face cache and {{why}}, so the bundled "
        "compact CLIP is active. It only knows coloured shapes and handwritten digits.",
    )
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return DefaultChoice(bundled.source, bundled.reason.format(why="HF_HUB_OFFLINE is set"))

    from huggingface_hub import model_info

    try:
        model_info(DEFAULT_HUB_ID, timeout=HUB_TIMEOUT_S)
    except Exception as error:  # noqa: BLE001 - any failure to reach the Hub means "offline" here.
        logger.info("The Hub did not respond for %s: %s", DEFAULT_HUB_ID, error)
        why = f"the Hugging Face Hub did not respond within {HUB_TIMEOUT_S:g} s"
        return DefaultChoice(bundled.source, bundled.reason.format(why=why))
    return DefaultChoice(DEFAULT_HUB_ID, f"The Hugging Face Hub responded; {DEFAULT_HUB_ID} is downloaded on first use.")


def _resolve_source(source: str) -> str:
    text = str(source).strip()
    if not text:
        raise RepLensError("The model source is empty. Enter a Hub id or a folder path.")
    if text == BUNDLED_NAME:
        if not (BUNDLED_CLIP_DIR / "config.json").is_file():
            raise RepLensError(
                f"The bundled CLIP is missing from {BUNDLED_CLIP_DIR}. "
                "Run scripts/train_clip.py to train it again."
            )
        return str(BUNDLED_CLIP_DIR)
    path = Path(text).expanduser()
    if path.resolve() == BUNDLED_CLIP_DIR:
        return _resolve_source(BUNDLED_NAME)
    if _is_path(text):
        if not path.is_dir():
            raise RepLensError(f"Model folder {text!r} was not found. Enter an existing folder or a Hub id.")
        return str(path.resolve())
    return text


def _is_path(text: str) -> bool:
    """Treat absolute, relative-with-dot, home and existing paths as folders; all else as Hub ids."""
    return text.startswith(("/", ".", "~")) or Path(text).exists()


def _check_clip_family(model: torch.nn.Module, processor: object, source: str) -> None:
    missing = [
        name
        for name in ("get_image_features", "get_text_features", "logit_scale")
        if not hasattr(model, name)
    ]
    if missing or not hasattr(processor, "tokenizer") or not hasattr(processor, "image_processor"):
        kind = getattr(model.config, "model_type", type(model).__name__)
        raise RepLensError(
            f"{source!r} is a {kind!r} model, not a CLIP-family model with an image encoder, "
            "a text encoder and a logit scale. Choose a CLIP checkpoint."
        )


def _in_local_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    for file_name in ("config.json", "model.safetensors"):
        found = try_to_load_from_cache(repo_id, file_name)
        if not isinstance(found, str):
            return False
    return True


def _features(output: object) -> torch.Tensor:
    """Return the projected embedding from a tensor or a model output object."""
    if isinstance(output, torch.Tensor):
        return output
    return output.pooler_output


def _normalise(features: torch.Tensor) -> np.ndarray:
    array = features.detach().to(torch.float32).cpu().numpy()
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return (array / np.maximum(norms, 1e-12)).astype(np.float32)


def _probe_dim(model: torch.nn.Module) -> int:
    return int(model.text_projection.out_features)


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__).rstrip(".") + "."
