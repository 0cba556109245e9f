"""RepLens: see how one image, or a whole image set, becomes vectors.

Run with ``streamlit run app.py``. This entry script sets the page config,
draws the shared image source in the sidebar and runs the chosen page.
"""

import streamlit as st

from components.image_source import image_source_sidebar

st.set_page_config(page_title="RepLens", page_icon="🔍", layout="wide")

navigation = st.navigation(
    {
        "Start": [
            st.Page("pages/home.py", title="Overview", icon="🏠", default=True),
        ],
        "One image": [
            st.Page("pages/pixels.py", title="Pixels", icon="🔢"),
            st.Page("pages/kernels.py", title="Kernels", icon="🧮"),
            st.Page("pages/svd.py", title="SVD", icon="📉"),
            st.Page("pages/cnn.py", title="CNN feature maps", icon="🧠"),
        ],
        "CLIP": [
            st.Page("pages/zero_shot.py", title="Zero-shot", icon="🏷️"),
            st.Page("pages/clip_metrics.py", title="CLIP metrics", icon="📏"),
        ],
        "Datasets": [
            st.Page("pages/explorer.py", title="Dataset explorer", icon="🗺️"),
        ],
    }
)

image_source_sidebar()
navigation.run()
