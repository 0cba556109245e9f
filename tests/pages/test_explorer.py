"""AppTest runs of the dataset explorer page on bundled and local datasets."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "explorer.py")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLENS_CACHE_DIR", str(tmp_path / "cache"))


def run_page(**state) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=240)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception
    return at


def accuracy_table(at: AppTest) -> dict[str, float]:
    """Return the comparison table as representation -> accuracy fraction."""
    frames = [frame.value for frame in at.dataframe if "k-NN accuracy (%)" in frame.value.columns]
    assert len(frames) == 1
    frame = frames[0]
    return dict(zip(frame["representation"], frame["k-NN accuracy (%)"] / 100))


def test_mnist_accuracy_table():
    at = run_page(explorer_mnist_count=1000, explorer_methods=["PCA"])

    table = accuracy_table(at)
    assert table["Raw pixels"] > 0.80
    assert table["PCA of pixels"] > 0.80
    assert table["CNN features"] > table["Raw pixels"]
    assert all(0.0 <= value <= 1.0 for value in table.values())
    assert any("1000 images" in block.value for block in at.markdown)
    assert any("vectors of 784 dimensions" in caption.value for caption in at.caption)


def test_three_projections_scored():
    at = run_page(explorer_mnist_count=300)

    scores = [float(metric.value) for metric in at.metric if metric.label == "Trustworthiness"]
    assert len(scores) == 3
    assert all(0.5 < score <= 1.0 for score in scores)
    assert not at.warning


def test_pca_representation_shows_eigenimages():
    at = run_page(explorer_mnist_count=300, explorer_methods=["PCA"], explorer_representation="PCA of pixels",
                  explorer_pca_components=20)

    assert any("eigenimages" in block.value for block in at.markdown)
    assert any("20 components explain" in caption.value for caption in at.caption)
    assert any("vectors of 20 dimensions" in caption.value for caption in at.caption)


def test_faces_two_classes():
    at = run_page(explorer_source="Faces (LFW subset)", explorer_methods=["PCA", "t-SNE"])

    assert any("2 classes: face, non-face" in block.value for block in at.markdown)
    table = accuracy_table(at)
    assert 0.5 < table["Raw pixels"] <= 1.0


def test_unlabelled_photos_use_clusters():
    at = run_page(explorer_source="Sample photos", explorer_methods=["PCA", "t-SNE", "UMAP"])

    assert any("unlabelled" in block.value for block in at.markdown)
    assert any("needs a dataset with at least two labelled classes" in caption.value for caption in at.caption)
    assert at.radio(key="explorer_colour_unlabelled").value == "k-means cluster"
    notices = " ".join(caption.value for caption in at.caption)
    assert "Perplexity lowered from 30" in notices
    assert "n_neighbors lowered from 15 to 12" in notices


def png_bytes(value: int) -> bytes:
    buffer = io.BytesIO()
    pixels = np.zeros((12, 12, 3), np.uint8)
    pixels[: value % 12] = value
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_local_folder_inside_root(tmp_path, monkeypatch):
    root = tmp_path / "data"
    for label in ("cats", "dogs"):
        (root / "pets" / label).mkdir(parents=True)
        for index in range(4):
            (root / "pets" / label / f"{index}.png").write_bytes(png_bytes(index * 40 + (label == "dogs") * 7))
    (root / "pets" / "dogs" / "broken.png").write_bytes(b"broken")
    monkeypatch.setenv("REPLENS_DATA_ROOT", str(root))

    at = run_page(explorer_source="Local folder", explorer_folder="pets", explorer_methods=["PCA"])

    assert any("pets, 8 images**, 2 classes: cats, dogs" in block.value for block in at.markdown)
    assert "1 file skipped" in [expander.label for expander in at.expander]
    assert 0.0 <= accuracy_table(at)["Raw pixels"] <= 1.0


def test_local_folder_without_root(monkeypatch):
    monkeypatch.delenv("REPLENS_DATA_ROOT", raising=False)
    at = run_page(explorer_source="Local folder")
    assert any("REPLENS_DATA_ROOT" in info.value for info in at.info)


def test_clip_map_and_text_query(tiny_clip_dir):
    at = run_page(explorer_mnist_count=100, explorer_methods=["PCA"], explorer_representation="CLIP image embeddings",
                  clip_model_choice="Hub id or folder", clip_model_typed=str(tiny_clip_dir),
                  explorer_query="a handwritten seven")

    assert not at.error
    assert any("vectors of 16 dimensions" in caption.value for caption in at.caption)
    assert "Images closest to the text query" in [header.value for header in at.subheader]
    assert "CLIP image embeddings" in accuracy_table(at)


@pytest.mark.parametrize("count", [1, 2])
def test_tiny_folder_explains_limits(tmp_path, monkeypatch, count):
    root = tmp_path / "data"
    (root / "few").mkdir(parents=True)
    for index in range(count):
        (root / "few" / f"{index}.png").write_bytes(png_bytes(index * 50 + 20))
    monkeypatch.setenv("REPLENS_DATA_ROOT", str(root))

    at = run_page(explorer_source="Local folder", explorer_folder="few")

    assert not at.error
    warnings = [warning.value for warning in at.warning]
    assert any("t-SNE is not available: t-SNE needs at least 3 points" in text for text in warnings)
    assert any("UMAP is not available" in text for text in warnings)
    captions = " ".join(caption.value for caption in at.caption)
    expected = "One point: PCA has no direction" if count == 1 else "2 points span one direction only"
    assert expected in captions

    at.selectbox(key="explorer_representation").set_value("PCA of pixels").run()
    assert not at.exception
    if count == 1:
        assert any("PCA of pixels needs at least 2 images" in error.value for error in at.error)
    else:
        assert not at.error
        assert any("vectors of 2 dimensions" in caption.value for caption in at.caption)


def test_reopen_reads_disk_cache():
    state = {"explorer_mnist_count": 100, "explorer_methods": ["PCA"], "explorer_representation": "CNN features"}

    first = run_page(**state)
    second = run_page(**state)

    first_captions = " ".join(caption.value for caption in first.caption)
    second_captions = " ".join(caption.value for caption in second.caption)
    assert "100 embeddings computed and cached" in first_captions
    assert "100 embeddings read from the cache" in second_captions
    assert "vectors of 64 dimensions" in second_captions


def zip_bytes(members: dict[str, bytes]) -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_zip_upload_lists_rejected():
    members = {f"data/{label}/{index}.png": png_bytes(index * 30 + (label == "dogs") * 9)
               for label in ("cats", "dogs") for index in range(4)}
    members["__MACOSX/data/cats/._0.png"] = b"\x00\x05\x16\x07"
    members["data/.DS_Store"] = b"junk"
    members["../evil.png"] = png_bytes(1)
    at = run_page(explorer_source="Upload a zip", explorer_methods=["PCA"])

    at.file_uploader(key="explorer_zip").set_value(("pets.zip", zip_bytes(members), "application/zip")).run()

    assert not at.exception
    assert any("pets.zip, 8 images**, 2 classes: cats, dogs" in block.value for block in at.markdown)
    assert "1 file skipped" in [expander.label for expander in at.expander]
    skipped = [frame.value for frame in at.dataframe if "reason" in frame.value.columns][0]
    assert list(skipped["file"]) == ["../evil.png"]


def test_uploads_same_name_both_listed():
    at = run_page(explorer_source="Upload images", explorer_methods=["PCA"])

    at.file_uploader(key="explorer_files").set_value(
        [("a.png", png_bytes(40), "image/png"), ("a.png", png_bytes(200), "image/png"), ("b.png", b"junk", "image/png")]
    ).run()

    assert not at.exception
    assert any("Uploaded files, 2 images" in block.value for block in at.markdown)
    assert "1 file skipped" in [expander.label for expander in at.expander]
    assert any("vectors of 784 dimensions" in caption.value for caption in at.caption)


def test_tiny_images_uploaded():
    def encoded(shape) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)).save(buffer, "PNG")
        return buffer.getvalue()

    files = [("one.png", encoded((1, 1, 3)), "image/png"), ("row.png", encoded((1, 50, 3)), "image/png"),
             ("three.png", encoded((3, 3, 3)), "image/png"), ("gray.png", encoded((8, 8)), "image/png")]
    at = run_page(explorer_source="Upload images", explorer_methods=["PCA", "t-SNE"])

    at.file_uploader(key="explorer_files").set_value(files).run()

    assert not at.exception
    assert not at.error
    assert any("Uploaded files, 4 images" in block.value for block in at.markdown)
    assert any("Perplexity lowered from 30 to 1.00" in caption.value for caption in at.caption)
    assert len([metric for metric in at.metric if metric.label == "Trustworthiness"]) == 2
