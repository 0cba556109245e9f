"""CNN feature maps: what each convolutional stage of a trained network makes of the image."""

import math

import pandas as pd
import streamlit as st

from components.cnn_model import (
    feature_map_grid,
    feature_maps_cached,
    filter_pairs_figure,
    model_picker_ui,
    overlay_figure,
    shape_table,
)
from components.image_source import current_image, show_image_notices
from core.cnn import first_layer_filters, match_filters, preset_kernels, rank_channels, upsample_map
from core.errors import RepLensError

MAPS_PER_PAGE = 16
FILTERS_PER_PAGE = 8

st.title("CNN feature maps")
st.markdown(
    "A **convolution layer** slides $C_{out}$ learned kernels over its input. "
    "Output channel $k$ at row $i$, column $j$ is a weighted sum over every input "
    "channel $c$ and kernel offset $(u, v)$, plus a bias; like every deep-learning "
    "library, PyTorch computes this as a cross-correlation (the kernel is not flipped):"
)
st.latex(r"y_k[i, j] = b_k + \sum_{c=1}^{C_{in}} \sum_{u, v} W_{k,c}[u, v]\; x_c[s\,i + u,\; s\,j + v]")
st.markdown(
    "A nonlinearity such as $\\mathrm{ReLU}(z) = \\max(z, 0)$ follows. Each output "
    "channel is a **feature map**: a picture of where its kernel's pattern occurs. "
    "**Pooling** shrinks the maps, for example $2 \\times 2$ max pooling keeps "
    "$\\max_{u, v \\in \\{0, 1\\}} y[2i + u, 2j + v]$. With kernel size $k$, padding $p$ "
    "and stride $s$, a side of $H$ pixels becomes"
)
st.latex(r"H_{out} = \left\lfloor \frac{H + 2p - k}{s} \right\rfloor + 1")
st.markdown(
    "so, stage by stage, the maps get smaller while the number of channels grows: "
    "less *where*, more *what*. The last maps are averaged into one vector that a "
    "linear layer turns into class scores."
)

bundle = model_picker_ui()
for notice in bundle.notices:
    st.warning(notice)
if bundle.is_digit_cnn and bundle.record:
    training = bundle.record.get("training", {})
    st.caption(
        f"Digit CNN: {bundle.record.get('parameters', 0):,} parameters, trained on "
        f"{training.get('train_size', '?')} MNIST digits; accuracy on "
        f"{training.get('held_out_size', '?')} held-out digits: "
        f"{100 * bundle.record.get('held_out_accuracy', 0):.1f} %."
    )

image = current_image()
show_image_notices(image)
try:
    result = feature_maps_cached(bundle.source, image.pixels)
except RepLensError as error:
    st.error(str(error))
    st.stop()
preprocessed = result.preprocessed

# -- The input after preprocessing, and the prediction.
st.header("Input and prediction")
original_column, input_column, prediction_column = st.columns([2, 2, 3])
original_column.image(image.pixels, caption=f"{image.name}: {image.width} x {image.height}", width="stretch")
input_height, input_width = preprocessed.model_view.shape[:2]
input_column.image(
    preprocessed.model_view, caption=f"Model input: {input_width} x {input_height} (before normalisation)",
    width="stretch",
)
top = result.predictions[0]
prediction_column.metric("Top prediction", top.label, f"{100 * top.probability:.1f} % probability", delta_color="off")
prediction_column.dataframe(
    pd.DataFrame(
        {
            "Class": [prediction.label for prediction in result.predictions],
            "Probability": [round(prediction.probability, 4) for prediction in result.predictions],
        }
    ),
    hide_index=True, width="stretch",
)
st.markdown("**How the image was changed before the model saw it**")
st.markdown("\n".join(f"{number}. {step}" for number, step in enumerate(preprocessed.steps, start=1)))
if bundle.is_digit_cnn and (image.width, image.height) != (28, 28):
    st.info(
        "The digit CNN was trained on 28 x 28 handwritten digits only, so on any other image, "
        "a photo or a flat patch, its prediction means little."
    )

# -- Shapes per stage.
st.header("Output shape of each stage")
st.dataframe(pd.DataFrame(shape_table(result)), hide_index=True, width="stretch")

