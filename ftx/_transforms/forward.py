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

Flat = tuple[Any, Any, Any]
# flat_args' spec for primals that are a tuple of plain tensors (handed on as they are)
_TENSORS = ("tensors",)


def flat_args(primals: Any, tangents: Any) -> Flat | None:
    """The common case of ``jvp``'s arguments, checked in one pass over the leaves.

    ``(primal_leaves, tangent_leaves, spec)`` when ``primals`` and ``tangents`` are
    tuples/lists of one structure whose leaves are plain dense floating (or complex)
    tensors, pairwise of one shape, dtype and device; ``None`` for anything else
    (numbers, mismatches, subclasses), which the full checks handle and name. When every
    primal is itself a tensor, the leaves are ``tuple(primals)`` and the spec ``_TENSORS``.
    """
    tp, tt = type(primals), type(tangents)
    if (tp is not tuple and tp is not list) or (tt is not tuple and tt is not list):
        return None
    if len(primals) != len(tangents):
        return None
    if _SHORTCUTS and _pairs_ok(primals, tangents):  # a tuple of tensors: no flattening
        return tuple(primals), tuple(tangents), _TENSORS
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


def _expanded(x: torch.Tensor) -> bool:
    """Elements sharing memory (stride 0, as ``expand`` makes): forward mode cannot write
    a tangent into such a tensor."""
    return not x.is_contiguous() and any(st == 0 and n > 1 for st, n in zip(x.stride(), x.shape))


def _pack_out(api: str, box: AuxCarrier, out: Any) -> list[torch.Tensor]:
    """``fun``'s output as the list of tensors ``torch.func.jvp`` returns from."""
    res = box.pack(out)
    if len(res) != len(box._leaves):  # a non-tensor leaf: the naming check raises
        output_leaves_check(api, out, _FIX)
    if not res:  # no output tensor (JAX: an empty pytree); torch.func.jvp needs one
        res = [torch.zeros(())]
    return res


def _unpack_out(box: AuxCarrier, res: tuple[Any, ...]) -> tuple[Any, Any]:
    """``(primals_out, tangents_out)`` rebuilt from what :func:`_pack_out` handed over."""
    if not any(isinstance(x, torch.Tensor) for x in box._leaves):  # the stand-in output
        return box.unpack([]), box.unpack([])
    return box.unpack(res[0]), box.unpack(res[1])


def _jvp_tensors(
    api: str, fun: Callable[..., Any], primals: tuple[torch.Tensor, ...],
    tangents: tuple[torch.Tensor, ...], has_aux: bool,
) -> tuple[Any, Any, Any]:
    """:func:`jvp_flat` for primals that are a tuple of plain tensors: they go to
    ``torch.func.jvp`` as they are, and a plain tensor output comes back unpacked."""
    out_box: AuxCarrier | None = None
    aux_box = AuxCarrier()

    def inner(*diff: torch.Tensor) -> Any:
        nonlocal out_box
        out = fun(*diff)
        if has_aux:
            out, aux = split_aux(api, out)
            if type(out) is not _Tensor:
                out_box = AuxCarrier()
                out = _pack_out(api, out_box, out)
            return out, aux_box.pack(aux)
        if type(out) is not _Tensor:
            out_box = AuxCarrier()
            out = _pack_out(api, out_box, out)
        return out

    result: tuple[Any, ...] = torch.func.jvp(inner, primals, tangents, has_aux=has_aux)
    aux = aux_box.unpack(result[2]) if has_aux else None
    if out_box is None:
        return result[0], result[1], aux
    return (*_unpack_out(out_box, result), aux)


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
        if spec is _TENSORS:
            if leaves and not any(_expanded(x) for x in leaves):
                return _jvp_tensors(api, fun, leaves, t_leaves, has_aux)
            leaves, t_leaves = list(leaves), list(t_leaves)
            spec = (_ft.TUPLE, None, None, len(leaves))  # what the flattener builds
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
    if any(_expanded(leaves[k]) for k in pos):
        leaves = [x.contiguous() if isinstance(x, torch.Tensor) else x for x in leaves]
    out_box, aux_box = AuxCarrier(), AuxCarrier()

    def inner(*diff: torch.Tensor) -> Any:
        new = list(leaves)
        for k, d in zip(pos, diff):
            new[k] = d
        out = fun(*_ft.unflatten(spec, new))
        aux = None
        if has_aux:
            out, aux = split_aux(api, out)
        res = _pack_out(api, out_box, out)
        return (res, aux_box.pack(aux)) if has_aux else res

    result: tuple[Any, ...] = torch.func.jvp(
        inner,
        tuple(leaves[k] for k in pos),
        tuple(t_leaves[k] for k in pos),
        has_aux=has_aux,
    )
    aux = aux_box.unpack(result[2]) if has_aux else None
    return (*_unpack_out(out_box, result), aux)
