"""PLACEHOLDER: ftx.nn (work in progress)."""
