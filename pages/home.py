"""Overview: what RepLens shows and where to start."""

import streamlit as st

from components.image_source import current_image

st.title("RepLens")
st.markdown(
    """
RepLens carries one image through every classic way of turning it into
numbers, from raw pixel matrices to CLIP embeddings. Pick an image in the
sidebar (a bundled sample, your own file, or the camera); it stays selected
on every page.

| Page | What it shows |
|---|---|
| **Pixels** | the image as matrices: channels, values, dimensions |
| **Kernels** | hand-designed convolution kernels and the arithmetic at one pixel |
| **SVD** | rank-k reconstructions, singular values, energy and compression |
| **CNN feature maps** | what a trained network computes, layer by layer |
| **Zero-shot** | CLIP matching the image against text labels |
| **CLIP metrics** | CLIP Score and pairwise CLIP similarity for generated images |
| **Dataset explorer** | whole image sets embedded, projected and searched |
"""
)

image = current_image()
st.image(image.pixels, caption=f"{image.name}: {image.width} x {image.height} pixels", width=320)
