"""Cached CNN loading, the model picker and the plots of the feature-map page."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core.cnn import DIGIT_CNN_SOURCE, CnnBundle, FeatureMaps, FilterMatch, feature_maps, load_cnn
from core.errors import RepLensError

# Session key of the source whose model loaded last; it stays active when a
# newly requested model fails to load.
ACTIVE_SOURCE_KEY = "cnn_active_source"
OTHER_MODEL = "Other Hub id or local folder…"
MODEL_CHOICES = (DIGIT_CNN_SOURCE, "microsoft/resnet-18", "facebook/convnext-tiny-224", OTHER_MODEL)


@st.cache_resource(max_entries=4, show_spinner="Loading the CNN…")
def load_cnn_cached(source: str) -> CnnBundle:
    return load_cnn(source)


@st.cache_data(max_entries=16, show_spinner="Running the CNN…")
def feature_maps_cached(source: str, pixels: np.ndarray) -> FeatureMaps:
    return feature_maps(load_cnn_cached(source), pixels)


def model_picker_ui() -> CnnBundle:
    """Draw the model picker and return the active model.

    A model that fails to load shows its error, and the previously active
    model (the digit CNN at first) stays in use.
    """
    choice = st.selectbox(
        "Model", MODEL_CHOICES, key="cnn_model_choice",
        help="The bundled digit CNN, a Transformers image-classification CNN from the Hub "
        "(needs network access or the local Hugging Face cache), or a local folder.",
    )
    requested = choice
    if choice == OTHER_MODEL:
        requested = st.text_input(
            "Hub id or folder", key="cnn_model_other", placeholder="microsoft/resnet-50 or /path/to/checkpoint",
            help="A folder needs config.json, model.safetensors and preprocessor_config.json.",
        ).strip()

    active = st.session_state.get(ACTIVE_SOURCE_KEY, DIGIT_CNN_SOURCE)
    if requested:
        try:
            bundle = load_cnn_cached(requested)
        except RepLensError as error:
            st.error(f"{error} Still showing {active}.")
        else:
            st.session_state[ACTIVE_SOURCE_KEY] = requested
            return bundle
    return load_cnn_cached(active)


def shape_table(result: FeatureMaps) -> list[dict]:
    """Build one row per stage with its output shape and number of values, for st.dataframe."""
    rows = []
    for layer in result.layers:
        channels, height, width = layer.shape
        rows.append(
            {
                "Layer": layer.name,
                "What it computes": layer.description,
                "Channels": channels,
                "Height": height,
                "Width": width,
                "Shape (C x H x W)": f"{channels} x {height} x {width}",
                "Values": channels * height * width,
            }
        )
    return rows


def feature_map_grid(maps: np.ndarray, channels: list[int], shared_scale: bool, columns: int = 4) -> go.Figure:
    """Draw the given channels of (C, H, W) maps as heatmaps, row 0 at the top."""
    rows = math.ceil(len(channels) / columns)
    figure = make_subplots(
        rows=rows, cols=columns, subplot_titles=[f"channel {channel}" for channel in channels],
        horizontal_spacing=0.02, vertical_spacing=0.06,
    )
    selected = maps[channels]
    low, high = float(selected.min()), float(selected.max())
    for position, channel in enumerate(channels):
        heatmap = go.Heatmap(
            z=maps[channel], colorscale="Viridis",
            hovertemplate=f"channel {channel}<br>row %{{y}}, column %{{x}}<br>activation %{{z:.3f}}<extra></extra>",
        )
        if shared_scale:
            heatmap.update(coloraxis="coloraxis")
        else:
            heatmap.update(showscale=False)
        figure.add_trace(heatmap, row=position // columns + 1, col=position % columns + 1)
    if shared_scale:
        figure.update_layout(coloraxis={"colorscale": "Viridis", "cmin": low, "cmax": high})
    _square_cells(figure, len(channels))
    figure.update_layout(height=max(260, 210 * rows), margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return figure


def overlay_figure(view: np.ndarray, upsampled: np.ndarray, opacity: float) -> go.Figure:
    """Draw an (H, W) map over the (H, W, 3) model input, both at the input's size."""
    figure = go.Figure(go.Image(z=view, hoverinfo="skip"))
    figure.add_trace(
        go.Heatmap(
            z=upsampled, colorscale="Inferno", opacity=opacity,
            hovertemplate="row %{y}, column %{x}<br>activation %{z:.3f}<extra></extra>",
        )
    )
    figure.update_xaxes(showticklabels=False)
    figure.update_yaxes(showticklabels=False, scaleanchor="x")
    figure.update_layout(height=420, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return figure


def filter_pairs_figure(matches: list[FilterMatch], pairs_per_row: int = 2) -> go.Figure:
    """Draw each learned filter beside its closest preset kernel; hover shows the weights.

    Each kernel has its own symmetric colour scale, blue negative and red positive.
    """
    rows = max(1, math.ceil(len(matches) / pairs_per_row))
    titles = [
        title
        for match in matches
        for title in (f"filter {match.channel}", f"{match.preset} ({match.cosine:+.2f})")
    ]
    figure = make_subplots(
        rows=rows, cols=2 * pairs_per_row, subplot_titles=titles,
        horizontal_spacing=0.04, vertical_spacing=0.25 / rows,
    )
    for position, match in enumerate(matches):
        row, first_column = position // pairs_per_row + 1, 2 * (position % pairs_per_row) + 1
        for column, weights in ((first_column, match.weights), (first_column + 1, match.preset_weights)):
            limit = float(np.abs(weights).max()) or 1.0
            figure.add_trace(
                go.Heatmap(
                    z=weights, zmin=-limit, zmax=limit, colorscale="RdBu", reversescale=True,
                    showscale=False, texttemplate="%{z:.2f}" if weights.shape[0] <= 5 else None,
                    hovertemplate="row %{y}, column %{x}<br>weight %{z:.4f}<extra></extra>",
                ),
                row=row, col=column,
            )
    _square_cells(figure, rows * 2 * pairs_per_row)
    figure.update_layout(height=190 * rows, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return figure


def _square_cells(figure: go.Figure, count: int) -> None:
    """Give the first ``count`` subplots square pixels, row 0 at the top, no tick labels."""
    for index in range(1, count + 1):
        suffix = "" if index == 1 else str(index)
        figure.update_layout(
            {
                f"xaxis{suffix}": {"showticklabels": False, "constrain": "domain"},
                f"yaxis{suffix}": {
                    "showticklabels": False, "autorange": "reversed", "scaleanchor": f"x{suffix}",
                    "constrain": "domain",
                },
            }
        )
