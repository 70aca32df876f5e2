"""Shared parts of ``ftx.lax``: flattening, type checks, batched predicates, selection.

A predicate (``cond``'s ``pred``, ``switch``'s ``index``, ``while_loop``'s
``cond_fun`` result) is *batched* when it is a tensor that ``vmap`` maps (at any
level of a transform stack): its lanes may disagree, so every branch runs and the
results are selected lane by lane, as JAX's batching rules do.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import torch

from .._internal import pytree as _pt
from .._internal import torch_compat as _tc
from .._internal.errors import describe, msg

Tensor = torch.Tensor

_wrapped = _tc.is_functorch_wrapped_tensor
_batched = _tc.is_batchedtensor
_unwrap = _tc.get_unwrapped


F = TypeVar("F", bound=Callable[..., Any])


def outside_graph(fn: F) -> F:
    """``fn`` run outside any graph ``torch.compile`` traces (a graph break, eager inside)."""
    return cast(F, torch.compiler.disable(fn))  # type: ignore[no-untyped-call]


def _functorch_active() -> bool:
    return _tc.peek_interpreter_stack() is not None


# While dynamo traces, a Python comparison on the interpreter stack it wraps is never
# ``is None``; as a constant result it is evaluated at trace time (torch.func transforms
# being traced push real levels).
functorch_active: Callable[[], bool] = torch.compiler.assume_constant_result(  # type: ignore[no-untyped-call]
    _functorch_active
)


def flatten(tree: Any) -> tuple[list[Any], Any]:
    """``(leaves, spec)`` with ftx's one flattener (``None`` is an empty subtree)."""
    return _pt.flatten(tree)


def unflatten(spec: Any, leaves: Sequence[Any]) -> Any:
    return _pt.unflatten(spec, list(leaves))


def as_tensors(api: str, name: str, leaves: Sequence[Any]) -> list[Tensor]:
    """Leaves as tensors: Python numbers become 0-d tensors (as JAX makes them arrays)."""
    out: list[Tensor] = []
    for k, x in enumerate(leaves):
        if isinstance(x, Tensor):
            out.append(x)
        elif isinstance(x, (bool, numbers.Number)) and not isinstance(x, complex):
            out.append(torch.as_tensor(x))
        elif isinstance(x, complex):
            out.append(torch.as_tensor(x))
        else:
            raise TypeError(msg(api, f"every leaf of {name} must be a tensor or a number",
                                f"leaf {k}: {describe(x)}",
                                "Pass tensors (non-array state belongs in a closure)."))
    return out


def tensor_leaves(api: str, name: str, tree: Any) -> tuple[list[Tensor], Any]:
    """``(leaves, spec)`` of ``tree`` with number leaves made 0-d tensors."""
    leaves, spec = _pt.flatten(tree)
    if all(type(x) is Tensor for x in leaves):
        return leaves, spec
    return _pt.flatten(_pt.unflatten(spec, as_tensors(api, name, leaves)))


def shape_dtype(x: Any) -> tuple[Any, Any]:
    return (tuple(x.shape), x.dtype) if isinstance(x, Tensor) else ((), type(x))


def check_same(api: str, what: str, spec: Any, ref_spec: Any, leaves: Sequence[Any],
               ref: Sequence[Any], fix: str) -> None:
    """``TypeError`` unless ``leaves`` match ``ref`` in structure, shapes and dtypes."""
    if spec != ref_spec:
        raise TypeError(msg(api, f"{what} must have the same pytree structure as its input",
                            f"{_pt.unflatten(spec, ['*'] * len(leaves))!r:.200} instead of "
                            f"{_pt.unflatten(ref_spec, ['*'] * len(ref))!r:.200}", fix))
    for k, (a, b) in enumerate(zip(leaves, ref)):
        sa, sb = shape_dtype(a), shape_dtype(b)
        if sa != sb:
            raise TypeError(msg(api, f"{what} must keep each leaf's shape and dtype",
                                f"leaf {k} with shape {sa[0]} and dtype {sa[1]} instead of "
                                f"shape {sb[0]} and dtype {sb[1]}", fix))


def is_batched(x: Any) -> bool:
    """Whether ``x`` is a tensor that some ``vmap`` level maps."""
    while isinstance(x, Tensor) and _wrapped(x):
        if _batched(x):
            return True
        x = _unwrap(x)
    return False


def needs_grad(x: Any) -> bool:
    """Whether ``x`` takes part in reverse mode at any level (a ``vmap`` wrapper reports
    ``requires_grad=False`` over a tensor that a ``grad`` level outside tracks)."""
    while isinstance(x, Tensor):
        if x.requires_grad:
            return True
        if not _wrapped(x):
            return False
        x = _unwrap(x)
    return False


def any_lane(pred: Tensor) -> bool:
    """Whether any lane of a batched boolean predicate is true (all vmap levels at once)."""
    x = pred
    while _wrapped(x):
        x = _unwrap(x)
    return bool(x.any())


def check_pred(api: str, name: str, pred: Any, kind: str) -> Any:
    """A scalar predicate: a Python scalar or a 0-d tensor of the right ``kind``.

    ``kind``: ``"bool"`` (``while_loop``'s ``cond_fun``: JAX wants a boolean), ``"number"``
    (``cond``'s ``pred``: a boolean or a number, non-zero meaning true) or ``"int"``
    (``switch``'s ``index``).
    """
    if isinstance(pred, Tensor):
        if pred.dim() != 0:
            raise ValueError(msg(api, f"{name} must be a scalar (shape ())",
                                 f"shape {tuple(pred.shape)}",
                                 "Reduce it (e.g. .all() or .any()) or vmap over its axis."))
        dt = pred.dtype
        bad = (
            (kind == "bool" and dt is not torch.bool)
            or (kind == "int" and (dt.is_floating_point or dt.is_complex or dt is torch.bool))
            or (kind == "number" and dt.is_complex)
        )
        if bad:
            raise TypeError(msg(api, f"{name} must be {_KINDS[kind]}", f"dtype {dt}",
                                _FIXES[kind]))
        return pred
    ok = (
        isinstance(pred, bool)
        if kind == "bool"
        else isinstance(pred, numbers.Integral)
        if kind == "int"
        else isinstance(pred, numbers.Real)
    )
    if ok and not (kind == "int" and isinstance(pred, bool)):
        return pred
    raise TypeError(msg(api, f"{name} must be {_KINDS[kind]}", describe(pred), _FIXES[kind]))


_KINDS = {
    "bool": "a boolean scalar (a Python bool or a 0-d bool tensor)",
    "number": "a scalar boolean or number (a Python scalar or a 0-d tensor)",
    "int": "an integer scalar (a Python int or a 0-d integer tensor)",
}
_FIXES = {
    "bool": "Return a comparison (e.g. `i < n`).",
    "number": "Pass a comparison (e.g. `x.sum() > 0`).",
    "int": "Pass an int or an integer tensor (e.g. `x.argmax()`).",
}


def select(api: str, pred: Tensor, on_true: Sequence[Any], on_false: Sequence[Any]) -> list[Any]:
    """Leaf-wise ``torch.where(pred, a, b)`` (``pred`` a boolean scalar, maybe batched)."""
    out: list[Any] = []
    for a, b in zip(on_true, on_false):
        if not isinstance(a, Tensor) and not isinstance(b, Tensor) and a is b:
            out.append(a)
            continue
        ta, tb = torch.as_tensor(a), torch.as_tensor(b)
        out.append(torch.where(pred, ta, tb))
    return out


def to_bool(pred: Tensor) -> Tensor:
    return pred if pred.dtype is torch.bool else pred != 0
