"""``scan`` and ``map``.

Eagerly (and inside any ``torch.func`` transform) ``scan`` is a Python loop over the
leading axis of ``xs``: every transform sees ordinary tensor operations, so ``grad``,
``vjp``, ``jvp``, ``vmap``, ``jacfwd``, ``jacrev`` and ``hessian`` compose with it,
and reverse mode keeps each step's residuals, as JAX's scan does. A body wrapped in
``ftx.checkpoint`` keeps only each step's inputs (the carry and the ``x`` slice) and
recomputes the rest in the backward pass.

Under ``torch.compile`` (``ftx.jit``) the loop runs outside the graph (a graph break)
and eagerly, under every transform: the graph never grows with the length and the
compile time does not depend on it. torch's higher-order ``scan`` operator was measured
and not used: on torch 2.13 it is not differentiable under ``torch.func`` transforms,
and where it compiles (no transform active) its compiled forward + backward ran a
100-step GRU 3x (``aot_eager``) to 20x (inductor) slower than this eager loop on CPU,
since it runs the body step by step with copies (benchmarks group ``control_flow``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .._internal import torch_compat as _tc
from .._internal.errors import check_bool, check_callable, check_int, describe, msg
from ._common import (
    check_same,
    flatten,
    outside_graph,
    tensor_leaves,
    unflatten,
)

__all__ = ["map", "scan"]

_is_compiling = torch.compiler.is_compiling
_API = "lax.scan"
_CARRY_FIX = (
    "f must return (carry, y) with carry of init's structure, shapes and dtypes "
    "(JAX: the scan body's carry input and output must have equal types)."
)


def _split(out: Any) -> tuple[Any, Any]:
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError(msg(_API, "f must return a pair (carry, y)", describe(out),
                            "Return `carry, y` (y may be None)."))
    return out[0], out[1]


def _scan_eager(f: Callable[[Any, Any], Any], init_leaves: list[torch.Tensor], init_spec: Any,
                x_leaves: list[torch.Tensor], x_spec: Any, n: int, reverse: bool
                ) -> tuple[Any, Any]:
    carry = unflatten(init_spec, init_leaves)
    slices = [x.unbind(0) for x in x_leaves]
    steps: list[list[torch.Tensor]] = []
    y_spec: Any = None
    y_ref: list[torch.Tensor] = []
    order = range(n - 1, -1, -1) if reverse else range(n)
    for i in order:
        x = unflatten(x_spec, [s[i] for s in slices])
        c, y = _split(f(carry, x))
        c_leaves, c_spec = flatten(c)
        check_same(_API, "f's carry output", c_spec, init_spec, c_leaves, init_leaves, _CARRY_FIX)
        y_leaves, spec = tensor_leaves(_API, "f's y output", y)
        if not steps:
            y_spec, y_ref = spec, y_leaves
        else:
            check_same(_API, "f's y output", spec, y_spec, y_leaves, y_ref,
                       "f must return y of the same structure, shapes and dtypes every step.")
        steps.append(y_leaves)
        carry = c
    if n == 0:  # the output structure comes from one call on zero-filled slices
        x = unflatten(x_spec, [x.new_zeros(x.shape[1:]) for x in x_leaves])
        _, y = _split(f(carry, x))
        y_ref, y_spec = tensor_leaves(_API, "f's y output", y)
        return carry, unflatten(y_spec, [y.new_empty((0, *y.shape)) for y in y_ref])
    if reverse:
        steps.reverse()
    ys = [torch.stack(list(k)) for k in zip(*steps)]
    return carry, unflatten(y_spec, ys)


_scan_outside = outside_graph(_scan_eager)


def _check_unroll(unroll: Any) -> None:
    if isinstance(unroll, bool):
        return
    check_int(_API, "unroll", unroll, low=1)


def scan(f: Callable[[Any, Any], Any], init: Any, xs: Any = None, length: int | None = None,
         reverse: bool = False, unroll: int | bool = 1) -> tuple[Any, Any]:
    """Loop ``f`` over the leading axis of ``xs`` carrying state, as ``jax.lax.scan``.

    Semantics (JAX's)::

        def scan(f, init, xs, length=None):
            carry, ys = init, []
            for x in xs:
                carry, y = f(carry, x)
                ys.append(y)
            return carry, stack(ys)

    Args:
        f: ``(carry, x) -> (carry, y)``; the carry keeps init's pytree structure, shapes
            and dtypes; ``y`` is any pytree of tensors (or ``None``).
        init: the initial carry, a pytree of tensors (numbers become 0-d tensors).
        xs: a pytree of tensors with a common leading length, sliced along axis 0
            (``None``: ``f`` gets ``None`` and ``length`` sets the trip count).
        length: the trip count; required when ``xs`` has no leaves.
        reverse: scan from the end; ``ys`` stay aligned with ``xs``.
        unroll: accepted for JAX compatibility (an int >= 1 or a bool); no effect.

    Returns:
        ``(carry, ys)``: the final carry and the per-step ``y`` stacked on a new axis 0
        (shape ``(length, *y.shape)`` per leaf).

    Example:
        >>> import torch, ftx
        >>> cumsum = lambda xs: ftx.lax.scan(lambda c, x: (c + x, c + x), torch.zeros(()), xs)
        >>> cumsum(torch.arange(1.0, 5.0))
        (tensor(10.), tensor([ 1.,  3.,  6., 10.]))
        >>> ftx.grad(lambda xs: cumsum(xs)[1].sum())(torch.arange(1.0, 5.0))
        tensor([4., 3., 2., 1.])
    """
    check_callable(_API, "f", f)
    check_bool(_API, "reverse", reverse)
    _check_unroll(unroll)
    if length is not None:
        length = check_int(_API, "length", length, low=0)
    x_leaves, x_spec = flatten(xs)
    lengths = set()
    for k, x in enumerate(x_leaves):
        if not isinstance(x, torch.Tensor) or x.dim() == 0:
            raise TypeError(msg(_API, "every leaf of xs must be a tensor with a leading axis",
                                f"leaf {k}: {describe(x)}",
                                "Stack the per-step inputs along axis 0."))
        lengths.add(x.shape[0])
    if len(lengths) > 1:
        raise ValueError(msg(_API, "every leaf of xs must have the same leading length",
                             f"lengths {sorted(lengths)}", "Slice the inputs to one length."))
    if lengths:
        n = lengths.pop()
        if length is not None and length != n:
            raise ValueError(msg(_API, f"length must equal xs' leading length {n}",
                                 str(length), "Drop length or make it match xs."))
    elif length is None:
        raise ValueError(msg(_API, "length is required when xs has no leaves", "length=None",
                             "Pass length=<trip count>."))
    else:
        n = int(length)
    init_leaves, init_spec = tensor_leaves(_API, "init", init)
    if _is_compiling():  # a graph break: the loop runs eagerly, never unrolled into the graph
        return _scan_outside(f, init_leaves, init_spec, x_leaves, x_spec, n, reverse)
    return _scan_eager(f, init_leaves, init_spec, x_leaves, x_spec, n, reverse)


def map(f: Callable[[Any], Any], xs: Any, *, batch_size: int | None = None) -> Any:
    """``f`` applied to each slice of ``xs`` along axis 0, results stacked, as ``jax.lax.map``.

    Args:
        f: ``x -> y`` on one slice (pytrees).
        xs: a pytree of tensors with a common leading length.
        batch_size: when given, ``f`` is ``vmap``-ed over chunks of that many slices (the
            remainder in one last chunk), trading memory for speed as in JAX.

    Returns:
        The stacked outputs, leading axis of xs' length.

    Example:
        >>> import torch, ftx
        >>> ftx.lax.map(lambda x: x @ x, torch.ones(3, 2))
        tensor([2., 2., 2.])
    """
    check_callable("lax.map", "f", f)
    if batch_size is None:
        return scan(lambda _, x: ((), f(x)), (), xs)[1]
    bs = check_int("lax.map", "batch_size", batch_size, low=1)
    from .._transforms.vmap import vmap

    leaves, spec = flatten(xs)
    if not leaves:
        raise ValueError(msg("lax.map", "xs must have at least one leaf", "no leaves",
                             "Pass the inputs to map over."))
    n = leaves[0].shape[0]
    full = n // bs * bs
    batched_f = vmap(f)
    parts = []
    if full:
        chunks = unflatten(spec, [x[:full].reshape(n // bs, bs, *x.shape[1:]) for x in leaves])
        ys = scan(lambda _, x: ((), batched_f(x)), (), chunks)[1]
        parts.append(_tc.tree_map(lambda y: y.reshape(full, *y.shape[2:]), ys))
    if full < n:
        parts.append(batched_f(unflatten(spec, [x[full:] for x in leaves])))
    if len(parts) == 1:
        return parts[0]
    return _tc.tree_map(lambda a, b: torch.cat([a, b]), parts[0], parts[1])
