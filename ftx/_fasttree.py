"""A lean flatten/unflatten for the per-call path of the transforms.

``torch.utils._pytree`` builds a ``TreeSpec`` object per node, which costs a
few microseconds per call on a small parameter tree: too much for a wrapper
that must cost what ``torch.autograd.grad`` costs. Plain ``tuple``, ``list``
and ``dict`` nodes (the usual parameter containers) are handled here with
tuples as specs; any other node (namedtuple, OrderedDict, registered
dataclasses, ...) sends the whole tree to ``torch.utils._pytree``, so results
are identical either way. Leaves come out in the same order as
``torch.utils._pytree.tree_flatten`` (dicts in insertion order; ``None`` is a
leaf, as there).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.utils._pytree as _pytree

Tensor = torch.Tensor

_TUPLE, _LIST, _DICT, _TORCH = 1, 2, 3, 4
_LEAF: Any = None


class _Other(Exception):
    """A node this module does not handle: fall back to torch's pytree."""


def _flat(tree: Any, out: list[Any]) -> Any:
    t = type(tree)
    if t is tuple:
        return (_TUPLE, [_flat(c, out) for c in tree])
    if t is list:
        return (_LIST, [_flat(c, out) for c in tree])
    if t is dict:
        return (_DICT, tuple(tree), [_flat(c, out) for c in tree.values()])
    if t is Tensor or tree is None or isinstance(tree, Tensor) or _pytree.tree_is_leaf(tree):
        out.append(tree)
        return _LEAF
    raise _Other


def flatten(tree: Any) -> tuple[list[Any], Any]:
    """``(leaves, spec)``; ``spec`` is only meaningful to :func:`unflatten`."""
    out: list[Any] = []
    try:
        spec = _flat(tree, out)
    except _Other:
        leaves, tspec = _pytree.tree_flatten(tree)
        return leaves, (_TORCH, tspec)
    return out, spec


def _build(spec: Any, it: Any) -> Any:
    if spec is None:
        return next(it)
    kind = spec[0]
    if kind == _TUPLE:
        return tuple([_build(s, it) for s in spec[1]])
    if kind == _LIST:
        return [_build(s, it) for s in spec[1]]
    return dict(zip(spec[1], [_build(s, it) for s in spec[2]]))


def unflatten(spec: Any, leaves: list[Any]) -> Any:
    """Inverse of :func:`flatten` (``spec`` first, as ``ftx.tree.unflatten``)."""
    if spec is not None and spec[0] == _TORCH:
        return _pytree.tree_unflatten(leaves, spec[1])
    return _build(spec, iter(leaves))
