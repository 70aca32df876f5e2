"""``GradientTransformation``, ``chain`` and ``apply_updates``: the optimizer contract.

An optimizer is a ``GradientTransformation(init, update)`` of two pure
functions: ``state = init(params)`` and ``updates, state = update(grads, state,
params)``. Nothing is mutated; the state is a pytree of tensors (the step count
is a 0-dim ``int64`` tensor), so it can be ``vmap``-ed, saved and compiled.

Built-in transforms are written once over flat lists of leaves (a ``_Spec``)
and wrapped here; :func:`chain` of built-ins flattens the trees once per update.
Each update picks one of three routes, all giving the same numbers:

* eager fast path (no transform active, no functorch-wrapped leaf, no leaf that
  needs gradients): torch's foreach kernels, hyper-parameter arithmetic in
  Python floats exactly as ``torch.optim`` does it;
* eager differentiable path (some leaf requires grad and grad mode is on, as in
  MAML): the same ops out of place, leaf by leaf;
* under a transform (``vmap``, ``grad``, ``torch.compile``): leaf by leaf, the
  step count stays a tensor (float64 arithmetic, never ``.item()``).
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable
from typing import Any, NamedTuple, NoReturn

import torch

from .._internal import torch_compat as _tc
from .._internal.errors import describe, msg
from .._internal.torch_compat import is_wrapped, transform_active
from . import _tree

PyTree = Any
Schedule = Callable[[Any], Any]
"""A learning-rate schedule: ``step -> value`` for a Python int or an integer tensor."""
ScalarOrSchedule = float | Schedule

__all__ = [
    "EmptyState",
    "GradientTransformation",
    "ScalarOrSchedule",
    "Schedule",
    "apply_updates",
    "chain",
    "identity",
]


class GradientTransformation(NamedTuple):
    """A pair of pure functions ``(init, update)``: the optimizer contract.

    Attributes:
        init: ``init(params) -> state``, a pytree of tensors.
        update: ``update(grads, state, params=None) -> (updates, state)``;
            ``updates`` has the structure of ``grads`` and is added to the
            params by :func:`apply_updates`.

    Example:
        >>> import torch, ftx
        >>> opt = ftx.optim.sgd(lr=0.1)
        >>> params = {"w": torch.tensor([1.0, 2.0])}
        >>> state = opt.init(params)
        >>> updates, state = opt.update({"w": torch.tensor([1.0, 1.0])}, state, params)
        >>> ftx.optim.apply_updates(params, updates)
        {'w': tensor([0.9000, 1.9000])}
    """

    init: Callable[[PyTree], PyTree]
    update: Callable[..., tuple[PyTree, PyTree]]


class EmptyState(NamedTuple):
    """The state of a stateless transform (an empty pytree)."""


class _Ctx(NamedTuple):
    fast: bool  # foreach kernels, in-place on fresh buffers
    scalars: bool  # the step count may be read with .item()
    api: str = "optim"  # the public name for errors raised while updating


def _count_value(count: torch.Tensor, ctx: _Ctx) -> Any:
    """The step count as a Python int (eager) or a float64 tensor (under transforms)."""
    if ctx.scalars:
        return int(count.item())
    dtype = torch.float32 if count.device.type == "mps" else torch.float64
    return count.to(dtype)


class _Spec:
    """A transform written over flat lists of leaves. Subclasses set ``api`` and override."""

    api: str = "optim"
    needs_params: bool = False
    state_type: type = EmptyState
    per_param: tuple[str, ...] = ()

    def init_leaves(self, params: list[torch.Tensor]) -> Any:
        return EmptyState()

    def update_leaves(
        self, grads: list[torch.Tensor], state: Any, params: list[torch.Tensor] | None, ctx: _Ctx
    ) -> tuple[list[torch.Tensor], Any]:
        raise NotImplementedError


def add(a: torch.Tensor, b: torch.Tensor, alpha: Any, ctx: _Ctx) -> torch.Tensor:
    """``a + alpha * b``: torch's fused op in eager (its rounding), plain ops under transforms.

    Under ``torch.compile`` (inductor, torch 2.13) ``torch.add(..., alpha=)`` applied to a
    ``torch.func.grad`` output loses ``alpha``; the plain form compiles correctly.
    """
    return torch.add(a, b, alpha=alpha) if ctx.scalars else a + b * alpha


def addcmul(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, value: Any, ctx: _Ctx
            ) -> torch.Tensor:
    """``a + value * b * c`` (see :func:`add` for why there are two forms)."""
    return torch.addcmul(a, b, c, value=value) if ctx.scalars else a + b * c * value


def new_count(params: list[torch.Tensor]) -> torch.Tensor:
    """A fresh step count (0, ``int64``) on the params' device."""
    device = params[0].device if params else None
    return torch.zeros((), dtype=torch.int64, device=device)


