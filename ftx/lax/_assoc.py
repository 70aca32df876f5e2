"""``associative_scan``: a parallel prefix scan (Blelloch), as ``jax.lax.associative_scan``.

The same recursion as JAX's (pairs combined, the half-length scan by recursion, the
even elements from the odd ones, interleaved), on tensor slices: ``2 log2(n)`` calls
of ``fn``, each on whole slices, in ordinary tensor operations, so every transform
and ``jit`` compose with it (the recursion depth is fixed by the shapes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .._internal.errors import check_bool, check_callable, check_int, describe, msg
from ._common import flatten, unflatten

__all__ = ["associative_scan"]

_API = "lax.associative_scan"


def _slice(x: torch.Tensor, axis: int, start: int, stop: int | None, step: int) -> torch.Tensor:
    return x[(slice(None),) * axis + (slice(start, stop, step),)]


def _interleave(a: torch.Tensor, b: torch.Tensor, axis: int) -> torch.Tensor:
    """``a[0], b[0], a[1], b[1], ...`` along ``axis`` (``a`` has as many or one more)."""
    na, nb = a.shape[axis], b.shape[axis]
    head = _slice(a, axis, 0, nb, 1)
    pairs = torch.stack([head, b], dim=axis + 1).flatten(axis, axis + 1)
    if na == nb:
        return pairs
    return torch.cat([pairs, _slice(a, axis, nb, None, 1)], dim=axis)


def associative_scan(fn: Callable[[Any, Any], Any], elems: Any, reverse: bool = False,
                     axis: int = 0) -> Any:
    """All prefix combinations ``fn(...fn(fn(e0, e1), e2)..., ek)`` along ``axis``, in
    ``O(log n)`` depth, as ``jax.lax.associative_scan``.

    Args:
        fn: an associative function of two pytrees shaped like ``elems``, applied to whole
            slices along ``axis`` (elementwise in that axis, like ``torch.add`` or a batched
            ``matmul``).
        elems: a pytree of tensors with a common length along ``axis``.
        reverse: scan from the end (``result[k]`` combines ``elems[k:]``).
        axis: the axis to scan along.

    Returns:
        A pytree like ``elems``: ``result[k] = fn(... fn(elems[0], elems[1]) ..., elems[k])``.

    Example:
        >>> import torch, ftx
        >>> ftx.lax.associative_scan(torch.add, torch.arange(4.0))
        tensor([0., 1., 3., 6.])
        >>> ftx.lax.associative_scan(torch.add, torch.arange(4.0), reverse=True)
        tensor([6., 6., 5., 3.])
    """
    check_callable(_API, "fn", fn)
    check_bool(_API, "reverse", reverse)
    leaves, spec = flatten(elems)
    if not leaves:
        return elems
    for k, x in enumerate(leaves):
        if not isinstance(x, torch.Tensor) or x.dim() == 0:
            raise TypeError(msg(_API, "every leaf of elems must be a tensor with at least one "
                                "axis", f"leaf {k}: {describe(x)}", "Pass stacked tensors."))
    ndim = leaves[0].dim()
    ax = check_int(_API, "axis", axis, low=-ndim, high=ndim - 1) % ndim
    n = leaves[0].shape[ax]
    if any(x.dim() <= ax or x.shape[ax] != n for x in leaves):
        raise ValueError(msg(_API, f"every leaf of elems must have the same length along axis "
                             f"{axis}", f"shapes {[tuple(x.shape) for x in leaves]}",
                             "Stack the elements to one length."))
    if reverse:
        leaves = [x.flip(ax) for x in leaves]

    def combine(a: list[torch.Tensor], b: list[torch.Tensor]) -> list[torch.Tensor]:
        out, out_spec = flatten(fn(unflatten(spec, a), unflatten(spec, b)))
        if out_spec != spec or len(out) != len(a):
            raise TypeError(msg(_API, "fn must return a pytree of elems' structure",
                                describe(unflatten(out_spec, out)),
                                "Combine two elements into one of the same structure."))
        return out

    def scan(xs: list[torch.Tensor]) -> list[torch.Tensor]:
        m = xs[0].shape[ax]
        if m < 2:
            return xs
        reduced = combine([_slice(x, ax, 0, -1, 2) for x in xs],
                          [_slice(x, ax, 1, None, 2) for x in xs])
        odd = scan(reduced)
        if m % 2 == 0:
            even = combine([_slice(o, ax, 0, -1, 1) for o in odd],
                           [_slice(x, ax, 2, None, 2) for x in xs])
        else:
            even = combine(odd, [_slice(x, ax, 2, None, 2) for x in xs])
        even = [torch.cat([_slice(x, ax, 0, 1, 1), e], dim=ax) for x, e in zip(xs, even)]
        return [_interleave(e, o, ax) for e, o in zip(even, odd)]

    out = scan(leaves)
    if reverse:
        out = [x.flip(ax) for x in out]
    return unflatten(spec, out)
