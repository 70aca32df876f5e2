"""``GradientTransformation``, ``chain`` and ``apply_updates``: the optimizer contract.

An optimizer is a ``GradientTransformation(init, update)`` of two pure
functions: ``state = init(params)`` and ``updates, state = update(grads, state,
params)``. Nothing is mutated; the state is a pytree of tensors (the step count
is a 0-dim ``int64`` tensor), so it can be ``vmap``-ed, saved and compiled.

Built-in transforms are written once over flat lists of leaves (a ``_Spec``)
and wrapped here; :func:`chain` of built-ins flattens the trees once per update.
Each optimizer's formula is written once over the operations of a kernel route
(:mod:`._kernels`), picked once per update, all giving the same numbers:

* eager, no leaf that needs gradients: torch's foreach kernels (small trees, GPUs)
  or torch's in-place ops leaf by leaf (large CPU trees), hyper-parameter
  arithmetic in Python floats exactly as ``torch.optim`` does it;
* eager differentiable path (some leaf requires grad and grad mode is on, as in
  MAML): the same ops out of place, leaf by leaf;
* under a transform (``vmap``, ``grad``, ``torch.compile``): leaf by leaf, the
  step count stays a tensor (float64 arithmetic, never ``.item()``).

``update(..., donate=True)`` lets the eager fast routes write the new state into
the old state's buffers; ``apply_updates(..., donate=True)`` writes the new params
into the old params' buffers. Both are opt-ins; the default never mutates.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, NoReturn

import torch

from .._internal import torch_compat as _tc
from .._internal.errors import describe, msg
from .._internal.torch_compat import is_wrapped, transform_active
from . import _tree
from ._kernels import Route, pick

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
        update: ``update(grads, state, params=None, *, donate=False) -> (updates,
            state)``; ``updates`` has the structure of ``grads`` and is added to the
            params by :func:`apply_updates`. ``donate=True`` (built-in transforms) lets
            the update write the new state into the old state's buffers, which the
            caller must not use again (see docs/optim.md, "Reusing buffers").

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


Leaves = list[torch.Tensor]
Update = tuple[Leaves, Any, bool]
"""``(updates, new_state, owned)``: ``owned`` when the updates are fresh buffers that the
next transform of a chain may overwrite (never the user's grads nor a state buffer)."""


class _Spec:
    """A transform written over flat lists of leaves. Subclasses set ``api`` and override.

    ``update_leaves(grads, state, params, route, own)`` returns ``(updates, state, owned)``;
    ``own`` says that ``grads`` are fresh buffers of the chain's (see :data:`Update`).
    """

    api: str = "optim"
    needs_params: bool = False
    state_type: type = EmptyState
    per_param: tuple[str, ...] = ()

    def init_leaves(self, params: Leaves) -> Any:
        return EmptyState()

    def update_leaves(
        self, grads: Leaves, state: Any, params: Leaves | None, route: Route, own: bool
    ) -> Update:
        raise NotImplementedError


class _Elementwise(_Spec):
    """A transform whose update is one formula applied leaf by leaf (or list by list).

    Subclasses define ``coeffs`` (the update's hyper-parameters from the state's step
    count, computed once) and ``leaf`` (the formula, over vectors of ``route``: single
    tensors or, on the foreach route, lists). The per-parameter buffers named in
    ``per_param`` reach ``leaf`` as a tuple in that order and come back updated; a
    ``step`` field counts the update.
    """

    def coeffs(self, state: Any, route: Route) -> Any:
        return None

    def leaf(self, route: Route, co: Any, g: Any, bufs: tuple[Any, ...], p: Any, own: bool
             ) -> tuple[Any, tuple[Any, ...], bool]:
        raise NotImplementedError

    def update_leaves(
        self, grads: Leaves, state: Any, params: Leaves | None, route: Route, own: bool
    ) -> Update:
        bufs = tuple(getattr(state, f) for f in self.per_param)
        if grads:
            co = self.coeffs(state, route)

            def formula(g: Any, b: tuple[Any, ...], p: Any, o: bool
                        ) -> tuple[Any, tuple[Any, ...], bool]:
                return self.leaf(route, co, g, b, p, o)

            grads, bufs, own = route.run(formula, grads, bufs, params, own)
        if self.state_type is EmptyState:
            return grads, state, own
        new = iter(bufs)
        fields = [
            next(new) if name in self.per_param
            else route.next_count(value) if name == "step" else value
            for name, value in zip(state._fields, state)
        ]
        return grads, type(state)(*fields), own


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
    return TypeError(msg(
        f"{api}.update", "state must be what this optimizer's init returned", describe(state),
        "Call state = opt.init(params) and pass the state it returns.",
    ))


def _counts(state: Any, out: list[torch.Tensor]) -> None:
    """Collect the step counts (the tensors outside per-parameter lists) of a leaf-form state."""
    if isinstance(state, torch.Tensor):
        out.append(state)
    elif isinstance(state, tuple):
        for s in state:
            _counts(s, out)


_Named = tuple[str, PyTree, Leaves]


def _check_donated(api: str, donated: list[_Named], others: list[_Named]) -> None:
    """Raise ``ValueError`` when a donated buffer shares memory with another input tensor.

    Writing into such a buffer would change the other tensor (or a buffer updated twice
    would be wrong). One storage lookup per tensor; empty tensors hold no memory.
    """
    owner: dict[int, tuple[str, PyTree, int]] = {}
    for k, (name, tree, leaves) in enumerate(donated + others):
        for i, t in enumerate(leaves):
            if not t.numel():
                continue
            key = t.untyped_storage().data_ptr()
            first = owner.get(key)
            if first is None:
                if k < len(donated):
                    owner[key] = (name, tree, i)
                continue
            raise ValueError(msg(
                f"{api}.update",
                "with donate=True no buffer of state may share memory with grads, params "
                "or another state buffer (it is overwritten)",
                f"{first[0]} at path {_where(first[1], first[2])!r} sharing memory with "
                f"{name} at path {_where(tree, i)!r}",
                "Pass the state opt.init or the last update returned, or donate=False.",
            ))


def _where(tree: PyTree, i: int) -> str:
    return "step" if tree is None else _tree.path_at(tree, i)


_REQUIRES_GRAD = operator.attrgetter("requires_grad")


def _route(tensors: Leaves) -> tuple[bool, bool]:
    """``(scalars, fast)`` for checked tensor leaves (see the module docstring).

    ``scalars``: no transform is active and no leaf is functorch-wrapped (the step
    count may be read with ``.item()``); ``fast``: also no leaf needs gradients
    (torch's eager kernels, in place on fresh or donated buffers). The scans run in C
    (``map``), every leaf being a tensor.
    """
    if transform_active() or any(map(is_wrapped, tensors)):
        return False, False
    return True, not (torch.is_grad_enabled() and any(map(_REQUIRES_GRAD, tensors)))


_LIKE_FIX = ("Pass grads computed for these params (e.g. ftx.grad(loss)(params)) and the "
             "state opt.init(params) returned; call opt.init again after changing params.")


def _same_metas(leaves: list[Any], ref: list[Any] | None) -> bool:
    try:
        return _tree.metas(leaves) == ref
    except AttributeError:  # a leaf that is not a tensor
        return False


def _update_impl(
    spec: _Spec, grads: PyTree, state: PyTree, params: PyTree | None, donate: bool = False
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
        raise ValueError(msg(
            f"{api}.update", "params are required by this transform (weight decay)", "None",
            "Call update(grads, state, params).",
        ))
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
    route = pick(scalars, fast, api, g, donate)
    if route.donate:
        counts: list[torch.Tensor] = []
        _counts(st, counts)
        _check_donated(api, [(n, t, x) for n, t, x in bufs] + [("state.step", None, counts)],
                       [("grads", grads, g)] + ([] if p is None else [("params", params, p)]))
    try:
        out, new_st, _ = spec.update_leaves(g, st, p, route, False)
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
            grads: PyTree, state: PyTree, params: PyTree | None = None, *, donate: bool = False
        ) -> tuple[PyTree, PyTree]:
            if donate is not False:
                check_flag(f"{spec.api}.update", "donate", donate)
            return _update_impl(spec, grads, state, params, donate)

        init.__doc__ = f"Initial state of ftx.{spec.api} for ``params``."
        update.__doc__ = (
            f"``(updates, new_state)`` of ftx.{spec.api}; pure unless ``donate=True`` (then "
            "the old state's buffers may hold the new state: do not use the old state again)."
        )
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

    def init_leaves(self, params: Leaves) -> Any:
        return tuple(s.init_leaves(params) for s in self.specs)

    def update_leaves(
        self, grads: Leaves, state: Any, params: Leaves | None, route: Route, own: bool
    ) -> Update:
        new = []
        for s, st in zip(self.specs, state):
            grads, st, own = s.update_leaves(grads, st, params, route, own)
            new.append(st)
        return grads, tuple(new), own


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Compose transformations: each one's updates feed the next; the state is a tuple.

    Args:
        *transforms: ``GradientTransformation`` s, applied left to right.

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
    return chain_as("optim.chain", transforms)


def chain_as(api: str, transforms: Sequence[GradientTransformation]) -> GradientTransformation:
    """:func:`chain`, naming ``api`` in its errors (the optimizer aliases are chains)."""
    for i, t in enumerate(transforms):
        if not (isinstance(t, GradientTransformation) and all(callable(f) for f in t)):
            raise TypeError(msg(
                api, "every argument must be a GradientTransformation",
                f"{describe(t)} at position {i}", "Build one with ftx.optim.sgd(...) etc.",
            ))
    if all(isinstance(t, _LeafTransformation) for t in transforms):
        specs: list[_Spec] = []
        for t in transforms:
            s = t.spec  # type: ignore[attr-defined]
            specs.extend(s.specs if isinstance(s, _ChainSpec) else [s])
        return from_spec(_ChainSpec(specs, api))

    def init(params: PyTree) -> PyTree:
        return tuple(t.init(params) for t in transforms)

    def update(
        grads: PyTree, state: PyTree, params: PyTree | None = None, *, donate: bool = False
    ) -> tuple[PyTree, PyTree]:
        if donate is not False:
            check_flag(f"{api}.update", "donate", donate)
        if type(state) is not tuple or len(state) != len(transforms):
            raise _bad_state(api, state)
        new = []
        for t, s in zip(transforms, state):  # transforms of the user's never see donate
            if donate and isinstance(t, _LeafTransformation):
                grads, s = t.update(grads, s, params, donate=True)
            else:
                grads, s = t.update(grads, s, params)
            new.append(s)
        return grads, tuple(new)

    return GradientTransformation(init, update)


class _IdentitySpec(_Spec):
    api = "optim.identity"

    def update_leaves(
        self, grads: Leaves, state: Any, params: Leaves | None, route: Route, own: bool
    ) -> Update:
        return grads, state, own


def identity() -> GradientTransformation:
    """The transformation that returns the grads unchanged (stateless).

    Example:
        >>> import torch, ftx
        >>> ftx.optim.identity().update({"w": torch.ones(1)}, ())[0]
        {'w': tensor([1.])}
    """
    return from_spec(_IdentitySpec())


def apply_updates(params: PyTree, updates: PyTree, *, donate: bool = False) -> PyTree:
    """``params + updates`` leaf by leaf, as a new tree (nothing is mutated by default).

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
        donate: write the new params into the old params' buffers (``p.add_(u)``, the
            same numbers) and return a tree of those tensors; the caller must not use
            the old params again. Honoured in eager code when no leaf needs gradients;
            otherwise the result is computed out of place, as without ``donate``.

    Returns:
        The new params, each leaf ``p + u`` (dtype of ``p``).

    Example:
        >>> import torch, ftx
        >>> ftx.optim.apply_updates({"w": torch.ones(2)}, {"w": torch.tensor([0.5, -1.0])})
        {'w': tensor([1.5000, 0.0000])}
    """
    api = "optim.apply_updates"
    if donate is not False:
        check_flag(api, "donate", donate)
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
    fast = _route(p + u)[1]
    if donate and fast:
        _check_params_donated(api, params, p, updates, u)
    try:
        if donate and fast:
            if same and _tc.FOREACH:
                _tc.foreach_add_(p, u)
            else:
                for a, b in zip(p, u):
                    a.add_(b.to(a.dtype))
            out = p
        elif same and fast and _tc.FOREACH:
            out = list(_tc.foreach_add(p, u))
        else:
            out = [a + b.to(a.dtype) for a, b in zip(p, u)]
    except RuntimeError:
        _tree.check_devices(api, ["params", "updates"], [params, updates], [p, u])
        raise
    return _tree.unflatten(sig, out)


def _check_params_donated(api: str, params: PyTree, p: Leaves, updates: PyTree, u: Leaves
                          ) -> None:
    """``ValueError`` unless every donated param owns its memory: tied or viewed leaves
    would be updated twice, an update sharing a param's memory would change while added."""
    owner: dict[int, int] = {}
    for i, t in enumerate(p):
        if t.numel():
            j = owner.setdefault(t.untyped_storage().data_ptr(), i)
            if j != i:
                raise ValueError(msg(
                    api, "with donate=True every leaf of params must own its memory",
                    f"the leaves at paths {_tree.path_at(params, j)!r} and "
                    f"{_tree.path_at(params, i)!r} sharing memory",
                    "Untie the leaves (clone one), or pass donate=False.",
                ))
    for i, t in enumerate(u):
        k = owner.get(t.untyped_storage().data_ptr()) if t.numel() else None
        if k is not None:
            raise ValueError(msg(
                api, "with donate=True no leaf of updates may share memory with params",
                f"updates at path {_tree.path_at(updates, i)!r} sharing memory with params "
                f"at path {_tree.path_at(params, k)!r}",
                "Pass the updates opt.update returned, or donate=False.",
            ))


# ---------------------------------------------------------------------------
# Hyper-parameter validation (build time) and schedules (update time).


def check_hparam(api: str, name: str, value: Any, *, low: float = 0.0, high: float | None = None,
                 high_open: bool = True, low_open: bool = False) -> float:
    """Return ``float(value)`` or raise unless ``low <= value (<|<=) high``.

    ``TypeError`` for anything but a real number (``bool`` included), ``ValueError``
    for a value out of range or not finite.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(msg(api, f"{name} must be a real number", describe(value),
                            f"Pass a Python float, e.g. {name}=0.1."))
    try:
        v = float(value)
    except OverflowError:  # an int too large for a float64 (10**400)
        raise ValueError(msg(
            api, f"{name} must be a number a float64 can hold",
            f"a number of about 2**{int(math.log2(abs(value)))}",
            f"Pass {name} as torch.optim accepts it.",
        )) from None
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
        raise ValueError(msg(api, f"{name} must be {rng}", repr(value),
                             f"Pass {name} as torch.optim accepts it."))
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