def _state_leaves(state: Any, out: list[torch.Tensor]) -> None:
    """Collect the tensors of a leaf-form state (for the fast-path decision)."""
    if isinstance(state, torch.Tensor):
        out.append(state)
    elif isinstance(state, list):
        out.extend(state)
    elif isinstance(state, tuple):
        for s in state:
            _state_leaves(s, out)


def _to_tree(state: Any, sig: Any) -> Any:
    if isinstance(state, list):
        return _tree.unflatten(sig, state)
    if isinstance(state, tuple):
        items = [_to_tree(s, sig) for s in state]
        return type(state)(*items) if hasattr(state, "_fields") else tuple(items)
    return state


def _from_tree(api: str, state: Any, spec: _Spec, sig: Any, ref: PyTree,
               bufs: list[tuple[str, PyTree, list[torch.Tensor]]]) -> Any:
    """Leaf form of ``state``: per-parameter fields flattened and checked against ``sig``.

    Each flattened field is appended to ``bufs`` as ``(name, tree, leaves)`` for the
    caller's shape and dtype check; step counts are checked here.
    """
    if isinstance(spec, _ChainSpec):
        if type(state) is not tuple or len(state) != len(spec.specs):
            raise _bad_state(api, state)
        return tuple(_from_tree(api, s, sp, sig, ref, bufs) for s, sp in zip(state, spec.specs))
    if not isinstance(state, spec.state_type):
        if spec.state_type is EmptyState and type(state) is tuple and not state:
            return EmptyState()
        raise _bad_state(api, state)
    per = spec.per_param
    if not per and spec.state_type is EmptyState:
        return state
    items = []
    named: Any = state
    for name, value in zip(named._fields, named):
        if name in per:
            if value is not None:
                field = f"state.{name}"
                leaves, s = _tree.flatten(value, f"{api}.update", field)
                if s != sig:
                    raise _tree.mismatch(f"{api}.update", field, value, "params", ref)
                bufs.append((field, value, leaves))
                value = leaves
        elif name == "step" and not (
            isinstance(value, torch.Tensor) and value.dtype == torch.int64 and value.ndim == 0
        ):
            raise TypeError(msg(
                f"{api}.update", "state.step must be a 0-d int64 tensor (the update count)",
                describe(value), "Pass the state init and update returned, unchanged.",
            ))
        items.append(value)
    return type(state)(*items)


def _bad_state(api: str, state: Any) -> TypeError:
    return TypeError(
        f"ftx.{api}.update: state must be what this optimizer's init returned, "
        f"got {describe(state)}. Call state = opt.init(params) and pass the state it returns."
    )


_REQUIRES_GRAD = operator.attrgetter("requires_grad")


def _route(tensors: list[torch.Tensor]) -> tuple[bool, bool]:
    """``(scalars, fast)`` for checked tensor leaves (see the module docstring).

    ``scalars``: no transform is active and no leaf is functorch-wrapped (the step
    count may be read with ``.item()``); ``fast``: also no leaf needs gradients
    (foreach kernels). The scans run in C (``map``), every leaf being a tensor.
    """
    if transform_active() or any(map(is_wrapped, tensors)):
        return False, False
    fast = _tc.FOREACH and not (torch.is_grad_enabled() and any(map(_REQUIRES_GRAD, tensors)))
    return True, fast


_LIKE_FIX = ("Pass grads computed for these params (e.g. ftx.grad(loss)(params)) and the "
             "state opt.init(params) returned; call opt.init again after changing params.")


def _same_metas(leaves: list[Any], ref: list[Any] | None) -> bool:
    try:
        return _tree.metas(leaves) == ref
    except AttributeError:  # a leaf that is not a tensor
        return False


