"""``cond`` and ``switch``: branches that compose with every transform.

Eagerly, a concrete predicate picks one branch and only that branch runs (its
derivatives are the branch's). A predicate that ``vmap`` batches runs every branch
and selects the results lane by lane (``torch.where``), as JAX's batching rule
does; the branches must then return the same pytree structure, shapes and dtypes.
Under ``torch.compile`` with no ``torch.func`` transform active the branches become
``torch.cond`` (both traced, one graph); inside a ``torch.func`` transform being
compiled the branch choice runs outside the graph (a graph break), eagerly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from .._internal.errors import check_callable, describe, msg
from ._common import (
    check_pred,
    check_same,
    flatten,
    functorch_active,
    is_batched,
    outside_graph,
    select,
    to_bool,
    unflatten,
)

__all__ = ["cond", "switch"]

_is_compiling = torch.compiler.is_compiling


def _run_both(api: str, pred: torch.Tensor, a: Any, b: Any) -> Any:
    la, sa = flatten(a)
    lb, sb = flatten(b)
    check_same(api, "every branch's output", sb, sa, lb, la,
               "Make the branches return the same structure, shapes and dtypes "
               "(a batched predicate runs every branch and selects the results).")
    return unflatten(sa, select(api, pred, la, lb))


def _cond_eager(pred: Any, true_fun: Callable[..., Any], false_fun: Callable[..., Any],
                operands: tuple[Any, ...]) -> Any:
    if isinstance(pred, torch.Tensor) and is_batched(pred):
        return _run_both("lax.cond", to_bool(pred), true_fun(*operands), false_fun(*operands))
    return (true_fun if bool(pred) else false_fun)(*operands)


_cond_outside = outside_graph(_cond_eager)


def _clone_tree(tree: Any) -> Any:
    leaves, spec = flatten(tree)
    return unflatten(spec, [x.clone() if isinstance(x, torch.Tensor) else x for x in leaves])


def _hop_cond(pred: torch.Tensor, true_fun: Callable[..., Any], false_fun: Callable[..., Any],
              operands: tuple[Any, ...]) -> Any:
    """``torch.cond`` on the operands' tensor leaves (other leaves are constants)."""
    leaves, spec = flatten(operands)
    slots = [None if isinstance(x, torch.Tensor) else x for x in leaves]
    tensors = [x for x in leaves if isinstance(x, torch.Tensor)]

    def branch(fun: Callable[..., Any]) -> Callable[..., Any]:
        def run(*ts: torch.Tensor) -> Any:
            it = iter(ts)
            ops = unflatten(spec, [next(it) if s is None else s for s in slots])
            return _clone_tree(fun(*ops))  # torch.cond refuses outputs aliasing inputs
        return run

    return torch.cond(to_bool(pred), branch(true_fun), branch(false_fun), tuple(tensors))


def cond(pred: Any, true_fun: Callable[..., Any], false_fun: Callable[..., Any],
         *operands: Any) -> Any:
    """``true_fun(*operands)`` if ``pred`` else ``false_fun(*operands)``, as ``jax.lax.cond``.

    Args:
        pred: a Python bool/number or a 0-d tensor (bool or number; non-zero is true).
        true_fun, false_fun: functions of ``*operands`` returning pytrees of tensors.
        *operands: the branch arguments (pytrees).

    Returns:
        The chosen branch's output. Under ``vmap`` with a batched ``pred`` both branches
        run and the outputs are selected lane by lane (they must then agree in structure,
        shapes and dtypes); derivatives flow through the selected lanes only.

    Example:
        >>> import torch, ftx
        >>> f = lambda x: ftx.lax.cond(x.sum() > 0, torch.sin, torch.cos, x)
        >>> ftx.vmap(f)(torch.tensor([[1.0], [-1.0]]))  # lane 0: sin, lane 1: cos
        tensor([[0.8415],
                [0.5403]])
    """
    check_callable("lax.cond", "true_fun", true_fun)
    check_callable("lax.cond", "false_fun", false_fun)
    pred = check_pred("lax.cond", "pred", pred, "number")
    if not isinstance(pred, torch.Tensor):
        return (true_fun if pred else false_fun)(*operands)
    if _is_compiling():
        if not functorch_active():
            return _hop_cond(pred, true_fun, false_fun, operands)
        return _cond_outside(pred, true_fun, false_fun, operands)
    return _cond_eager(pred, true_fun, false_fun, operands)


def _switch_eager(index: Any, branches: Sequence[Callable[..., Any]],
                  operands: tuple[Any, ...]) -> Any:
    n = len(branches)
    if isinstance(index, torch.Tensor) and is_batched(index):
        idx = index.clamp(0, n - 1)
        outs = [b(*operands) for b in branches]
        result = outs[-1]
        for k in range(n - 2, -1, -1):
            result = _run_both("lax.switch", idx == k, outs[k], result)
        return result
    return branches[min(max(int(index), 0), n - 1)](*operands)


_switch_outside = outside_graph(_switch_eager)


def _hop_switch(index: torch.Tensor, branches: Sequence[Callable[..., Any]],
                operands: tuple[Any, ...]) -> Any:
    if len(branches) == 1:
        return branches[0](*operands)
    mid = len(branches) // 2
    lo, hi = branches[:mid], branches[mid:]
    return _hop_cond(
        index < mid,
        lambda *ops: _hop_switch(index, lo, ops),
        lambda *ops: _hop_switch(index - mid, hi, ops),
        operands,
    )


def switch(index: Any, branches: Sequence[Callable[..., Any]], *operands: Any) -> Any:
    """``branches[index](*operands)`` with ``index`` clamped to the range, as ``jax.lax.switch``.

    Args:
        index: a Python int or a 0-d integer tensor; out-of-range values are clamped to
            ``[0, len(branches) - 1]`` (JAX's rule).
        branches: a non-empty sequence of functions of ``*operands``.
        *operands: the branch arguments (pytrees).

    Returns:
        The chosen branch's output. Under ``vmap`` with a batched ``index`` every branch
        runs and the outputs are selected lane by lane.

    Example:
        >>> import torch, ftx
        >>> fs = [lambda x: x + 1, lambda x: x * 10, lambda x: -x]
        >>> ftx.vmap(lambda i, x: ftx.lax.switch(i, fs, x))(torch.tensor([0, 1, 5]),
        ...                                                  torch.tensor([1.0, 2.0, 3.0]))
        tensor([ 2., 20., -3.])
    """
    if not isinstance(branches, (list, tuple)) or not branches:
        raise TypeError(msg("lax.switch", "branches must be a non-empty list or tuple of "
                            "functions", describe(branches), "Pass e.g. [f0, f1]."))
    for k, b in enumerate(branches):
        check_callable("lax.switch", f"branches[{k}]", b)
    index = check_pred("lax.switch", "index", index, "int")
    n = len(branches)
    if not isinstance(index, torch.Tensor):
        return branches[min(max(int(index), 0), n - 1)](*operands)
    if _is_compiling():
        if not functorch_active():
            return _hop_switch(index.clamp(0, n - 1), list(branches), operands)
        return _switch_outside(index, branches, operands)
    return _switch_eager(index, branches, operands)
