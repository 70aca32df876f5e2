"""PLACEHOLDER: ftx.picograd (work in progress)."""