def _update_impl(
    spec: _Spec, grads: PyTree, state: PyTree, params: PyTree | None
) -> tuple[PyTree, PyTree]:
    """One update: check every leaf (one pass per tree), pick a route, run the spec.

    Grads must be real floating tensors; params and every per-parameter state buffer
    must match the grads leaf by leaf in structure, shape and dtype. Devices are checked
    only when a kernel fails (no cost on the happy path).
    """
    api = spec.api
    g, sig = _tree.flatten(grads, f"{api}.update", "grads")
    try:
        gm: list[Any] | None = _tree.metas(g)
    except AttributeError:
        gm = None
    if gm is None or not _tree.floats_in(gm):
        _tree.check_float(f"{api}.update", "grads", grads, g)
    p: list[torch.Tensor] | None = None
    if params is not None:
        p, psig = _tree.flatten(params, f"{api}.update", "params")
        if psig != sig:
            raise _tree.mismatch(f"{api}.update", "grads", grads, "params", params)
        if not _same_metas(p, gm):
            _tree.check_like(f"{api}.update", "grads", grads, g, "params", params, p, _LIKE_FIX)
    elif not g:
        p = []  # an empty tree needs no params
    elif spec.needs_params:
        raise ValueError(
            f"ftx.{api}.update: params are required by this transform (weight decay), "
            "got None. Call update(grads, state, params)."
        )
    ref, ref_name = (grads, "grads") if params is None else (params, "params")
    bufs: list[tuple[str, PyTree, list[torch.Tensor]]] = []
    st = _from_tree(api, state, spec, sig, ref, bufs)
    for name, tree, leaves in bufs:
        if not _same_metas(leaves, gm):
            _tree.check_like(f"{api}.update", name, tree, leaves, ref_name, ref,
                             g if p is None else p, _LIKE_FIX)
    everything = list(g) if p is None else g + p
    _state_leaves(st, everything)
    scalars, fast = _route(everything)
    try:
        out, new_st = spec.update_leaves(g, st, p, _Ctx(fast, scalars, api))
    except RuntimeError:  # a kernel refused: say which leaf sits on another device
        names = ["grads"] + (["params"] if p is not None else []) + [b[0] for b in bufs]
        trees = [grads] + ([params] if p is not None else []) + [b[1] for b in bufs]
        lists = [g] + ([p] if p is not None else []) + [b[2] for b in bufs]
        _tree.check_devices(f"{api}.update", names, trees, lists)
        raise
    return _tree.unflatten(sig, out), _to_tree(new_st, sig)


class _LeafTransformation(GradientTransformation):
    """A ``GradientTransformation`` built from a ``_Spec`` (so :func:`chain` can fuse it)."""

    spec: _Spec

    def __new__(cls, spec: _Spec) -> _LeafTransformation:
        def init(params: PyTree) -> PyTree:
            leaves, sig = _tree.flatten(params, f"{spec.api}.init", "params")
            if not _tree.all_float(leaves):
                _tree.check_float(f"{spec.api}.init", "params", params, leaves)
            return _to_tree(spec.init_leaves(leaves), sig)

        def update(
            grads: PyTree, state: PyTree, params: PyTree | None = None
        ) -> tuple[PyTree, PyTree]:
            return _update_impl(spec, grads, state, params)

        init.__doc__ = f"Initial state of ftx.{spec.api} for ``params``."
        update.__doc__ = f"``(updates, new_state)`` of ftx.{spec.api}; pure."
        self = super().__new__(cls, init, update)
        self.spec = spec
        return self

    def __getnewargs__(self) -> tuple[Any, ...]:
        return (self.spec,)


def from_spec(spec: _Spec) -> GradientTransformation:
    """Wrap a leaf-level spec as a public ``GradientTransformation``."""
    return _LeafTransformation(spec)


class _ChainSpec(_Spec):
    def __init__(self, specs: list[_Spec], api: str) -> None:
        self.specs = specs
        self.api = api
        self.needs_params = any(s.needs_params for s in specs)

    def init_leaves(self, params: list[torch.Tensor]) -> Any:
        return tuple(s.init_leaves(params) for s in self.specs)

    def update_leaves(
        self, grads: list[torch.Tensor], state: Any, params: list[torch.Tensor] | None, ctx: _Ctx
    ) -> tuple[list[torch.Tensor], Any]:
        new = []
        for s, st in zip(self.specs, state):
            grads, st = s.update_leaves(grads, st, params, ctx)
            new.append(st)
        return grads, tuple(new)


