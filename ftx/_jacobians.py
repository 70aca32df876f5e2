"""PLACEHOLDER: replaced by its implementation (work in progress)."""

from typing import Any


def jacfwd(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("ftx.jacfwd is not implemented yet")


def jacrev(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("ftx.jacrev is not implemented yet")


def jacobian(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("ftx.jacobian is not implemented yet")


def hessian(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("ftx.hessian is not implemented yet")
