"""Error helpers: every message reads ``ftx.<api>: <required>, got <came>. <fix>``."""

from __future__ import annotations

from typing import Any


def describe(x: Any) -> str:
    """A short description of a value for error messages."""
    import torch

    if isinstance(x, torch.Tensor):
        return f"Tensor(shape={tuple(x.shape)}, dtype={x.dtype})"
    text = repr(x)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(x).__name__} {text}"


def msg(api: str, required: str, got: str, fix: str = "") -> str:
    """Format an error message in the contract's form."""
    out = f"ftx.{api}: {required}, got {got}."
    return f"{out} {fix}" if fix else out
