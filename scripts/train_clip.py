"""Train the bundled compact CLIP on rendered shapes and MNIST digits.

Usage (the bundled model is these four stages):
    python scripts/train_clip.py --out /tmp/stage1
    python scripts/train_clip.py --init /tmp/stage1 --seed 1 --steps 1400 --lr 5e-4 --out /tmp/stage2
    python scripts/train_clip.py --init /tmp/stage2 --seed 2 --steps 1400 --lr 5e-4 --out /tmp/stage3
    python scripts/train_clip.py --init /tmp/stage3 --seed 3 --steps 1400 --lr 5e-4
    python scripts/train_clip.py --steps 150 --out /tmp/pilot   # short pilot

The model is a Transformers ``CLIPModel`` with a small ViT image encoder
(64 x 64 input, 16 x 16 patches, so 16 patch tokens) and a small text encoder
over a byte-level BPE vocabulary learned from the captions here. Large
patches are deliberate: with 6 x 6 patches on a 48 x 48 input the ViT learned
colours and digits, but shape accuracy stayed at chance for 700 steps.
Training data is rendered on the fly: single shapes and groups of 2 to 4
shapes (``core.synthetic``) and the MNIST digits of ``core.samples.mnist_digits``
outside the fixed hold-out split.

Colour-shape pairs in ``HELD_OUT_COMBOS`` are never rendered, so naming such a
pair needs shape features that do not depend on the colour. A ViT trained
only on the eight named colours on white, gray and black learned shape per
colour instead. Given shape-only labels, it named the shape of held-out pairs
in 27 % of the scenes, against 92 % for seen pairs. Three kinds of pictures
break that link without drawing a held-out pair:
- shapes in any hue (``--any-hue-share``), never in a hue whose nearest or
  second-nearest named colour is held out with that shape;
- gray pictures (``--gray-share``);
- shapes on a background of a random colour (``--tinted-share``), so that the
  outline is the contrast with the background, whatever the shape's colour.
Captions of the first two never name a colour, and captions of the third
never name the background.

Captions mention a random subset of a picture's attributes, so a batch often
contains several captions that fit one picture ("a red shape" fits every red
scene). The loss is therefore CLIP's symmetric cross-entropy with every
fitting pair counted as a positive: -log of the softmax mass on the
positives. Everything is drawn from the seed, and the token ids are assigned
in a fixed order, so the same arguments and PyTorch build give the same
weights. Times per stage are in the output folder's ``training_summary.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.clip import BUNDLED_CLIP_DIR, ClipBundle, load_clip  # noqa: E402
from core.samples import mnist_digits  # noqa: E402
from core.synthetic import (  # noqa: E402
    BACKGROUNDS, COLOURS, HELD_OUT_COMBOS, MAX_COUNT, NUMBER_WORDS, SHAPES, SIZES, TINTED,
    mnist_holdout_indices, mnist_train_indices, random_scene, render_scene,
)
from core.zero_shot import DEFAULT_TEMPLATES, classify_images  # noqa: E402

logger = logging.getLogger("train_clip")

# Default model input side and patch side; scenes are rendered at RENDER_SIZE and resized like the processor does.
IMAGE_SIZE = 64
PATCH_SIZE = 16
RENDER_SIZE = 64
CONTEXT_LENGTH = 32
PROJECTION_DIM = 96
# OpenAI CLIP normalisation, the image processor's default.
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)

# Attribute columns of the matching table; -1 in a caption row means "not mentioned".
ATTRIBUTES = ("kind", "colour", "shape", "count", "size", "position", "background", "digit")
POSITIONS = ("left", "right", "top", "bottom", "middle")
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles",
           "star": "stars", "cross": "crosses", "hexagon": "hexagons"}
KIND_SHAPE, KIND_DIGIT = 0, 1
# Attribute value of a picture for which no caption value fits; -1 in a caption means "any".
UNNAMED = -3


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=2000, help="optimizer steps")
    parser.add_argument("--batch", type=int, default=128, help="pictures (and captions) per step")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    parser.add_argument("--digit-share", type=float, default=0.35, help="share of MNIST digits per batch")
    parser.add_argument("--any-hue-share", type=float, default=0.3,
                        help="share of shape scenes drawn in a colour from the whole hue circle, captioned without colour")
    parser.add_argument("--tinted-share", type=float, default=0.3,
                        help="share of shape scenes on a background of a random colour, captioned without background")
    parser.add_argument("--gray-share", type=float, default=0.05,
                        help="share of shape scenes turned to grayscale, captioned without colour")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch CPU threads; on a shared 2-core machine one thread ran 5x faster than two",
    )
    parser.add_argument("--image-size", type=int, default=IMAGE_SIZE,
                        help="model input side in pixels, for a model trained from random weights")
    parser.add_argument("--patch-size", type=int, default=PATCH_SIZE,
                        help="ViT patch side in pixels, for a model trained from random weights")
    parser.add_argument("--out", type=Path, default=BUNDLED_CLIP_DIR)
    parser.add_argument("--init", type=Path, default=None,
                        help="continue from this saved checkpoint (second stage) instead of random weights")
    parser.add_argument("--eval-every", type=int, default=1000, help="steps between progress evaluations; 0 for none")
    return parser.parse_args()


# ---------------------------------------------------------------- captions


def _article(phrase: str) -> str:
    return "an" if phrase[0] in "aeiou" else "a"


def caption_scene(scene, rng: np.random.Generator, name_colour: bool = True) -> tuple[str, dict[str, int]]:
    """Write a caption for ``scene`` and return it with the attributes it mentions.

    With ``name_colour`` false the caption never names a colour.
    """
    if scene.count > 1:
        return _caption_group(scene, rng, name_colour)

    while True:
        say_colour, say_shape = name_colour and rng.random() < 0.7, rng.random() < 0.85
        if say_colour or say_shape:
            break
    say_size, say_position, say_background = rng.random() < 0.25, rng.random() < 0.2, rng.random() < 0.2
    say_background = say_background and scene.background != TINTED

    mentioned = {"kind": KIND_SHAPE, "count": 1}
    words = []
    if say_size:
        words.append(scene.shapes[0].size)
        mentioned["size"] = list(SIZES).index(scene.shapes[0].size)
    if say_colour:
        words.append(scene.colour)
        mentioned["colour"] = list(COLOURS).index(scene.colour)
    if say_shape:
        words.append(scene.kind)
        mentioned["shape"] = SHAPES.index(scene.kind)
    else:
        words.append(str(rng.choice(["shape", "object"])))
    phrase = " ".join(words)

    if say_position:
        position = scene.position
        mentioned["position"] = POSITIONS.index(position)
        phrase += " in the middle" if position == "middle" else f" {rng.choice(['on', 'at'])} the {position}"
    if say_background:
        mentioned["background"] = list(BACKGROUNDS).index(scene.background)
        phrase += f" on a {scene.background} background"

    if rng.random() < 0.45:
        return str(rng.choice(DEFAULT_TEMPLATES)).format(phrase), mentioned
    frames = ["{a} {p}", "{p}", "there is {a} {p}", "one {p}", "a single {p}", "an image with {a} {p}"]
    return str(rng.choice(frames)).format(a=_article(phrase), p=phrase), mentioned


def _caption_group(scene, rng: np.random.Generator, name_colour: bool) -> tuple[str, dict[str, int]]:
    mentioned = {"kind": KIND_SHAPE, "count": scene.count}
    number = NUMBER_WORDS[scene.count] if rng.random() < 0.75 else str(scene.count)
    words = [number]
    if name_colour and rng.random() < 0.7:
        words.append(scene.colour)
        mentioned["colour"] = list(COLOURS).index(scene.colour)
    if rng.random() < 0.7:
        words.append(PLURALS[scene.kind])
        mentioned["shape"] = SHAPES.index(scene.kind)
    else:
        words.append(str(rng.choice(["shapes", "objects"])))
    phrase = " ".join(words)
    frames = ["{p}", "a group of {p}", "there are {p}", "an image with {p}", "a picture of {p}", "a photo of {p}."]
    return str(rng.choice(frames)).format(p=phrase), mentioned


def caption_digit(digit: int, rng: np.random.Generator) -> tuple[str, dict[str, int]]:
    """Write a caption for a handwritten ``digit``."""
    name = NUMBER_WORDS[digit] if rng.random() < 0.75 else str(digit)
    frames = [
        "a handwritten digit {n}", "the handwritten digit {n}", "a handwritten {n}", "the digit {n}",
        "the number {n}", "handwritten {n}", "a digit {n} written by hand",
    ]
    if rng.random() < 0.35:
        caption = str(rng.choice(DEFAULT_TEMPLATES)).format(f"handwritten digit {name}")
    else:
        caption = str(rng.choice(frames)).format(n=name)
    return caption, {"kind": KIND_DIGIT, "digit": digit}


def caption_corpus(rng: np.random.Generator, size: int = 20000) -> list[str]:
    """Sample captions of every kind, for learning the tokenizer's merges."""
    captions = []
    for _ in range(size):
        scene = random_scene(rng, count=int(rng.integers(1, MAX_COUNT + 1)), exclude=HELD_OUT_COMBOS)
        captions.append(caption_scene(scene, rng)[0])
        captions.append(caption_digit(int(rng.integers(10)), rng)[0])
    # Held-out pairs must still tokenise into known words; the words themselves all appear above.
    captions += [f"{colour} {shape}" for colour in COLOURS for shape in SHAPES]
    return captions


