"""Custom differentiation rules in JAX's style: ``custom_vjp`` and ``custom_jvp``.

Contract: ``f = custom_vjp(fun, nondiff_argnums=())`` then
``f.defvjp(fwd, bwd)``; ``fwd(*args) -> (out, residuals)`` and
``bwd(*nondiff_args, residuals, cotangent) -> tuple`` with one cotangent per
differentiable argument (``None`` means zero). ``f = custom_jvp(fun,
nondiff_argnums=())`` then ``f.defjvp(rule)``;
``rule(*nondiff_args, primals, tangents) -> (primal_out, tangent_out)`` where
``primals`` and ``tangents`` are tuples of the differentiable arguments; or
``f.defjvps(*per_argument_rules)`` (JAX's: ``rule_i(t_i, out, *args)``, ``None``
for an argument without a derivative, the contributions summed).

Both are built on one ``torch.autograd.Function`` per kind, with
``setup_context``, a ``jvp`` staticmethod and ``generate_vmap_rule=True``, so
the rule holds under ``torch.func``/``ftx`` ``grad``, ``vjp``, ``vmap``,
``jacrev`` and ``hessian``, and (``custom_jvp``) under ``jvp`` and ``jacfwd``.
Semantics of the other directions and corners follow JAX:

* ``custom_jvp`` in reverse mode transposes the tangent map: the VJP is the
  VJP of ``t -> rule(primals, t)[1]``, which must be linear in ``t``. The
  first reverse-mode use per input structure checks it (the rule at ``t``,
  ``2t`` and ``-t``) and raises ``ValueError`` for a non-linear rule (JAX
  fails to transpose one too).
* ``custom_vjp`` in forward mode (``jvp``/``jacfwd`` applied to it directly,
  or the outer ``jacfwd`` of ``hessian``) differentiates ``fwd`` with
  standard forward mode; higher derivatives differentiate ``fwd`` and
  ``bwd`` as ordinary functions, as JAX does. (JAX refuses a direct ``jvp``
  of a ``custom_vjp`` function; ftx answers with the derivative of ``fwd``.)
* A call of ``f`` made while one of ``f``'s own rules runs (``fwd``, ``bwd``,
  the jvp rule: JAX's idiom ``fwd = lambda x: (f(x), res)``) runs ``fun``
  directly: inside its rules ``f`` is its primal function.
* Tensors at ``nondiff_argnums`` positions travel through the
  ``autograd.Function`` with the differentiable ones, so ``vmap`` batches them
  and every transform level sees them at its own level. They are constants to
  the rule: ``custom_jvp`` treats them as JAX does (``stop_gradient``: the
  derivative with respect to them is zero on every route); differentiating a
  ``custom_vjp`` function with respect to one is a ``TypeError`` (JAX raises
  for a traced value there). ``vmap`` over them works for both.
* Tensors that ``fun`` or a rule closes over (closure cells, nested closures,
  ``functools.partial`` arguments, the closures of functions passed in
  ``nondiff_argnums``; see ``closures.py``) are constants to the rule. Those a
  transform or autograd tracks are lifted into the ``autograd.Function``'s inputs
  (put back into their cells while ``fun`` or a rule runs, so ``vmap`` batches
  them) and guarded by :class:`_ClosureGuard`: differentiating with respect to one
  is a ``TypeError`` on every route, where torch would drop the derivative without
  a word (JAX refuses a closed-over traced value too).
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import torch
import torch.autograd.forward_ad as _fwad
import torch.func

from .. import tree as _tree
from .._internal import torch_compat as _tc
from .._internal.errors import check_callable as _check_callable_or_none
from .._internal.errors import describe as _describe_one
from .._internal.errors import msg
from .closures import Captured, as_closure, captured
from .fnargs import (
    CallArgs,
    check_argnums,
    check_callable,
    flatten_outputs,
    meta_of,
    plain_call,
    signature_of,
    unalias,
    zeros_for,
)

# torch_compat's functorch helpers: step outside every functorch transform (the linearity
# probe of custom_jvp) or outside the innermost one (forward mode through a vmap, below).
# Without them (None) the probe is skipped and the rules' forward mode is torch's default.
_clear_stack: Callable[[], contextlib.AbstractContextManager[Any]] | None = _tc.clear_stack
_pop_stack: Callable[[], contextlib.AbstractContextManager[Any]] | None = _tc.pop_stack
_VMAP: Any = _tc.VMAP_TRANSFORM
_JVP: Any = _tc.JVP_TRANSFORM

R = TypeVar("R")

__all__ = ["custom_jvp", "custom_vjp"]


def _describe(x: Any) -> str:
    """A one-line description of a value (containers by their entries, tensors by shape)."""
    if isinstance(x, (tuple, list)):
        inner = ", ".join(_describe(v) for v in x[:3]) + (", ..." if len(x) > 3 else "")
        return f"{type(x).__name__} of length {len(x)} ({inner})"
    if isinstance(x, dict):
        return f"dict with keys {sorted(map(str, x))}"
    return " ".join(_describe_one(x).split())


def _spec(treedef: _tree.TreeDef) -> str:
    """A pytree structure on one line."""
    if treedef.spec.is_leaf():
        return "(a single tensor)"
    return " ".join(str(treedef.spec).split())


def _check_cotangents(api: str, call: CallArgs, cts: Any) -> list[torch.Tensor | None]:
    """Validate ``bwd``'s result against the differentiable arguments; return leaf cotangents."""
    n = len(call.diff_pos)
    if not isinstance(cts, (tuple, list)):
        raise TypeError(
            msg(
                api,
                f"bwd must return a tuple with one cotangent per differentiable argument ({n})",
                _describe(cts),
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
                    f"{_spec(arg_def)}",
                    f"structure {_spec(ct_def)}",
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
                        _describe(g),
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
            if g.is_complex() and not x.is_complex():
                raise TypeError(
                    msg(
                        api,
                        f"a real cotangent for the real {where}",
                        f"dtype {g.dtype}",
                        "Return the real part (`g.real`) or a cotangent in the primal's dtype.",
                    )
                )
            out.append(g)
    return out


# ----------------------------------------------------------------------------- re-entrancy
_state = threading.local()


def _active() -> dict[int, int]:
    """Per thread: ids of the custom functions whose rules are running, with their depth."""
    active: dict[int, int] | None = getattr(_state, "active", None)
    if active is None:
        active = _state.active = {}
    return active


@contextlib.contextmanager
def _inside(owner: object) -> Iterator[None]:
    """While ``owner``'s rule runs, a call of ``owner`` runs its primal function."""
    active, key = _active(), id(owner)
    active[key] = active.get(key, 0) + 1
    try:
        yield
    finally:
        left = active[key] - 1
        if left:
            active[key] = left
        else:
            del active[key]


def _reentrant(owner: object) -> bool:
    """True when ``owner`` is called from inside one of its own rules (never while tracing)."""
    if torch.compiler.is_compiling():
        return False
    active: dict[int, int] | None = getattr(_state, "active", None)
    return bool(active) and id(owner) in active  # type: ignore[operator]


def _bind(api: str, fun: Callable[..., Any], sig: Any, args: Any, kwargs: Any) -> tuple[Any, ...]:
    """Keyword arguments resolved to positions with ``fun``'s signature, as JAX does."""
    if not kwargs:
        return tuple(args)
    name = getattr(fun, "__name__", "fun")
    if sig is None:
        raise TypeError(
            msg(
                api,
                "keyword arguments only for a function whose signature is known",
                f"keyword argument(s) {sorted(kwargs)} for '{name}'",
                "Pass the arguments positionally.",
            )
        )
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError as e:
        raise TypeError(
            msg(
                api,
                f"arguments that bind to the signature {name}{sig}",
                str(e).removeprefix("got "),
                "Call the function with the arguments fun accepts.",
            )
        ) from None
    bound.apply_defaults()
    if bound.kwargs:
        raise TypeError(
            msg(
                api,
                "keyword arguments that resolve to positions (as in JAX)",
                f"keyword-only argument(s) {sorted(bound.kwargs)} of '{name}'",
                "Make them positional parameters of fun, or close over them.",
            )
        )
    return tuple(bound.args)


# ----------------------------------------------------------------------------- forward mode
def fw_tracked(
    compute: Callable[..., Sequence[torch.Tensor]], tensors: Sequence[torch.Tensor]
) -> list[torch.Tensor]:
    """Run a ``jvp`` staticmethod's ``compute(*tensors)`` so outer forward levels see it.

    torch runs an ``autograd.Function``'s ``jvp`` with forward AD off, so an outer
    ``jvp``/``jacfwd`` (``jacfwd(jacfwd(f))``) would see a tangent that does not depend on
    the point: second derivatives of 0, without a word. Here the tangent is computed with
    forward AD on and the dual of the level being differentiated is stripped from the
    result (what ``torch.func.jvp`` does with its outputs). That is done only under two
    forward levels or more: with one, torch's way is exact and cheaper. When the call
    comes through torch's generated vmap rule (a vmap level on top, whose batching has no
    ``_unpack_dual`` rule), that level is popped and ``compute`` vmapped below it.
    """
    stack: list[Any] = _tc.get_interpreter_stack() or []
    if sum(1 for i in stack if i.key() == _JVP) < 2 or _pop_stack is None:
        return list(compute(*tensors))  # no outer forward level: torch's own way is exact
    top = stack[-1]
    if top.key() == _VMAP:
        level = top.level()
        inner: list[torch.Tensor] = []
        dims: list[int | None] = []
        for t in tensors:
            if _tc.is_batchedtensor(t) and _tc.maybe_get_level(t) == level:
                inner.append(_tc.get_unwrapped(t))
                dims.append(_tc.maybe_get_bdim(t))
            else:
                inner.append(t)
                dims.append(None)
        with _pop_stack():
            if all(d is None for d in dims):
                return fw_tracked(compute, inner)
            out = fw_tracked(lambda *xs: torch.func.vmap(compute, in_dims=tuple(dims))(*xs), inner)
        return [_tc.add_batch_dim(o, 0, level) for o in out]
    with _tc.fwd_grad_enabled(True):
        result = compute(*tensors)
    return [_fwad.unpack_dual(r).primal for r in result]  # type: ignore[no-untyped-call]


# ----------------------------------------------------------------------------- arguments
_WHOLE = object()  # a nondiff argument that is one tensor
_HOLE = object()  # a tensor leaf of a nondiff pytree argument


class _Args:
    """One call's tensors: the differentiable leaves, the tensor leaves of nondiff arguments,
    the tracked tensors the function and its rules close over, and a guard token.

    All go through the ``autograd.Function`` as inputs, so each transform level (vmap,
    grad, jvp) sees a nondiff or closed-over tensor at its own level; left in a closure, it
    would reach the rule as a wrapper of the wrong level. The closed-over ones are put back
    into their cells while ``fun`` or a rule runs (:meth:`bound`); the token is the output
    of :class:`_ClosureGuard` on them, which raises when one of them is differentiated.
    """

    __slots__ = (
        "call", "captured", "has_token", "n_cl", "n_diff", "n_nd", "nd_slots", "nd_where",
        "tensors",
    )

    def __init__(self, api: str, args: tuple[Any, ...], nondiff_argnums: Sequence[int]) -> None:
        self.call = call = CallArgs(api, args, nondiff_argnums)
        self.n_diff = len(call.leaves)
        self.tensors: list[torch.Tensor] = list(call.leaves)
        self.nd_slots: list[Any] = []
        self.nd_where: list[str] = []
        for pos, value in zip(call.nondiff_pos, call.nondiff):
            if isinstance(value, torch.Tensor):
                self.nd_slots.append(_WHOLE)
                self.tensors.append(value)
                self.nd_where.append(f"argument {pos}")
                continue
            if value is None or isinstance(value, (bool, int, float, complex, str)):
                self.nd_slots.append(None)
                continue
            leaves, treedef = _tree.flatten_with_path(value)
            if not any(isinstance(x, torch.Tensor) for _, x in leaves):
                self.nd_slots.append(None)
                continue
            slots: list[Any] = []
            for path, x in leaves:
                if isinstance(x, torch.Tensor):
                    slots.append(_HOLE)
                    self.tensors.append(x)
                    self.nd_where.append(f"argument {pos} at path '{path}'")
                else:
                    slots.append(x)
            self.nd_slots.append((treedef, slots))
        self.n_nd = len(self.tensors) - self.n_diff
        self.captured: Captured | None = None
        self.n_cl = 0
        self.has_token = False

    def capture(self, cap: Captured) -> None:
        """Append the closed-over tensors of ``cap`` to the call's tensors."""
        self.captured, self.n_cl = cap, len(cap)
        self.tensors.extend(cap.tensors)

    def bound(self, tensors: Sequence[torch.Tensor]) -> contextlib.AbstractContextManager[Any]:
        """While in the block, the closures hold the closed-over tensors from ``tensors``."""
        if not self.n_cl:
            return contextlib.nullcontext()
        assert self.captured is not None
        start = self.n_diff + self.n_nd
        return self.captured.bound(tensors[start : start + self.n_cl])

    def nondiff(self, tensors: Sequence[torch.Tensor]) -> tuple[Any, ...]:
        """The nondiff arguments with their tensors taken from ``tensors[n_diff:]``."""
        if not self.n_nd:
            return self.call.nondiff
        it = iter(tensors[self.n_diff : self.n_diff + self.n_nd])
        out: list[Any] = []
        for value, slot in zip(self.call.nondiff, self.nd_slots):
            if slot is None:
                out.append(value)
            elif slot is _WHOLE:
                out.append(next(it))
            else:
                treedef, slots = slot
                out.append(_tree.unflatten(treedef, [next(it) if s is _HOLE else s for s in slots]))
        return tuple(out)

    def rebuild(self, tensors: Sequence[torch.Tensor]) -> tuple[Any, ...]:
        """The full positional argument tuple for ``fun``/``fwd``."""
        full = list(self.call.rebuild(tensors[: self.n_diff]))
        if self.n_nd:
            for pos, value in zip(self.call.nondiff_pos, self.nondiff(tensors)):
                full[pos] = value
        return tuple(full)

    def diff_tree(self, tensors: Sequence[Any]) -> tuple[Any, ...]:
        """The differentiable arguments from the first ``n_diff`` tensors."""
        return self.call.diff_tree(tensors[: self.n_diff])

    def nondiff_error(self, k: int) -> TypeError:
        """custom_vjp: the nondiff tensor ``k`` (counted among all tensors) is differentiated."""
        t = self.tensors[k]
        where = self.nd_where[k - self.n_diff]
        pos = where.split()[1]
        return TypeError(
            msg(
                "custom_vjp",
                "tensors at nondiff_argnums positions to be constants, not differentiated "
                "(bwd returns no cotangent for them; JAX raises for a traced value there too)",
                f"a differentiated {_describe(t)} at {where}",
                f"Remove {pos} from nondiff_argnums and return its cotangent from bwd, or pass "
                "a constant (`.detach()`); nondiff_argnums is for Python values, callables and "
                "constant tensors.",
            )
        )

    def closure_error(self, api: str, which: Sequence[int]) -> TypeError:
        """A tensor closed over by the function or its rules (``which``: indices among the
        closed-over tensors) is being differentiated: no rule gives its derivative."""
        assert self.captured is not None
        cap = self.captured
        first = which[0] if which else 0
        got = f"a differentiated {_describe(cap.tensors[first])}, {cap.where[first]}"
        if len(which) > 1:
            got += f" (and {len(which) - 1} more closed-over tensor(s))"
        if api == "custom_vjp":
            required = (
                "tensors that fun, fwd, bwd (or a function in nondiff_argnums) close over to be "
                "constants: bwd returns cotangents for the arguments only, so the derivative "
                "through a closed-over tensor would be lost (JAX raises for a closed-over "
                "traced value too)"
            )
            fix = (
                "Pass the tensor to the function as an argument and return its cotangent from "
                "bwd (None for zero), converting the closure into arguments as "
                "jax.closure_convert does; `.detach()` it if it is meant to be a constant."
            )
        else:
            required = (
                "tensors that fun or its jvp rule (or a function in nondiff_argnums) close over "
                "to be constants: the rule gives tangents for the arguments only, so the "
                "derivative through a closed-over tensor would be lost (JAX raises for a "
                "closed-over traced value too)"
            )
            fix = (
                "Pass the tensor to the function as an argument and give its tangent in the "
                "rule (list it in nondiff_argnums for a constant, as stop_gradient); "
                "`.detach()` it if it is meant to be a constant."
            )
        return TypeError(msg(api, required, got, fix))


# ----------------------------------------------------------------------------- closure guard
_Backward = Callable[..., tuple[torch.Tensor | None, ...]]


def _eager_when_captured(backward: _Backward) -> _Backward:
    """Run ``backward`` outside ``torch.compile`` when the call lifted closed-over tensors.

    The backward pass puts tensors into closure cells while ``bwd``/the rule runs; dynamo,
    tracing a backward reached from compiled code, cannot follow that cell mutation.
    """
    opaque: _Backward = torch.compiler.disable(backward)  # type: ignore[no-untyped-call]

    @functools.wraps(backward)
    def run(ctx: Any, *grads: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        if ctx.rec.args.n_cl and torch.compiler.is_compiling():
            return opaque(ctx, *grads)
        return backward(ctx, *grads)

    return run


class _GuardCall:
    """What :class:`_ClosureGuard` needs to name the differentiated closed-over tensor."""

    __slots__ = ("api", "args", "index")

    def __init__(self, api: str, args: _Args, index: list[int]) -> None:
        self.api, self.args, self.index = api, args, index


class _ClosureGuard(torch.autograd.Function):
    """A zero token computed from the closed-over tensors; differentiating it raises.

    The custom function's ``autograd.Function`` takes the token as its last input and
    sends it a zero cotangent. The engine runs this node's ``backward`` only when a
    gradient with respect to one of the closed-over tensors is wanted (at the level where
    it is tracked, or for plain autograd among the inputs asked for), so a tensor that
    merely requires grad (a parameter, while the gradient is taken for another input) is
    no error; forward mode calls ``jvp`` only when one of them carries a tangent.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(rec: _GuardCall, *xs: torch.Tensor) -> torch.Tensor:
        return torch.zeros((), dtype=torch.float32, device=xs[0].device)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.rec = inputs[0]
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor | None) -> tuple[None, ...]:
        rec: _GuardCall = ctx.rec
        needs = ctx.needs_input_grad[1:]
        which = [rec.index[i] for i, need in enumerate(needs) if need]
        if grad is not None and which:
            raise rec.args.closure_error(rec.api, which)
        return (None,) * (1 + len(needs))

    @staticmethod
    def jvp(ctx: Any, *tangents: torch.Tensor | None) -> torch.Tensor:
        rec: _GuardCall = ctx.rec
        which = [rec.index[i] for i, t in enumerate(tangents[1:]) if t is not None]
        if which:
            raise rec.args.closure_error(rec.api, which)
        return torch.zeros((), dtype=torch.float32)


def _guard(api: str, split: _Args) -> torch.Tensor | None:
    """The guard token for the call's closed-over tensors (None when none can be differentiated)."""
    assert split.captured is not None
    tensors = split.captured.tensors
    index = [i for i, t in enumerate(tensors) if t.is_floating_point() or t.is_complex()]
    if not index:
        return None
    split.has_token = True
    rec = _GuardCall(api, split, index)
    token: Any = _apply(_ClosureGuard, rec, [tensors[i] for i in index])
    return token  # type: ignore[no-any-return]


def _closure_tangents(args: _Args, api: str, tangents: Sequence[torch.Tensor | None]) -> None:
    """Raise when a closed-over tensor carries a tangent (``tangents``: one per input)."""
    start = args.n_diff + args.n_nd
    which = [i for i, t in enumerate(tangents[start : start + args.n_cl]) if t is not None]
    if which:
        raise args.closure_error(api, which)


# ----------------------------------------------------------------------------- custom_vjp


class _Ref:
    """A residual that is an input or an output of the call: saved as such, not returned twice."""

    __slots__ = ("index", "kind")

    def __init__(self, kind: str, index: int) -> None:
        self.kind, self.index = kind, index


class _VjpCall:
    """Per-call record passed through the autograd.Function (holds non-tensor state)."""

    __slots__ = (
        "args",
        "bwd",
        "fwd",
        "n_out",
        "out_def",
        "out_meta",
        "out_saved",
        "owner",
        "res_def",
        "res_slots",
    )

    def __init__(
        self, owner: custom_vjp[Any], fwd: Callable[..., Any], bwd: Callable[..., Any], args: _Args
    ) -> None:
        self.owner, self.fwd, self.bwd, self.args = owner, fwd, bwd, args
        self.n_out = 0
        self.out_def: _tree.TreeDef | None = None
        self.out_meta: list[Any] = []
        self.res_def: _tree.TreeDef | None = None
        self.res_slots: list[Any] = []  # residual leaves; None where a new tensor goes
        self.out_saved: list[int] = []  # outputs that are also residuals

    def run_fwd(self, leaves: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Run ``fwd``, record the output/residual structure, return the flat tensors."""
        with _inside(self.owner), self.args.bound(leaves):
            result = self.fwd(*self.args.rebuild(leaves))
        if not isinstance(result, tuple) or len(result) != 2:
            raise TypeError(
                msg(
                    "custom_vjp",
                    "fwd must return a pair (out, residuals)",
                    _describe(result),
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
    @_eager_when_captured
    def backward(ctx: Any, *grads: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        rec: _VjpCall = ctx.rec
        n_in, n_so, n_diff = ctx.n_in, ctx.n_saved_out, rec.args.n_diff
        for k in range(n_diff, n_diff + rec.args.n_nd):
            if ctx.needs_input_grad[1 + k]:
                raise rec.args.nondiff_error(k)
        saved = ctx.saved_tensors
        primals, outs, res = saved[:n_in], saved[n_in : n_in + n_so], saved[n_in + n_so :]
        result: list[torch.Tensor | None] = [None] * n_diff
        g_out, g_res = grads[: rec.n_out], grads[rec.n_out :]
        if any(g is not None for g in g_out):
            assert rec.out_def is not None
            ct = _tree.unflatten(rec.out_def, zeros_for(rec.out_meta, g_out))
            nondiff = rec.args.nondiff(primals)
            with _inside(rec.owner), rec.args.bound(primals):
                cts = rec.bwd(*nondiff, rec.residuals(primals, outs, res), ct)
            result = _check_cotangents("custom_vjp", rec.args.call, cts)
        if any(g is not None for g in g_res):
            # Higher order: the residuals are functions of the inputs through fwd.
            def res_of(*xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
                return rec.run_fwd((*xs, *primals[n_diff:]))[rec.n_out :]

            pull = torch.func.vjp(res_of, *primals[:n_diff])[1]
            extra = pull(tuple(zeros_for(meta_of(res), g_res)))
            result = [e if r is None else r + e for r, e in zip(result, extra)]
        return (None, *result, *_rest(ctx, rec.args, primals, grads))

    @staticmethod
    def jvp(ctx: Any, *tangents: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        rec: _VjpCall = ctx.rec
        n_diff = rec.args.n_diff
        for k in range(n_diff, n_diff + rec.args.n_nd):
            if tangents[1 + k] is not None:
                raise rec.args.nondiff_error(k)
        _closure_tangents(rec.args, "custom_vjp", tangents[1:])
        primals = tuple(ctx.saved_tensors[: ctx.n_in])
        tans = zeros_for(meta_of(primals[:n_diff]), tangents[1 : 1 + n_diff])
        n_in = len(primals)

        def tangent(*xs: torch.Tensor) -> Sequence[torch.Tensor]:
            ps, ts = xs[:n_in], xs[n_in:]
            fwd = lambda *d: rec.run_fwd((*d, *ps[n_diff:]))  # noqa: E731
            out: Sequence[torch.Tensor] = torch.func.jvp(fwd, tuple(ps[:n_diff]), tuple(ts))[1]
            return out

        return tuple(fw_tracked(tangent, (*primals, *tans)))


def _rest(
    ctx: Any, args: _Args, inputs: Sequence[torch.Tensor], grads: Sequence[torch.Tensor | None]
) -> list[torch.Tensor | None]:
    """The gradients for the inputs after the differentiable ones: None, except a zero for
    the guard token when a cotangent comes in (so that the guard's node runs, and raises,
    when a closed-over tensor's gradient is wanted)."""
    rest: list[torch.Tensor | None] = [None] * (len(inputs) - args.n_diff)
    flowing = any(g is not None for g in grads)
    if flowing and args.has_token and ctx.needs_input_grad[len(inputs)]:
        rest[-1] = torch.zeros_like(inputs[-1])
    return rest


def _apply_eager(fn: Any, rec: Any, leaves: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    out: tuple[torch.Tensor, ...] = fn.apply(rec, *leaves)
    return out


# torch.compile (2.13) traces an autograd.Function under torch.func.grad/jvp as its forward only,
# silently dropping the custom rule; keep the call out of the graph (a graph break) instead.
_apply_opaque: Callable[..., tuple[torch.Tensor, ...]] = torch.compiler.disable(  # type: ignore[no-untyped-call]
    _apply_eager
)


def _apply(fn: Any, rec: Any, leaves: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    if torch.compiler.is_compiling():
        return _apply_opaque(fn, rec, leaves)
    return _apply_eager(fn, rec, leaves)


def _n_positional(sig: Any) -> int | None:
    """The number of positional parameters of a signature; None if unknown or variadic."""
    if sig is None:
        return None
    n = 0
    for p in sig.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            return None
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            n += 1
    return n


def _check_arity(api: str, name: str, fn: Callable[..., Any], n: int, what: str) -> None:
    """``TypeError`` at definition time when ``fn`` cannot take ``n`` positional arguments."""
    sig = signature_of(fn)
    if sig is None:
        return
    try:
        sig.bind(*([None] * n))
    except TypeError:
        raise TypeError(
            msg(
                api,
                f"{name} to take {n} positional argument(s) ({what})",
                f"{name}{sig}",
                f"Give {name} the signature of the contract (see help(ftx.{api})).",
            )
        ) from None


def _stop(x: torch.Tensor) -> torch.Tensor:
    out: torch.Tensor = _StopGradient.apply(x)  # type: ignore[no-untyped-call]
    return out


def _no_rule(api: str, fun: Callable[..., Any], define: str) -> TypeError:
    name = getattr(fun, "__name__", "fun")
    return TypeError(
        msg(
            api,
            f"a rule defined with {name}.{define} before the call",
            f"no rule for '{name}'",
            f"Call {name}.{define} first.",
        )
    )


class _Custom(Generic[R]):
    """What ``custom_vjp`` and ``custom_jvp`` share: the primal function and the call.

    A call binds keyword arguments to positions, splits the arguments into differentiable
    leaves and nondiff tensors (:class:`_Args`), runs ``fun`` as is when nothing
    differentiates it, and otherwise runs the kind's ``autograd.Function`` on a per-call
    record. A subclass names its API and rule-defining method and supplies the record,
    the ``autograd.Function`` and the tensors it is applied to.
    """

    _api: ClassVar[str]
    _define: ClassVar[str]  # how the rule is defined, for the "no rule" message
    _function: ClassVar[type[torch.autograd.Function]]

    def __init__(self, fun: Callable[..., R], nondiff_argnums: int | Sequence[int] = ()) -> None:
        check_callable(self._api, "fun", fun)
        self.fun = fun
        self.nondiff_argnums = check_argnums(self._api, nondiff_argnums)
        self._sig = signature_of(fun)
        functools.update_wrapper(self, fun)

    def _ready(self) -> bool:
        """Whether the rule is defined."""
        raise NotImplementedError

    def _inputs(self, split: _Args) -> Sequence[torch.Tensor]:
        """The tensors the ``autograd.Function`` is applied to (checked or wrapped)."""
        raise NotImplementedError

    def _functions(self) -> tuple[Callable[..., Any], ...]:
        """``fun`` and the rules as the call runs them (a ``functools.partial`` as a closure)."""
        raise NotImplementedError

    def _record(self, split: _Args, fns: tuple[Callable[..., Any], ...]) -> Any:
        """The per-call record the ``autograd.Function`` gets (``n_out``, ``out_def`` set by it)."""
        raise NotImplementedError

    def _check_positions(self, n_args: int | None) -> None:
        """``ValueError`` when ``nondiff_argnums`` names a position ``fun`` does not have."""
        if n_args is not None and self.nondiff_argnums and max(self.nondiff_argnums) >= n_args:
            raise ValueError(
                msg(
                    self._api,
                    f"nondiff_argnums to name positions below fun's {n_args} argument(s)",
                    f"{self.nondiff_argnums}",
                    "Count the positions of fun's arguments from 0.",
                )
            )

    def __call__(self, *args: Any, **kwargs: Any) -> R:
        if _reentrant(self):
            return self.fun(*args, **kwargs)
        if not self._ready():
            raise _no_rule(self._api, self.fun, self._define)
        args = _bind(self._api, self.fun, self._sig, args, kwargs)
        if torch.compiler.is_compiling():
            return _call_opaque(self, args)  # type: ignore[no-any-return]
        return self._call(args)

    def _call(self, args: tuple[Any, ...]) -> R:
        """The call with positional arguments (run eagerly: ``torch.compile`` breaks the graph
        around it, as torch 2.13 would trace the ``autograd.Function`` as its forward only)."""
        split = _Args(self._api, args, self.nondiff_argnums)
        fns = self._functions()
        cap = captured((*fns, *(v for v in split.call.nondiff if callable(v))))
        if cap:  # tracked tensors in closures: lifted into the Function's inputs, guarded
            split.capture(cap)
        if plain_call(split.tensors):
            return self.fun(*args)
        tensors = list(self._inputs(split))
        if cap:
            token = _guard(self._api, split)
            if token is not None:
                tensors.append(token)
        rec = self._record(split, fns)
        flat = _apply(self._function, rec, tensors)
        assert rec.out_def is not None
        out: R = _tree.unflatten(rec.out_def, flat[: rec.n_out])
        return out


def _call_eager(owner: _Custom[Any], args: tuple[Any, ...]) -> Any:
    return owner._call(args)


_call_opaque: Callable[..., Any] = torch.compiler.disable(_call_eager)  # type: ignore[no-untyped-call]


class custom_vjp(_Custom[R]):
    """Give a function a custom vector-Jacobian product (reverse-mode rule), as ``jax.custom_vjp``.

    Args:
        fun: the primal function ``fun(*args) -> out``; ``out`` is a tensor or a pytree of
            tensors, differentiable arguments are tensors or pytrees of tensors.
        nondiff_argnums: positions of arguments that are not differentiated (Python values,
            callables, hyper-parameters, constant tensors); they are passed first to ``bwd``.
            Differentiating with respect to a tensor there is a ``TypeError``.

    Returns:
        A callable with ``fun``'s signature; call ``.defvjp(fwd, bwd)`` on it before use.
        ``fwd(*args) -> (out, residuals)``; ``bwd(*nondiff_args, residuals, cotangent)``
        returns a tuple with one cotangent per differentiable argument, shaped like it.
        Inside ``fwd`` and ``bwd`` the function itself evaluates ``fun``. Tensors that
        ``fun``, ``fwd`` or ``bwd`` close over are constants: differentiating with
        respect to one is a ``TypeError`` (pass it as an argument and return its
        cotangent from ``bwd``).

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

    _api = "custom_vjp"
    _define = "defvjp(fwd, bwd)"
    _function = _CustomVjpFunction

    def __init__(self, fun: Callable[..., R], nondiff_argnums: int | Sequence[int] = ()) -> None:
        super().__init__(fun, nondiff_argnums)
        self.fwd: Callable[..., Any] | None = None
        self.bwd: Callable[..., Any] | None = None

    def defvjp(self, fwd: Callable[..., Any], bwd: Callable[..., Any] | None = None) -> None:
        """Define the rule: ``fwd(*args) -> (out, res)``, ``bwd(*nondiff, res, ct) -> tuple``."""
        check_callable("custom_vjp", "fwd", fwd)
        check_callable("custom_vjp", "bwd", bwd)
        assert bwd is not None
        n_args = _n_positional(self._sig)
        if n_args is not None:
            _check_arity("custom_vjp", "fwd", fwd, n_args, "fun's arguments")
        self._check_positions(n_args)
        k = len(self.nondiff_argnums)
        _check_arity(
            "custom_vjp", "bwd", bwd, k + 2, f"the {k} nondiff argument(s), residuals, cotangent"
        )
        self.fwd, self.bwd = fwd, bwd

    def _ready(self) -> bool:
        return self.fwd is not None and self.bwd is not None

    def _inputs(self, split: _Args) -> Sequence[torch.Tensor]:
        tensors = split.tensors  # a nondiff tensor that needs a gradient: JAX raises too
        if split.n_nd and torch.is_grad_enabled():
            for k in range(split.n_diff, split.n_diff + split.n_nd):
                if tensors[k].requires_grad:
                    raise split.nondiff_error(k)
        return tensors

    def _functions(self) -> tuple[Callable[..., Any], ...]:
        assert self.fwd is not None and self.bwd is not None
        return as_closure(self.fun), as_closure(self.fwd), as_closure(self.bwd)

    def _record(self, split: _Args, fns: tuple[Callable[..., Any], ...]) -> _VjpCall:
        return _VjpCall(self, fns[1], fns[2], split)


# ----------------------------------------------------------------------------- custom_jvp


class _JvpCall:
    """Per-call record for custom_jvp."""

    __slots__ = ("args", "fun", "n_out", "out_def", "out_meta", "owner", "rule")

    def __init__(
        self, owner: custom_jvp[Any], fun: Callable[..., Any], rule: Callable[..., Any], args: _Args
    ) -> None:
        self.owner, self.fun, self.rule, self.args = owner, fun, rule, args
        self.n_out = 0
        self.out_def: _tree.TreeDef | None = None
        self.out_meta: list[Any] = []

    def tangent_out(
        self, primals: Sequence[torch.Tensor], tangents: Sequence[torch.Tensor]
    ) -> list[torch.Tensor]:
        """Run the rule and return the flat tangent output, checked against the primal output.

        ``primals`` are all the call's tensors (nondiff ones last), ``tangents`` the
        differentiable leaves' tangents.
        """
        a = self.args
        with _inside(self.owner), a.bound(primals):
            result = self.rule(*a.nondiff(primals), a.diff_tree(primals), a.diff_tree(tangents))
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise TypeError(
                msg(
                    "custom_jvp",
                    "the jvp rule must return a pair (primal_out, tangent_out)",
                    _describe(result),
                    "Return `out, tangent_out` from the rule.",
                )
            )
        t_leaves, t_def = flatten_outputs("custom_jvp", result[1], "the rule's tangent output")
        p_def = _tree.structure(result[0])
        if p_def != self.out_def:
            assert self.out_def is not None
            raise ValueError(
                msg(
                    "custom_jvp",
                    f"the rule's primal output must have the function's output structure "
                    f"{_spec(self.out_def)}",
                    f"structure {_spec(p_def)}",
                    "Return `fun(*primals)` (or an equal value) as the rule's first output.",
                )
            )
        if t_def != self.out_def:
            assert self.out_def is not None
            raise ValueError(
                msg(
                    "custom_jvp",
                    f"the rule's tangent output must have the output's structure "
                    f"{_spec(self.out_def)}",
                    f"structure {_spec(t_def)}",
                    "Return a tangent shaped like the primal output.",
                )
            )
        for i, (t, (shape, dtype, _)) in enumerate(zip(t_leaves, self.out_meta)):
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
            if t.dtype != dtype:
                raise TypeError(
                    msg(
                        "custom_jvp",
                        f"the rule's tangent output leaf {i} must have the output's dtype {dtype}",
                        f"dtype {t.dtype}",
                        "Compute the tangent in the output's dtype (e.g. `.to(out.dtype)`).",
                    )
                )
        return t_leaves


# ----------------------------------------------------------------------------- linearity probe
def _concrete(x: torch.Tensor) -> torch.Tensor:
    """A plain tensor for one example of ``x``: functorch wrappers peeled, batch index 0."""
    while _tc.is_functorch_wrapped_tensor(x):
        inner = _tc.get_unwrapped(x)
        if _tc.is_batchedtensor(x):
            inner = inner.select(_tc.maybe_get_bdim(x), 0)
        x = inner
    return x.detach()


def _probe_tangent(p: torch.Tensor) -> torch.Tensor:
    """A fixed, non-constant tangent for ``p`` with values in [0.75, 1.5], exact in binary."""
    k = torch.arange(p.numel(), device=p.device)
    return (0.75 + 0.125 * ((k * 5) % 7)).to(p.dtype).reshape(p.shape)


def _close(got: torch.Tensor, want: torch.Tensor) -> bool:
    if not (want.is_floating_point() or want.is_complex()):
        return bool(torch.equal(got, want))
    tol = 16 * torch.finfo(want.dtype).eps
    mag = want.abs()
    mag = mag[torch.isfinite(mag)]
    scale = float(mag.max()) if mag.numel() else 1.0
    return bool(torch.allclose(got, want, rtol=tol, atol=tol * max(scale, 1e-30), equal_nan=True))


@torch.compiler.disable  # type: ignore[untyped-decorator]
def _check_linear(rec: _JvpCall, primals: Sequence[torch.Tensor]) -> None:
    """Raise ``ValueError`` when the rule's tangent map is not linear (once per structure).

    Reverse mode transposes ``t -> rule(primals, t)[1]``; a non-linear map would give wrong
    gradients without a word. The probe runs the rule on one concrete example (functorch
    wrappers peeled, first batch entry), outside every transform, at ``t``, ``2t`` and ``-t``.
    """
    owner, n = rec.owner, rec.args.n_diff
    key = (rec.args.call.diff_def, tuple((p.shape, p.dtype) for p in primals[:n]))
    if key in owner._linear_checked or _clear_stack is None:
        return
    bad = ""
    try:
        xs = [_concrete(p) for p in primals]
        with _clear_stack(), torch.no_grad():
            t = [_probe_tangent(x) for x in xs[:n]]
            base = rec.tangent_out(xs, t)
            twice = rec.tangent_out(xs, [2 * v for v in t])
            neg = rec.tangent_out(xs, [-v for v in t])
            if not all(_close(b, 2 * a) for a, b in zip(base, twice)):
                bad = "rule(primals, 2*t)[1] != 2*rule(primals, t)[1]"
            elif not all(_close(c, -a) for a, c in zip(base, neg)):
                bad = "rule(primals, -t)[1] != -rule(primals, t)[1]"
    except Exception:  # the probe is a diagnosis; the real call reports the rule's errors
        bad = ""
    if not bad:
        owner._linear_checked.add(key)
        return
    name = getattr(rec.fun, "__name__", "fun")
    raise ValueError(
        msg(
            "custom_jvp",
            "a jvp rule whose tangent output is linear in the tangents (reverse mode "
            "transposes it, as JAX does)",
            f"a non-linear rule for '{name}': {bad}",
            "Return tangent_out as a linear function of the tangents (e.g. `t * df(x)`, "
            "not `t**2` or `t + c`); for a reverse rule of your own use ftx.custom_vjp.",
        )
    )


class _CustomJvpFunction(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(rec: _JvpCall, *leaves: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with rec.args.bound(leaves):
            out = rec.fun(*rec.args.rebuild(leaves))
        out_leaves, rec.out_def = flatten_outputs("custom_jvp", out, "the output")
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
        rec: _JvpCall = ctx.rec
        primals, n = ctx.saved_tensors, rec.args.n_diff
        _closure_tangents(rec.args, "custom_jvp", tangents[1:])
        tans = zeros_for(meta_of(primals[:n]), tangents[1 : 1 + n])
        n_in = len(primals)
        return tuple(
            fw_tracked(lambda *xs: rec.tangent_out(xs[:n_in], xs[n_in:]), (*primals, *tans))
        )

    @staticmethod
    @_eager_when_captured
    def backward(ctx: Any, *grads: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        rec: _JvpCall = ctx.rec
        primals, n = ctx.saved_tensors, rec.args.n_diff
        if all(g is None for g in grads):
            return (None,) * (1 + len(primals))
        _check_linear(rec, primals)

        # Transpose the (linear) tangent map t -> rule(primals, t)[1] by a VJP in t.
        def tangent_map(*ts: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return tuple(rec.tangent_out(primals, ts))

        zeros = tuple(torch.zeros_like(p) for p in primals[:n])
        pull = torch.func.vjp(tangent_map, *zeros)[1]
        cts = pull(tuple(zeros_for(rec.out_meta, grads)))
        return (None, *cts, *_rest(ctx, rec.args, primals, grads))


class _StopGradient(torch.autograd.Function):
    """JAX's ``stop_gradient`` at every transform level: the nondiff tensors of custom_jvp."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return x.clone()  # not a view: torch would then require a view as the tangent

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor | None) -> None:
        return None

    @staticmethod
    def jvp(ctx: Any, tangent: torch.Tensor | None) -> torch.Tensor:
        assert tangent is not None
        return torch.zeros_like(tangent)


class custom_jvp(_Custom[R]):
    """Give a function a custom Jacobian-vector product (forward-mode rule), as ``jax.custom_jvp``.

    Args:
        fun: the primal function ``fun(*args) -> out`` (tensor or pytree of tensors).
        nondiff_argnums: positions of arguments that are not differentiated; they are passed
            first to the rule. Tensors there are constants (derivative zero), as in JAX.

    Returns:
        A callable with ``fun``'s signature; call ``.defjvp(rule)`` on it before use (it also
        works as a decorator). ``rule(*nondiff_args, primals, tangents)`` gets tuples of the
        differentiable arguments and returns ``(primal_out, tangent_out)``. Reverse mode
        transposes the rule, so ``tangent_out`` must be linear in ``tangents`` (checked on
        first reverse-mode use: a ``ValueError`` otherwise). Inside the rule the function
        itself evaluates ``fun``. Tensors that ``fun`` or the rule close over are
        constants: differentiating with respect to one is a ``TypeError`` (pass it as an
        argument and give its tangent in the rule).

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

    _api = "custom_jvp"
    _define = "defjvp(rule)"
    _function = _CustomJvpFunction

    def __init__(self, fun: Callable[..., R], nondiff_argnums: int | Sequence[int] = ()) -> None:
        super().__init__(fun, nondiff_argnums)
        self.rule: Callable[..., Any] | None = None
        self._jvps: tuple[Callable[..., Any], ...] = ()  # defjvps' per-argument rules
        self._linear_checked: set[Any] = set()

    def defjvp(self, rule: Callable[..., Any]) -> Callable[..., Any]:
        """Define ``rule(*nondiff, primals, tangents) -> (out, tangent_out)``; returns it."""
        check_callable("custom_jvp", "rule", rule)
        k = len(self.nondiff_argnums)
        _check_arity(
            "custom_jvp", "rule", rule, k + 2, f"the {k} nondiff argument(s), primals, tangents"
        )
        self.rule = rule
        self._jvps = ()
        self._linear_checked = set()
        return rule

    def defjvps(self, *jvps: Callable[..., Any] | None) -> None:
        """Define the rule one argument at a time, as ``jax.custom_jvp.defjvps``.

        ``jvps[i](t_i, out, *args)`` returns argument ``i``'s contribution to the output
        tangent (``t_i`` is that argument's tangent, ``out`` the primal output, shaped like
        ``out``); ``None`` marks an argument with no derivative (its contribution is
        zero). The tangent output is the sum of the contributions. Like JAX, it refuses
        a function with ``nondiff_argnums`` (use :meth:`defjvp` there).

        Example:
            >>> import torch, ftx
            >>> @ftx.custom_jvp
            ... def f(x, y):
            ...     return torch.sin(x) * y
            >>> f.defjvps(lambda tx, out, x, y: torch.cos(x) * tx * y,
            ...           lambda ty, out, x, y: torch.sin(x) * ty)
            >>> ftx.grad(f, argnums=(0, 1))(torch.tensor(0.0), torch.tensor(2.0))
            (tensor(2.), tensor(0.))
        """
        api = "custom_jvp"
        if self.nondiff_argnums:
            raise TypeError(
                msg(
                    api,
                    "defjvps for a function without nondiff_argnums (as in JAX)",
                    f"nondiff_argnums={self.nondiff_argnums}",
                    "Use defjvp(rule): the rule gets the nondiff arguments first.",
                )
            )
        for i, r in enumerate(jvps):
            _check_callable_or_none(api, f"jvps[{i}]", r, optional=True)
        n_args = _n_positional(self._sig)
        if n_args is not None and len(jvps) != n_args:
            raise ValueError(
                msg(
                    api,
                    f"defjvps takes one rule (or None) per argument of fun ({n_args})",
                    f"{len(jvps)} rule(s)",
                    "Pass None for an argument without a derivative.",
                )
            )
        for i, r in enumerate(jvps):
            if r is not None:
                _check_arity(api, f"jvps[{i}]", r, 2 + len(jvps), "tangent, out, *args")
        owner = self
        rules = tuple(None if r is None else as_closure(r) for r in jvps)

        def rule(primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> tuple[Any, Any]:
            if len(primals) != len(rules):
                raise ValueError(
                    msg(
                        api,
                        f"a call with one argument per defjvps rule ({len(rules)})",
                        f"{len(primals)} argument(s)",
                        "Pass the arguments the rules were written for.",
                    )
                )
            out = owner(*primals)  # inside the rule: fun itself
            out_def = _tree.structure(out)
            parts = []
            for i, (t, r) in enumerate(zip(tangents, rules)):
                if r is None:
                    continue
                part = r(t, out, *primals)
                if _tree.structure(part) != out_def:
                    raise ValueError(
                        msg(
                            api,
                            f"jvps[{i}] must return a tangent with the output's structure "
                            f"{_spec(out_def)}",
                            f"{_describe(part)}",
                            "Return the argument's contribution shaped like the output.",
                        )
                    )
                parts.append(part)
            if not parts:
                return out, _tree.map(torch.zeros_like, out)
            return out, _tree.map(lambda *ts: functools.reduce(torch.add, ts), *parts)

        self.defjvp(rule)
        self._jvps = tuple(r for r in rules if r is not None)  # their closures are checked too

    def _ready(self) -> bool:
        return self.rule is not None

    def _inputs(self, split: _Args) -> Sequence[torch.Tensor]:
        tensors, n, m = split.tensors, split.n_diff, split.n_diff + split.n_nd
        if m > n:  # nondiff tensors are constants to every level (JAX)
            return [*tensors[:n], *(_stop(t) for t in tensors[n:m]), *tensors[m:]]
        return tensors

    def _functions(self) -> tuple[Callable[..., Any], ...]:
        assert self.rule is not None
        return as_closure(self.fun), as_closure(self.rule), *self._jvps

    def _record(self, split: _Args, fns: tuple[Callable[..., Any], ...]) -> _JvpCall:
        return _JvpCall(self, fns[0], fns[1], split)
