"""PLACEHOLDER: ftx.random (work in progress)."""
