"""Forward-mode engine behind ``ftx.jvp``, ``ftx.linearize`` and ``ftx.hvp``.

``torch.func.jvp`` takes tuples of tensors and returns tensors only; ftx
follows JAX, where ``None`` is an empty subtree of the primals and of the
output, and ``aux`` may hold any Python values. This module flattens the
primals, hands ``torch.func.jvp`` the tensor leaves, and rebuilds the output
and ``aux`` structures afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.func

from .._internal import pytree as _ft
from .._internal import torch_compat as _tc
from .reverse import AuxCarrier
from .validate import output_leaves_check, split_aux

_FIX = "Return a tensor or a pytree of tensors."
_Tensor = torch.Tensor
_STRIDED = torch.strided
# The per-call shortcuts below (tensor-only primals skip the flattener, a tensor output
# skips the output packing) are off under FTX_SLOW_ROUTES=1, so the general code runs there.
_SHORTCUTS = not _tc.SLOW_ROUTES

Flat = tuple[list[Any], list[Any], Any]


def flat_args(primals: Any, tangents: Any) -> Flat | None:
    """The common case of ``jvp``'s arguments, checked in one pass over the leaves.

    ``(primal_leaves, tangent_leaves, spec)`` when ``primals`` and ``tangents`` are
    tuples/lists of one structure whose leaves are plain dense floating (or complex)
    tensors, pairwise of one shape, dtype and device; ``None`` for anything else
    (numbers, mismatches, subclasses), which the full checks handle and name.
    """
    tp, tt = type(primals), type(tangents)
    if (tp is not tuple and tp is not list) or (tt is not tuple and tt is not list):
        return None
    n = len(primals)
    if n != len(tangents):
        return None
    if _SHORTCUTS and _pairs_ok(primals, tangents):  # a tuple of tensors: the spec the
        return list(primals), list(tangents), (_ft.TUPLE, None, None, n)  # flattener builds
    pl, spec = _ft.flatten(tuple(primals))
    tl, ts = _ft.flatten(tuple(tangents))
    if spec != ts or not _pairs_ok(pl, tl):
        return None
    return pl, tl, spec


def _pairs_ok(primals: Sequence[Any], tangents: Sequence[Any]) -> bool:
    """Every ``(primal, tangent)`` pair: plain dense floating (or complex) tensors of one
    shape, dtype and device."""
    for p, t in zip(primals, tangents):
        if (
            type(p) is not _Tensor
            or type(t) is not _Tensor
            or p.layout != _STRIDED
            or t.layout != _STRIDED
            or not (p.is_floating_point() or p.is_complex())
            or p.dtype is not t.dtype
            or p.shape != t.shape
            or p.device != t.device
        ):
            return False
    return True


def jvp_flat(
    api: str,
    fun: Callable[..., Any],
    primals: tuple[Any, ...],
    tangents: tuple[Any, ...],
    has_aux: bool,
    flat: Flat | None = None,
) -> tuple[Any, Any, Any]:
    """``(primals_out, tangents_out, aux)``; arguments already validated to match.

    ``flat``: the leaves and spec :func:`flat_args` already computed, if it did.
    """
    if flat is None:
        leaves, spec = _ft.flatten(primals)
        t_leaves = _ft.flatten(tangents)[0]
    else:
        leaves, t_leaves, spec = flat
    # every primal a tensor (no None, no container): fun takes the leaves as they are
    direct = _SHORTCUTS and spec == (_ft.TUPLE, None, None, len(primals))
    pos = range(len(leaves)) if direct else [k for k, x in enumerate(leaves) if x is not None]
    if not pos:  # nothing to differentiate (JAX: empty primals): zero tangents out
        out = fun(*primals)
        aux = None
        if has_aux:
            out, aux = split_aux(api, out)
        output_leaves_check(api, out, _FIX)
        zeros = _ft.flatten(out)
        t_out = [None if o is None else torch.zeros_like(o) for o in zeros[0]]
        return out, _ft.unflatten(zeros[1], t_out), aux
    for k in pos:  # forward mode writes tangents into its inputs: no expanded (stride-0) ones
        x = leaves[k]
        if not x.is_contiguous() and any(st == 0 and n > 1 for st, n in zip(x.stride(), x.shape)):
            leaves = [x.contiguous() if isinstance(x, torch.Tensor) else x for x in leaves]
            direct = False
            break
    out_box = AuxCarrier()
    aux_box = AuxCarrier() if has_aux else out_box
    single = False  # fun returned one plain tensor, handed to torch.func.jvp as it is

    def inner(*diff: torch.Tensor) -> Any:
        nonlocal single
        if direct:
            out = fun(*diff)
        else:
            new = list(leaves)
            for k, d in zip(pos, diff):
                new[k] = d
            out = fun(*_ft.unflatten(spec, new))
        aux = None
        if has_aux:
            out, aux = split_aux(api, out)
        res: Any
        if _SHORTCUTS and type(out) is _Tensor:
            single = True
            res = out
        else:
            res = out_box.pack(out)
            if len(res) != len(out_box._leaves):  # a non-tensor leaf: the naming check raises
                output_leaves_check(api, out, _FIX)
            if not res:  # no output tensor (JAX: an empty pytree); torch.func.jvp needs one
                res = [torch.zeros(())]
        return (res, aux_box.pack(aux)) if has_aux else res

    result: tuple[Any, ...] = torch.func.jvp(
        inner,
        tuple(leaves) if direct else tuple(leaves[k] for k in pos),
        tuple(t_leaves) if direct else tuple(t_leaves[k] for k in pos),
        has_aux=has_aux,
    )
    aux = aux_box.unpack(result[2]) if has_aux else None
    if single:
        return result[0], result[1], aux
    if not any(isinstance(x, torch.Tensor) for x in out_box._leaves):  # the stand-in output
        return out_box.unpack([]), out_box.unpack([]), aux
    return out_box.unpack(result[0]), out_box.unpack(result[1]), aux
