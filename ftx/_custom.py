"""Custom differentiation rules in JAX's style: ``custom_vjp`` and ``custom_jvp``.

Contract: ``f = custom_vjp(fun, nondiff_argnums=())`` then
``f.defvjp(fwd, bwd)``; ``fwd(*args) -> (out, residuals)`` and
``bwd(*nondiff_args, residuals, cotangent) -> tuple`` with one cotangent per
differentiable argument (``None`` means zero). ``f = custom_jvp(fun,
nondiff_argnums=())`` then ``f.defjvp(rule)``;
``rule(*nondiff_args, primals, tangents) -> (primal_out, tangent_out)`` where
``primals`` and ``tangents`` are tuples of the differentiable arguments.

Both are built on one ``torch.autograd.Function`` per kind, with
``setup_context``, a ``jvp`` staticmethod and ``generate_vmap_rule=True``, so
the rule holds under ``torch.func``/``ftx`` ``grad``, ``vjp``, ``vmap``,
``jacrev`` and ``hessian``, and (``custom_jvp``) under ``jvp`` and ``jacfwd``.
Semantics of the other directions follow JAX:

* ``custom_jvp`` in reverse mode transposes the tangent map: the VJP is the
  VJP of ``t -> rule(primals, t)[1]``, which must be linear in ``t``.
* ``custom_vjp`` in forward mode (``jvp``/``jacfwd`` applied to it directly,
  or the outer ``jacfwd`` of ``hessian``) differentiates ``fwd`` with
  standard forward mode; higher derivatives differentiate ``fwd`` and
  ``bwd`` as ordinary functions, as JAX does. (JAX refuses a direct ``jvp``
  of a ``custom_vjp`` function; ftx answers with the derivative of ``fwd``.)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import torch
import torch.func

from . import tree as _tree
from ._errors import describe, msg
from ._fnargs import (
    CallArgs,
    bind,
    check_argnums,
    check_callable,
    flatten_outputs,
    meta_of,
    plain_call,
    signature_of,
    unalias,
    zeros_for,
)

R = TypeVar("R")

__all__ = ["custom_jvp", "custom_vjp"]


def _check_cotangents(api: str, call: CallArgs, cts: Any) -> list[torch.Tensor | None]:
    """Validate ``bwd``'s result against the differentiable arguments; return leaf cotangents."""
    n = len(call.diff_pos)
    if not isinstance(cts, (tuple, list)):
        raise TypeError(
            msg(
                api,
                f"bwd must return a tuple with one cotangent per differentiable argument ({n})",
                describe(cts),
                "Return a tuple, e.g. `return (g,)` with a trailing comma for one argument.",
            )
        )
    if len(cts) != n:
        raise ValueError(
            msg(
                api,
                f"bwd must return {n} cotangent(s), one per differentiable argument",
                f"{len(cts)}",
                "Return one entry per argument not listed in nondiff_argnums (None for zero).",
            )
        )
    primals = call.diff_tree(call.leaves)
    out: list[torch.Tensor | None] = []
    for k, (arg, ct) in enumerate(zip(primals, cts)):
        pos = call.diff_pos[k]
        arg_leaves, arg_def = _tree.flatten_with_path(arg)
        if ct is None:
            out.extend([None] * len(arg_leaves))
            continue
        ct_leaves, ct_def = _tree.flatten_with_path(ct)
        if ct_def != arg_def:
            raise ValueError(
                msg(
                    api,
                    f"the cotangent for argument {pos} must have the argument's structure "
                    f"{arg_def.spec}",
                    f"structure {ct_def.spec}",
                    "Return a cotangent shaped like the primal argument.",
                )
            )
        for (path, x), (_, g) in zip(arg_leaves, ct_leaves):
            where = f"argument {pos}" + (f" at path '{path}'" if path else "")
            if g is None:
                out.append(None)
                continue
            if not isinstance(g, torch.Tensor):
                raise TypeError(
                    msg(
                        api,
                        f"the cotangent for {where} must be a tensor",
                        describe(g),
                        "Return tensors (or None for a zero cotangent).",
                    )
                )
            if g.shape != x.shape:
                raise ValueError(
                    msg(
                        api,
                        f"the cotangent for {where} must have the primal's shape {tuple(x.shape)}",
                        f"shape {tuple(g.shape)}",
                        "Reduce or reshape the cotangent in bwd to the primal's shape.",
                    )
                )
            out.append(g)
    return out


class _Ref:
    """A residual that is an input or an output of the call: saved as such, not returned twice."""

    __slots__ = ("index", "kind")

    def __init__(self, kind: str, index: int) -> None:
        self.kind, self.index = kind, index


