"""Streamlit building blocks shared by the pages, and the app's cache wrappers."""
