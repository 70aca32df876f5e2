"""PLACEHOLDER: replaced by its implementation (work in progress)."""

from typing import Any


def vmap(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("ftx.vmap is not implemented yet")