# ---------------------------------------------------------------- tokenizer


def build_tokenizer(captions: list[str]):
    """Learn byte-level BPE merges from ``captions`` and wrap them as a CLIPTokenizer."""
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import BPE
    from tokenizers.pre_tokenizers import ByteLevel
    from tokenizers.trainers import BpeTrainer
    from transformers import CLIPTokenizer

    specials = ["<|startoftext|>", "<|endoftext|>"]
    learner = Tokenizer(BPE(continuing_subword_prefix="", end_of_word_suffix="</w>"))
    # The same normaliser and word split as CLIPTokenizer, so the merges apply unchanged.
    learner.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    learner.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(
            Regex(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""),
            behavior="removed", invert=True,
        ),
        ByteLevel(add_prefix_space=False),
    ])
    trainer = BpeTrainer(
        vocab_size=4000, min_frequency=1, special_tokens=specials, initial_alphabet=ByteLevel.alphabet(),
        end_of_word_suffix="</w>", show_progress=False,
    )
    learner.train_from_iterator(captions, trainer)

    state = json.loads(learner.to_str())["model"]
    merges = [tuple(merge) if isinstance(merge, list) else tuple(merge.split(" ")) for merge in state["merges"]]
    # The trainer numbers single symbols in hash-map order, which changes from run to run
    # (tokenizers 0.23), so the ids are assigned again: special tokens, then the single
    # symbols sorted, then each merge's result in merge order.
    merged = ["".join(merge) for merge in merges]
    singles = sorted(set(state["vocab"]) - set(specials) - set(merged))
    vocab: dict[str, int] = {}
    for token in specials + singles + merged:
        vocab.setdefault(token, len(vocab))
    # Every byte also as a word end, so unseen words never map to the unknown token.
    for char in sorted(ByteLevel.alphabet()):
        vocab.setdefault(f"{char}</w>", len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=CONTEXT_LENGTH)


