"""RepLens: see how one image, or a whole image set, becomes vectors.

Run with ``streamlit run app.py``. This entry script sets the page config,
draws the shared image source in the sidebar and runs the chosen page.
"""

import streamlit as st

from components.image_source import image_source_sidebar

st.set_page_config(page_title="RepLens", page_icon=":material/image_search:", layout="wide")

navigation = st.navigation(
    {
        "Start": [
            st.Page("pages/home.py", title="Overview", icon=":material/home:", default=True),
        ],
        "One image": [
            st.Page("pages/pixels.py", title="Pixels", icon=":material/grid_on:"),
            st.Page("pages/convolution_kernels.py", title="Kernels", icon=":material/blur_on:", url_path="kernels"),
            st.Page("pages/svd.py", title="SVD", icon=":material/stacked_line_chart:"),
            st.Page("pages/cnn.py", title="CNN feature maps", icon=":material/layers:"),
        ],
        "CLIP": [
            st.Page("pages/zero_shot.py", title="Zero-shot", icon=":material/label:"),
            st.Page("pages/clip_metrics.py", title="CLIP metrics", icon=":material/straighten:"),
        ],
        "Datasets": [
            st.Page("pages/explorer.py", title="Dataset explorer", icon=":material/scatter_plot:"),
        ],
    }
)

image_source_sidebar()
navigation.run()
