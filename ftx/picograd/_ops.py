"""Scalar maths shared by picograd's reverse (``Var``) and forward (``Dual``) modes.

Each elementary function is written once here: its value and its local
derivative(s). ``Var`` stores the local derivatives on the graph edge; ``Dual``
multiplies them by the incoming tangent. Values follow IEEE float64 (the same
numbers ``torch`` gives on float64 tensors): ``log(0) = -inf``, ``log(-1) = nan``,
``1 / 0 = inf``, ``exp(1000) = inf``, never a Python ``ValueError`` or
``ZeroDivisionError``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

from .._internal.errors import msg

Number = int | float
INF = math.inf
NAN = math.nan


def is_number(x: object) -> bool:
    """True for plain real numbers (``int``, ``float`` and their subclasses, bools included)."""
    return isinstance(x, int | float)


def num(api: str, x: float, name: str = "operand") -> float:
    """``float(x)`` for a number; an int too large for a float64 is a ``ValueError``."""
    try:
        return float(x)
    except OverflowError:
        raise ValueError(msg(
            api, f"{name} must be a number a float64 can hold",
            f"an int of {operator.index(x).bit_length()} bits",  # type: ignore[arg-type]
            "Pass a smaller number (or float('inf')).",
        )) from None


def div(a: float, b: float) -> float:
    """IEEE division: ``1/0 = inf``, ``0/0 = nan``."""
    try:
        return a / b
    except ZeroDivisionError:
        if a == 0 or math.isnan(a):
            return NAN
        return math.copysign(INF, a) * math.copysign(1.0, b)


def exp(x: float) -> float:
    """``e**x`` with overflow to ``inf``."""
    try:
        return math.exp(x)
    except OverflowError:
        return INF


def log(x: float) -> float:
    """Natural log: ``log(0) = -inf``, negative -> ``nan``."""
    if x > 0:
        return math.log(x)
    if x == 0:
        return -INF
    return NAN


def sqrt(x: float) -> float:
    """Square root, ``nan`` for negatives."""
    return math.sqrt(x) if x >= 0 else NAN


def tanh(x: float) -> float:
    """Hyperbolic tangent."""
    return math.tanh(x)


def sigmoid(x: float) -> float:
    """Logistic function, computed without overflow for large ``|x|``."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def relu(x: float) -> float:
    """``max(x, 0)`` (``nan`` stays ``nan``, as in torch)."""
    return x if (x > 0 or math.isnan(x)) else 0.0


def pow_(a: float, b: float) -> float:
    """``a ** b`` in IEEE semantics: a negative base with a non-integer power is ``nan``."""
    try:
        return math.pow(a, b)
    except ValueError:  # negative base, fractional power; or 0 ** negative
        if a == 0:
            return INF
        return NAN
    except OverflowError:
        return INF if a > 0 or (float(b).is_integer() and b % 2 == 0) else -INF


# Unary functions: name -> (value(x), d value / d x given (x, value)).
UNARY: dict[str, tuple[Callable[[float], float], Callable[[float, float], float]]] = {
    "neg": (lambda x: -x, lambda x, y: -1.0),
    "exp": (exp, lambda x, y: y),
    "log": (log, lambda x, y: div(1.0, x)),
    "sqrt": (sqrt, lambda x, y: div(0.5, y)),
    "tanh": (tanh, lambda x, y: 1.0 - y * y),
    "sigmoid": (sigmoid, lambda x, y: y * (1.0 - y)),
    "relu": (relu, lambda x, y: 1.0 if x > 0 else 0.0),
}


def pow_partials(a: float, b: float, y: float) -> tuple[float, float]:
    """``(d(a**b)/da, d(a**b)/db)`` given ``y = a**b``, with torch's conventions.

    ``d/da = b * a**(b-1)`` (0 when ``b == 0``); ``d/db = y * log(a)``, taken as
    0 where ``a == 0`` and ``b >= 0`` (torch masks that case) and ``nan`` for a
    negative base.
    """
    da = 0.0 if b == 0 else b * pow_(a, b - 1.0)
    if a == 0 and b >= 0:
        db = 0.0
    else:
        db = y * log(a)
    return da, db
