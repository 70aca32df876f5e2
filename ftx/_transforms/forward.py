"""Forward-mode engine behind ``ftx.jvp``, ``ftx.linearize`` and ``ftx.hvp``.

``torch.func.jvp`` takes tuples of tensors and returns tensors only; ftx
follows JAX, where ``None`` is an empty subtree of the primals and of the
output, and ``aux`` may hold any Python values. This module flattens the
primals, hands ``torch.func.jvp`` the tensor leaves, and rebuilds the output
and ``aux`` structures afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.func

from .._internal import pytree as _ft
from .reverse import AuxCarrier
from .validate import output_leaves_check, split_aux

_FIX = "Return a tensor or a pytree of tensors."
_Tensor = torch.Tensor
_STRIDED = torch.strided


def args_ok(primals: Any, tangents: Any) -> bool:
    """The common case of ``jvp``'s arguments, checked in one pass over the leaves.

    True when ``primals`` and ``tangents`` are tuples/lists of one structure whose leaves
    are plain dense floating (or complex) tensors, pairwise of one shape, dtype and
    device. Anything else (numbers, mismatches, subclasses) is for the full checks, which
    name the offending leaf.
    """
    tp, tt = type(primals), type(tangents)
    if (tp is not tuple and tp is not list) or (tt is not tuple and tt is not list):
        return False
    if len(primals) != len(tangents):
        return False
    pl, ps = _ft.flatten(tuple(primals))
    tl, ts = _ft.flatten(tuple(tangents))
    if ps != ts:
        return False
    for p, t in zip(pl, tl):
        if (
            type(p) is not _Tensor
            or type(t) is not _Tensor
            or p.layout != _STRIDED
            or t.layout != _STRIDED
            or not (p.is_floating_point() or p.is_complex())
            or p.dtype != t.dtype
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
) -> tuple[Any, Any, Any]:
    """``(primals_out, tangents_out, aux)``; arguments already validated to match."""
    leaves, spec = _ft.flatten(primals)
    t_leaves = _ft.flatten(tangents)[0]
    pos = [k for k, leaf in enumerate(leaves) if leaf is not None]
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
            break
    out_box, aux_box = AuxCarrier(), AuxCarrier()

    def inner(*diff: torch.Tensor) -> Any:
        new = list(leaves)
        for k, d in zip(pos, diff):
            new[k] = d
        out = fun(*_ft.unflatten(spec, new))
        aux = None
        if has_aux:
            out, aux = split_aux(api, out)
        flat_out = out_box.pack(out)
        if len(flat_out) != len(out_box._leaves):  # a non-tensor leaf: the naming check raises
            output_leaves_check(api, out, _FIX)
        if not flat_out:  # no output tensor (JAX: an empty pytree); torch.func.jvp needs one
            flat_out = [torch.zeros(())]
        return (flat_out, aux_box.pack(aux)) if has_aux else flat_out

    res: tuple[Any, ...] = torch.func.jvp(
        inner,
        tuple(leaves[k] for k in pos),
        tuple(t_leaves[k] for k in pos),
        has_aux=has_aux,
    )
    aux = aux_box.unpack(res[2]) if has_aux else None
    if not any(isinstance(x, torch.Tensor) for x in out_box._leaves):  # the stand-in output
        return out_box.unpack([]), out_box.unpack([]), aux
    return out_box.unpack(res[0]), out_box.unpack(res[1]), aux
