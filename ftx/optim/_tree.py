"""Fast flatten/unflatten for optimizer trees, with structure errors that name paths.

Optimizers flatten the grads, the params and every per-parameter state tree at
each update, so flattening must be cheap. Plain ``dict``/``list``/``tuple``
nestings (the common parameter containers) are walked here directly, about ten
times faster than the registry's ``tree_flatten``; any other registered node
(namedtuple, ``OrderedDict``, dataclasses registered with ``ftx.tree``) is
handed to the registry for that subtree, so the leaf order is always
the registry's. ``None`` is an empty subtree, as in :mod:`ftx.tree`.

The leaf checks compare ``(shape, dtype)`` lists built with ``map`` (C speed; a
plain loop while ``torch.compile`` traces, which cannot trace ``attrgetter``) and
look up paths only once a check has failed. A tree that contains itself raises
``ValueError`` (never ``RecursionError``), found after the fact by the shared cycle search.
"""

from __future__ import annotations

import operator
from typing import Any

import torch

from .. import tree as _ftree
from .._internal import pytree as _ft
from .._internal import torch_compat as _tc
from .._internal.errors import describe, msg, nesting_error
from .._internal.torch_compat import is_compiling

_Tensor = torch.Tensor
_NODES = _tc.SUPPORTED_NODES
_node_type = _tc.node_type


FLOATS = frozenset({torch.float16, torch.bfloat16, torch.float32, torch.float64})
"""The dtypes an optimizer accepts for params, grads, state buffers and updates."""
FLOAT_NAMES = "float16, bfloat16, float32 or float64"

_META = operator.attrgetter("shape", "dtype")
DTYPE = operator.attrgetter("dtype")
_SECOND = operator.itemgetter(1)


def flatten(tree: Any, api: str = "optim", name: str = "tree") -> tuple[list[Any], Any]:
    """``(leaves, sig)`` through ftx's one fast flattener (``None`` an empty subtree);
    ``sig`` compares with ``==``.

    ``api`` and ``name`` only feed the ``ValueError`` raised for a tree that contains itself.
    """
    try:
        return _ft.flatten(tree)
    except RecursionError:
        raise cycle_error(api, name, tree) from None


unflatten = _ft.unflatten


def mismatch(api: str, name: str, tree: Any, ref_name: str, ref: Any) -> ValueError | TypeError:
    """A ``ValueError`` naming the paths where ``tree`` and ``ref`` differ.

    A non-tensor leaf also changes the structure signature of :func:`flatten`: that is
    reported first, as the ``TypeError`` of :func:`check_tensors`.
    """
    for n, t in ((name, tree), (ref_name, ref)):
        try:
            check_tensors(api, n, t, flatten(t)[0])
        except TypeError as err:
            return err
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
    return ValueError(msg(
        api, f"{name} must have the structure of {ref_name}", got,
        f"Pass {name} with the same containers, keys and None entries as {ref_name}.",
    ))


def check_tensors(api: str, name: str, tree: Any, leaves: list[Any]) -> None:
    """Raise ``TypeError`` naming the first leaf that is not a tensor."""
    for x in leaves:
        if not isinstance(x, _Tensor):
            path = next(
                (p for p, v in _ftree.leaves_with_path(tree) if v is x), "?"
            )
            raise TypeError(msg(api, f"every leaf of {name} must be a tensor",
                                f"{describe(x)} at path {path!r}",
                                "Convert numbers with torch.as_tensor."))




def cycle_error(api: str, name: str, tree: Any) -> ValueError:
    """The ``ValueError`` for a tree a recursive walk could not finish (a cycle or too deep)."""
    return nesting_error(api, name, tree, _ft.children_of)


def metas(leaves: list[Any]) -> list[Any]:
    """``[(shape, dtype)]`` of tensor leaves (``AttributeError`` for other leaves)."""
    if is_compiling():
        return [(x.shape, x.dtype) for x in leaves]
    return list(map(_META, leaves))


def all_float(leaves: list[Any]) -> bool:
    """Every leaf a real floating tensor (float16/bfloat16/float32/float64)."""
    if is_compiling():
        return all(x.dtype in FLOATS for x in leaves)
    try:
        return FLOATS.issuperset(map(DTYPE, leaves))
    except (AttributeError, TypeError):  # a leaf without a (hashable) dtype
        return False


def floats_in(ms: list[Any]) -> bool:
    """Every ``(shape, dtype)`` of :func:`metas` has a real floating dtype."""
    if is_compiling():
        return all(m[1] in FLOATS for m in ms)
    return FLOATS.issuperset(map(_SECOND, ms))


def path_at(tree: Any, i: int) -> str:
    """The path of leaf ``i`` of ``tree`` (for error messages)."""
    try:
        return _ftree.leaves_with_path(tree)[i][0]
    except Exception:  # pragma: no cover - exotic nodes: the index still helps
        return f"<leaf {i}>"


def check_float(api: str, name: str, tree: Any, leaves: list[Any]) -> None:
    """Raise ``TypeError`` naming the first leaf that is not a real floating tensor."""
    check_tensors(api, name, tree, leaves)
    for i, x in enumerate(leaves):
        if x.dtype in FLOATS:
            continue
        path = path_at(tree, i)
        if x.is_complex():
            raise TypeError(msg(
                api, f"{name} must be real tensors", f"{describe(x)} at path {path!r}",
                "Optimise torch.view_as_real(param) instead.",
            ))
        raise TypeError(msg(
            api, f"every leaf of {name} must be a floating tensor ({FLOAT_NAMES})",
            f"{describe(x)} at path {path!r}",
            "Keep integer and bool tensors (counters, indices, masks) out of the optimised "
            "tree, or cast them with .float().",
        ))


def check_like(api: str, name: str, tree: Any, leaves: list[Any], ref_name: str,
               ref_tree: Any, ref_leaves: list[Any], fix: str) -> None:
    """Raise ``ValueError`` naming the first leaf whose shape or dtype differs from ``ref``."""
    check_tensors(api, name, tree, leaves)
    check_tensors(api, ref_name, ref_tree, ref_leaves)
    for i, (x, r) in enumerate(zip(leaves, ref_leaves)):
        if x.shape != r.shape or x.dtype != r.dtype:
            raise ValueError(msg(
                api, f"every leaf of {name} must have the shape and dtype of {ref_name}",
                f"{name} {tuple(x.shape)} {x.dtype} and {ref_name} {tuple(r.shape)} {r.dtype} "
                f"at path {path_at(ref_tree, i)!r}",
                fix,
            ))


def check_devices(api: str, names: list[str], trees: list[Any], leaf_lists: list[list[Any]]
                  ) -> None:
    """Raise ``ValueError`` naming the first leaf on another device than ``names[0]``'s."""
    ref = leaf_lists[0]
    for name, tree, leaves in zip(names[1:], trees[1:], leaf_lists[1:]):
        for i, (x, r) in enumerate(zip(leaves, ref)):
            if x.device != r.device:
                raise ValueError(msg(
                    api, f"every leaf of {name} must be on the device of {names[0]}",
                    f"{name} on {x.device} and {names[0]} on {r.device} at path "
                    f"{path_at(tree, i)!r}",
                    "Keep grads, params, state and updates on one device (a meta tensor "
                    "holds no data to compute with).",
                ))
