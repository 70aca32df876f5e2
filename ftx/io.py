"""PLACEHOLDER: ftx.io (work in progress)."""
