import streamlit as st

st.title("Work in progress")
