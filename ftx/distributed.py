"""PLACEHOLDER: ftx.distributed (work in progress)."""