def chain(*transforms: GradientTransformation, api: str = "optim.chain") -> GradientTransformation:
    """Compose transformations: each one's updates feed the next; the state is a tuple.

    Args:
        *transforms: ``GradientTransformation`` s, applied left to right.
        api: the name used in error messages (aliases pass their own).

    Returns:
        A ``GradientTransformation`` whose state is the tuple of the parts' states.

    Example:
        >>> import torch, ftx
        >>> opt = ftx.optim.chain(ftx.optim.clip_by_global_norm(1.0), ftx.optim.sgd(lr=1.0))
        >>> params = {"w": torch.zeros(2)}
        >>> updates, _ = opt.update({"w": torch.tensor([3.0, 4.0])}, opt.init(params), params)
        >>> [round(v, 4) for v in updates["w"].tolist()]
        [-0.6, -0.8]
    """
    for i, t in enumerate(transforms):
        if not (isinstance(t, GradientTransformation) and all(callable(f) for f in t)):
            raise TypeError(
                f"ftx.{api}: every argument must be a GradientTransformation, got "
                f"{describe(t)} at position {i}. Build one with ftx.optim.sgd(...) etc."
            )
    if all(isinstance(t, _LeafTransformation) for t in transforms):
        specs: list[_Spec] = []
        for t in transforms:
            s = t.spec  # type: ignore[attr-defined]
            specs.extend(s.specs if isinstance(s, _ChainSpec) else [s])
        return from_spec(_ChainSpec(specs, api))

    def init(params: PyTree) -> PyTree:
        return tuple(t.init(params) for t in transforms)

    def update(
        grads: PyTree, state: PyTree, params: PyTree | None = None
    ) -> tuple[PyTree, PyTree]:
        if type(state) is not tuple or len(state) != len(transforms):
            raise _bad_state(api, state)
        new = []
        for t, s in zip(transforms, state):
            grads, s = t.update(grads, s, params)
            new.append(s)
        return grads, tuple(new)

    return GradientTransformation(init, update)


class _IdentitySpec(_Spec):
    api = "optim.identity"

    def update_leaves(
        self, grads: list[torch.Tensor], state: Any, params: list[torch.Tensor] | None, ctx: _Ctx
    ) -> tuple[list[torch.Tensor], Any]:
        return grads, state


def identity() -> GradientTransformation:
    """The transformation that returns the grads unchanged (stateless).

    Example:
        >>> import torch, ftx
        >>> ftx.optim.identity().update({"w": torch.ones(1)}, ())[0]
        {'w': tensor([1.])}
    """
    return from_spec(_IdentitySpec())


def apply_updates(params: PyTree, updates: PyTree) -> PyTree:
    """``params + updates`` leaf by leaf, as a new tree (nothing is mutated).

    The rule for kinds: params and updates must be real floating tensors (float16,
    bfloat16, float32, float64) of the same shapes; an update of another floating
    dtype is rounded to its param's dtype, as ``param.add_(update)`` does in torch.
    Integer, bool and complex leaves raise ``TypeError`` (an integer param would
    silently drop fractional updates); shapes never broadcast (``ValueError`` naming
    the path).

    Args:
        params: a pytree of floating tensors.
        updates: a pytree with the structure and shapes of ``params`` (``None``
            where ``params`` has ``None``).

    Returns:
        The new params, each leaf ``p + u`` (dtype of ``p``).

    Example:
        >>> import torch, ftx
        >>> ftx.optim.apply_updates({"w": torch.ones(2)}, {"w": torch.tensor([0.5, -1.0])})
        {'w': tensor([1.5000, 0.0000])}
    """
    api = "optim.apply_updates"
    p, sig = _tree.flatten(params, api, "params")
    u, usig = _tree.flatten(updates, api, "updates")
    if usig != sig:
        raise _tree.mismatch(api, "updates", updates, "params", params)
    if not p:
        return _tree.unflatten(sig, [])
    try:
        pm: list[Any] | None = _tree.metas(p)
    except AttributeError:
        pm = None
    if pm is None or not _tree.floats_in(pm):
        _tree.check_float(api, "params", params, p)
    same = _same_metas(u, pm)  # same shapes and dtypes: the common case
    if not same:
        _tree.check_tensors(api, "updates", updates, u)
        if not _tree.all_float(u):
            _tree.check_float(api, "updates", updates, u)
        for i, (a, b) in enumerate(zip(p, u)):
            if a.shape != b.shape:
                raise ValueError(msg(
                    api, "every leaf of updates must have the shape of params",
                    f"updates {tuple(b.shape)} and params {tuple(a.shape)} at path "
                    f"{_tree.path_at(params, i)!r}",
                    "Pass the updates opt.update returned for these params; ftx never "
                    "broadcasts an update.",
                ))
    try:
        if same and _route(p + u)[1]:
            out = list(_tc.foreach_add(p, u))
        else:
            out = [a + b.to(a.dtype) for a, b in zip(p, u)]
    except RuntimeError:
        _tree.check_devices(api, ["params", "updates"], [params, updates], [p, u])
        raise
    return _tree.unflatten(sig, out)


