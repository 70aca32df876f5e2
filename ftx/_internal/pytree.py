"""The one fast flattener, for the per-call paths of transforms and optimizers.

The registry's own ``tree_flatten`` builds a ``TreeSpec`` object per node, a few
microseconds per call on a small parameter tree: too much for a wrapper that must cost
what ``torch.autograd.grad`` costs, or an optimizer step that flattens grads, params and
state. Plain ``dict``, ``list`` and ``tuple`` nodes (the usual parameter containers) are
walked here; any other registered node (namedtuple, ``OrderedDict``, dataclasses
registered with ``ftx.tree``) hands that subtree to the registry, so the leaf order is
always the registry's.

One rule for ``None``, JAX's and ``ftx.tree``'s: **``None`` is an empty subtree**, never
a leaf. ``flatten(None)`` has no leaves and ``unflatten`` puts the ``None`` back.

A spec is a plain, hashable-where-possible value that compares with ``==``:

* ``LEAF``: a leaf;
* ``NONE``: a ``None``;
* ``(DICT, keys, child_specs, n)``, ``(LIST, None, child_specs, n)``,
  ``(TUPLE, None, child_specs, n)``: a container; ``child_specs`` is ``None`` when every
  child is a tensor leaf (the common case, kept cheap);
* ``(REGISTERED, treespec, none_mask, n)``: another registered node, flattened by the
  registry (``none_mask`` marks the registry's ``None`` leaves, dropped here).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final, NoReturn, TypeVar, cast

import torch

from . import errors
from . import torch_compat as _tc
from .errors import msg

Tensor = torch.Tensor

# Spec kinds.
LEAF: Final = None
NONE: Final = ("None",)
DICT: Final = "dict"
LIST: Final = "list"
TUPLE: Final = "tuple"
REGISTERED: Final = "registered"

_is_leaf = _tc.tree_is_leaf


class _Other(Exception):
    """A node this module does not walk itself."""


def _children(values: Any, out: list[Any]) -> list[Any] | None:
    """Specs of a node's children; ``None`` alone when every child is a tensor leaf."""
    specs: list[Any] | None = None
    n = 0
    for c in values:
        if type(c) is Tensor:
            out.append(c)
            if specs is not None:
                specs.append(LEAF)
        else:
            if specs is None:
                specs = [LEAF] * n
            specs.append(_flat(c, out))
        n += 1
    return specs


def _flat(tree: Any, out: list[Any]) -> Any:
    t = type(tree)
    if t is dict:
        specs = _children(tree.values(), out)
        return (DICT, tuple(tree), None if specs is None else tuple(specs), len(tree))
    if t is tuple:
        specs = _children(tree, out)
        return (TUPLE, None, None if specs is None else tuple(specs), len(tree))
    if t is list:
        specs = _children(tree, out)
        return (LIST, None, None if specs is None else tuple(specs), len(tree))
    if tree is None:
        return NONE
    if t is Tensor or isinstance(tree, Tensor):
        out.append(tree)
        return LEAF
    if _is_leaf(tree):
        out.append(tree)
        return LEAF
    raw, spec = _tc.tree_flatten(tree)
    mask = tuple(v is None for v in raw)
    out.extend(v for v in raw if v is not None)
    return (REGISTERED, spec, mask if any(mask) else None, len(raw))


def flatten(tree: Any) -> tuple[list[Any], Any]:
    """``(leaves, spec)`` in the registry's leaf order, ``None`` values dropped."""
    out: list[Any] = []
    if not _tc.FAST_FLATTEN:
        raw, tspec = _tc.tree_flatten(tree)
        mask = tuple(v is None for v in raw)
        return [v for v in raw if v is not None], (REGISTERED, tspec, mask, len(raw))
    return out, _flat(tree, out)


