"""PLACEHOLDER: ftx.optim (work in progress)."""
