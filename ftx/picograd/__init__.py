"""picograd: a scalar autodiff engine for teaching, linear-time and verified.

Contract: a teaching engine on Python floats, separate from the tensor
transforms. Reverse mode is :class:`Var` (``Var.grad()`` sweeps the graph once
in topological order, iteratively, so cost is linear in the graph's size and
any depth works); forward mode is :class:`Dual` (dual numbers). The helpers
:func:`grad`, :func:`value_and_grad` and :func:`jvp` have the signatures of
``ftx.grad`` / ``ftx.value_and_grad`` / ``ftx.jvp`` but take and return pytrees
of Python numbers. :class:`Linear` is the linear regression of the tutorial's
Exercise 0 (docs/tutorial_autodiff.md), checked against ``torch.nn.Linear``.
First order only: the local derivatives are plain floats, so ``grad(grad(f))``
is not supported. Values follow IEEE float64 as
torch does (``log(0) = -inf``, ``1/0 = inf``).

Example:
    >>> from ftx import picograd as pg
    >>> f = lambda x, y: x * x * x * y * x + y * y * y
    >>> pg.value_and_grad(f, argnums=(0, 1))(1.0, 1.0)
    (2.0, (4.0, 4.0))
    >>> pg.jvp(lambda x: pg.tanh(x) * 2, (0.0,), (1.0,))
    (0.0, 2.0)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from .. import tree as _tree
from .._internal.errors import check_bool, msg
from .._internal.errors import describe as _describe
from .._transforms.validate import check_callable, normalize_argnums, resolve_argnums, split_aux
from . import _ops as _ops
from ._dual import Dual as Dual
from ._linear import Linear as Linear
from ._var import Var as Var

__all__ = [
    "Dual",
    "Linear",
    "Var",
    "exp",
    "grad",
    "jvp",
    "log",
    "neg",
    "relu",
    "sigmoid",
    "sqrt",
    "tanh",
    "value",
    "value_and_grad",
]

S = TypeVar("S", Var, Dual, float)


def _unary(name: str, x: Any) -> Any:
    if isinstance(x, Var | Dual):
        return x._unary(name)
    if _ops.is_number(x):
        return _ops.UNARY[name][0](_ops.num(f"picograd.{name}", x, "x"))
    raise TypeError(msg(f"picograd.{name}", "x must be a Var, a Dual or a number", _describe(x),
                        "Pass a picograd scalar or a Python number."))


def neg(x: S) -> S:
    """``-x`` for a ``Var``, ``Dual`` or number."""
    return _unary("neg", x)  # type: ignore[no-any-return]


def exp(x: S) -> S:
    """``e ** x`` for a ``Var``, ``Dual`` or number.

    Example:
        >>> exp(Dual(0.0, 1.0))
        Dual(1.0, tangent=1.0)
    """
    return _unary("exp", x)  # type: ignore[no-any-return]


def log(x: S) -> S:
    """Natural logarithm of a ``Var``, ``Dual`` or number (``-inf`` at 0, ``nan`` below)."""
    return _unary("log", x)  # type: ignore[no-any-return]


def sqrt(x: S) -> S:
    """Square root of a ``Var``, ``Dual`` or number."""
    return _unary("sqrt", x)  # type: ignore[no-any-return]


def tanh(x: S) -> S:
    """Hyperbolic tangent of a ``Var``, ``Dual`` or number."""
    return _unary("tanh", x)  # type: ignore[no-any-return]


def sigmoid(x: S) -> S:
    """Logistic function of a ``Var``, ``Dual`` or number."""
    return _unary("sigmoid", x)  # type: ignore[no-any-return]


def relu(x: S) -> S:
    """``max(x, 0)`` of a ``Var``, ``Dual`` or number (derivative 0 at 0)."""
    return _unary("relu", x)  # type: ignore[no-any-return]


def value(x: Var | Dual | float) -> float:
    """The plain float inside a ``Var`` (its value) or ``Dual`` (its primal), or ``float(x)``.

    Example:
        >>> value(Var(2.0) * 3)
        6.0
    """
    if isinstance(x, Var):
        return x.value
    if isinstance(x, Dual):
        return x.primal
    if _ops.is_number(x):
        return _ops.num("picograd.value", x, "x")
    raise TypeError(msg("picograd.value", "x must be a Var, a Dual or a number", _describe(x),
                        "Pass a picograd scalar."))


def _wrap_leaf(api: str, where: str, leaf: Any, make: Callable[[float], Any]) -> Any:
    if isinstance(leaf, Var | Dual):
        leaf = value(leaf)
    if not _ops.is_number(leaf):
        raise TypeError(msg(
            f"picograd.{api}", "inputs must be numbers (or pytrees of numbers)",
            f"{_describe(leaf)} at {where}", "Pass Python floats; use .item() on tensors.",
        ))
    return make(_ops.num(f"picograd.{api}", leaf, f"the input at {where}"))


def _output_var(api: str, out: Any) -> Var | None:
    if isinstance(out, Var):
        return out
    if _ops.is_number(out):
        return None  # a constant: every gradient is 0
    raise TypeError(msg(
        f"picograd.{api}", "fun must return one scalar (a Var or a number)", _describe(out),
        "Reduce the output to one number, e.g. with sum(...).",
    ))


def _value_and_grad_impl(
    api: str, fun: Callable[..., Any], argnums: int | tuple[int, ...], has_aux: bool
) -> Callable[..., Any]:
    check_callable(f"picograd.{api}", fun)
    nums = normalize_argnums(f"picograd.{api}", argnums)
    check_bool(f"picograd.{api}", "has_aux", has_aux)

    @functools.wraps(fun)
    def wrapped(*args: Any) -> Any:
        idx = resolve_argnums(f"picograd.{api}", nums, len(args))
        new_args = list(args)
        for i in idx:
            new_args[i] = _tree.map_with_path(
                lambda p, x, i=i: _wrap_leaf(
                    api, f"argument {i}" + (f" path {p!r}" if p else ""), x, Var
                ),
                args[i],
            )
        out = fun(*new_args)
        aux = None
        if has_aux:
            out, aux = split_aux(f"picograd.{api}", out)
        root = _output_var(api, out)
        adj = root.grad() if root is not None else {}
        grads = tuple(
            _tree.map(lambda v: adj.get(v, 0.0), new_args[i]) for i in idx
        )
        g = grads if isinstance(argnums, tuple) else grads[0]
        val = value(out)
        return ((val, aux), g) if has_aux else (val, g)

    return wrapped


def value_and_grad(
    fun: Callable[..., Any], argnums: int | tuple[int, ...] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """Like :func:`grad`, returning ``(value, grads)`` (``((value, aux), grads)`` with aux).

    Example:
        >>> value_and_grad(lambda x: x * x)(3.0)
        (9.0, 6.0)
    """
    return _value_and_grad_impl("value_and_grad", fun, argnums, has_aux)


def grad(
    fun: Callable[..., Any], argnums: int | tuple[int, ...] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """Reverse-mode gradient of a scalar function of numbers, as ``ftx.grad``.

    The arguments named by ``argnums`` are pytrees of Python numbers (a float,
    a list of floats, a dict, a :class:`Linear`...); each leaf becomes a fresh
    :class:`Var`, ``fun`` runs once, and one reverse sweep gives every partial.

    Args:
        fun: a function of numbers returning one scalar (``Var`` or number); with
            ``has_aux`` a pair ``(scalar, aux)``.
        argnums: an int or a non-empty tuple of unique ints.
        has_aux: whether ``fun`` returns ``(scalar, aux)``.

    Returns:
        A function returning the gradient with the structure of the argument
        (a tuple of those when ``argnums`` is a tuple); ``(grads, aux)`` with aux.

    Example:
        >>> f = lambda x, y: x * x * x * y * x + y * y * y
        >>> grad(f, argnums=(0, 1))(1.0, 1.0)
        (4.0, 4.0)
        >>> grad(lambda p: p["w"][0] * p["w"][1] + p["b"])({"w": [2.0, 3.0], "b": 1.0})
        {'w': [3.0, 2.0], 'b': 1.0}
    """
    inner = _value_and_grad_impl("grad", fun, argnums, has_aux)

    @functools.wraps(fun)
    def wrapped(*args: Any) -> Any:
        out, g = inner(*args)
        return (g, out[1]) if has_aux else g

    return wrapped


def jvp(
    fun: Callable[..., Any], primals: Any, tangents: Any, has_aux: bool = False
) -> tuple[Any, ...]:
    """Forward-mode Jacobian-vector product through dual numbers, as ``ftx.jvp``.

    Args:
        fun: a function of numbers (pytrees of numbers) returning a number,
            ``Dual`` or a pytree of those; with ``has_aux`` a pair ``(out, aux)``.
        primals: tuple of the positional arguments (pytrees of numbers).
        tangents: tuple with the structure of ``primals``: the direction.

    Returns:
        ``(primals_out, tangents_out)``, pytrees of floats with the output's
        structure (``(primals_out, tangents_out, aux)`` with aux).

    Example:
        >>> jvp(lambda x, y: x * y + exp(x), (0.0, 2.0), (1.0, 0.0))
        (1.0, 3.0)
    """
    check_callable("picograd.jvp", fun)
    check_bool("picograd.jvp", "has_aux", has_aux)
    for name, v in (("primals", primals), ("tangents", tangents)):
        if not isinstance(v, tuple | list):
            raise TypeError(msg("picograd.jvp", f"{name} must be a tuple of arguments",
                                _describe(v), f"Wrap a single argument as ({name[:-1]},)."))
    p_leaves, p_def = _tree.flatten_with_path(tuple(primals))
    t_leaves, t_def = _tree.flatten(tuple(tangents))
    if p_def != t_def:
        raise ValueError(msg("picograd.jvp", "tangents must have the structure of primals",
                             f"{t_def} against {p_def}", "Pass one tangent per primal leaf."))
    duals = [
        Dual(
            _wrap_leaf("jvp", f"primals path {p!r}", x, float),
            _wrap_leaf("jvp", f"tangents path {p!r}", t, float),
        )
        for (p, x), t in zip(p_leaves, t_leaves)
    ]
    out = fun(*_tree.unflatten(p_def, duals))
    aux = None
    if has_aux:
        out, aux = split_aux("picograd.jvp", out)

    def check(leaf: Any) -> Any:
        if not isinstance(leaf, Dual) and not _ops.is_number(leaf):
            raise TypeError(msg("picograd.jvp", "fun must return numbers or Duals",
                                _describe(leaf),
                                "Compute the output with picograd operations only."))
        return leaf

    out = _tree.map(check, out)
    primal_out = _tree.map(value, out)
    tangent_out = _tree.map(lambda d: d.tangent if isinstance(d, Dual) else 0.0, out)
    return (primal_out, tangent_out, aux) if has_aux else (primal_out, tangent_out)