# ---------------------------------------------------------------------------
# Hyper-parameter validation (build time) and schedules (update time).


def check_hparam(api: str, name: str, value: Any, *, low: float = 0.0, high: float | None = None,
                 high_open: bool = True, low_open: bool = False) -> float:
    """Return ``float(value)`` or raise unless ``low <= value (<|<=) high``.

    ``TypeError`` for anything but a real number (``bool`` included), ``ValueError``
    for a value out of range or not finite.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"ftx.{api}: {name} must be a real number, got {describe(value)}. "
            f"Pass a Python float, e.g. {name}=0.1."
        )
    try:
        v = float(value)
    except OverflowError:  # an int too large for a float64 (10**400)
        raise ValueError(
            f"ftx.{api}: {name} must be a number a float64 can hold, got a number of about "
            f"2**{int(math.log2(abs(value)))}. Pass {name} as torch.optim accepts it."
        ) from None
    ok = math.isfinite(v) and (v > low if low_open else v >= low)
    if high is not None:
        ok = ok and (v < high if high_open else v <= high)
    if not ok:
        first = f"> {low}" if low_open else f">= {low}"
        if low == -math.inf:
            first = "finite"
        if high is None:
            rng = first
        else:
            rng = f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(
            f"ftx.{api}: {name} must be {rng}, got {value!r}. "
            f"Pass {name} as torch.optim accepts it."
        )
    return v


def check_flag(api: str, name: str, value: Any) -> bool:
    """Return ``value`` or raise ``TypeError`` unless it is a ``bool``."""
    if not isinstance(value, bool):
        raise TypeError(msg(api, f"{name} must be True or False", describe(value),
                            f"Pass {name}=True or {name}=False."))
    return value


def check_lr(api: str, lr: Any) -> ScalarOrSchedule:
    """A non-negative number or a callable schedule."""
    if callable(lr):
        return lr  # type: ignore[no-any-return]
    return check_hparam(api, "lr", lr)


def scheduled(api: str, what: str, value: Any, step: Any, nonneg: bool) -> Any:
    """``value`` if it is a real scalar a schedule may return, else raise.

    Accepted: a Python ``int``/``float`` (finite, and ``>= 0`` when ``nonneg``) or a
    0-d real floating tensor (its value is not read: that would synchronise with the
    device and cannot be done under ``vmap``/``torch.compile``). ``None``, ``bool``,
    complex numbers and tensors with a shape raise ``TypeError`` at update time.
    """
    t = type(value)
    if (t is float or t is int) and value >= 0 and math.isfinite(value):  # the common case
        return value
    if isinstance(value, torch.Tensor):
        if value.ndim == 0 and value.dtype in _tree.FLOATS:
            return value
        _bad_schedule(api, what, value, step)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _bad_schedule(api, what, value, step)
    v = float(value)
    if math.isfinite(v) and (v >= 0 or not nonneg):
        return v
    raise ValueError(msg(
        f"{api}.update",
        f"the {what} schedule must return a finite number" + (" >= 0" if nonneg else ""),
        f"{value!r} at step {_step_text(step)}",
        "Fix the schedule (a negative learning rate climbs the loss; NaN or inf "
        "destroys the params).",
    ))


def _step_text(step: Any) -> str:
    if isinstance(step, torch.Tensor):
        return "(a tensor step under a transform)"
    return str(step)


def _bad_schedule(api: str, what: str, value: Any, step: Any) -> NoReturn:
    raise TypeError(msg(
        f"{api}.update",
        f"the {what} schedule must return a real scalar (a float, an int or a 0-d "
        f"floating tensor)",
        f"{describe(value)} at step {_step_text(step)}",
        "Return a number from the schedule, e.g. lambda step: 0.1 * 0.99 ** step.",
    ))


def lr_at(lr: ScalarOrSchedule, step: Any, api: str = "optim") -> Any:
    """The learning rate at ``step`` (0 for the first update), checked if scheduled."""
    if callable(lr):
        return scheduled(api, "lr", lr(step), step, True)
    return lr
