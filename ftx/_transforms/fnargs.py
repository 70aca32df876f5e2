"""Argument plumbing shared by custom_vjp, custom_jvp and checkpoint.

Contract: a call ``f(*args)`` is split once into the tensor leaves of the
differentiable arguments (what an ``autograd.Function`` receives) and a
:class:`CallArgs` record that rebuilds the full argument tuple from those
leaves. Non-differentiable arguments (``nondiff_argnums``) are kept whole.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.autograd.forward_ad as _forward_ad

from .. import tree as _tree
from .._internal.errors import describe, msg
from .._internal.torch_compat import top_level


def check_argnums(api: str, nondiff_argnums: Any) -> tuple[int, ...]:
    """Validate ``nondiff_argnums`` at build time: a tuple of unique non-negative ints."""
    if isinstance(nondiff_argnums, int) and not isinstance(nondiff_argnums, bool):
        nondiff_argnums = (nondiff_argnums,)
    if not isinstance(nondiff_argnums, (tuple, list)) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in nondiff_argnums
    ):
        raise TypeError(
            msg(
                api,
                "nondiff_argnums must be an int or a tuple of ints",
                describe(nondiff_argnums),
                "Pass e.g. nondiff_argnums=(0,).",
            )
        )
    nums = tuple(nondiff_argnums)
    if any(i < 0 for i in nums) or len(set(nums)) != len(nums):
        raise ValueError(
            msg(
                api,
                "nondiff_argnums must hold unique non-negative positions",
                repr(nums),
                "List each argument position once, counting from 0.",
            )
        )
    return tuple(sorted(nums))


def check_callable(api: str, name: str, value: Any) -> None:
    """Raise ``TypeError`` unless ``value`` is callable."""
    if not callable(value):
        raise TypeError(
            msg(api, f"{name} must be callable", describe(value), f"Pass a function as {name}.")
        )


def bind(
    sig: inspect.Signature | None, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """Turn keyword arguments into positional ones (JAX resolves them the same way)."""
    if not kwargs:
        return args
    if sig is None:
        raise TypeError(
            f"keyword arguments {sorted(kwargs)} cannot be bound: the signature is unknown"
        )
    bound = sig.bind(*args, **kwargs)
    bound.apply_defaults()
    return tuple(bound.args)


def signature_of(fun: Callable[..., Any]) -> inspect.Signature | None:
    """``inspect.signature(fun)``, or ``None`` for callables without one."""
    try:
        return inspect.signature(fun)
    except (TypeError, ValueError):
        return None


class CallArgs:
    """The arguments of one call, split into differentiable tensor leaves and the rest."""

    __slots__ = ("args", "diff_def", "diff_pos", "leaves", "nondiff", "nondiff_pos")

    def __init__(self, api: str, args: tuple[Any, ...], nondiff_argnums: Sequence[int]) -> None:
        n = len(args)
        bad = [i for i in nondiff_argnums if i >= n]
        if bad:
            raise ValueError(
                msg(
                    api,
                    f"nondiff_argnums to name positions below the number of arguments ({n})",
                    f"position(s) {bad}",
                    "Pass the non-differentiable arguments positionally or fix nondiff_argnums.",
                )
            )
        self.args = args
        self.nondiff_pos = tuple(nondiff_argnums)
        self.diff_pos = tuple(i for i in range(n) if i not in self.nondiff_pos)
        self.nondiff = tuple(args[i] for i in self.nondiff_pos)
        diff_args = tuple(args[i] for i in self.diff_pos)
        with_path, self.diff_def = _tree.flatten_with_path(diff_args)
        for path, leaf in with_path:
            if not isinstance(leaf, torch.Tensor):
                pos, _, rest = path.partition(".")
                where = f"argument {self.diff_pos[int(pos)]}" + (
                    f" at path '{rest}'" if rest else ""
                )
                raise TypeError(
                    msg(
                        api,
                        "differentiable arguments must be tensors or pytrees of tensors",
                        f"{describe(leaf)} in {where}",
                        "Wrap it in torch.tensor(...) or list its position in nondiff_argnums.",
                    )
                )
        self.leaves: list[torch.Tensor] = [x for _, x in with_path]

    def diff_tree(self, leaves: Sequence[Any]) -> tuple[Any, ...]:
        """The differentiable arguments (a tuple, one entry per argument) from leaves."""
        out: tuple[Any, ...] = _tree.unflatten(self.diff_def, leaves)
        return out

    def rebuild(self, leaves: Sequence[Any]) -> tuple[Any, ...]:
        """The full positional argument tuple with ``leaves`` in the differentiable slots."""
        full: list[Any] = list(self.args)
        for pos, value in zip(self.diff_pos, self.diff_tree(leaves)):
            full[pos] = value
        return tuple(full)


def plain_call(leaves: Sequence[torch.Tensor]) -> bool:
    """True when nothing differentiates this call: the function can run as is."""
    if not top_level(leaves) or _forward_ad._current_level >= 0:
        return False
    if not torch.is_grad_enabled():
        return True
    return not any(x.requires_grad for x in leaves)


def flatten_outputs(api: str, out: Any, what: str) -> tuple[list[torch.Tensor], _tree.TreeDef]:
    """Flatten an output pytree whose leaves must all be tensors."""
    with_path, treedef = _tree.flatten_with_path(out)
    for path, leaf in with_path:
        if not isinstance(leaf, torch.Tensor):
            where = f" at path '{path}'" if path else ""
            raise TypeError(
                msg(
                    api,
                    f"{what} must be a tensor or a pytree of tensors",
                    f"{describe(leaf)}{where}",
                    "Return tensors (wrap Python numbers in torch.tensor(...)).",
                )
            )
    return [x for _, x in with_path], treedef


def zeros_for(
    meta: Sequence[tuple[torch.Size, torch.dtype, torch.device]], grads: Sequence[Any]
) -> list[torch.Tensor]:
    """Replace ``None`` gradients by zeros of the recorded shape, dtype and device."""
    return [
        torch.zeros(shape, dtype=dtype, device=device) if g is None else g
        for g, (shape, dtype, device) in zip(grads, meta)
    ]


def meta_of(tensors: Sequence[torch.Tensor]) -> list[tuple[torch.Size, torch.dtype, torch.device]]:
    """Shape, dtype and device of each tensor."""
    return [(t.shape, t.dtype, t.device) for t in tensors]


def unalias(outputs: Sequence[torch.Tensor], inputs: Sequence[Any]) -> list[torch.Tensor]:
    """Return outputs that are inputs as views (autograd.Function saves inputs for backward)."""
    ids = {id(x) for x in inputs}
    return [o.view_as(o) if id(o) in ids else o for o in outputs]
