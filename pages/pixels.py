"""Pixels: the image as matrices of numbers, one per colour channel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from components.image_source import current_image, show_image_notices
from components.plots import CHANNEL_SCALES, channel_histogram, matrix_heatmap
from core.images import LoadedImage

PATCH_SIZE_KEY = "pixels_patch_size"
PATCH_ROW_KEY = "pixels_patch_row"
PATCH_COLUMN_KEY = "pixels_patch_column"
MAX_PATCH_SIZE = 16
# Vector entries spelled out in the flattening example.
VECTOR_PREVIEW = 12
# Side, in screen pixels, of the enlarged patch preview.
PATCH_PREVIEW_SIDE = 240


def explanation() -> None:
    st.title("Pixels: an image is a matrix of numbers")
    st.markdown(
        "A digital image stores one number per pixel and colour channel. An RGB image of "
        "height $H$ and width $W$ is three $H \\times W$ matrices (red, green, blue) stacked "
        "into a tensor; a grayscale image is one matrix. Each entry is an 8-bit integer "
        "from 0 (dark) to 255 (full intensity)."
    )
    st.latex(
        r"I \in \{0, 1, \dots, 255\}^{H \times W \times C}, \qquad "
        r"N = H \cdot W \cdot C \text{ numbers}"
    )
    st.markdown(
        "Reading the numbers row by row, pixel by pixel and channel by channel turns the image "
        "into one long vector, which is what most machine-learning models take as input:"
    )
    st.latex(r"x = \operatorname{vec}(I) \in \mathbb{R}^{N}, \qquad x_{(yW + x')C + c} = I_{y,\,x',\,c}")
    st.markdown("The grayscale view combines the channels with the ITU-R BT.601 luma weights:")
    st.latex(r"Y = 0.299\,R + 0.587\,G + 0.114\,B")


def image_channels(image: LoadedImage) -> dict[str, np.ndarray]:
    """Name -> (H, W) uint8 matrix: R, G, B and gray for colour, one gray channel otherwise."""
    if image.grayscale:
        return {"Gray": image.pixels[..., 0]}
    return {"R": image.pixels[..., 0], "G": image.pixels[..., 1], "B": image.pixels[..., 2], "Gray": image.gray}


def tensor_channels(image: LoadedImage) -> int:
    return 1 if image.grayscale else 3


def dimensions_section(image: LoadedImage) -> None:
    channels = tensor_channels(image)
    count = image.height * image.width * channels
    st.subheader("Dimensions")
    columns = st.columns(4)
    columns[0].metric("Height H", f"{image.height}")
    columns[1].metric("Width W", f"{image.width}")
    columns[2].metric("Channels C", f"{channels}")
    columns[3].metric("Numbers N = H x W x C", f"{count:,}")
    st.latex(
        rf"{image.height} \times {image.width} \times {channels} = {count:,}".replace(",", "{,}")
        + rf" \quad\Rightarrow\quad x \in \{{0, \dots, 255\}}^{{{count}}}"
    )

    values = image.pixels[..., :channels]
    vector = values.reshape(-1)[:VECTOR_PREVIEW]
    names = ["R", "G", "B"] if channels == 3 else ["Gray"]
    labels = [f"I[{i // channels // image.width}, {i // channels % image.width}, {names[i % channels]}]"
              for i in range(len(vector))]
    st.markdown(
        f"Stored as **{values.dtype}** (unsigned 8-bit integers), values from "
        f"**{int(values.min())}** to **{int(values.max())}** in this image. "
        f"The first {len(vector)} entries of the vector x:"
    )
    st.code(", ".join(f"{label} = {int(value)}" for label, value in zip(labels, vector)), language=None, wrap_lines=True)


def channels_section(channels: dict[str, np.ndarray]) -> None:
    st.subheader("Channel matrices")
    st.caption("Each channel as a heatmap of its numbers. Hover to read the value at a row and column.")
    tabs = st.tabs(list(channels))
    for tab, (name, matrix) in zip(tabs, channels.items()):
        with tab:
            figure = matrix_heatmap(matrix, colorscale=CHANNEL_SCALES[name], height=520)
            st.plotly_chart(figure, width="stretch", key=f"pixels_heatmap_{name}")


def patch_controls(image: LoadedImage) -> tuple[int, int, int]:
    """Draw the patch position and size widgets; return (top row, left column, size)."""
    largest = min(MAX_PATCH_SIZE, image.height, image.width)
    columns = st.columns(3)
    if largest > 1:
        size = columns[0].slider(
            "Patch size (pixels per side)", 1, largest, min(3, largest), key=PATCH_SIZE_KEY,
            help="Side length of the square patch whose numbers are listed.",
        )
    else:
        size = 1
        columns[0].caption("The image is 1 pixel high or wide, so the patch is a single pixel.")
    top = columns[1].number_input(
        "Top row", 0, image.height - size, min(image.height // 2, image.height - size), key=PATCH_ROW_KEY,
        help="Row index of the patch's top-left pixel; row 0 is the top of the image.",
    )
    left = columns[2].number_input(
        "Left column", 0, image.width - size, min(image.width // 2, image.width - size), key=PATCH_COLUMN_KEY,
        help="Column index of the patch's top-left pixel; column 0 is the left edge.",
    )
    return int(top), int(left), int(size)


def patch_section(image: LoadedImage, channels: dict[str, np.ndarray]) -> None:
    st.subheader("A patch and its numbers")
    top, left, size = patch_controls(image)
    channel_count = tensor_channels(image)
    patch = image.pixels[top : top + size, left : left + size, :channel_count]
    kind = "an RGB" if channel_count == 3 else "a grayscale"
    st.markdown(
        f"This {size} x {size} patch of {kind} image is "
        f"**{size} x {size} x {channel_count} = {patch.size} values**, rows {top}–{top + size - 1}, "
        f"columns {left}–{left + size - 1}."
    )

    preview, matrices = st.columns([1, 2])
    enlarged = Image.fromarray(image.pixels[top : top + size, left : left + size]).resize(
        (PATCH_PREVIEW_SIDE, PATCH_PREVIEW_SIDE), Image.Resampling.NEAREST
    )
    preview.image(np.asarray(enlarged), caption="The patch, enlarged", width=PATCH_PREVIEW_SIDE)
    with matrices:
        names = ["R", "G", "B"] if channel_count == 3 else ["Gray"]
        for name, tab in zip(names, st.tabs(names)):
            with tab:
                matrix = channels[name][top : top + size, left : left + size]
                figure = matrix_heatmap(
                    matrix, colorscale=CHANNEL_SCALES[name], show_values=True,
                    row_offset=top, column_offset=left, height=320,
                )
                st.plotly_chart(figure, width="stretch", key=f"pixels_patch_{name}")

    st.markdown(f"All {patch.size} values of the patch, in the order of the vector x:")
    rows, columns, channel_index = np.indices(patch.shape).reshape(3, -1)
    table = pd.DataFrame({
        "row": top + rows,
        "column": left + columns,
        "channel": [names[c] for c in channel_index],
        "value": patch.reshape(-1).astype(int),
    })
    st.dataframe(table, hide_index=True, height=min(400, 35 * (len(table) + 1)), key="pixels_patch_values")


def histogram_section(channels: dict[str, np.ndarray]) -> None:
    st.subheader("Histogram")
    st.caption("How many pixels take each value 0–255, per channel.")
    st.plotly_chart(channel_histogram(channels), width="stretch", key="pixels_histogram")


explanation()
image = current_image()
show_image_notices(image)
channels = image_channels(image)
dimensions_section(image)
channels_section(channels)
patch_section(image, channels)
histogram_section(channels)
