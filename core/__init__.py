"""Pure compute for RepLens: image decoding, kernels, SVD, CNN and CLIP features.

Nothing in this package imports Streamlit, so every function here can be
used and tested without a running app.
"""
