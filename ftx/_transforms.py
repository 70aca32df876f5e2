"""PLACEHOLDER: replaced by its implementation (work in progress)."""

from typing import Any


def grad(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("ftx.grad is not implemented yet")


def value_and_grad(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("ftx.value_and_grad is not implemented yet")


def jvp(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("ftx.jvp is not implemented yet")


def vjp(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("ftx.vjp is not implemented yet")


def linearize(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("ftx.linearize is not implemented yet")


def hvp(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("ftx.hvp is not implemented yet")
