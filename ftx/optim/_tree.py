"""Fast flatten/unflatten for optimizer trees, with structure errors that name paths.

Optimizers flatten the grads, the params and every per-parameter state tree at
each update, so flattening must be cheap. Plain ``dict``/``list``/``tuple``
nestings (the common parameter containers) are walked here directly, about ten
times faster than ``torch.utils._pytree``; any other registered node
(namedtuple, ``OrderedDict``, dataclasses registered with ``ftx.tree``) is
handed to ``torch.utils._pytree`` for that subtree, so the leaf order is always
the registry's. ``None`` is an empty subtree, as in :mod:`ftx.tree`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.utils._pytree as _pytree

from .. import tree as _ftree
from .._errors import describe

_Tensor = torch.Tensor
_NODES = _pytree.SUPPORTED_NODES
_node_type = _pytree._get_node_type


def flatten(tree: Any) -> tuple[list[Any], Any]:
    """``(leaves, sig)``: ``sig`` is a hashable, comparable description of the structure."""
    out: list[Any] = []
    return out, _flat(tree, out)


def _flat(x: Any, out: list[Any]) -> Any:
    if isinstance(x, _Tensor):
        out.append(x)
        return 1
    t = type(x)
    if t is dict:
        values = list(x.values())
        if all(isinstance(v, _Tensor) for v in values):  # the common leaf-only dict
            out.extend(values)
            return (3, tuple(x))
        return (0, tuple(x), tuple([_flat(v, out) for v in values]))
    if x is None:
        return None
    if t is list or t is tuple:
        return (t, tuple([_flat(v, out) for v in x]))
    if _node_type(x) in _NODES:
        raw, spec = _pytree.tree_flatten(x)
        out.extend(v for v in raw if v is not None)
        return (2, spec, tuple(v is None for v in raw))
    out.append(x)
    return 1


def unflatten(sig: Any, leaves: list[Any]) -> Any:
    """Inverse of :func:`flatten`."""
    return _unflat(sig, iter(leaves))


def _unflat(sig: Any, it: Iterator[Any]) -> Any:
    if sig == 1:
        return next(it)
    if sig is None:
        return None
    kind = sig[0]
    if kind == 3:
        keys = sig[1]
        return dict(zip(keys, [next(it) for _ in keys]))
    if kind == 0:
        return dict(zip(sig[1], [_unflat(s, it) for s in sig[2]]))
    if kind == 2:
        raw = [None if none else next(it) for none in sig[2]]
        return _pytree.tree_unflatten(raw, sig[1])
    return kind([_unflat(s, it) for s in sig[1]])


def mismatch(api: str, name: str, tree: Any, ref_name: str, ref: Any) -> ValueError:
    """A ``ValueError`` naming the paths where ``tree`` and ``ref`` differ."""
    paths = [p for p, _ in _ftree.leaves_with_path(tree)]
    ref_paths = [p for p, _ in _ftree.leaves_with_path(ref)]
    only = [p for p in paths if p not in set(ref_paths)]
    ref_only = [p for p in ref_paths if p not in set(paths)]
    if only or ref_only:
        got = f"paths only in {name}: {only}, paths only in {ref_name}: {ref_only}"
    else:
        got = (
            f"the same leaf paths in different containers ({name}: "
            f"{_ftree.structure(tree).spec}, {ref_name}: {_ftree.structure(ref).spec})"
        )
    return ValueError(
        f"ftx.{api}: {name} must have the structure of {ref_name}, got {got}. "
        f"Pass {name} with the same containers, keys and None entries as {ref_name}."
    )


def check_tensors(api: str, name: str, tree: Any, leaves: list[Any]) -> None:
    """Raise ``TypeError`` naming the first leaf that is not a tensor."""
    for x in leaves:
        if not isinstance(x, _Tensor):
            path = next(
                (p for p, v in _ftree.leaves_with_path(tree) if v is x), "?"
            )
            raise TypeError(
                f"ftx.{api}: every leaf of {name} must be a tensor, got {describe(x)} "
                f"at path {path!r}. Convert numbers with torch.as_tensor."
            )


def check_real(api: str, tree: Any, leaves: list[Any]) -> None:
    """Raise ``TypeError`` naming the first complex leaf (not supported)."""
    for x in leaves:
        if x.is_complex():
            path = next((p for p, v in _ftree.leaves_with_path(tree) if v is x), "?")
            raise TypeError(
                f"ftx.{api}: params must be real tensors, got {describe(x)} at path "
                f"{path!r}. Optimise torch.view_as_real(param) instead."
            )
