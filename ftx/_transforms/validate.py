"""Validation shared by the transforms: build-time checks and cheap call-time checks.

Build time (when a transform is made): ``fun`` is callable, ``argnums`` is an int
or a non-empty tuple of unique ints. Call time (cheap, once per call): ``argnums``
in range for the arguments given, differentiated leaves are tensors of a
differentiable dtype, ``has_aux`` functions return a pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .._internal import torch_compat as _tc
from .._internal.errors import describe, msg
from ..tree import keystr

Argnums = int | tuple[int, ...]


def check_callable(api: str, fun: Any) -> None:
    """Raise ``TypeError`` unless ``fun`` is callable."""
    if not callable(fun):
        raise TypeError(msg(api, "fun must be callable", describe(fun),
                            f"Pass the function itself, e.g. ftx.{api}(f), not f(x)."))


def normalize_argnums(api: str, argnums: Any) -> tuple[int, ...]:
    """Build-time check of ``argnums``: an int or a non-empty sequence of unique ints."""
    if isinstance(argnums, bool) or not isinstance(argnums, int | Sequence) or isinstance(
        argnums, str | bytes
    ):
        raise TypeError(msg(api, "argnums must be an int or a sequence of ints",
                            describe(argnums), "Use argnums=0 or argnums=(0, 1)."))
    if isinstance(argnums, int):
        return (argnums,)
    nums: tuple[int, ...] = tuple(argnums)  # JAX takes any sequence, a list as a tuple
    if len(nums) == 0:
        raise ValueError(msg(api, "argnums must be a non-empty tuple", "()",
                             "Name at least one positional argument to differentiate."))
    for a in nums:
        if isinstance(a, bool) or not isinstance(a, int):
            raise TypeError(msg(api, "argnums must hold only ints",
                                f"{describe(a)} in {argnums!r}",
                                "Use positional indices such as (0, 1)."))
    if len(set(nums)) != len(nums):
        raise ValueError(msg(api, "argnums must be unique", repr(argnums),
                             "Name each argument once."))
    return nums


def resolve_argnums(api: str, argnums: tuple[int, ...], nargs: int) -> tuple[int, ...]:
    """Call-time check: each index in range for ``nargs`` positional args; negatives resolved."""
    out = []
    for a in argnums:
        if not -nargs <= a < nargs:
            raise ValueError(msg(
                api, f"argnums must index the {nargs} positional argument(s) passed",
                f"argnums={a}", f"Pass more arguments or use an index below {nargs}.",
            ))
        out.append(a % nargs)
    if len(set(out)) != len(out):
        raise ValueError(msg(api, "argnums must name distinct arguments",
                             f"{argnums!r} for {nargs} argument(s)", "Name each argument once."))
    return tuple(out)


def split_aux(api: str, out: Any) -> tuple[Any, Any]:
    """Split ``(output, aux)`` for ``has_aux=True``; raise if ``out`` is not a pair."""
    if not isinstance(out, tuple | list) or len(out) != 2:
        got = (
            f"a {type(out).__name__} of length {len(out)}"
            if isinstance(out, tuple | list)
            else describe(out)
        )
        raise TypeError(msg(api, "with has_aux=True, fun must return a pair (output, aux)",
                            got, "Return `out, aux` or set has_aux=False."))
    return out[0], out[1]


def check_diff_leaves(
    api: str, args: Sequence[Any], argnums: tuple[int, ...], allow_int: bool
) -> None:
    """Call-time check: the differentiated leaves are tensors; ints/bools only with allow_int."""
    for i in argnums:
        for path, leaf in _tc.tree_leaves_with_path(args[i]):
            if leaf is None:
                continue
            if not isinstance(leaf, torch.Tensor):
                raise TypeError(msg(api, "differentiated inputs must be tensors",
                                    f"{describe(leaf)} for {_arg_where(i, path)}",
                                    not_a_tensor_fix(leaf)))
            if not (leaf.is_floating_point() or leaf.is_complex()) and not allow_int:
                raise TypeError(msg(
                    api, "differentiated inputs must have a floating dtype",
                    f"{leaf.dtype} for {_arg_where(i, path)}",
                    "Cast it to a float dtype, or pass allow_int=True to get zero gradients "
                    "for integer inputs.",
                ))


def not_a_tensor_fix(leaf: Any) -> str:
    """How to fix a non-tensor where a differentiated tensor (or parameter pytree) belongs."""
    if isinstance(leaf, torch.nn.Module):
        return (
            "Differentiate the module's parameters, not the module: "
            "params = ftx.nn.params_of(module) (or apply_fn, params = "
            "ftx.nn.from_module(module)) and pass params."
        )
    if type(leaf).__module__.startswith("ftx.nn"):
        return (
            "Differentiate the layer's parameters, not the layer: params = layer.init(key) "
            "and pass params (call layer(params, x) inside fun)."
        )
    return "Wrap it with torch.tensor(..., dtype=torch.float64) or move it out of argnums."


def output_leaves_check(api: str, out: Any, fix: str) -> None:
    """Call-time check that every output leaf is a tensor (JAX needs array outputs)."""
    for path, leaf in _tc.tree_leaves_with_path(out):
        if leaf is not None and not isinstance(leaf, torch.Tensor):
            where = keystr(path) or "<root>"
            raise TypeError(msg(api, "fun must return tensors",
                                f"{describe(leaf)} at output {where!r}", fix))


def check_flat_diff_leaves(
    api: str,
    leaves: Sequence[Any],
    args: Sequence[Any],
    argnums: tuple[int, ...],
    allow_int: bool,
) -> None:
    """Cheap call-time form of :func:`check_diff_leaves` on already flattened leaves.

    Runs one loop over the leaves; only when a leaf is wrong does it walk the
    arguments again (with paths) to build the message.
    """
    for leaf in leaves:
        if leaf is None:
            continue
        if not isinstance(leaf, torch.Tensor) or not (
            allow_int or leaf.is_floating_point() or leaf.is_complex()
        ):
            check_diff_leaves(api, args, argnums, allow_int)


def scalar_output_check(api: str, out: Any) -> None:
    """Call-time check that ``out`` is a real floating tensor of shape ``()``."""
    if isinstance(out, torch.Tensor) and out.dim() == 0 and out.is_floating_point():
        return
    fix = (
        f"ftx.{api} needs a real scalar loss; use ftx.jacrev or ftx.vjp for other outputs, "
        "or reduce with .sum()."
    )
    if not isinstance(out, torch.Tensor):
        got = describe(out)
        if isinstance(out, tuple | list):
            got = f"a {type(out).__name__} of length {len(out)}"
        if isinstance(out, tuple | list) and len(out) == 2:
            fix = (
                "Did you mean has_aux=True? A function returning (loss, aux) needs "
                f"ftx.{api}(fun, has_aux=True)."
            )
        raise TypeError(msg(api, "fun must return a real scalar tensor of shape ()", got, fix))
    if out.is_complex() or not out.is_floating_point():
        raise TypeError(msg(api, "fun must return a real floating scalar",
                            f"{out.dtype} output", fix))
    raise ValueError(msg(api, "fun must return a scalar tensor of shape ()",
                         f"shape {tuple(out.shape)}", fix))


def check_primal_list(api: str, name: str, value: Any) -> None:
    """``primals``/``tangents`` passed to jvp-like transforms must be a tuple or a list."""
    if not isinstance(value, tuple | list):
        raise TypeError(msg(api, f"{name} must be a tuple or list with one entry per argument "
                            "of fun", describe(value), f"Write ftx.{api}(f, (x,), (t,))."))


def _leaf_where(prefix: str, path: Any) -> str:
    text = keystr(path)
    return f"{prefix} at {text!r}" if text else prefix


def _arg_where(i: int, path: Any) -> str:
    return f"argument {i}" + (f" at {keystr(path)!r}" if path else "")


def check_matching(
    api: str,
    name: str,
    like_name: str,
    value: Any,
    like: Any,
    *,
    same_dtype: bool = True,
) -> None:
    """``value`` must have the tree structure of ``like``, leaf shapes and (optionally) dtypes.

    Structure mismatch and dtype mismatch are ``TypeError``; shape mismatch is
    ``ValueError``. Messages name the path of the first offending leaf (built only then).
    """
    vl, vs = _tc.tree_flatten_with_path(value)
    ll, ls = _tc.tree_flatten_with_path(like)
    if vs != ls:
        raise TypeError(msg(
            api, f"{name} must have the same tree structure as {like_name}",
            f"{_tc.treespec_pprint(vs)} for {_tc.treespec_pprint(ls)}",
            f"Pass one {name} leaf per {like_name} leaf, in the same containers.",
        ))
    for (path, v), (_, l) in zip(vl, ll):
        if l is None and v is None:
            continue
        if (l is None) != (v is None):
            raise TypeError(msg(
                api, f"{name} must have the same tree structure as {like_name}",
                f"{describe(v)} for {_leaf_where(name, path)} where {like_name} has "
                f"{describe(l)}", f"Pass None exactly where {like_name} has None.",
            ))
        if not isinstance(v, torch.Tensor):
            raise TypeError(msg(api, f"{name} leaves must be tensors",
                                f"{describe(v)} for {_leaf_where(name, path)}",
                                "Wrap it with torch.tensor."))
        if not isinstance(l, torch.Tensor):
            continue
        if v.layout != torch.strided:
            raise TypeError(msg(api, f"{name} leaves must be dense (strided) tensors",
                                f"layout {v.layout} for {_leaf_where(name, path)}",
                                "Convert it with .to_dense()."))
        if v.device != l.device:
            raise ValueError(msg(
                api, f"{name} must be on the device of {like_name}",
                f"{v.device} for {_leaf_where(name, path)} where {like_name} is on {l.device}",
                f"Move it with .to({str(l.device)!r}).",
            ))
        if v.shape != l.shape:
            raise ValueError(msg(
                api, f"{name} must match the shape of {like_name}",
                f"shape {tuple(v.shape)} for {_leaf_where(name, path)} where {like_name} has "
                f"{tuple(l.shape)}", f"Give each {name} leaf its {like_name} leaf's shape.",
            ))
        if same_dtype and v.dtype != l.dtype:
            raise TypeError(msg(
                api, f"{name} must match the dtype of {like_name}",
                f"{v.dtype} for {_leaf_where(name, path)} where {like_name} has {l.dtype}",
                f"Cast it with .to({l.dtype}).",
            ))


def has_non_tensor_leaf(tree: Any) -> bool:
    """True when a leaf of ``tree`` is neither a tensor nor ``None`` (a Python number, ...)."""
    if isinstance(tree, torch.Tensor):
        return False
    return not all(x is None or isinstance(x, torch.Tensor) for x in _tc.tree_leaves(tree))


def _overlapping(x: Any) -> bool:
    """A tensor whose elements share memory (stride 0 on a dimension of size > 1, as
    ``expand`` makes): forward mode cannot write its tangent into such a tensor."""
    return isinstance(x, torch.Tensor) and any(
        st == 0 and n > 1 for st, n in zip(x.stride(), x.shape)
    )


def dense_inputs(api: str, args: tuple[Any, ...], idx: Any) -> tuple[Any, ...]:
    """``args`` with expanded (stride-0) leaves of ``args[i]``, ``i`` in ``idx``, copied to
    contiguous tensors (a differentiable copy, so values and outer graphs are unchanged);
    raises ``ValueError`` when no differentiated argument holds a tensor."""
    new = None
    found = False
    for i in idx:
        leaves = [args[i]] if isinstance(args[i], torch.Tensor) else _tc.tree_leaves(args[i])
        found = found or any(isinstance(x, torch.Tensor) for x in leaves)
        if any(_overlapping(x) for x in leaves):
            new = list(args) if new is None else new
            new[i] = _tc.tree_map(lambda x: x.contiguous() if _overlapping(x) else x, args[i])
    if not found:
        got = ", ".join(f"{describe(args[i])} for argument {i}" for i in idx)
        raise ValueError(msg(
            api, "the differentiated argument(s) must hold at least one tensor", got,
            "Pass a tensor (or a pytree with tensor leaves), or choose other argnums.",
        ))
    return args if new is None else tuple(new)


def numbers_to_tensors(args: tuple[Any, ...], idx: Any) -> tuple[Any, ...]:
    """Python floats and complex numbers in ``args[i]`` for ``i`` in ``idx`` become 0-d
    tensors of the default dtype, as JAX accepts ``grad(jnp.tanh)(2.0)``. ``bool`` and
    ``int`` stay as they are (the checks then refuse them, as JAX does)."""
    def conv(leaf: Any) -> Any:
        if type(leaf) is float:
            return torch.tensor(leaf)
        if type(leaf) is complex:
            return torch.tensor(leaf)
        return leaf

    new = list(args)
    for i in idx:
        new[i] = _tc.tree_map(conv, args[i])
    return tuple(new)


def check_float_primals(api: str, primals: Any) -> None:
    """Forward-mode primals must be tensors of a floating or complex dtype."""
    for path, leaf in _tc.tree_leaves_with_path(tuple(primals)):
        if leaf is None:
            continue
        if not isinstance(leaf, torch.Tensor):
            raise TypeError(msg(
                api, "primals must be tensors", f"{describe(leaf)} for "
                f"{_leaf_where('primals', path)}",
                "Wrap it with torch.tensor(..., dtype=torch.float64) or close over it.",
            ))
        if leaf.layout != torch.strided:
            raise TypeError(msg(api, "primals must be dense (strided) tensors",
                                f"layout {leaf.layout} for {_leaf_where('primals', path)}",
                                "Convert it with .to_dense()."))
        if not (leaf.is_floating_point() or leaf.is_complex()):
            raise TypeError(msg(
                api, "primals must have a floating dtype",
                f"{leaf.dtype} for {_leaf_where('primals', path)}",
                "Cast it to a float dtype, or close over it with functools.partial.",
            ))


def check_complex_inputs(api: str, args: tuple[Any, ...], idx: Sequence[int]) -> None:
    """``holomorphic=True``: every differentiated leaf is a complex tensor (JAX's rule)."""
    for i in idx:
        for path, leaf in _tc.tree_leaves_with_path(args[i]):
            if leaf is None:
                continue
            if not (isinstance(leaf, torch.Tensor) and leaf.is_complex()):
                got = f"{leaf.dtype}" if isinstance(leaf, torch.Tensor) else describe(leaf)
                raise TypeError(
                    msg(api, "differentiated inputs with a complex dtype when holomorphic=True "
                        "(as in JAX)", f"{got} for {_arg_where(i, path)}",
                        "Convert it with .to(torch.complex128), or drop holomorphic=True.")
                )
