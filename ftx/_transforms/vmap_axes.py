"""Axis plumbing for ``ftx.vmap``: axis-spec checks, JAX prefix broadcasting, message helpers.

Contract: ``broadcast(prefix, tree)`` gives one axis (int or None) per leaf of
``tree`` from a prefix pytree of axes, matching dict entries by key (torch's
``_broadcast_to_and_flatten`` pairs them by position), or ``None`` when
``prefix`` is not a prefix of ``tree``. The other helpers validate axis specs
at build time and describe leaves for error messages.
"""

from __future__ import annotations

import traceback
from typing import Any

import torch

from .._internal import torch_compat as _tc
from .._internal.errors import describe, msg
from ..tree import keystr

_TORCH_OUT_FRAMES = {"_unwrap_batched", "_maybe_remove_batch_dim", "_remove_batch_dim"}


def check_axes(name: str, axes: Any) -> None:
    """Build time: every leaf of ``axes`` is an int or None (torch pytrees: None is a leaf)."""
    for path, leaf in _tc.tree_leaves_with_path(axes):
        if leaf is None or (isinstance(leaf, int) and not isinstance(leaf, bool)):
            continue
        where = f" at {keystr(path)!r}" if path else ""
        raise TypeError(
            msg(
                "vmap",
                f"{name} leaves must be ints or None",
                f"{describe(leaf)}{where} in {name}={axes!r}",
                "Use an axis index such as 0 or -1, or None for no mapping.",
            )
        )


def check_count(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            msg("vmap", f"{name} must be a positive int or None", describe(value),
                f"Pass e.g. {name}=8.")
        )
    if value < 1:
        raise ValueError(
            msg("vmap", f"{name} must be a positive int or None", repr(value),
                f"Pass e.g. {name}=8.")
        )


def arg_path(path: tuple[Any, ...]) -> str:
    """Describe a leaf of ``(args, kwargs)`` by its path: ``argument 0 at 'w'``."""
    kind, pos, rest = path[0], path[1], path[2:]
    if kind == _tc.SequenceKey(0):
        head = f"argument {pos.idx}"
    else:
        head = f"keyword argument {pos.key!r}"
    return head + (f" at {keystr(rest)!r}" if rest else "")


def is_axis(x: Any) -> bool:
    return x is None or (isinstance(x, int) and not isinstance(x, bool))


def flat_axes(axes: Any) -> bool:
    """An int/None or a flat tuple of those: torch.func.vmap handles it exactly."""
    return is_axis(axes) or (isinstance(axes, tuple) and all(is_axis(a) for a in axes))


def broadcast(prefix: Any, tree: Any) -> list[Any] | None:
    """One axis per leaf of ``tree`` from a prefix pytree of axes; None if it is no prefix.

    Dicts match by key, whatever their order (torch's ``_broadcast_to_and_flatten``
    pairs dict entries by position).
    """
    if is_axis(prefix):
        return [prefix] * len(_tc.tree_leaves(tree))
    if type(prefix) is not type(tree) or _tc.tree_is_leaf(tree):
        return None
    if isinstance(prefix, dict):
        if prefix.keys() != tree.keys():
            return None
        pairs = [(prefix[k], v) for k, v in tree.items()]
    else:
        node = _tc.SUPPORTED_NODES[type(tree)]
        p_children, p_ctx = node.flatten_fn(prefix)
        t_children, t_ctx = node.flatten_fn(tree)
        if p_ctx != t_ctx or len(p_children) != len(t_children):
            return None
        pairs = list(zip(p_children, t_children))
    out: list[Any] = []
    for p, t in pairs:
        sub = broadcast(p, t)
        if sub is None:
            return None
        out.extend(sub)
    return out


def out_path(out: Any, i: int) -> str:
    """The path of the ``i``-th leaf of an output, for messages."""
    return keystr(_tc.tree_leaves_with_path(out)[i][0]) or "<root>"


def shapes(tree: Any) -> Any:
    """A pytree with each tensor replaced by its shape, for messages."""
    return _tc.tree_map(
        lambda x: tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__, tree
    )


def from_torch_output(exc: BaseException) -> bool:
    """True when ``exc`` was raised by torch's output unbatching (so out_axes is at fault)."""
    names = {frame.name for frame in traceback.extract_tb(exc.__traceback__)}
    return bool(names & _TORCH_OUT_FRAMES)