# ---------------------------------------------------------------- model


def build_model(tokenizer, image_size: int, patch_size: int):
    from transformers import CLIPConfig, CLIPModel

    config = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer), "hidden_size": 128, "intermediate_size": 512,
            "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": CONTEXT_LENGTH,
            "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "image_size": image_size, "patch_size": patch_size, "hidden_size": 128, "intermediate_size": 512,
            "num_hidden_layers": 4, "num_attention_heads": 4,
        },
        projection_dim=PROJECTION_DIM,
    )
    return CLIPModel(config)


def build_processor(tokenizer, image_size: int):
    from transformers import CLIPImageProcessorPil, CLIPProcessor

    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
    )
    return CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)


# ---------------------------------------------------------------- data


class Batches:
    """Render training batches: pictures, captions and the table of fitting pairs."""

    def __init__(self, rng: np.random.Generator, batch: int, digit_share: float, image_size: int,
                 any_hue_share: float = 0.0, gray_share: float = 0.0, tinted_share: float = 0.0):
        self.rng = rng
        self.batch = batch
        self.image_size = image_size
        self.digit_count = int(round(batch * digit_share))
        self.any_hue_share = any_hue_share
        self.gray_share = gray_share
        self.tinted_share = tinted_share
        digits, labels = mnist_digits()
        train = mnist_train_indices(len(digits))
        self.digits, self.digit_labels = digits[train], labels[train]

    def next(self) -> tuple[torch.Tensor, list[str], torch.Tensor]:
        pictures, captions, image_attrs, caption_attrs = [], [], [], []
        for index in range(self.batch):
            if index < self.digit_count:
                picture, attrs, caption, mentioned = self._digit()
            else:
                picture, attrs, caption, mentioned = self._scene()
            pictures.append(picture)
            image_attrs.append(attrs)
            captions.append(caption)
            caption_attrs.append([mentioned.get(name, -1) for name in ATTRIBUTES])

        images = torch.from_numpy(normalise(np.stack(pictures)))
        image_table = torch.tensor(image_attrs)
        caption_table = torch.tensor(caption_attrs)
        # positives[i, j]: caption j fits picture i.
        fits = (caption_table[None, :, :] == -1) | (caption_table[None, :, :] == image_table[:, None, :])
        return images, captions, fits.all(dim=2)

    def _scene(self):
        count = 1 if self.rng.random() < 0.75 else int(self.rng.integers(2, MAX_COUNT + 1))
        # Draw only for a share above 0, so runs without these pictures keep the random stream of older runs.
        any_hue = self.any_hue_share > 0 and self.rng.random() < self.any_hue_share
        gray = not any_hue and self.gray_share > 0 and self.rng.random() < self.gray_share
        tinted = self.tinted_share > 0 and self.rng.random() < self.tinted_share
        scene = random_scene(self.rng, count=count, exclude=HELD_OUT_COMBOS, any_hue=any_hue, tinted=tinted)
        picture = shrink(render_scene(scene, RENDER_SIZE, self.rng), self.image_size)
        if gray:
            picture = to_gray(picture)
        # A picture in any hue or in gray fits no colour caption, so its colour is unnamed.
        named = not (any_hue or gray)
        caption, mentioned = caption_scene(scene, self.rng, name_colour=named)
        colour = list(COLOURS).index(scene.colour) if named else UNNAMED
        position = POSITIONS.index(scene.position) if count == 1 else -2
        background = UNNAMED if tinted else list(BACKGROUNDS).index(scene.background)
        attrs = [KIND_SHAPE, colour, SHAPES.index(scene.kind), count,
                 list(SIZES).index(scene.shapes[0].size), position, background, -2]
        return picture, attrs, caption, mentioned

    def _digit(self):
        index = int(self.rng.integers(len(self.digits)))
        digit = int(self.digit_labels[index])
        picture = augment_digit(self.digits[index], self.rng, self.image_size)
        caption, mentioned = caption_digit(digit, self.rng)
        attrs = [KIND_DIGIT, -2, -2, -2, -2, -2, -2, digit]
        return picture, attrs, caption, mentioned


