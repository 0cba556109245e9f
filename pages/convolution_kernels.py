"""Kernels: hand-designed convolution filters and the arithmetic at one pixel."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from components.image_source import current_image, show_image_notices
from core.errors import RepLensError
from core.images import LoadedImage
from core.kernels import (
    BORDER_MODES,
    CUSTOM_SIZES,
    DEFAULT_BORDER,
    DISPLAY_MODES,
    PRESETS,
    apply_kernel,
    flip_kernel,
    pixel_arithmetic,
    prepare_kernel,
    to_display,
)

SOURCE_KEY = "kernels_source"
PRESET_KEY = "kernels_preset"
CUSTOM_SIZE_KEY = "kernels_custom_size"
NORMALISE_KEY = "kernels_normalise"
OPERATION_KEY = "kernels_operation"
BORDER_KEY = "kernels_border"
COLOUR_KEY = "kernels_colour"
ROW_KEY = "kernels_row"
COLUMN_KEY = "kernels_column"
CHANNEL_KEY = "kernels_channel"

OPERATION_LABELS = {
    "convolution": "Convolution (kernel flipped)",
    "correlation": "Correlation (kernel as written)",
}
BORDER_HELP = (
    "How pixels outside the image are filled. reflect: d c b a | a b c d (edge repeated); "
    "replicate: a a a | a b c d; constant: zeros; wrap: the opposite edge."
)
DISPLAY_LABELS = {
    "clip": "Clip to 0–255",
    "absolute": "Absolute value |r|",
    "rescale": "Rescale min–max to 0–255",
}
COLOUR_MODES = ("Colour (each channel)", "Grayscale")
CHANNEL_NAMES = ("R", "G", "B")


@dataclass(frozen=True)
class KernelChoice:
    """The kernel(s) the user picked, ready to apply."""

    # Shown in captions: the preset name or "Custom 5x5".
    label: str
    # One kernel, or (x, y) derivative kernels combined as sqrt(gx^2 + gy^2).
    kernels: tuple[np.ndarray, ...]
    description: str

    @property
    def is_magnitude(self) -> bool:
        return len(self.kernels) == 2

    @property
    def has_negative_weights(self) -> bool:
        return any(float(kernel.min()) < 0 for kernel in self.kernels)


def explanation() -> None:
    st.title("Kernels: filtering an image with a small matrix")
    st.markdown(
        "A kernel $K$ is a small matrix of weights, here $k_h \\times k_w$ with odd sides and "
        "centre $(a, b) = (\\lfloor k_h/2 \\rfloor, \\lfloor k_w/2 \\rfloor)$. Every output pixel is "
        "a weighted sum of the input pixels around it. **Correlation** multiplies the "
        "neighbourhood by the kernel as written:"
    )
    st.latex(r"(K \star I)[y, x] = \sum_{i=0}^{k_h-1} \sum_{j=0}^{k_w-1} K[i, j]\; I[y + i - a,\; x + j - b]")
    st.markdown(
        "**True convolution**, the operation of signal processing, flips the kernel in both "
        "axes first; for a symmetric kernel (blurs, Laplacian) the two agree:"
    )
    st.latex(r"(K * I)[y, x] = \sum_{i, j} K[k_h - 1 - i,\; k_w - 1 - j]\; I[y + i - a,\; x + j - b]")
    st.markdown(
        "A colour image is filtered channel by channel. Weights that sum to 1 keep the "
        "brightness (blurs); weights that sum to 0 give 0 on flat regions and respond to edges "
        "with positive and negative values."
    )


def kernel_ui() -> KernelChoice:
    """Draw the preset or custom-kernel widgets and return the chosen kernel(s)."""
    source = st.radio("Kernel", ("Preset", "Custom"), horizontal=True, key=SOURCE_KEY)
    if source == "Preset":
        name = st.selectbox("Preset", list(PRESETS), index=list(PRESETS).index("Sobel x"), key=PRESET_KEY)
        preset = PRESETS[name]
        return KernelChoice(name, preset.kernels, preset.description)

    size = st.radio(
        "Size", CUSTOM_SIZES, horizontal=True, key=CUSTOM_SIZE_KEY,
        format_func=lambda side: f"{side} x {side}",
    )
    normalise = st.checkbox(
        "Normalise by the sum", value=True, key=NORMALISE_KEY,
        help="Divide every weight by the sum of the weights, unless that sum is 0.",
    )
    start = np.zeros((size, size))
    start[size // 2, size // 2] = 1.0
    table = pd.DataFrame(start, columns=[str(j) for j in range(size)])
    st.caption("Type any numbers into the cells; the kernel starts as the identity.")
    edited = st.data_editor(table, key=f"kernels_custom_{size}", width="content")
    kernel, notices = prepare_kernel(edited.to_numpy(dtype=np.float64), normalise)
    for notice in notices:
        st.info(notice)
    return KernelChoice(f"Custom {size}x{size}", (kernel,), "Your own weights.")


def settings_ui(image: LoadedImage, choice: KernelChoice) -> tuple[str, str, bool, str]:
    """Draw operation, border, colour and display widgets; return their values."""
    columns = st.columns(4)
    operation = columns[0].radio(
        "Operation", list(OPERATION_LABELS), format_func=OPERATION_LABELS.get, key=OPERATION_KEY,
        help="Convolution flips the kernel by 180 degrees before the weighted sum; correlation does not.",
    )
    borders = list(BORDER_MODES)
    border = columns[1].selectbox("Border", borders, index=borders.index(DEFAULT_BORDER), key=BORDER_KEY,
                                  help=BORDER_HELP)
    if image.grayscale:
        columns[2].caption("Grayscale image: one channel is filtered.")
        grayscale = True
    else:
        grayscale = columns[2].radio("Channels", COLOUR_MODES, key=COLOUR_KEY) == COLOUR_MODES[1]
    # The default display follows the sign of the weights. The widget key
    # changes with it, so a switch between blur and edge kernels resets the choice.
    default = "absolute" if choice.has_negative_weights and not choice.is_magnitude else "clip"
    display = columns[3].radio(
        "Show the response", DISPLAY_MODES, index=DISPLAY_MODES.index(default),
        format_func=DISPLAY_LABELS.get, key=f"kernels_display_{default}",
        help="Signed responses (edges) are shown by absolute value or rescaled, never wrapped around 255.",
    )
    return operation, border, grayscale, display


def show_kernels(choice: KernelChoice, operation: str) -> None:
    names = ("Gx", "Gy") if choice.is_magnitude else ("K",)
    columns = st.columns(2 * len(choice.kernels))
    for index, (name, kernel) in enumerate(zip(names, choice.kernels)):
        columns[2 * index].markdown(f"**{name}** as written")
        columns[2 * index].dataframe(weights_table(kernel), key=f"kernels_written_{name}")
        applied = flip_kernel(kernel) if operation == "convolution" else kernel
        label = "flipped, as convolution applies it" if operation == "convolution" else "as correlation applies it"
        columns[2 * index + 1].markdown(f"**{name}** {label}")
        columns[2 * index + 1].dataframe(weights_table(applied), key=f"kernels_applied_{name}")
    if choice.is_magnitude:
        st.latex(r"G = \sqrt{(G_x \circledast I)^2 + (G_y \circledast I)^2}")


def weights_table(kernel: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(np.round(kernel, 6), columns=[str(j) for j in range(kernel.shape[1])])


def filter_response(source: np.ndarray, choice: KernelChoice, operation: str, border: str) -> np.ndarray:
    responses = [apply_kernel(source, kernel, operation, border) for kernel in choice.kernels]
    if choice.is_magnitude:
        return np.hypot(responses[0], responses[1])
    return responses[0]


def result_section(source: np.ndarray, response: np.ndarray, display: str, choice: KernelChoice) -> None:
    shown = to_display(response, display)
    before, after = st.columns(2)
    before.image(source, caption="Input", width="stretch")
    after.image(shown, caption=f"{choice.label}, {DISPLAY_LABELS[display].lower()}", width="stretch")
    low, high = float(response.min()), float(response.max())
    outside = float(np.mean((response < 0) | (response > 255)))
    st.caption(
        f"Response range {low:.4g} to {high:.4g}; {outside:.1%} of the values lie outside 0–255. "
        f"The float32 response is converted to 8 bits only for display."
    )


def arithmetic_section(
    source: np.ndarray,
    response: np.ndarray,
    choice: KernelChoice,
    settings: tuple[str, str, bool, str],
) -> None:
    operation, border, grayscale, display = settings
    st.subheader("The arithmetic at one pixel")
    height, width = source.shape[:2]
    columns = st.columns(3)
    row = int(columns[0].number_input("Row", 0, height - 1, height // 2, key=ROW_KEY))
    column = int(columns[1].number_input("Column", 0, width - 1, width // 2, key=COLUMN_KEY))
    if grayscale:
        channel_index = None
        columns[2].caption("Channel: grayscale")
    else:
        channel_name = columns[2].radio("Channel", CHANNEL_NAMES, horizontal=True, key=CHANNEL_KEY)
        channel_index = CHANNEL_NAMES.index(channel_name)
    channel = source if channel_index is None else source[..., channel_index]
    value_at_pixel = response[row, column] if channel_index is None else response[row, column, channel_index]

    names = ("Gx", "Gy") if choice.is_magnitude else ("K",)
    sums = []
    for name, kernel in zip(names, choice.kernels):
        arithmetic = pixel_arithmetic(channel, kernel, row, column, operation, border)
        sums.append(arithmetic.value)
        show_arithmetic(name, arithmetic, row, column)
    if choice.is_magnitude:
        magnitude = float(np.hypot(np.float32(sums[0]), np.float32(sums[1])))
        st.latex(rf"\sqrt{{({sums[0]:.6g})^2 + ({sums[1]:.6g})^2}} = {magnitude:.6g}")

    left, right = st.columns(2)
    left.metric("Output value at this pixel (float32)", f"{float(value_at_pixel):.6g}")
    # Rescaling depends on the whole response, so the shown value is read from the displayed image.
    shown = to_display(response, display)
    shown_value = shown[row, column] if channel_index is None else shown[row, column, channel_index]
    right.metric("Shown as (uint8)", f"{int(shown_value)}")


def show_arithmetic(name: str, arithmetic, row: int, column: int) -> None:
    kernel_height, kernel_width = arithmetic.neighbourhood.shape
    rows = [str(row + i - kernel_height // 2) for i in range(kernel_height)]
    columns = [str(column + j - kernel_width // 2) for j in range(kernel_width)]
    neighbourhood = pd.DataFrame(arithmetic.neighbourhood, index=rows, columns=columns)
    products = pd.DataFrame(np.round(arithmetic.products, 6), index=rows, columns=columns)

    st.markdown(f"**{name}**: neighbourhood (rows and columns of the image; outside the image "
                "the border mode fills in) × weights = products, then the sum.")
    left, middle, right = st.columns(3)
    left.dataframe(neighbourhood, key=f"kernels_neighbourhood_{name}")
    middle.dataframe(weights_table(arithmetic.applied_kernel), key=f"kernels_weights_{name}")
    right.dataframe(products, key=f"kernels_products_{name}")
    terms = " + ".join(
        f"{value:g}×{weight:g}" if weight > 0 else f"{value:g}×({weight:g})" for value, weight in
        zip(arithmetic.neighbourhood.ravel(), arithmetic.applied_kernel.ravel()) if weight != 0
    )
    st.code(f"{terms or '0'} = {arithmetic.value:.6g}", language=None, wrap_lines=True)


def main() -> None:
    explanation()
    image = current_image()
    show_image_notices(image)

    try:
        choice = kernel_ui()
    except RepLensError as error:
        st.error(str(error))
        return
    st.caption(f"**{choice.label}**: {choice.description}")
    operation, border, grayscale, display = settings_ui(image, choice)
    show_kernels(choice, operation)

    grayscale = grayscale or image.grayscale
    source = image.gray if grayscale else image.pixels
    # The first call in a fresh environment compiles the Numba kernels (seconds).
    with st.spinner("Filtering…"):
        response = filter_response(source, choice, operation, border)
    result_section(source, response, display, choice)
    arithmetic_section(source, response, choice, (operation, border, grayscale, display))


main()