def _build(spec: Any, leaves: list[Any], i: int) -> tuple[Any, int]:
    """The subtree for ``spec`` from ``leaves[i:]`` and the index after it."""
    if spec is LEAF:
        return leaves[i], i + 1
    if spec == NONE:
        return None, i
    kind, keys, specs, n = spec
    if kind == REGISTERED:
        if specs is None:
            vals = leaves[i : i + n]
            return _tc.tree_unflatten(vals, keys), i + n
        raw: list[Any] = []
        for none in specs:
            if none:
                raw.append(None)
            else:
                raw.append(leaves[i])
                i += 1
        return _tc.tree_unflatten(raw, keys), i
    if specs is None:  # every child a leaf
        vals = leaves[i : i + n]
        i += n
    else:
        vals = []
        for s in specs:
            v, i = _build(s, leaves, i)
            vals.append(v)
    if kind == DICT:
        return dict(zip(keys, vals)), i
    if kind == TUPLE:
        return tuple(vals), i
    return vals, i


def unflatten(spec: Any, leaves: list[Any]) -> Any:
    """Inverse of :func:`flatten` (``spec`` first, as ``ftx.tree.unflatten``)."""
    return _build(spec, leaves, 0)[0]


def num_leaves(spec: Any) -> int:
    """How many leaves a tree with this spec holds."""
    if spec is LEAF:
        return 1
    if spec == NONE:
        return 0
    kind, _, specs, n = spec
    if kind == REGISTERED:
        return n if specs is None else sum(1 for none in specs if not none)
    if specs is None:
        return int(n)
    return sum(num_leaves(s) for s in specs)


def children_of(node: Any) -> list[tuple[str, Any]] | None:
    """``(key, child)`` pairs of a pytree node, ``None`` for a leaf (no recursion)."""
    if isinstance(node, Tensor) or node is None:
        return None
    if isinstance(node, dict):
        return [(str(k), v) for k, v in node.items()]
    if isinstance(node, list | tuple):
        return [(str(i), v) for i, v in enumerate(node)]
    kids = _tc.children(node)
    return None if kids is None else [(str(i), v) for i, v in enumerate(kids)]


def find_cycle(tree: Any) -> str | None:
    """The path (``"a.0"`` form) of a container that holds itself, or ``None`` (iterative)."""
    return errors.find_cycle(tree, children_of)


def _depth(tree: Any, limit: int) -> tuple[int, str]:
    """The nesting depth of ``tree`` (capped at ``limit``) and the path of its deepest
    container, by an iterative walk."""
    best, where = 0, ""
    stack: list[tuple[Any, str, int]] = [(tree, "", 0)]
    while stack:
        node, path, d = stack.pop()
        kids = children_of(node)
        if not kids:
            continue
        if d + 1 > best:
            best, where = d + 1, path
            if best >= limit:
                break
        for key, child in kids:
            stack.append((child, f"{path}.{key}" if path else key, d + 1))
    return best, where


# Files whose frames mean a RecursionError came from walking a tree, not from ``fun``.
_TREE_WALKERS = ("pytree", "/ftx/tree.py", "validate.py", "vmap_axes.py", "errors.py")
MAX_DEPTH = 256


def raise_if_cyclic(api: str, exc: RecursionError, **trees: Any) -> NoReturn:
    """Re-raise a ``RecursionError`` met while handling ``trees`` (name -> tree) as the
    contract's ``ValueError``: naming the container that holds itself, or the path of a
    nesting too deep to walk; for a tree walk over something else (``fun``'s output or
    ``aux``), saying so. Unchanged when the recursion came from ``fun`` itself."""
    for name, tree in trees.items():
        where = find_cycle(tree)
        if where is not None:
            raise ValueError(msg(
                api, f"{name} must be a tree (no container may hold itself)",
                f"a cycle at {where!r}", "Break the cycle: store a copy or an index instead.",
            )) from None
    for name, tree in trees.items():
        depth, where = _depth(tree, MAX_DEPTH)
        if len(where) > 40:
            where = where[:37] + "..."
        if depth >= MAX_DEPTH:
            raise ValueError(msg(
                api, f"{name} must be a tree nested less than {MAX_DEPTH} deep",
                f"containers at least {depth} deep at {where!r}",
                "Flatten the nesting (a dict keyed by paths, or a list).",
            )) from None
    tb = exc.__traceback__
    files: list[str] = []
    while tb is not None:
        files.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    if any(w in f for f in files[-6:] for w in _TREE_WALKERS):
        raise ValueError(msg(
            api, f"fun's output and aux must be trees without cycles, nested less than "
            f"{MAX_DEPTH} deep", "a RecursionError while walking one",
            "Return fresh containers that do not hold themselves.",
        )) from None
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
