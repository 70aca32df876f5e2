"""Rematerialisation: ``checkpoint(fun)`` recomputes ``fun`` in the backward pass.

Contract: ``checkpoint(fun)`` returns a function with ``fun``'s values and
derivatives that, when differentiated, saves only its tensor inputs (not the
intermediate activations of ``fun``) and runs ``fun`` again during the
backward pass to get them. It is one ``torch.autograd.Function`` with
``setup_context``, a ``jvp`` staticmethod and ``generate_vmap_rule=True``, so
unlike ``torch.utils.checkpoint`` it is correct under ``torch.func`` / ``ftx``
``grad``, ``vjp``, ``vmap(grad)``, ``jacrev``, ``jacfwd``, ``hessian`` and
nested forward mode (``jacfwd(jacfwd(...))``: the ``jvp`` runs with forward AD
on, see ``ftx._transforms.custom.fw_tracked``).

``fun`` must be deterministic: it runs twice. Randomness from explicit
``ftx.random`` keys passed as arguments is deterministic; ``torch.rand``
inside ``fun`` is not (the recomputed activations would differ).
Non-tensor arguments (Python numbers, flags) are held as constants.

Tensors ``fun`` closes over (``lambda h: step(h, w)`` with ``w`` from the enclosing
scope, in nested functions' closures, or bound by ``functools.partial``) are
differentiated like arguments, as in JAX: they are lifted into the
``autograd.Function``'s inputs and put back into the closure cells while ``fun``
runs. Tensors reached only through globals or object attributes (a bound
``nn.Module`` method) are not seen: pass those as arguments.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import torch
import torch.func

from .. import tree as _tree
from .._internal.errors import describe, msg
from .closures import closure_cells
from .custom import fw_tracked
from .fnargs import check_callable, flatten_outputs, meta_of, plain_call, unalias, zeros_for

R = TypeVar("R")

__all__ = ["checkpoint"]


def _cells_with_tensors(fun: Any) -> list[Any]:
    """The closure cells of ``fun`` (and of functions in its cells) that hold tensors."""
    return [
        cell
        for _, _, cell, value in closure_cells([fun])
        if isinstance(value, torch.Tensor)
        or any(isinstance(x, torch.Tensor) for x in _tree.leaves(value))
    ]


class _Call:
    """One call of a checkpointed function: the static arguments, the captured tensors
    (closure cells, lifted to inputs) and the output structure."""

    __slots__ = (
        "cell_defs", "cells", "fun", "in_def", "leaves", "n_args", "n_out", "out_def",
        "out_meta", "slots",
    )

    def __init__(
        self, fun: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self.fun = fun
        leaves, self.in_def = _tree.flatten((args, kwargs))
        self.n_args = len(leaves)
        self.cells = _cells_with_tensors(fun)
        self.cell_defs: list[_tree.TreeDef] = []
        for cell in self.cells:
            cell_leaves, cell_def = _tree.flatten(cell.cell_contents)
            leaves += cell_leaves
            self.cell_defs.append(cell_def)
        self.leaves = leaves
        # Tensor leaves travel through the autograd.Function; the rest are constants.
        self.slots = [None if isinstance(x, torch.Tensor) else x for x in leaves]
        self.n_out = 0
        self.out_def: _tree.TreeDef | None = None
        self.out_meta: list[Any] = []

    def run(self, tensors: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        it = iter(tensors)
        leaves = [next(it) if s is None else s for s in self.slots]
        args, kwargs = _tree.unflatten(self.in_def, leaves[: self.n_args])
        saved = [cell.cell_contents for cell in self.cells]
        start = self.n_args
        try:
            for cell, cell_def in zip(self.cells, self.cell_defs):
                n = cell_def.num_leaves
                cell.cell_contents = _tree.unflatten(cell_def, leaves[start : start + n])
                start += n
            out = self.fun(*args, **kwargs)
        finally:
            for cell, value in zip(self.cells, saved):
                cell.cell_contents = value
        out_leaves, self.out_def = flatten_outputs("checkpoint", out, "the output of fun")
        self.n_out, self.out_meta = len(out_leaves), meta_of(out_leaves)
        return tuple(unalias(out_leaves, tensors))


class _Checkpoint(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(rec: _Call, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return rec.run(tensors)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.rec = inputs[0]
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(*inputs[1:])  # the inputs only: no activation is kept
        ctx.save_for_forward(*inputs[1:])

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        rec: _Call = ctx.rec
        inputs = ctx.saved_tensors
        if all(g is None for g in grads):
            return (None,) * (1 + len(inputs))
        pull = torch.func.vjp(lambda *xs: rec.run(xs), *inputs)[1]  # the recomputation
        return (None, *pull(tuple(zeros_for(rec.out_meta, grads))))

    @staticmethod
    def jvp(ctx: Any, *tangents: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        rec: _Call = ctx.rec
        inputs = tuple(ctx.saved_tensors)
        tans = zeros_for(meta_of(inputs), tangents[1:])
        n = len(inputs)

        def tangent(*xs: torch.Tensor) -> Sequence[torch.Tensor]:
            out: Sequence[torch.Tensor] = torch.func.jvp(lambda *p: rec.run(p), xs[:n], xs[n:])[1]
            return out

        # outer forward levels (jacfwd(jacfwd(...))) differentiate the recomputation too
        return tuple(fw_tracked(tangent, (*inputs, *tans)))


def checkpoint(fun: Callable[..., R]) -> Callable[..., R]:
    """Make ``fun`` recompute its activations in the backward pass instead of storing them.

    Args:
        fun: a deterministic function of tensors / pytrees of tensors (other leaves are
            constants) returning a tensor or a pytree of tensors.

    Returns:
        A function with ``fun``'s signature, values and derivatives. Under reverse mode
        it keeps only its tensor inputs alive and runs ``fun`` a second time in the
        backward pass; it composes with ``grad``, ``vmap(grad)``, ``jacrev``, ``jacfwd``
        and ``hessian`` (``torch.func`` or ``ftx``).

    Example:
        >>> import torch, ftx
        >>> def block(w, x):              # (d, d), (d,) -> (d,)
        ...     return torch.tanh(w @ x)
        >>> block_ckpt = ftx.checkpoint(block)
        >>> w, x = torch.eye(3), torch.ones(3)
        >>> torch.func.grad(lambda w: block_ckpt(w, x).sum())(w).shape
        torch.Size([3, 3])
    """
    check_callable("checkpoint", "fun", fun)
    if isinstance(fun, type):
        raise TypeError(
            msg(
                "checkpoint",
                "fun must be a function",
                describe(fun),
                "Pass a function (e.g. a layer's apply), not a class.",
            )
        )

    @functools.wraps(fun)
    def wrapped(*args: Any, **kwargs: Any) -> R:
        f: Callable[..., Any] = fun
        while isinstance(f, functools.partial):  # bound arguments are arguments
            args, kwargs = (*f.args, *args), {**f.keywords, **kwargs}
            f = f.func
        rec = _Call(f, args, kwargs)
        tensors = [x for x in rec.leaves if isinstance(x, torch.Tensor)]
        if plain_call(tensors):
            return cast(R, f(*args, **kwargs))
        flat = _Checkpoint.apply(rec, *tensors)  # type: ignore[no-untyped-call]
        assert rec.out_def is not None
        return cast(R, _tree.unflatten(rec.out_def, flat))

    return wrapped