# -- The feature maps of one stage.
st.header("Feature maps")
layer_names = [layer.name for layer in result.layers]
picker_columns = st.columns(3)
layer_name = picker_columns[0].selectbox("Layer", layer_names, key="cnn_layer")
layer = result.layers[layer_names.index(layer_name)]
channels, map_height, map_width = layer.shape
order = rank_channels(layer.maps)
page_count = math.ceil(channels / MAPS_PER_PAGE)
page = picker_columns[1].number_input(
    f"Page (of {page_count})", min_value=1, max_value=page_count, value=1, step=1, key="cnn_map_page",
    help=f"{MAPS_PER_PAGE} maps per page, ordered by mean activation, highest first.",
)
scale = picker_columns[2].radio(
    "Colour scale", ("Shared", "Per map"), horizontal=True, key="cnn_scale",
    help="Shared: one scale for all maps on this page, so brightness compares across maps. "
    "Per map: each map stretched from its own minimum to its own maximum.",
)
shown = [int(channel) for channel in order[(page - 1) * MAPS_PER_PAGE : page * MAPS_PER_PAGE]]
shown_maps = layer.maps[shown]
if scale == "Shared":
    st.caption(
        f"Channels ranked {(page - 1) * MAPS_PER_PAGE + 1}-{(page - 1) * MAPS_PER_PAGE + len(shown)} of "
        f"{channels} by mean activation; each map is {map_height} x {map_width}. One colour scale for "
        f"the whole page, from {shown_maps.min():.3g} to {shown_maps.max():.3g}."
    )
else:
    st.caption(
        f"Channels ranked {(page - 1) * MAPS_PER_PAGE + 1}-{(page - 1) * MAPS_PER_PAGE + len(shown)} of "
        f"{channels} by mean activation; each map is {map_height} x {map_width}. Each map has its own "
        "colour scale from its minimum to its maximum, so brightness does not compare across maps."
    )
st.plotly_chart(feature_map_grid(layer.maps, shown, scale == "Shared"), width="stretch", key="cnn_grid")

# -- One map over the image.
st.subheader("One map over the model input")
overlay_columns = st.columns([1, 3])
channel = overlay_columns[0].selectbox(
    "Channel", [int(index) for index in order], key="cnn_overlay_channel",
    help="Listed from the most to the least active channel of this layer.",
)
opacity = overlay_columns[0].slider("Map opacity", 0.0, 1.0, 0.55, 0.05, key="cnn_overlay_opacity")
overlay_columns[0].caption(
    f"The {map_height} x {map_width} map of channel {channel} is resized bilinearly to the "
    f"{input_width} x {input_height} model input."
)
upsampled = upsample_map(layer.maps[channel], input_height, input_width)
overlay_columns[1].plotly_chart(
    overlay_figure(preprocessed.model_view, upsampled, opacity), width="stretch", key="cnn_overlay"
)

# -- Learned filters of the first layer.
st.header("First-layer filters and the closest hand-designed kernels")
filters = first_layer_filters(bundle)
matches = match_filters(filters)
filter_count, kernel_height, kernel_width = filters.shape
st.markdown(
    f"The first convolution has {filter_count} filters of {kernel_height} x {kernel_width}. Colour "
    "filters are summed over their red, green and blue weights, which is what they apply to a gray "
    "image. Each is paired with the preset of the Kernels page whose weights have the largest "
    "absolute cosine similarity $\\cos = \\frac{\\langle W, K \\rangle}{\\lVert W \\rVert \\lVert K \\rVert}$; "
    "a negative cosine means the filter is close to the negated preset. Hover a cell for its weight."
)
if not any(kernel.shape == (kernel_height, kernel_width) for kernel in preset_kernels().values()):
    st.caption(
        f"No preset is {kernel_height} x {kernel_width}, so every preset was resampled bilinearly to "
        "that size before comparing."
    )
st.dataframe(
    pd.DataFrame(
        {
            "Filter": [match.channel for match in matches],
            "Closest preset": [match.preset for match in matches],
            "Cosine": [round(match.cosine, 3) for match in matches],
        }
    ),
    hide_index=True, width="stretch", height=220,
)
filter_pages = math.ceil(filter_count / FILTERS_PER_PAGE)
filter_page = st.number_input(
    f"Filter page (of {filter_pages})", min_value=1, max_value=filter_pages, value=1, step=1, key="cnn_filter_page",
)
page_matches = matches[(filter_page - 1) * FILTERS_PER_PAGE : filter_page * FILTERS_PER_PAGE]
st.caption(
    "Each kernel has its own colour scale, symmetric around 0: blue weights are negative, red positive. "
    "The number after a preset's name is the cosine similarity."
)
st.plotly_chart(filter_pairs_figure(page_matches), width="stretch", key="cnn_filters")
