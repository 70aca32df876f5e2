"""``while_loop`` and ``fori_loop``.

``while_loop`` runs ``body_fun`` while ``cond_fun`` holds. Under ``vmap`` with a
batched predicate it runs until every lane is done; a finished lane keeps its
value (the body still runs for it and the result is discarded lane by lane, as
JAX's batching rule does). Forward mode (``jvp``, ``jacfwd``) differentiates
through the iterations that ran. Reverse mode is refused as JAX refuses it: the
trip count is data-dependent, so the loop keeps no per-step residuals; the
``ValueError`` points to ``fori_loop`` with static bounds or ``scan``.

``fori_loop`` with Python int bounds (or concrete, unbatched tensor bounds outside
``torch.compile``, JAX's "concrete" case) is a ``scan`` over the indices and is
reverse-differentiable; with bounds that ``vmap`` batches or ``torch.compile``
traces it is a ``while_loop``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import torch

from .._internal.errors import check_callable, describe, msg
from ._common import (
    any_lane,
    check_pred,
    check_same,
    flatten,
    is_batched,
    needs_grad,
    outside_graph,
    select,
    tensor_leaves,
    unflatten,
)

__all__ = ["fori_loop", "while_loop"]

_is_compiling = torch.compiler.is_compiling

_REVERSE = (
    "Reverse-mode differentiation does not work for lax.while_loop or lax.fori_loop with "
    "dynamic start/stop values"
)


class _NoReverse(torch.autograd.Function):
    """Identity on the loop's outputs whose backward raises JAX's error for while loops."""

    generate_vmap_rule = True

    @staticmethod
    def forward(api: str, *xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(x.view_as(x) for x in xs)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.api = inputs[0]
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> tuple[Any, ...]:
        raise ValueError(msg(
            ctx.api, "reverse-mode differentiation needs a static trip count",
            "a reverse-mode transform (grad, vjp, jacrev, hessian) through a loop whose "
            "trip count depends on the data",
            _REVERSE + ". Try using lax.scan, or using fori_loop with static (Python int) "
            "start/stop; forward mode (jvp, jacfwd) works.",
        ))

    @staticmethod
    def jvp(ctx: Any, *tangents: Any) -> tuple[Any, ...]:
        return tuple(tangents[1:])


def _guard_reverse(api: str, spec: Any, leaves: list[Any]) -> Any:
    """The loop's output, wrapped so that reverse mode through it raises JAX's error."""
    if torch.is_grad_enabled():
        idx = [k for k, x in enumerate(leaves) if needs_grad(x)]
        if idx:
            outs = _NoReverse.apply(api, *(leaves[k] for k in idx))  # type: ignore[no-untyped-call]
            leaves = list(leaves)
            for k, o in zip(idx, outs):
                leaves[k] = o
    return unflatten(spec, leaves)


def _while(api: str, cond_fun: Callable[[Any], Any], body_fun: Callable[[Any], Any],
           init_val: Any) -> Any:
    leaves, spec = tensor_leaves(api, "init_val", init_val)
    ref = leaves
    val = unflatten(spec, leaves)
    fix = "body_fun must return a value of init_val's structure, shapes and dtypes."
    while True:
        pred = check_pred(api, "cond_fun's output", cond_fun(val), "bool")
        if isinstance(pred, torch.Tensor) and is_batched(pred):
            if not any_lane(pred):
                break
            new_leaves, new_spec = flatten(body_fun(val))
            check_same(api, "body_fun's output", new_spec, spec, new_leaves, ref, fix)
            leaves = select(api, pred, new_leaves, leaves)  # finished lanes keep their value
        else:
            if not bool(pred):
                break
            new_leaves, new_spec = flatten(body_fun(val))
            check_same(api, "body_fun's output", new_spec, spec, new_leaves, ref, fix)
            leaves = new_leaves
        val = unflatten(spec, leaves)
    return _guard_reverse(api, spec, leaves)


_while_outside = outside_graph(_while)


def while_loop(cond_fun: Callable[[Any], Any], body_fun: Callable[[Any], Any],
               init_val: Any) -> Any:
    """Repeat ``val = body_fun(val)`` while ``cond_fun(val)``, as ``jax.lax.while_loop``.

    Args:
        cond_fun: ``val -> `` a boolean scalar (Python bool or 0-d bool tensor).
        body_fun: ``val -> val`` keeping the pytree structure, shapes and dtypes.
        init_val: the initial value, a pytree of tensors (numbers become 0-d tensors).

    Returns:
        The final value. Under ``vmap`` with a batched predicate the loop runs until every
        lane is done and each lane stops at its own iteration. ``jvp``/``jacfwd`` work;
        reverse mode raises ``ValueError`` (as in JAX: use ``fori_loop`` with static bounds
        or ``scan``).

    Example:
        >>> import torch, ftx
        >>> collatz = lambda n: ftx.lax.while_loop(
        ...     lambda c: c[0] != 1,
        ...     lambda c: (torch.where(c[0] % 2 == 0, c[0] // 2, 3 * c[0] + 1), c[1] + 1),
        ...     (n, torch.tensor(0)))[1]
        >>> ftx.vmap(collatz)(torch.tensor([1, 6, 27]))   # steps to reach 1, per lane
        tensor([  0,   8, 111])
    """
    check_callable("lax.while_loop", "cond_fun", cond_fun)
    check_callable("lax.while_loop", "body_fun", body_fun)
    run = _while_outside if _is_compiling() else _while
    return run("lax.while_loop", cond_fun, body_fun, init_val)


def _bound(name: str, x: Any) -> Any:
    if isinstance(x, bool) or not isinstance(x, (numbers.Integral, torch.Tensor)):
        raise TypeError(msg("lax.fori_loop", f"{name} must be an int or a 0-d integer tensor",
                            describe(x), f"Pass a Python int for {name}."))
    if isinstance(x, torch.Tensor):
        if x.dim() != 0 or x.dtype.is_floating_point or x.dtype.is_complex \
                or x.dtype is torch.bool:
            raise TypeError(msg("lax.fori_loop", f"{name} must be an int or a 0-d integer "
                                "tensor", describe(x), f"Pass a Python int for {name}."))
        return x
    return int(x)


def fori_loop(lower: Any, upper: Any, body_fun: Callable[[Any, Any], Any], init_val: Any,
              *, unroll: int | bool | None = None) -> Any:
    """``for i in range(lower, upper): val = body_fun(i, val)``, as ``jax.lax.fori_loop``.

    Args:
        lower, upper: Python ints (a static trip count: the loop is a ``scan``, so it is
            reverse-differentiable) or 0-d integer tensors (batched under ``vmap`` or traced
            under ``jit``, the loop is a ``while_loop``: forward mode only).
        body_fun: ``(i, val) -> val``; ``i`` is a 0-d ``int64`` tensor.
        init_val: the initial value, a pytree of tensors.
        unroll: accepted for JAX compatibility (the eager loop is already unrolled).

    Returns:
        The final value.

    Example:
        >>> import torch, ftx
        >>> f = lambda x: ftx.lax.fori_loop(0, 3, lambda i, v: v * x + i, torch.ones(()))
        >>> f(torch.tensor(2.0)), ftx.grad(f)(torch.tensor(2.0))  # x**3 + x + 2 and 3x**2 + 1
        (tensor(12.), tensor(13.))
    """
    check_callable("lax.fori_loop", "body_fun", body_fun)
    lo, hi = _bound("lower", lower), _bound("upper", upper)
    static = not isinstance(lo, torch.Tensor) and not isinstance(hi, torch.Tensor)
    if not static and not _is_compiling() and not is_batched(lo) and not is_batched(hi):
        lo, hi, static = int(lo), int(hi), True  # concrete bounds (JAX's eager case)
    if static:
        from ._scan import scan

        if hi <= lo:
            leaves, spec = tensor_leaves("lax.fori_loop", "init_val", init_val)
            return unflatten(spec, leaves)
        idx = torch.arange(lo, hi)
        return scan(lambda v, i: (body_fun(i, v), None), init_val, idx)[0]
    dtype = lo.dtype if isinstance(lo, torch.Tensor) else hi.dtype
    lo_t = torch.as_tensor(lo, dtype=dtype)
    hi_t = torch.as_tensor(hi, dtype=dtype)

    def body(c: Any) -> Any:
        i, u, v = c
        return i + 1, u, body_fun(i, v)

    run = _while_outside if _is_compiling() else _while
    return run("lax.fori_loop", lambda c: c[0] < c[1], body, (lo_t, hi_t, init_val))[2]
