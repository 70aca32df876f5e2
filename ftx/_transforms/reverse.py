"""Reverse-mode engines behind ``ftx.grad``, ``ftx.value_and_grad`` and ``ftx.vjp``.

Two routes give the same numbers:

* the **fast path** (no ``torch.func`` transform active, no functorch-wrapped
  input): inputs are detached, marked ``requires_grad`` and differentiated with
  ``torch.autograd.grad``, which costs what an ``nn.Module`` backward costs;
* the **functorch path** (under ``vmap``/``grad``/``jvp``/``torch.compile`` or
  with wrapped inputs): ``torch.func.grad_and_value`` / ``torch.func.vjp``.

Both differentiate only the floating (and complex) leaves; integer and bool
leaves (allowed by ``allow_int`` or in ``vjp``) get zero gradients in the
default float dtype. Unused inputs get zeros, never ``None``.

The fast path builds a differentiable result (``create_graph=True``) only when
the caller needs one: grad mode is on and some input, captured tensor or
cotangent already requires grad, exactly the case where ``torch.func`` would
hand back a result connected to the outer autograd graph.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import types
from collections.abc import Callable, Sequence
from itertools import repeat as _repeat
from operator import is_not as _is_not
from typing import Any

import torch
import torch.func

from .._internal import pytree as _ft
from .._internal import torch_compat as _tc
from .._internal.errors import describe, msg
from .._internal.torch_compat import is_wrapped as _is_wrapped
from .validate import (
    check_diff_leaves,
    check_matching,
    output_leaves_check,
    scalar_output_check,
    split_aux,
)

Tensor = torch.Tensor
_grad_enabled = torch.is_grad_enabled


def is_diff(leaf: Any) -> bool:
    """True for a tensor leaf we differentiate (floating or complex)."""
    return isinstance(leaf, Tensor) and (leaf.is_floating_point() or leaf.is_complex())


def _accumulate_grad_type() -> type:
    leaf = torch.zeros((), requires_grad=True)
    return type(leaf.view(()).grad_fn.next_functions[0][0])  # type: ignore[union-attr]


_ACCUMULATE_GRAD = _accumulate_grad_type()
_inference_mode_enabled = torch.is_inference_mode_enabled
_NULL = contextlib.nullcontext()
# Per-call shortcuts inside a route (not routes themselves): off under FTX_SLOW_ROUTES=1,
# so that the general code they skip runs in that suite.
_SHORTCUTS = not _tc.SLOW_ROUTES

# Functions already run once on the torch.func route (see :func:`needs_probe`), keyed by
# their code object (or class, for callable objects). Bounded: when full it is cleared,
# and re-probing a function costs one torch.func call.
_PROBED: dict[Any, None] = {}
_PROBED_MAX = 4096
_PURE_KINDS = (types.BuiltinFunctionType, types.BuiltinMethodType)


def _probe_key(fun: Any) -> Any:
    """What identifies ``fun``'s code: the code object of the innermost wrapped function,
    of a ``functools.partial``'s or a bound method's function, else the callable's class.
    ``None`` for builtins and torch operators, which need no probe."""
    for _ in range(64):
        if isinstance(fun, _PURE_KINDS):
            return None
        inner = getattr(fun, "__wrapped__", None)
        if inner is None and isinstance(fun, functools.partial):
            inner = fun.func
        if inner is None:
            inner = getattr(fun, "__func__", None)
        if inner is None:
            break
        fun = inner
    code = getattr(fun, "__code__", None)
    return code if code is not None else type(fun)


def needs_probe(fun: Any) -> Any:
    """The key to record after a probe when ``fun`` has not yet run on the torch.func route,
    else ``None``.

    The fast path runs ``fun`` on plain autograd, which cannot see what ``torch.func``
    refuses: ``requires_grad_()``, ``retain_grad()``, ``torch.autograd.functional`` or
    ``torch.autograd.grad`` on detached copies, in-place writes into captured tensors.
    Such a function would get a silently different gradient, so the first call of each
    function runs on ``torch.func``, which raises for them; later calls take the fast path.
    """
    key = _probe_key(fun)
    if key is None or key in _PROBED:
        return None
    return key


def mark_probed(key: Any) -> None:
    """Record that the function with this key ran once on the torch.func route."""
    if len(_PROBED) >= _PROBED_MAX:
        _PROBED.clear()
    _PROBED[key] = None


def engine_grad(
    outs: Sequence[Tensor],
    ins: Sequence[Tensor],
    cts: Sequence[Tensor],
    retain_graph: bool,
    create_graph: bool,
    plain: bool | None = None,
) -> Sequence[Tensor | None]:
    """``torch.autograd.grad(outs, ins, cts, allow_unused=True, ...)``.

    ``torch.autograd.grad`` spends several microseconds normalising its arguments
    before it calls the engine; the callers here already hold tensors whose cotangents
    were checked, so plain tensors go to the engine directly (torch_compat's
    ``engine_grad``; tensor subclasses with ``__torch_function__`` go through
    ``torch.autograd.grad`` itself). ``plain``: the caller already knows whether every
    tensor is a plain ``Tensor``.
    """
    if plain is None:
        plain = all(type(t) is Tensor for t in (*outs, *ins, *cts))
    return _tc.engine_grad(outs, ins, cts, retain_graph, create_graph, plain)


def captures_outer_graph(outs: Sequence[Any], inputs: Sequence[Tensor]) -> bool:
    """True when the graph of ``outs`` reaches a leaf that requires grad besides ``inputs``.

    That leaf was captured by ``fun`` (a closure or a module parameter): the
    result must then stay connected to it, as ``torch.func`` would keep it.
    """
    own = {id(t) for t in inputs}
    stack = [o.grad_fn for o in outs if isinstance(o, Tensor) and o.grad_fn is not None]
    seen: set[Any] = set()
    acc = _ACCUMULATE_GRAD
    while stack:
        for nxt, _ in stack.pop().next_functions:
            if nxt is None:
                continue
            if type(nxt) is acc:
                if id(nxt.variable) not in own:  # type: ignore[attr-defined]
                    return True
            elif nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return False


def rebuild(
    args: tuple[Any, ...], idx: tuple[int, ...], single: bool, leaves: list[Any], spec: Any
) -> tuple[Any, ...]:
    """Put the (replaced) differentiated leaves back into the positional arguments."""
    diff = _ft.unflatten(spec, leaves)
    new = list(args)
    if single:
        new[idx[0]] = diff
    else:
        for i, d in zip(idx, diff):
            new[i] = d
    return tuple(new)


def materialize(leaves: Sequence[Any], grads: Sequence[Any]) -> list[Any]:
    """Gradient per leaf: ``grads`` for differentiated leaves (zeros when unused), zeros for
    integer leaves (default float dtype, the leaf's shape), ``None`` for ``None`` leaves."""
    if len(grads) == len(leaves) and all(map(_is_not, grads, _repeat(None))):
        return list(grads)  # every leaf differentiated and used: the common case
    out: list[Any] = []
    it = iter(grads)
    for leaf in leaves:
        if leaf is None:
            out.append(None)
        elif is_diff(leaf):
            g = next(it)
            out.append(torch.zeros_like(leaf) if g is None else g)
        else:
            out.append(torch.zeros(leaf.shape, device=leaf.device))
    return out


class AuxCarrier:
    """Carry ``aux`` through a ``torch.func`` transform, which only unwraps tensor leaves.

    ``pack`` keeps the non-tensor leaves and the structure aside and hands the
    transform a list of tensors; ``unpack`` rebuilds the original ``aux``.
    """

    def __init__(self) -> None:
        self._leaves: list[Any] = []
        self._spec: Any = None

    def pack(self, aux: Any) -> list[Tensor]:
        self._leaves, self._spec = _ft.flatten(aux)
        return [x for x in self._leaves if isinstance(x, Tensor)]

    def unpack(self, tensors: Sequence[Tensor]) -> Any:
        it = iter(tensors)
        leaves = [next(it) if isinstance(x, Tensor) else x for x in self._leaves]
        return _ft.unflatten(self._spec, leaves)


def _detach_tree(tree: Any) -> Any:
    leaves, spec = _ft.flatten(tree)
    return _ft.unflatten(spec, [x.detach() if isinstance(x, Tensor) else x for x in leaves])


def _prepare(leaves: Sequence[Any], outer: bool) -> tuple[list[Any], list[Tensor], bool]:
    """Fresh differentiable stand-ins for the float leaves; ``view_as`` keeps an outer graph."""
    new: list[Any] = []
    ins: list[Tensor] = []
    need = False
    for leaf in leaves:
        if is_diff(leaf):
            if outer and leaf.requires_grad:
                need = True
                t = leaf.view_as(leaf)
            else:
                t = leaf.detach().requires_grad_()
            ins.append(t)
            new.append(t)
        else:
            new.append(leaf)
    return new, ins, need


@dataclasses.dataclass(frozen=True, slots=True)
class CallPlan:
    """What ``grad``/``value_and_grad`` know before a call: built once per transform and
    number of positional arguments, read by both routes.

    ``idx``: the differentiated positions (resolved ``argnums``); ``single``: ``argnums``
    was an int (the gradient is not a tuple); ``with_value``: the value is returned
    (``value_and_grad``), so it is detached when no graph is kept.
    """

    api: str
    fun: Callable[..., Any]
    idx: tuple[int, ...]
    single: bool
    has_aux: bool
    allow_int: bool
    with_value: bool


def value_and_grad_fast(
    plan: CallPlan,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    leaves: list[Any],
    spec: Any,
) -> tuple[Any, Any, list[Any]] | None:
    """``(value, aux, flat_grads)`` through ``torch.autograd.grad``; ``None`` when a leaf is
    functorch-wrapped (the caller then takes the ``torch.func`` route).

    One pass over the leaves checks them (the contract's errors come from
    :func:`~ftx._transforms.validate.check_diff_leaves`), spots wrapped tensors and makes the
    differentiable stand-ins: this runs on every call, so it does no more than that.
    ``with_value=False`` (``grad``): the value is not returned, so it is not detached.
    It also hands back ``None`` under ``inference_mode`` or for an inference tensor
    (``torch.func`` differentiates there; the engine cannot) and for a leaf that is not
    a tensor (the caller converts Python numbers or raises).
    """
    if _inference_mode_enabled() or not _tc.GRAD_FAST_PATH:
        return None
    api, idx, allow_int, has_aux = plan.api, plan.idx, plan.allow_int, plan.has_aux
    outer = _grad_enabled()
    new: list[Any] = []
    ins: list[Tensor] = []
    need = False
    plain = True
    for leaf in leaves:
        if isinstance(leaf, Tensor):
            if _is_wrapped(leaf) or leaf.is_inference():
                return None
            if leaf.is_floating_point() or leaf.is_complex():
                if outer and leaf.requires_grad:
                    need = True
                    t = leaf.view_as(leaf)
                else:
                    t = leaf.detach().requires_grad_()
                plain = plain and type(t) is Tensor
                ins.append(t)
                new.append(t)
                continue
            if not allow_int:
                check_diff_leaves(api, args, idx, allow_int)
        elif leaf is not None:
            return None
        new.append(leaf)
    call_args = rebuild(args, idx, plan.single, new, spec)
    if outer:
        out = plan.fun(*call_args, **kwargs)
    else:
        with torch.enable_grad():
            out = plan.fun(*call_args, **kwargs)
    aux = None
    if has_aux:
        out, aux = split_aux(api, out)
    scalar_output_check(api, out)
    if ins and out.requires_grad:
        need = need or (outer and captures_outer_graph((out,), ins))
        grads: Sequence[Any] = engine_grad(
            (out,), ins, (torch.ones_like(out),), need, need, plain and type(out) is Tensor
        )
    else:
        grads = [None] * len(ins)
    if not need:
        if plan.with_value:
            out = out.detach()
        if has_aux:
            aux = _detach_tree(aux)
    return out, aux, materialize(leaves, grads)


class _Call:
    """One call's state, handed to the cached ``torch.func`` transform as its last
    (non-differentiated, opaque) argument."""

    __slots__ = ("args", "box", "kwargs", "leaves", "plan", "pos", "spec")

    def __init__(self, plan: CallPlan, args: tuple[Any, ...], kwargs: dict[str, Any],
                 leaves: list[Any], spec: Any, pos: list[int], box: AuxCarrier) -> None:
        self.plan, self.args, self.kwargs, self.leaves = plan, args, kwargs, leaves
        self.spec, self.pos, self.box = spec, pos, box


def _run_positional(*diff_and_call: Any) -> Any:
    """``fun`` at the differentiated leaves ``diff_and_call[:-1]``; the last is a :class:`_Call`."""
    call: _Call = diff_and_call[-1]
    plan = call.plan
    new = list(call.leaves)
    for k, t in zip(call.pos, diff_and_call):
        new[k] = t
    out = plan.fun(*rebuild(call.args, plan.idx, plan.single, new, call.spec), **call.kwargs)
    if plan.has_aux:
        out, aux = split_aux(plan.api, out)
        scalar_output_check(plan.api, out)
        return out, call.box.pack(aux)
    scalar_output_check(plan.api, out)
    return out


# torch.func.grad_and_value(_run_positional, ...) per (number of leaves, has_aux): building
# the transform costs a few microseconds (functools.wraps), so it is built once.
_GRAD_AND_VALUE: dict[tuple[int, bool], Callable[..., Any]] = {}
_GRAD_AND_VALUE_MAX = 64


def _grad_and_value(n: int, has_aux: bool) -> Callable[..., Any]:
    fn = _GRAD_AND_VALUE.get((n, has_aux))
    if fn is None:
        argnums = 0 if n == 1 else tuple(range(n))
        fn = torch.func.grad_and_value(_run_positional, argnums=argnums, has_aux=has_aux)
        if n <= _GRAD_AND_VALUE_MAX:
            _GRAD_AND_VALUE[(n, has_aux)] = fn
    return fn


def value_and_grad_func(
    plan: CallPlan,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    leaves: list[Any],
    spec: Any,
) -> tuple[Any, Any, list[Any]]:
    """``(value, aux, flat_grads)`` through ``torch.func.grad_and_value``.

    The differentiated leaves go in as positional arguments (one tensor each, the
    cheapest thing for ``torch.func`` to wrap and unwrap) of a transform built once,
    and ``aux`` travels only when there is one. While compiling and with
    ``FTX_SLOW_ROUTES=1``: a transform built per call over a list, ``aux`` always.
    """
    pos = [k for k, leaf in enumerate(leaves) if is_diff(leaf)]
    box = AuxCarrier()
    n = len(pos)
    if _SHORTCUTS and n and not _tc.is_compiling():
        call = _Call(plan, args, kwargs, leaves, spec, pos, box)
        res = _grad_and_value(n, plan.has_aux)(*[leaves[k] for k in pos], call)
        flat = [res[0]] if n == 1 else list(res[0])
        if plan.has_aux:
            return res[1][0], box.unpack(res[1][1]), materialize(leaves, flat)
        return res[1], None, materialize(leaves, flat)

    def inner(diff: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        new = list(leaves)
        for k, t in zip(pos, diff):
            new[k] = t
        out = plan.fun(*rebuild(args, plan.idx, plan.single, new, spec), **kwargs)
        aux = None
        if plan.has_aux:
            out, aux = split_aux(plan.api, out)
        scalar_output_check(plan.api, out)
        return out, box.pack(aux)

    grads, (value, aux) = torch.func.grad_and_value(inner, has_aux=True)([leaves[k] for k in pos])
    return value, box.unpack(aux), materialize(leaves, grads)


def _numbers_like(ct: list[Any], like: list[Any]) -> list[Any]:
    """A Python number passed as the whole cotangent becomes a 0-d tensor of the scalar
    output's dtype (JAX accepts ``vjp_fn(1.0)`` for a scalar output); a number inside a
    cotangent tree stays, and the checks refuse it, on every route."""
    return [
        torch.tensor(c, dtype=o.dtype, device=o.device)
        if type(c) in (float, int, complex) and isinstance(o, Tensor) and o.dim() == 0
        else c
        for c, o in zip(ct, like)
    ]


class Pullback:
    """The ``vjp_fn`` returned by ``ftx.vjp``: cotangent of the output -> tuple per primal."""

    def __init__(
        self,
        out: Any,
        leaves: list[Any],
        spec: Any,
        backward: Callable[[Any, list[Any]], Sequence[Any]],
    ) -> None:
        self._out = out
        self._out_leaves, self._out_spec = _ft.flatten(out)
        self._leaves = leaves
        self._spec = spec
        self._backward = backward
        self.__name__ = "vjp_fn"
        self.__qualname__ = "vjp_fn"
        self.__doc__ = "Pull a cotangent of fun's output back to one cotangent per primal."

    def _matches(self, ct_leaves: list[Any], ct_spec: Any) -> bool:
        return ct_spec == self._out_spec and all(
            (c is None) if o is None else (
                isinstance(c, Tensor) and c.shape == o.shape and c.dtype == o.dtype
                and c.device == o.device and c.layout == o.layout
            )
            for c, o in zip(ct_leaves, self._out_leaves)
        )

    @_ft.cycle_safe("vjp")
    def __call__(self, ct: Any) -> tuple[Any, ...]:
        ct_leaves, ct_spec = _ft.flatten(ct)
        if not self._matches(ct_leaves, ct_spec):
            if type(ct) in (float, int, complex):
                ct_leaves = _numbers_like(ct_leaves, self._out_leaves)
            if self._matches(ct_leaves, ct_spec):
                ct = _ft.unflatten(ct_spec, ct_leaves)
            else:
                check_matching("vjp", "cotangent", "the primal output", ct, self._out)
                raise TypeError(msg(  # None against a tensor, which check_matching lets through
                    "vjp", "cotangent must have the same tree structure as the primal output",
                    f"{describe(ct)} for an output of {describe(self._out)}",
                    "Pass None exactly where the output is None and a tensor where it has a "
                    "tensor.",
                ))
        grads = self._backward(ct, ct_leaves)
        result: tuple[Any, ...] = _ft.unflatten(self._spec, materialize(self._leaves, grads))
        return result


def vjp_fast_ok(fun: Callable[..., Any], leaves: list[Any]) -> bool:
    """Whether ``ftx.vjp`` may take the engine route for these primals, here and now.

    Not under ``inference_mode`` or for inference tensors (the engine cannot
    differentiate there, ``torch.func`` can), not under ``no_grad`` for primals that
    require grad (``torch.func`` keeps the pull-back connected to them), and not on the
    first call of a function (see :func:`needs_probe`).
    """
    if _inference_mode_enabled() or not _tc.GRAD_FAST_PATH:
        return False
    enabled = _grad_enabled()
    for leaf in leaves:
        if isinstance(leaf, Tensor) and (
            _is_wrapped(leaf) or leaf.is_inference() or (not enabled and leaf.requires_grad)
        ):
            return False
    return needs_probe(fun) is None


def vjp_fast(
    fun: Callable[..., Any], primals: tuple[Any, ...], has_aux: bool, leaves: list[Any], spec: Any
) -> tuple[Any, Pullback, Any]:
    """``(primals_out, vjp_fn, aux)`` through ``torch.autograd.grad``."""
    outer = torch.is_grad_enabled()
    with torch.enable_grad():
        new, ins, need = _prepare(leaves, outer)
        out = fun(*_ft.unflatten(spec, new))
    aux = None
    if has_aux:
        out, aux = split_aux("vjp", out)
    output_leaves_check("vjp", out, "Return a tensor or a pytree of tensors.")
    out_leaves = [o for o in _ft.flatten(out)[0] if o is not None]
    live = [k for k, o in enumerate(out_leaves) if o.requires_grad]
    need = need or (outer and captures_outer_graph([out_leaves[k] for k in live], ins))
    func_backward: list[Callable[[Any, list[Any]], Sequence[Any]]] = []

    def backward(ct: Any, ct_leaves: list[Any]) -> Sequence[Any]:
        cts = [c for c in ct_leaves if c is not None]
        if not live or not ins:
            return [None] * len(ins)
        enabled = torch.is_grad_enabled()
        create = enabled and (need or any(cts[k].requires_grad for k in live))
        if create and not need:
            # Only the cotangent joins an outer graph: torch.func's result then depends on
            # it alone, the engine's also on the stand-in inputs. Take torch.func's route.
            if not func_backward:
                func_backward.append(vjp_func(fun, primals, has_aux, leaves, spec)[1]._backward)
            return func_backward[0](ct, ct_leaves)
        with torch.inference_mode(False) if _inference_mode_enabled() else _NULL, \
                torch.enable_grad():
            return engine_grad(
                [out_leaves[k] for k in live], ins, [cts[k] for k in live], True, create
            )

    shown = out if need else _detach_tree(out)
    if has_aux and not need:
        aux = _detach_tree(aux)
    return shown, Pullback(shown, leaves, spec, backward), aux


def vjp_func(
    fun: Callable[..., Any], primals: tuple[Any, ...], has_aux: bool, leaves: list[Any], spec: Any
) -> tuple[Any, Pullback, Any]:
    """``(primals_out, vjp_fn, aux)`` through ``torch.func.vjp``."""
    pos = [k for k, leaf in enumerate(leaves) if is_diff(leaf)]
    box, out_box = AuxCarrier(), AuxCarrier()

    def inner(diff: list[Tensor]) -> Any:
        new = list(leaves)
        for k, t in zip(pos, diff):
            new[k] = t
        out = fun(*_ft.unflatten(spec, new))
        aux = None
        if has_aux:
            out, aux = split_aux("vjp", out)
        output_leaves_check("vjp", out, "Return a tensor or a pytree of tensors.")
        flat_out = out_box.pack(out)
        if not flat_out:  # no output tensor (JAX: an empty pytree); torch.func.vjp needs one
            flat_out = [torch.zeros(())]
        return (flat_out, box.pack(aux)) if has_aux else flat_out

    res: tuple[Any, ...] = torch.func.vjp(inner, [leaves[k] for k in pos], has_aux=has_aux)
    out, pull = out_box.unpack(res[0]), res[1]
    aux = box.unpack(res[2]) if has_aux else None

    def backward(ct: Any, ct_leaves: list[Any]) -> Sequence[Any]:
        cts = [c for c in ct_leaves if c is not None]
        if not cts:  # nothing flows back from an empty output
            return [None] * len(pos)
        grads: list[Any] = pull(cts)[0]
        return grads

    return out, Pullback(out, leaves, spec, backward), aux
