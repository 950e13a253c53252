"""Streamlit-side glue: sign-in, cached data access and shared page furniture (no measures here)."""