class _VjpCall:
    """Per-call record passed through the autograd.Function (holds non-tensor state)."""

    __slots__ = (
        "bwd",
        "call",
        "fwd",
        "n_out",
        "out_def",
        "out_meta",
        "out_saved",
        "res_def",
        "res_slots",
    )

    def __init__(self, fwd: Callable[..., Any], bwd: Callable[..., Any], call: CallArgs) -> None:
        self.fwd, self.bwd, self.call = fwd, bwd, call
        self.n_out = 0
        self.out_def: _tree.TreeDef | None = None
        self.out_meta: list[Any] = []
        self.res_def: _tree.TreeDef | None = None
        self.res_slots: list[Any] = []  # residual leaves; None where a new tensor goes
        self.out_saved: list[int] = []  # outputs that are also residuals

    def run_fwd(self, leaves: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Run ``fwd``, record the output/residual structure, return the flat tensors."""
        result = self.fwd(*self.call.rebuild(leaves))
        if not isinstance(result, tuple) or len(result) != 2:
            raise TypeError(
                msg(
                    "custom_vjp",
                    "fwd must return a pair (out, residuals)",
                    describe(result),
                    "Return `out, residuals` from fwd.",
                )
            )
        out, residuals = result
        out_leaves, self.out_def = flatten_outputs("custom_vjp", out, "fwd's output")
        res_leaves, self.res_def = _tree.flatten(residuals)
        in_ids = {id(x): i for i, x in enumerate(leaves)}
        out_ids = {id(x): i for i, x in enumerate(out_leaves)}
        tensors: list[torch.Tensor] = []
        self.res_slots, self.out_saved = [], []
        for r in res_leaves:
            if not isinstance(r, torch.Tensor):
                self.res_slots.append(r)
            elif id(r) in in_ids:
                self.res_slots.append(_Ref("in", in_ids[id(r)]))
            elif id(r) in out_ids:
                self.res_slots.append(_Ref("out", len(self.out_saved)))
                self.out_saved.append(out_ids[id(r)])
            else:
                self.res_slots.append(None)
                tensors.append(r)
        self.n_out = len(out_leaves)
        self.out_meta = meta_of(out_leaves)
        return (*unalias(out_leaves, leaves), *tensors)

    def residuals(
        self,
        primals: Sequence[torch.Tensor],
        outs: Sequence[torch.Tensor],
        tensors: Sequence[torch.Tensor],
    ) -> Any:
        """Rebuild the residual pytree from the saved inputs, outputs and residual outputs."""
        it = iter(tensors)
        leaves = [
            next(it)
            if s is None
            else (primals if s.kind == "in" else outs)[s.index]
            if isinstance(s, _Ref)
            else s
            for s in self.res_slots
        ]
        assert self.res_def is not None
        return _tree.unflatten(self.res_def, leaves)


class _CustomVjpFunction(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(rec: _VjpCall, *leaves: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return rec.run_fwd(leaves)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        rec: _VjpCall = inputs[0]
        ctx.rec = rec
        ctx.set_materialize_grads(False)
        n_in = len(inputs) - 1
        ctx.n_in = n_in
        ctx.n_saved_out = len(rec.out_saved)
        saved = (*inputs[1:], *(output[j] for j in rec.out_saved), *output[rec.n_out :])
        ctx.save_for_backward(*saved)
        ctx.save_for_forward(*inputs[1:])

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        rec: _VjpCall = ctx.rec
        saved = ctx.saved_tensors
        n_in, n_so = ctx.n_in, ctx.n_saved_out
        primals, outs, res = saved[:n_in], saved[n_in : n_in + n_so], saved[n_in + n_so :]
        result: list[torch.Tensor | None] = [None] * ctx.n_in
        g_out, g_res = grads[: rec.n_out], grads[rec.n_out :]
        nondiff = rec.call.nondiff
        if any(g is not None for g in g_out):
            assert rec.out_def is not None
            ct = _tree.unflatten(rec.out_def, zeros_for(rec.out_meta, g_out))
            cts = rec.bwd(*nondiff, rec.residuals(primals, outs, res), ct)
            result = _check_cotangents("custom_vjp", rec.call, cts)
        if any(g is not None for g in g_res):
            # Higher order: the residuals are functions of the inputs through fwd.
            def res_of(*xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
                return rec.run_fwd(xs)[rec.n_out :]

            pull = torch.func.vjp(res_of, *primals)[1]
            extra = pull(tuple(zeros_for(meta_of(res), g_res)))
            result = [e if r is None else r + e for r, e in zip(result, extra)]
        return (None, *result)

    @staticmethod
    def jvp(ctx: Any, *tangents: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        rec: _VjpCall = ctx.rec
        primals = ctx.saved_tensors[: ctx.n_in]
        tans = tuple(zeros_for(meta_of(primals), tangents[1:]))
        t_out = torch.func.jvp(lambda *xs: rec.run_fwd(xs), tuple(primals), tans)[1]
        return tuple(t_out)


def _apply_eager(fn: Any, rec: Any, leaves: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    out: tuple[torch.Tensor, ...] = fn.apply(rec, *leaves)
    return out


# torch.compile (2.13) traces an autograd.Function under torch.func.grad/jvp as its forward only,
# silently dropping the custom rule; keep the call out of the graph (a graph break) instead.
_apply_opaque: Callable[..., tuple[torch.Tensor, ...]] = torch._dynamo.disable(  # type: ignore[no-untyped-call]
    _apply_eager
)


def _apply(fn: Any, rec: Any, leaves: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    if torch.compiler.is_compiling():
        return _apply_opaque(fn, rec, leaves)
    return _apply_eager(fn, rec, leaves)


class custom_vjp(Generic[R]):
    """Give a function a custom vector-Jacobian product (reverse-mode rule), as ``jax.custom_vjp``.

    Args:
        fun: the primal function ``fun(*args) -> out``; ``out`` is a tensor or a pytree of
            tensors, differentiable arguments are tensors or pytrees of tensors.
        nondiff_argnums: positions of arguments that are not differentiated (Python values,
            callables, hyper-parameters); they are passed first to ``bwd``.

    Returns:
        A callable with ``fun``'s signature; call ``.defvjp(fwd, bwd)`` on it before use.
        ``fwd(*args) -> (out, residuals)``; ``bwd(*nondiff_args, residuals, cotangent)``
        returns a tuple with one cotangent per differentiable argument, shaped like it.

    Example:
        >>> import torch, ftx
        >>> @ftx.custom_vjp
        ... def clip_gradient(x):
        ...     return x
        >>> def fwd(x):
        ...     return x, None
        >>> def bwd(res, g):
        ...     return (g.clamp(-1.0, 1.0),)
        >>> clip_gradient.defvjp(fwd, bwd)
        >>> torch.func.grad(lambda x: (10.0 * clip_gradient(x)).sum())(torch.ones(3))
        tensor([1., 1., 1.])
    """

    def __init__(self, fun: Callable[..., R], nondiff_argnums: int | Sequence[int] = ()) -> None:
        check_callable("custom_vjp", "fun", fun)
        self.fun = fun
        self.nondiff_argnums = check_argnums("custom_vjp", nondiff_argnums)
        self.fwd: Callable[..., Any] | None = None
        self.bwd: Callable[..., Any] | None = None
        self._sig = signature_of(fun)
        functools.update_wrapper(self, fun)

    def defvjp(self, fwd: Callable[..., Any], bwd: Callable[..., Any]) -> None:
        """Define the rule: ``fwd(*args) -> (out, res)``, ``bwd(*nondiff, res, ct) -> tuple``."""
        check_callable("custom_vjp", "fwd", fwd)
        check_callable("custom_vjp", "bwd", bwd)
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args: Any, **kwargs: Any) -> R:
        if self.fwd is None or self.bwd is None:
            name = getattr(self.fun, "__name__", "fun")
            raise TypeError(
                msg(
                    "custom_vjp",
                    f"a rule defined with {name}.defvjp(fwd, bwd) before the call",
                    f"no rule for '{name}'",
                    f"Call {name}.defvjp(fwd, bwd) first.",
                )
            )
        args = bind(self._sig, args, kwargs)
        call = CallArgs("custom_vjp", args, self.nondiff_argnums)
        if plain_call(call.leaves):
            return self.fun(*args)
        rec = _VjpCall(self.fwd, self.bwd, call)
        flat = _apply(_CustomVjpFunction, rec, call.leaves)
        assert rec.out_def is not None
        out: R = _tree.unflatten(rec.out_def, flat[: rec.n_out])
        return out


class _JvpCall:
    """Per-call record for custom_jvp."""

    __slots__ = ("call", "fun", "n_out", "out_def", "out_meta", "rule")

    def __init__(self, fun: Callable[..., Any], rule: Callable[..., Any], call: CallArgs) -> None:
        self.fun, self.rule, self.call = fun, rule, call
        self.n_out = 0
        self.out_def: _tree.TreeDef | None = None
        self.out_meta: list[Any] = []

    def tangent_out(
        self, primals: Sequence[torch.Tensor], tangents: Sequence[torch.Tensor]
    ) -> list[torch.Tensor]:
        """Run the rule and return the flat tangent output, checked against the primal output."""
        result = self.rule(
            *self.call.nondiff, self.call.diff_tree(primals), self.call.diff_tree(tangents)
        )
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise TypeError(
                msg(
                    "custom_jvp",
                    "the jvp rule must return a pair (primal_out, tangent_out)",
                    describe(result),
                    "Return `out, tangent_out` from the rule.",
                )
            )
        t_leaves, t_def = flatten_outputs("custom_jvp", result[1], "the rule's tangent output")
        if t_def != self.out_def:
            assert self.out_def is not None
            raise ValueError(
                msg(
                    "custom_jvp",
                    f"the rule's tangent output must have the output's structure "
                    f"{self.out_def.spec}",
                    f"structure {t_def.spec}",
                    "Return a tangent shaped like the primal output.",
                )
            )
        for i, (t, (shape, _, _)) in enumerate(zip(t_leaves, self.out_meta)):
            if t.shape != shape:
                raise ValueError(
                    msg(
                        "custom_jvp",
                        f"the rule's tangent output leaf {i} must have the output's "
                        f"shape {tuple(shape)}",
                        f"shape {tuple(t.shape)}",
                        "Broadcast or reduce the tangent in the rule to the output's shape.",
                    )
                )
        return t_leaves


class _CustomJvpFunction(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(rec: _JvpCall, *leaves: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out_leaves, rec.out_def = flatten_outputs(
            "custom_jvp", rec.fun(*rec.call.rebuild(leaves)), "the output"
        )
        rec.n_out, rec.out_meta = len(out_leaves), meta_of(out_leaves)
        return tuple(unalias(out_leaves, leaves))

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.rec = inputs[0]
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(*inputs[1:])
        ctx.save_for_forward(*inputs[1:])

    @staticmethod
    def jvp(ctx: Any, *tangents: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        primals = ctx.saved_tensors
        return tuple(ctx.rec.tangent_out(primals, zeros_for(meta_of(primals), tangents[1:])))

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        rec: _JvpCall = ctx.rec
        primals = ctx.saved_tensors
        if all(g is None for g in grads):
            return (None,) * (1 + len(primals))

        # Transpose the (linear) tangent map t -> rule(primals, t)[1] by a VJP in t.
        def tangent_map(*ts: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return tuple(rec.tangent_out(primals, ts))

        zeros = tuple(torch.zeros_like(p) for p in primals)
        pull = torch.func.vjp(tangent_map, *zeros)[1]
        return (None, *pull(tuple(zeros_for(rec.out_meta, grads))))


class custom_jvp(Generic[R]):
    """Give a function a custom Jacobian-vector product (forward-mode rule), as ``jax.custom_jvp``.

    Args:
        fun: the primal function ``fun(*args) -> out`` (tensor or pytree of tensors).
        nondiff_argnums: positions of arguments that are not differentiated; they are passed
            first to the rule.

    Returns:
        A callable with ``fun``'s signature; call ``.defjvp(rule)`` on it before use (it also
        works as a decorator). ``rule(*nondiff_args, primals, tangents)`` gets tuples of the
        differentiable arguments and returns ``(primal_out, tangent_out)``. Reverse mode
        transposes the rule, so ``tangent_out`` must be linear in ``tangents``.

    Example:
        >>> import torch, ftx
        >>> @ftx.custom_jvp
        ... def log1pexp(x):
        ...     return torch.log1p(torch.exp(x))
        >>> @log1pexp.defjvp
        ... def log1pexp_jvp(primals, tangents):
        ...     (x,), (t,) = primals, tangents
        ...     return log1pexp(x), t * torch.sigmoid(x)
        >>> torch.func.grad(log1pexp)(torch.tensor(100.0))   # naive autograd gives nan
        tensor(1.)
    """

    def __init__(self, fun: Callable[..., R], nondiff_argnums: int | Sequence[int] = ()) -> None:
        check_callable("custom_jvp", "fun", fun)
        self.fun = fun
        self.nondiff_argnums = check_argnums("custom_jvp", nondiff_argnums)
        self.rule: Callable[..., Any] | None = None
        self._sig = signature_of(fun)
        functools.update_wrapper(self, fun)

    def defjvp(self, rule: Callable[..., Any]) -> Callable[..., Any]:
        """Define ``rule(*nondiff, primals, tangents) -> (out, tangent_out)``; returns it."""
        check_callable("custom_jvp", "rule", rule)
        self.rule = rule
        return rule

    def __call__(self, *args: Any, **kwargs: Any) -> R:
        if self.rule is None:
            name = getattr(self.fun, "__name__", "fun")
            raise TypeError(
                msg(
                    "custom_jvp",
                    f"a rule defined with {name}.defjvp(rule) before the call",
                    f"no rule for '{name}'",
                    f"Call {name}.defjvp(rule) first.",
                )
            )
        args = bind(self._sig, args, kwargs)
        call = CallArgs("custom_jvp", args, self.nondiff_argnums)
        if plain_call(call.leaves):
            return self.fun(*args)
        rec = _JvpCall(self.fun, self.rule, call)
        flat = _apply(_CustomJvpFunction, rec, call.leaves)
        assert rec.out_def is not None
        out: R = _tree.unflatten(rec.out_def, flat)
        return out
