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

import functools
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar, cast

import torch
import torch.utils._pytree as _pytree

Tensor = torch.Tensor

_TUPLE, _LIST, _DICT, _TORCH = 1, 2, 3, 4
_LEAF: Any = None
_is_leaf = _pytree.tree_is_leaf


class _Other(Exception):
    """A node this module does not handle: fall back to torch's pytree."""


def _children(values: Any, out: list[Any]) -> Any:
    """Specs of a node's children; ``None`` alone when every child is a tensor leaf."""
    specs = None
    n = 0
    for c in values:
        if type(c) is Tensor:
            out.append(c)
            if specs is not None:
                specs.append(_LEAF)
        else:
            if specs is None:
                specs = [_LEAF] * n
            specs.append(_flat(c, out))
        n += 1
    return specs


def _flat(tree: Any, out: list[Any]) -> Any:
    t = type(tree)
    if t is dict:
        return (_DICT, tuple(tree), _children(tree.values(), out), len(tree))
    if t is tuple:
        return (_TUPLE, None, _children(tree, out), len(tree))
    if t is list:
        return (_LIST, None, _children(tree, out), len(tree))
    if t is Tensor or tree is None or isinstance(tree, Tensor) or _is_leaf(tree):
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


def _build(spec: Any, leaves: list[Any], i: int) -> tuple[Any, int]:
    """The subtree for ``spec`` from ``leaves[i:]`` and the index after it."""
    if spec is None:
        return leaves[i], i + 1
    kind, keys, specs, n = spec
    if specs is None:  # every child a leaf
        vals = leaves[i : i + n]
        i += n
    else:
        vals = []
        for s in specs:
            v, i = _build(s, leaves, i)
            vals.append(v)
    if kind == _DICT:
        return dict(zip(keys, vals)), i
    if kind == _TUPLE:
        return tuple(vals), i
    return vals, i


def unflatten(spec: Any, leaves: list[Any]) -> Any:
    """Inverse of :func:`flatten` (``spec`` first, as ``ftx.tree.unflatten``)."""
    if spec is not None and spec[0] == _TORCH:
        return _pytree.tree_unflatten(leaves, spec[1])
    return _build(spec, leaves, 0)[0]


def _children_of(node: Any) -> list[tuple[str, Any]] | None:
    """``(key, child)`` pairs of a pytree node, ``None`` for a leaf (no recursion)."""
    if isinstance(node, Tensor) or node is None:
        return None
    if isinstance(node, dict):
        return [(str(k), v) for k, v in node.items()]
    if isinstance(node, list | tuple):
        return [(str(i), v) for i, v in enumerate(node)]
    entry = _pytree.SUPPORTED_NODES.get(type(node))
    if entry is None:
        return None
    children, _ = entry.flatten_fn(node)
    return [(str(i), v) for i, v in enumerate(children)]


def find_cycle(tree: Any) -> str | None:
    """The path (``"a.0"`` form) of a container that holds itself, or ``None``.

    Iterative depth-first walk, so it cannot itself hit the recursion limit.
    """
    on_path: set[int] = set()
    stack: list[tuple[Any, str, bool]] = [(tree, "", False)]
    while stack:
        node, path, leaving = stack.pop()
        if leaving:
            on_path.discard(id(node))
            continue
        kids = _children_of(node)
        if not kids:
            continue
        if id(node) in on_path:
            return path or "<root>"
        on_path.add(id(node))
        stack.append((node, path, True))
        for key, child in reversed(kids):
            stack.append((child, f"{path}.{key}" if path else key, False))
    return None


def raise_if_cyclic(api: str, exc: RecursionError, **trees: Any) -> NoReturn:
    """Re-raise a ``RecursionError`` met while handling ``trees`` (name -> tree): as a
    ``ValueError`` naming the container that holds itself, or unchanged when no tree has
    a cycle (the recursion then came from ``fun`` itself)."""
    for name, tree in trees.items():
        where = find_cycle(tree)
        if where is not None:
            raise ValueError(
                f"ftx.{api}: {name} must be a tree (no container may hold itself), got a "
                f"cycle at {where!r}. Break the cycle: store a copy or an index instead."
            ) from None
    raise exc


_F = TypeVar("_F", bound=Callable[..., Any])


def cycle_safe(api: str) -> Callable[[_F], _F]:
    """Decorate a public entry point: a ``RecursionError`` from a cyclic argument becomes
    the ``ValueError`` of :func:`raise_if_cyclic` (no cost unless one is raised)."""

    def deco(fn: _F) -> _F:
        @functools.wraps(fn)
        def safe(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except RecursionError as e:
                raise_if_cyclic(api, e, arguments=(args, kwargs))

        return cast(_F, safe)

    return deco
