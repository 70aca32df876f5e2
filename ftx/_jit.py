"""PLACEHOLDER: replaced by its implementation (work in progress)."""

from typing import Any


def jit(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("ftx.jit is not implemented yet")