def augment_digit(digit: np.ndarray, rng: np.random.Generator, side: int) -> np.ndarray:
    """Shift and rotate a 28 x 28 digit slightly, then upsample it like the processor does."""
    image = Image.fromarray(digit)
    if rng.random() < 0.7:
        angle = float(rng.uniform(-12, 12))
        shift = tuple(int(v) for v in rng.integers(-2, 3, 2))
        image = image.rotate(angle, resample=Image.Resampling.BILINEAR, translate=shift)
    image = image.resize((side, side), Image.Resampling.BICUBIC)
    return np.repeat(np.asarray(image)[..., None], 3, axis=2)


def to_gray(picture: np.ndarray) -> np.ndarray:
    """Replace every pixel with its ITU-R BT.601 luma, keeping three channels."""
    luma = np.asarray(Image.fromarray(picture).convert("L"))
    return np.repeat(luma[..., None], 3, axis=2)


def shrink(picture: np.ndarray, side: int) -> np.ndarray:
    """Resize a square RGB picture to ``side`` with bicubic filtering, as the processor does."""
    image = Image.fromarray(picture).resize((side, side), Image.Resampling.BICUBIC)
    return np.asarray(image)


def normalise(pictures: np.ndarray) -> np.ndarray:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float32, rescaled and normalised like CLIP's processor."""
    scaled = (pictures.astype(np.float32) / 255.0 - MEAN) / STD
    return np.ascontiguousarray(scaled.transpose(0, 3, 1, 2))


# ---------------------------------------------------------------- training


