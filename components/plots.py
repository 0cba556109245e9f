"""Plotly figures shared by pages: matrix heatmaps and value histograms.

Functions here build figures and return them; pages draw them with
``st.plotly_chart(figure, width="stretch")``.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

# Maximum side of a heatmap sent to the browser. Larger matrices are sampled
# with a stride, because a 1024 x 1024 heatmap is roughly 4 MB of JSON.
HEATMAP_MAX_SIDE = 256

CHANNEL_COLOURS = {"R": "#d62728", "G": "#2ca02c", "B": "#1f77b4", "Gray": "#555555"}
# From 0 (black) to 255 (the full channel colour), as the channel adds light.
CHANNEL_SCALES = {
    "R": [[0.0, "#000000"], [1.0, "#ff0000"]],
    "G": [[0.0, "#000000"], [1.0, "#00ff00"]],
    "B": [[0.0, "#000000"], [1.0, "#0000ff"]],
    "Gray": [[0.0, "#000000"], [1.0, "#ffffff"]],
}


def sampling_step(shape: tuple[int, ...], max_side: int = HEATMAP_MAX_SIDE) -> int:
    """Return the stride that brings the longest side of ``shape`` down to ``max_side``."""
    return max(1, int(np.ceil(max(shape[:2]) / max_side)))


def matrix_heatmap(
    matrix: np.ndarray,
    *,
    colorscale: str | list = "gray",
    zmin: float | None = 0,
    zmax: float | None = 255,
    show_values: bool = False,
    value_format: str = ".0f",
    row_offset: int = 0,
    column_offset: int = 0,
    max_side: int = HEATMAP_MAX_SIDE,
    height: int | None = None,
) -> go.Figure:
    """Draw a 2-D matrix as a heatmap with row 0 at the top and true row/column numbers on hover.

    Matrices larger than ``max_side`` are sampled with a stride, which the
    title states. ``show_values`` writes each number into its cell, for patches.
    """
    values = np.asarray(matrix)
    step = sampling_step(values.shape, max_side)
    sampled = values[::step, ::step]
    rows = row_offset + np.arange(0, values.shape[0], step)
    columns = column_offset + np.arange(0, values.shape[1], step)

    heatmap = go.Heatmap(
        z=sampled,
        x=columns,
        y=rows,
        colorscale=colorscale,
        zmin=zmin,
        zmax=zmax,
        hovertemplate="row %{y}, column %{x}<br>value %{z}<extra></extra>",
        texttemplate=f"%{{z:{value_format}}}" if show_values else None,
    )
    figure = go.Figure(heatmap)
    figure.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain", title="row")
    figure.update_xaxes(constrain="domain", title="column", side="top")
    if show_values:
        # One tick per cell, so every row and column number is labelled.
        figure.update_yaxes(dtick=1)
        figure.update_xaxes(dtick=1)
    title = f"sampled: 1 row and 1 column in {step}" if step > 1 else None
    figure.update_layout(margin=dict(l=10, r=10, t=40 if title is None else 60, b=10), title=title, height=height)
    return figure


def channel_histogram(channels: dict[str, np.ndarray]) -> go.Figure:
    """Plot the count of each value 0..255 for every named uint8 channel."""
    figure = go.Figure()
    levels = np.arange(256)
    for name, values in channels.items():
        counts = np.bincount(np.asarray(values, dtype=np.uint8).ravel(), minlength=256)
        figure.add_trace(
            go.Scatter(
                x=levels,
                y=counts,
                mode="lines",
                name=name,
                line=dict(color=CHANNEL_COLOURS.get(name, "#555555"), width=1.5),
                hovertemplate=f"{name} = %{{x}}: %{{y}} pixels<extra></extra>",
            )
        )
    figure.update_xaxes(title="value", range=[0, 255])
    figure.update_yaxes(title="pixels")
    figure.update_layout(margin=dict(l=10, r=10, t=10, b=10), height=280, legend=dict(orientation="h"))
    return figure
