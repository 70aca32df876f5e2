"""Error helpers: every message reads ``ftx.<api>: <required>, got <came>. <fix>``."""

from __future__ import annotations

import math
import numbers
import operator
import reprlib
import sys
from collections.abc import Callable, Sequence
from typing import Any


def describe(x: Any) -> str:
    """A short description of a value for error messages."""
    import torch

    if isinstance(x, torch.Tensor):
        return f"Tensor(shape={tuple(x.shape)}, dtype={x.dtype})"
    try:
        text = _REPR.repr(x)
    except Exception:  # a broken __repr__ (or one that recurses) must not hide the real error
        text = f"<{type(x).__name__} object>"
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(x).__name__} {text}"


# Bounded repr: nested containers stop at 3 levels (deep or cyclic trees print in O(1)).
_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxother = 60
_REPR.maxstring = 60
_REPR.maxlong = 40


def msg(api: str, required: str, got: str, fix: str = "") -> str:
    """Format an error message in the contract's form."""
    out = f"ftx.{api}: {required}, got {got}."
    return f"{out} {fix}" if fix else out


# ---------------------------------------------------------------------------------
# Generic checks shared by the public modules (each returns the checked value or raises).


def find_cycle(
    tree: Any, children: Callable[[Any], Sequence[tuple[str, Any]] | None]
) -> str | None:
    """The path of the first container that holds itself or one of its ancestors, or None.

    Iterative depth-first walk (linear in the tree's size), so safe on any input (a cyclic
    tree is what makes recursive walkers fail). ``children(node)`` gives a container's
    ``(key, child)`` pairs, ``None`` (or nothing) for a leaf.
    """
    on_path: set[int] = set()
    stack: list[tuple[Any, str, bool]] = [(tree, "", False)]
    while stack:
        node, path, leaving = stack.pop()
        if leaving:
            on_path.discard(id(node))
            continue
        kids = children(node)
        if not kids:
            continue
        if id(node) in on_path:
            return path or "<root>"
        on_path.add(id(node))
        stack.append((node, path, True))
        for key, child in reversed(kids):
            stack.append((child, f"{path}.{key}" if path else key, False))
    return None


def nesting_error(
    api: str,
    name: str,
    tree: Any,
    children: Callable[[Any], Sequence[tuple[str, Any]] | None],
) -> ValueError:
    """The ``ValueError`` for a tree a recursive walk could not finish: a cycle or too deep."""
    path = find_cycle(tree, children)
    if path is None:
        return ValueError(msg(
            api, f"{name} must be a pytree nested less deeply than Python's recursion limit",
            f"a tree nested deeper than {sys.getrecursionlimit()} levels",
            "Flatten the nesting (e.g. a dict keyed by 'layer.sublayer' paths).",
        ))
    return ValueError(msg(
        api, f"{name} must be a pytree without cycles",
        f"a container at path {path!r} that contains itself (or one of its parents)",
        "Build the tree from fresh containers; a pytree cannot refer to itself.",
    ))


def check_callable(api: str, name: str, value: Any, *, optional: bool = False) -> None:
    """``TypeError`` unless ``value`` is callable (or ``None`` when ``optional``)."""
    if callable(value) or (optional and value is None):
        return
    required = f"{name} must be callable" + (" or None" if optional else "")
    raise TypeError(msg(api, required, describe(value), "Pass a function."))


def check_bool(api: str, name: str, value: Any) -> bool:
    """``TypeError`` unless ``value`` is a ``bool``."""
    if not isinstance(value, bool):
        raise TypeError(msg(api, f"{name} must be a bool", describe(value),
                            f"Pass {name}=True or {name}=False."))
    return value


def check_int(
    api: str, name: str, value: Any, *, low: int | None = None, high: int | None = None
) -> int:
    """An ``int`` (numpy integers too, never ``bool``) in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(msg(api, f"{name} must be an int", describe(value),
                            f"Pass a Python int for {name}."))
    n = operator.index(value)
    if (low is not None and n < low) or (high is not None and n > high):
        lo = "-inf" if low is None else str(low)
        hi = "inf" if high is None else str(high)
        raise ValueError(msg(api, f"{name} must lie in [{lo}, {hi}]", _short_int(n),
                             f"Pass a {name} in range."))
    return n


def _short_int(n: int) -> str:
    return str(n) if abs(n) < 10**30 else f"an int of {n.bit_length()} bits"


def check_real(
    api: str,
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    allow_inf: bool = False,
) -> float:
    """A real number (int or float, numpy scalars too, never ``bool``), as a ``float``.

    ``NaN`` is always refused; infinities unless ``allow_inf``; ``low``/``high`` bound it
    (``low_open``: strictly above ``low``). Ints too large for a float are a ``ValueError``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(msg(api, f"{name} must be a real number", describe(value),
                            f"Pass a float for {name}."))
    try:
        x = float(value)
    except OverflowError:
        got = _short_int(operator.index(value)) if isinstance(value, numbers.Integral) \
            else repr(value)
        raise ValueError(msg(api, f"{name} must be a number a float64 can hold", got,
                             "Pass a smaller number.")) from None
    bad = math.isnan(x) or (math.isinf(x) and not allow_inf)
    if not bad and low is not None:
        bad = x <= low if low_open else x < low
    if not bad and high is not None:
        bad = x > high
    if bad:
        lo = "" if low is None else ("> " if low_open else ">= ") + repr(low)
        hi = "" if high is None else "<= " + repr(high)
        bounds = " and ".join(b for b in (lo, hi) if b)
        fin = "a finite number" if not allow_inf else "a number (not NaN)"
        raise ValueError(msg(api, f"{name} must be {fin}" + (f" {bounds}" if bounds else ""),
                             repr(value), f"Pass a valid {name}."))
    return x