def multi_positive_loss(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Symmetric CLIP loss where every fitting (picture, caption) pair is a positive."""
    masked = logits.masked_fill(~positives, float("-inf"))
    image_loss = torch.logsumexp(logits, dim=1) - torch.logsumexp(masked, dim=1)
    text_loss = torch.logsumexp(logits, dim=0) - torch.logsumexp(masked, dim=0)
    return (image_loss.mean() + text_loss.mean()) / 2


def learning_rate(step: int, steps: int, peak: float, warmup: int = 200) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * progress))


def train(args: argparse.Namespace) -> tuple[object, object]:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    if args.init is not None:
        from transformers import CLIPModel, CLIPProcessor

        processor = CLIPProcessor.from_pretrained(args.init)
        tokenizer = processor.tokenizer
        model = CLIPModel.from_pretrained(args.init, use_safetensors=True, dtype=torch.float32)
    else:
        tokenizer = build_tokenizer(caption_corpus(np.random.default_rng(args.seed + 1)))
        processor = build_processor(tokenizer, args.image_size)
        model = build_model(tokenizer, args.image_size, args.patch_size)
    logger.info("vocabulary %d tokens, %.2f M parameters", len(tokenizer),
                sum(p.numel() for p in model.parameters()) / 1e6)

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.98), eps=1e-6,
    )
    image_size = model.config.vision_config.image_size
    batches = Batches(rng, args.batch, args.digit_share, image_size, args.any_hue_share, args.gray_share,
                      args.tinted_share)
    started = time.time()
    model.train()
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args.steps, args.lr)
        images, captions, positives = batches.next()
        tokens = tokenizer(captions, padding=True, truncation=True, max_length=CONTEXT_LENGTH, return_tensors="pt")

        output = model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"], pixel_values=images)
        loss = multi_positive_loss(output.logits_per_image, positives)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))

        if step % 20 == 0 or step == args.steps - 1:
            logger.info("step %d/%d loss %.4f scale %.1f lr %.2e %.1f min", step, args.steps, loss.item(),
                        model.logit_scale.exp().item(), optimizer.param_groups[0]["lr"], (time.time() - started) / 60)
        if args.eval_every and step and step % args.eval_every == 0:
            model.eval()
            logger.info("eval at step %d: %s", step, evaluate(_bundle(model, processor), seed=99, per_task=100))
            model.train()
    model.eval()
    return model, processor


def _bundle(model, processor) -> ClipBundle:
    return ClipBundle(model, processor, "in training", "in training", CONTEXT_LENGTH,
                      float(model.logit_scale.detach()), PROJECTION_DIM)


# ---------------------------------------------------------------- evaluation


def evaluate(bundle: ClipBundle, seed: int, per_task: int = 300) -> dict[str, float]:
    """Measure zero-shot accuracy on freshly rendered scenes and held-out digits."""
    rng = np.random.default_rng(seed)
    seen = [random_scene(rng, exclude=HELD_OUT_COMBOS) for _ in range(per_task)]
    seen_pictures = [render_scene(scene, RENDER_SIZE, rng) for scene in seen]

    colour = classify_images(bundle, seen_pictures, [f"{c} shape" for c in COLOURS])
    shape = classify_images(bundle, seen_pictures, list(SHAPES))
    combos = [f"{c} {s}" for c in COLOURS for s in SHAPES]
    held = [random_scene(rng, *HELD_OUT_COMBOS[i % len(HELD_OUT_COMBOS)]) for i in range(per_task)]
    held_pictures = [render_scene(s, RENDER_SIZE, rng) for s in held]
    held_result = classify_images(bundle, held_pictures, combos)
    held_shape = classify_images(bundle, held_pictures, list(SHAPES))

    digits, labels = mnist_digits()
    holdout = mnist_holdout_indices(len(digits))
    digit_result = classify_images(bundle, list(digits[holdout]), list(NUMBER_WORDS), ("a handwritten digit {}",))

    return {
        "colour": _accuracy(colour.probabilities, [list(COLOURS).index(s.colour) for s in seen]),
        "shape": _accuracy(shape.probabilities, [SHAPES.index(s.kind) for s in seen]),
        "held_out_combos": _accuracy(held_result.probabilities, [combos.index(f"{s.colour} {s.kind}") for s in held]),
        "held_out_shape": _accuracy(held_shape.probabilities, [SHAPES.index(s.kind) for s in held]),
        "mnist_holdout": _accuracy(digit_result.probabilities, list(labels[holdout])),
    }


def _accuracy(probabilities: np.ndarray, truth: list[int]) -> float:
    return float(np.mean(probabilities.argmax(axis=1) == np.asarray(truth)))


def save(model, processor, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args = parse_args()
    torch.set_num_threads(args.threads)
    started = time.time()
    model, processor = train(args)
    minutes = (time.time() - started) / 60

    with tempfile.TemporaryDirectory() as scratch:
        target = args.out if args.out else Path(scratch)
        save(model, processor, target)
        bundle = load_clip(str(target))
        scores = evaluate(bundle, seed=2026, per_task=300)
    logger.info("training took %.1f min; zero-shot accuracy %s", minutes, scores)
    stage = {
        "seed": args.seed, "steps": args.steps, "batch": args.batch, "lr": args.lr,
        "any_hue_share": args.any_hue_share, "gray_share": args.gray_share, "tinted_share": args.tinted_share,
        "digit_share": args.digit_share, "minutes": round(minutes, 1), "accuracy": scores,
    }
    summary = {"stages": earlier_stages(args.init) + [stage], "accuracy": scores}
    summary["minutes"] = round(sum(item["minutes"] for item in summary["stages"]), 1)
    (args.out / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def earlier_stages(init: Path | None) -> list[dict]:
    """Return the stages recorded in the summary of the checkpoint a run continues from."""
    if init is None or not (init / "training_summary.json").is_file():
        return []
    summary = json.loads((init / "training_summary.json").read_text())
    return summary.get("stages", [summary])


if __name__ == "__main__":
    main()
