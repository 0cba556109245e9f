"""Tests for core.datasets: bundled sets, uploads, zip safety and local folders."""

from __future__ import annotations

import io
import os
import stat
import zipfile

import numpy as np
import pytest
from PIL import Image

from core import datasets
from core.errors import RepLensError
from core.samples import PHOTO_SAMPLES, mnist_digits


def png_bytes(value: int = 0, size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def make_zip(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    """Build a zip in memory; ``links`` maps member names to symlink targets."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


# ---------------------------------------------------------------- bundled sets


def test_mnist_subset_matches_source():
    digits, labels = mnist_digits()
    dataset = datasets.mnist_dataset(50)
    assert len(dataset) == 50
    assert len(set(dataset.names)) == 50
    for image, name, label in zip(dataset.images, dataset.names, dataset.labels):
        index = int(name.removeprefix("mnist_").removesuffix(".png"))
        assert np.array_equal(image[..., 0], digits[index])
        assert label == str(labels[index])


def test_mnist_subset_is_reproducible():
    assert datasets.mnist_dataset(20).names == datasets.mnist_dataset(20).names


@pytest.mark.parametrize("count", [0, 5001])
def test_mnist_count_out_of_range(count):
    with pytest.raises(RepLensError, match="out of range"):
        datasets.mnist_dataset(count)


def test_faces_dataset_labels():
    dataset = datasets.faces_dataset()
    assert len(dataset) == 200
    assert dataset.classes == ["face", "non-face"]
    assert dataset.labels.count("face") == 100
    assert dataset.images[0].shape == (25, 25, 3)


def test_photo_dataset_has_every_sample():
    dataset = datasets.photo_dataset()
    assert list(dataset.names) == list(PHOTO_SAMPLES)
    assert dataset.labels is None
    assert all(image.dtype == np.uint8 and image.shape[2] == 3 for image in dataset.images)


# ---------------------------------------------------------------- uploads


def test_uploads_same_name_both_kept():
    dataset = datasets.uploads_dataset([("a.png", png_bytes(10)), ("a.png", png_bytes(200)), ("a (2).png", png_bytes(90))])
    assert dataset.names == ("a.png", "a (2).png", "a (2) (2).png")
    assert dataset.images[0][0, 0, 0] == 10
    assert dataset.images[1][0, 0, 0] == 200
    assert dataset.images[2][0, 0, 0] == 90


def test_uploads_unreadable_listed_rest_load():
    dataset = datasets.uploads_dataset([("good.png", png_bytes()), ("bad.png", b"not an image"), ("empty.png", b"")])
    assert dataset.names == ("good.png",)
    reasons = {item.name: item.reason for item in dataset.skipped}
    assert set(reasons) == {"bad.png", "empty.png"}
    assert "not a recognised image" in reasons["bad.png"]
    assert "empty" in reasons["empty.png"]


def test_uploads_all_unreadable_raises():
    with pytest.raises(RepLensError, match="no readable image"):
        datasets.uploads_dataset([("bad.png", b"xx")])


# ---------------------------------------------------------------- zip: layout and junk


JUNK = {
    "__MACOSX/data/cats/._a.png": b"\x00\x05\x16\x07",
    "data/.DS_Store": b"junk",
    "data/.ipynb_checkpoints/c.png": png_bytes(),
    "data/cats/.hidden.png": png_bytes(),
    "data/dogs/Thumbs.db": b"junk",
}


@pytest.mark.parametrize("junk", [{}, JUNK], ids=["clean", "with-junk"])
@pytest.mark.parametrize("top", ["data/", "", "a/b/"], ids=["one-top-folder", "no-top-folder", "two-top-folders"])
def test_zip_class_folders_unwrapped(top, junk):
    members = {f"{top}cats/a.png": png_bytes(1), f"{top}dogs/b.png": png_bytes(2)}
    members.update({name.replace("data/", top): data for name, data in junk.items()})
    dataset = datasets.zip_dataset(make_zip(members))
    assert dataset.classes == ["cats", "dogs"]
    assert len(dataset) == 2
    assert dataset.skipped == ()


def test_zip_loose_files_get_no_folder_label():
    dataset = datasets.zip_dataset(make_zip({"cats/a.png": png_bytes(), "b.png": png_bytes()}))
    assert dataset.classes == ["(no folder)", "cats"]
    assert dataset.notices


def test_zip_without_folders_is_unlabelled():
    dataset = datasets.zip_dataset(make_zip({"a.png": png_bytes(), "b.png": png_bytes()}))
    assert dataset.labels is None
    assert len(dataset) == 2


def test_zip_unreadable_and_non_image_listed():
    dataset = datasets.zip_dataset(make_zip({"cats/a.png": png_bytes(), "cats/broken.png": b"garbage", "cats/notes.txt": b"hi"}))
    assert dataset.names == ("cats/a.png",)
    reasons = {item.name: item.reason for item in dataset.skipped}
    assert "not a recognised image" in reasons["cats/broken.png"]
    assert "not an image file type" in reasons["cats/notes.txt"]


def test_zip_not_a_zip_raises():
    with pytest.raises(RepLensError, match="not a readable zip"):
        datasets.zip_dataset(b"PK but not really", "x.zip")


# ---------------------------------------------------------------- zip: unsafe members


UNSAFE = {
    "../evil.png": "escapes",
    "/tmp/abs.png": "absolute",
    "cats/../../x.png": "escapes",
    "..\\win.png": "escapes",
    "C:/win/abs.png": "absolute",
}


def test_zip_unsafe_members_rejected(tmp_path, monkeypatch):
    def no_extraction(*args, **kwargs):
        raise AssertionError("zip members must not be extracted to disk")

    monkeypatch.setattr(zipfile.ZipFile, "extract", no_extraction)
    monkeypatch.setattr(zipfile.ZipFile, "extractall", no_extraction)
    monkeypatch.chdir(tmp_path)
    members = {name: png_bytes() for name in UNSAFE}
    members["cats/ok.png"] = png_bytes(7)
    data = make_zip(members, links={"cats/link.png": "/etc/passwd"})

    dataset = datasets.zip_dataset(data)

    assert dataset.names == ("cats/ok.png",)
    assert dataset.labels == ("cats",)
    reasons = {item.name: item.reason for item in dataset.skipped}
    assert set(reasons) == {*UNSAFE, "cats/link.png"}
    for name, kind in UNSAFE.items():
        assert ("absolute" in reasons[name]) == (kind == "absolute"), name
        assert ("escapes" in reasons[name]) == (kind == "escapes"), name
    assert "symbolic link" in reasons["cats/link.png"]
    assert list(tmp_path.iterdir()) == []


def test_zip_oversized_member_listed(monkeypatch):
    monkeypatch.setattr(datasets, "MAX_MEMBER_BYTES", 1000)
    data = make_zip({"cats/big.png": png_bytes(size=64) + b"\x00" * 2000, "cats/ok.png": png_bytes()})
    dataset = datasets.zip_dataset(data)
    assert dataset.names == ("cats/ok.png",)
    assert [item.name for item in dataset.skipped] == ["cats/big.png"]
    assert "too large" in dataset.skipped[0].reason


def test_zip_highly_compressed_member_rejected():
    bomb = png_bytes() + b"\x00" * 5_000_000  # deflates more than 1000 : 1
    dataset = datasets.zip_dataset(make_zip({"cats/bomb.png": bomb, "cats/ok.png": png_bytes()}))
    assert dataset.names == ("cats/ok.png",)
    assert [item.name for item in dataset.skipped] == ["cats/bomb.png"]
    assert "compression ratio" in dataset.skipped[0].reason


# ---------------------------------------------------------------- local folders


def test_folder_dataset_inside_root(tmp_path):
    root = tmp_path / "root"
    (root / "set" / "cats").mkdir(parents=True)
    (root / "set" / "dogs").mkdir()
    (root / "set" / ".hidden").mkdir()
    (root / "set" / "cats" / "a.png").write_bytes(png_bytes(1))
    (root / "set" / "dogs" / "b.png").write_bytes(png_bytes(2))
    (root / "set" / ".hidden" / "c.png").write_bytes(png_bytes(3))
    (root / "set" / "dogs" / "bad.png").write_bytes(b"no")

    dataset = datasets.folder_dataset("set", root)

    assert dataset.names == ("cats/a.png", "dogs/b.png")
    assert dataset.classes == ["cats", "dogs"]
    assert [item.name for item in dataset.skipped] == ["dogs/bad.png"]


@pytest.mark.parametrize("folder", ["..", "../outside", "/"])
def test_folder_outside_root_raises(tmp_path, folder):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    with pytest.raises(RepLensError, match="outside the data root"):
        datasets.folder_dataset(folder, root)


def test_folder_link_outside_root_skipped(tmp_path):
    root = tmp_path / "root"
    (root / "set" / "cats").mkdir(parents=True)
    (root / "set" / "cats" / "a.png").write_bytes(png_bytes())
    secret = tmp_path / "secret.png"
    secret.write_bytes(png_bytes(9))
    os.symlink(secret, root / "set" / "cats" / "link.png")

    dataset = datasets.folder_dataset(root / "set", root)

    assert dataset.names == ("cats/a.png",)
    assert [item.name for item in dataset.skipped] == ["cats/link.png"]
    assert "outside the data root" in dataset.skipped[0].reason


def test_data_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.DATA_ROOT_ENV, str(tmp_path))
    assert datasets.data_root() == tmp_path.resolve()
    monkeypatch.delenv(datasets.DATA_ROOT_ENV)
    assert datasets.data_root() is None


def test_zip_too_many_entries_raises(monkeypatch):
    monkeypatch.setattr(datasets, "MAX_ZIP_ENTRIES", 3)
    data = make_zip({f"cats/{index}.png": png_bytes() for index in range(4)})
    with pytest.raises(RepLensError, match="4 entries, more than the limit of 3"):
        datasets.zip_dataset(data, "many.zip")


def test_zip_small_blank_bmp_accepted():
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((200, 200, 3), np.uint8)).save(buffer, format="BMP")  # 120 KB, compresses > 200 : 1
    dataset = datasets.zip_dataset(make_zip({"cats/blank.bmp": buffer.getvalue(), "cats/ok.png": png_bytes()}))
    assert dataset.names == ("cats/blank.bmp", "cats/ok.png")
    assert dataset.skipped == ()
