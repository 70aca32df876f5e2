"""``ftx.vmap``: JAX's vmap semantics over ``torch.func.vmap``.

Contract: ``vmap(fun, in_axes, out_axes)`` maps ``fun`` over one axis of its
arguments. ``in_axes`` is an int, ``None``, or a tuple/list with one entry per
positional argument, each an int, ``None`` or a prefix pytree of those
(``({"w": 0, "b": None}, 0)``); keyword arguments are mapped along axis 0 (as
in JAX); ``None`` arguments and ``None`` output leaves are empty subtrees.
``out_axes`` is a prefix pytree of the output. With no mapped argument,
``axis_size`` gives the batch size and the output is ``fun``'s broadcast
along a new axis.

Build-time checks (once): ``fun`` callable, the leaf kinds of
``in_axes``/``out_axes``, ``axis_size``, ``chunk_size``, ``randomness``.
Call-time checks run only on the general route or after ``torch.func.vmap``
raised, so the common route (int or flat-tuple ``in_axes``, tensor arguments)
costs a Python call over the bare ``torch.func.vmap``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import torch

from .._internal import pytree as _ft
from .._internal import torch_compat as _tc
from .._internal.errors import describe, msg
from .validate import check_callable
from .vmap_axes import (
    arg_path,
    broadcast,
    check_axes,
    check_count,
    flat_axes,
    from_torch_output,
    out_path,
    shapes,
)

P = ParamSpec("P")
R = TypeVar("R")

_RANDOMNESS = ("error", "different", "same")
_MAX_PLANS = 32


class _Batched:
    """The callable ``vmap`` returns; holds everything precomputed at build time."""

    def __init__(
        self,
        fun: Callable[..., Any],
        in_axes: Any,
        out_axes: Any,
        axis_size: int | None,
        chunk_size: int | None,
        randomness: str,
    ) -> None:
        self.fun = fun
        self.in_axes = in_axes
        self.out_axes = out_axes
        self.axis_size = axis_size
        self.chunk_size = chunk_size
        self.randomness = randomness
        self.plans: dict[_tc.TreeSpec, list[Any]] = {}
        self.out_plans: dict[_tc.TreeSpec, list[Any]] = {}
        # Fast route: int in_axes, or a flat tuple of int/None with an int, tensor arguments.
        self.fast_n = -1  # -1: no fast route; 0: any number of args; n: exactly n args
        if axis_size is None and flat_axes(out_axes):
            if isinstance(in_axes, int):
                self.fast_n = 0
            elif (
                isinstance(in_axes, tuple)
                and all(a is None or isinstance(a, int) for a in in_axes)
                and any(isinstance(a, int) for a in in_axes)
            ):
                self.fast_n = len(in_axes)
        # Direct route: nested tuple in_axes that torch pairs with the arguments exactly as
        # JAX does (checked once per argument structure; dicts in the same key order).
        self.direct: dict[_tc.TreeSpec, bool] | None = None
        if axis_size is None and flat_axes(out_axes) and isinstance(in_axes, tuple):
            if self.fast_n < 0:
                self.direct = {}
        self.torch_fn = torch.func.vmap(
            fun,
            in_dims=in_axes if self.fast_n >= 0 or self.direct is not None else 0,
            out_dims=out_axes,
            randomness=randomness,
            chunk_size=chunk_size,
        )

    def direct_ok(self, args: tuple[Any, ...]) -> bool:
        """Would torch.func.vmap map these arguments exactly as JAX's rules say?

        Decided once per argument structure (the fast flattener's spec, hashable for
        dict/list/tuple trees); torch raises for non-tensor leaves in mapped positions, and
        ``fallback`` turns that into the ftx error.
        """
        assert self.direct is not None
        key = _ft.flatten(args)[1]
        try:
            ok = self.direct.get(key)
        except TypeError:  # an unhashable spec (a registered node's context): decide now
            key, ok = None, None
        if ok is None:
            ok = False
            if len(self.in_axes) == len(args):
                leaves, spec = _tc.tree_flatten(args)
                mine = broadcast(self.in_axes, args)
                theirs = _tc.broadcast_prefix(self.in_axes, spec)
                ok = (
                    mine is not None
                    and mine == theirs
                    and any(d is not None for d in mine)
                    and all(d is None or isinstance(x, torch.Tensor) for x, d in zip(leaves, mine))
                )
            if key is not None:
                if len(self.direct) >= _MAX_PLANS:
                    self.direct.clear()
                self.direct[key] = ok
        return ok

    def fallback(self, exc: BaseException, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """After the fast route raised: blame the inputs, re-route, or translate the error."""
        leaves, _, _, size = self._plan(args, kwargs)  # raises the ftx error for bad inputs
        if size is None or from_torch_output(exc) or any(x is None for x in leaves):
            # None leaves in a mapped argument are empty subtrees (JAX), an error to torch;
            # no mapped leaf at all (torch refuses) needs axis_size or gets the ftx error.
            # None or non-tensor outputs, unbatched outputs with out_axes != 0, bad out_axes:
            # the general route applies JAX's rules (or raises the ftx error).
            return self.general(args, kwargs)
        self._reraise(exc)
        raise exc

    def general(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            return self._general(args, kwargs)
        except (RuntimeError, ValueError, IndexError) as exc:
            self._reraise(exc)
            raise

    # -- call-time checks ---------------------------------------------------------------

    def _plan(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[list[Any], list[int | None], _tc.TreeSpec, int | None]:
        """Flatten the inputs, check ``in_axes`` against them and find the batch size."""
        in_axes = self.in_axes
        if isinstance(in_axes, tuple) and len(in_axes) != len(args):
            raise ValueError(
                msg(
                    "vmap",
                    "in_axes must have one entry per positional argument",
                    f"in_axes={in_axes!r} ({len(in_axes)} entries) for {len(args)} argument(s)",
                    "Give one int/None (or prefix pytree) per argument, or a single int.",
                )
            )
        leaves, spec = _tc.tree_flatten((args, kwargs))
        dims = self.plans.get(spec)
        if dims is None:
            per_arg = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
            prefix = (per_arg, dict.fromkeys(kwargs, 0))
            dims = broadcast(prefix, (args, kwargs))
            if dims is None:
                self._structure_error(args)
            assert dims is not None
            if len(self.plans) >= _MAX_PLANS:
                self.plans.clear()
            self.plans[spec] = dims
        flat: list[int | None] = []
        size: int | None = None
        sizes_differ = False
        for leaf, d in zip(leaves, dims):
            if d is None or leaf is None:
                flat.append(None)
                continue
            if not isinstance(leaf, torch.Tensor) or not -leaf.dim() <= d < leaf.dim():
                self._leaf_error(args, kwargs, leaf, d)
            d %= leaf.dim()
            flat.append(d)
            if size is None:
                size = leaf.shape[d]
            elif leaf.shape[d] != size:
                sizes_differ = True
        if sizes_differ:
            self._size_error(args, kwargs, dims)
        if size is not None and self.axis_size is not None and size != self.axis_size:
            raise ValueError(
                msg("vmap", "axis_size must equal the size of the mapped axes",
                    f"axis_size={self.axis_size} for mapped axes of size {size}",
                    "Drop axis_size or make it match the inputs.")
            )
        return leaves, flat, spec, size

    def _structure_error(self, args: tuple[Any, ...]) -> None:
        per_arg = self.in_axes if isinstance(self.in_axes, tuple) else (self.in_axes,) * len(args)
        for i, (axes, arg) in enumerate(zip(per_arg, args)):
            if broadcast(axes, arg) is None:
                raise ValueError(
                    msg(
                        "vmap",
                        f"in_axes for argument {i} must be an int, None, or a prefix of the "
                        "argument's pytree structure",
                        f"{axes!r} for an argument shaped {shapes(arg)!r}",
                        "Match the containers (same dict keys, same tuple lengths) or use one "
                        "int/None for the whole argument.",
                    )
                )

    def _paths(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[str]:
        return [arg_path(tuple(p)) for p, _ in _tc.tree_leaves_with_path((args, kwargs))]

    def _leaf_error(self, args: tuple[Any, ...], kwargs: dict[str, Any], leaf: Any, d: int) -> None:
        paths = self._paths(args, kwargs)
        leaves = _tc.tree_leaves((args, kwargs))
        where = paths[next(i for i, x in enumerate(leaves) if x is leaf)]
        if not isinstance(leaf, torch.Tensor):
            raise TypeError(
                msg(
                    "vmap",
                    "mapped inputs must be tensors",
                    f"{describe(leaf)} for {where} mapped along axis {d}",
                    "Give it in_axes=None, close over it, or pass it as a tensor."
                    + (" Keyword arguments are always mapped along axis 0 (as in JAX)."
                       if where.startswith("keyword") else ""),
                )
            )
        raise ValueError(
            msg(
                "vmap",
                f"in_axes must be within the rank of each mapped input (-{leaf.dim()} <= axis "
                f"< {leaf.dim()} here)",
                f"axis {d} for {where} of shape {tuple(leaf.shape)}",
                "Use a smaller axis, a negative axis, or None.",
            )
        )

    def _size_error(self, args: tuple[Any, ...], kwargs: dict[str, Any], dims: list[Any]) -> None:
        parts = []
        for where, leaf, d in zip(
            self._paths(args, kwargs), _tc.tree_leaves((args, kwargs)), dims
        ):
            if d is not None and leaf is not None:
                parts.append(f"{where} has size {leaf.shape[d]} along axis {d % leaf.dim()}")
        if len(parts) > 8:
            parts = [*parts[:8], f"... ({len(parts) - 8} more)"]
        raise ValueError(
            msg(
                "vmap",
                "all mapped axes must have the same size",
                ", ".join(parts),
                "Make the sizes agree, or give the odd inputs in_axes=None.",
            )
        )

    def _reraise(self, exc: BaseException) -> None:
        """Turn torch's RuntimeErrors about vmap into ftx errors that say what to do."""
        text = str(exc)
        new: Exception | None = None
        if "data-dependent control flow" in text or "calling .item()" in text:
            new = TypeError(
                msg("vmap", "fun must not read a batched tensor's value in Python",
                    "a value read under vmap: torch reports (1) .item()/float()/int() on a "
                    "tensor, (2) data-dependent control flow (if/while/bool() on a tensor) "
                    "or (3) an operator whose output size depends on values, such as "
                    "F.one_hot without num_classes, torch.nonzero or torch.unique",
                    "Give sizes statically (F.one_hot(y, num_classes=K)), select with "
                    "torch.where(cond, a, b) instead of branching, and stay in tensor ops.")
            )
        elif "randomness error mode" in text:
            new = ValueError(
                msg("vmap", "random operations need randomness='different' or 'same'",
                    f"a random call under randomness={self.randomness!r}",
                    "Pass randomness='different' (independent draws per example) or 'same', "
                    "or draw from explicit ftx.random keys.")
            )
        elif from_torch_output(exc):
            if "BatchedTensor when out_dim is None" in text:
                new = ValueError(
                    msg("vmap", "outputs with out_axes=None must not depend on mapped inputs",
                        f"a batched output for out_axes={self.out_axes!r}",
                        "Use an int out_axes for that output.")
                )
            else:
                why = ("which does not match the output's structure" if "not compatible" in text
                       else text.splitlines()[0][:100])
                new = ValueError(
                    msg("vmap", "out_axes must be an int/None or a prefix of the output's "
                        "structure, each axis within the output's rank + 1",
                        f"out_axes={self.out_axes!r}, {why}",
                        "Match the output containers and use axes in range.")
                )
        if new is not None:
            raise new from exc

    # -- general route ------------------------------------------------------------------

    def _general(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        leaves, dims, spec, size = self._plan(args, kwargs)
        fun = self.fun
        extra = 0
        if size is None:
            if self.axis_size is None:
                raise ValueError(
                    msg("vmap", "axis_size is required when no input is mapped",
                        f"in_axes={self.in_axes!r} mapping no tensor",
                        "Pass axis_size=N to broadcast the output along a new axis, or map "
                        "an input.")
                )
            device = next((x.device for x in leaves if isinstance(x, torch.Tensor)), None)
            leaves = [torch.empty(self.axis_size, 0, device=device), *leaves]
            dims = [0, *dims]
            extra = 1

        out_axes = self.out_axes
        out_plans = self.out_plans
        record: list[tuple[list[Any], list[Any], _tc.TreeSpec]] = []

        def flat_fun(*flat: Any) -> Any:
            a, kw = _tc.tree_unflatten(list(flat[extra:]), spec)
            out = fun(*a, **kw)
            out_leaves, out_spec = _tc.tree_flatten(out)
            axes = out_plans.get(out_spec)
            if axes is None:
                axes = broadcast(out_axes, out)
                if axes is None:
                    raise ValueError(
                        msg("vmap", "out_axes must be an int, None, or a prefix of the output's "
                            "pytree structure", f"out_axes={out_axes!r} for an output shaped "
                            f"{shapes(out)!r}", "Match the output containers (same dict keys, "
                            "same tuple lengths) or use one int for every output.")
                    )
                if len(out_plans) >= _MAX_PLANS:
                    out_plans.clear()
                out_plans[out_spec] = axes
            mapped: list[torch.Tensor] = []
            unmapped: list[torch.Tensor] = []
            for i, (leaf, ax) in enumerate(zip(out_leaves, axes)):
                if leaf is None:
                    continue
                if not isinstance(leaf, torch.Tensor):
                    raise TypeError(
                        msg("vmap", "fun must return tensors (or None)",
                            f"{describe(leaf)} at output {out_path(out, i)!r}",
                            "Wrap the value with torch.tensor(...) or close over it.")
                    )
                if ax is not None and not -leaf.dim() - 1 <= ax <= leaf.dim():
                    raise ValueError(
                        msg("vmap", "out_axes must be within the batched output's rank",
                            f"axis {ax} for output {out_path(out, i)!r} of per-example "
                            f"shape {tuple(leaf.shape)}",
                            f"Use an axis in [{-leaf.dim() - 1}, {leaf.dim()}] or None.")
                    )
                (unmapped if ax is None else mapped).append(leaf)
            record.append((out_leaves, axes, out_spec))
            return tuple(mapped), tuple(unmapped)

        mapped, unmapped = torch.func.vmap(
            flat_fun,
            in_dims=tuple(dims),
            out_dims=(0, None),  # type: ignore[arg-type]
            randomness=self.randomness,
            chunk_size=self.chunk_size,
        )(*leaves)
        per_example, axes, out_spec = record[0]
        it_m, it_u = iter(mapped), iter(unmapped)
        vals: list[Any] = []
        for leaf, ax in zip(per_example, axes):
            if leaf is None or not isinstance(leaf, torch.Tensor):
                vals.append(None)
            elif ax is None:
                vals.append(next(it_u))
            else:
                vals.append(next(it_m).movedim(0, ax))
        return _tc.tree_unflatten(vals, out_spec)


@_ft.cycle_safe("vmap")
def vmap(
    fun: Callable[P, R],
    in_axes: Any = 0,
    out_axes: Any = 0,
    *,
    axis_size: int | None = None,
    chunk_size: int | None = None,
    randomness: str = "error",
) -> Callable[P, R]:
    """Vectorize ``fun`` over one axis of its inputs (JAX's ``vmap`` on ``torch.func.vmap``).

    Args:
        fun: a pure function of tensors and pytrees of tensors.
        in_axes: which axis of each positional argument to map: an int (all
            arguments), ``None`` (not mapped), or a tuple/list with one entry
            per positional argument, each an int, ``None`` or a prefix pytree
            of those (e.g. ``({"w": 0, "b": None}, 0)``). Negative axes count
            from the end. Keyword arguments are mapped along axis 0.
        out_axes: where the mapped axis goes in each output: an int, ``None``
            (the output must not depend on mapped inputs) or a prefix pytree.
        axis_size: the batch size when no input is mapped; the output is then
            ``fun``'s output broadcast along a new axis. When inputs are
            mapped it must equal their size.
        chunk_size: evaluate the batch in chunks of this size to save memory.
        randomness: ``"error"``, ``"different"`` or ``"same"``, as
            ``torch.func.vmap``.

    Returns:
        A function with ``fun``'s parameters; with ``fun: (a,) -> (b,)`` and
        ``in_axes=0``, ``(n, a) -> (n, b)``. ``None`` inputs and outputs are
        empty pytrees, as in JAX.

    Raises:
        TypeError: ``fun`` not callable, non-int axes, unmapped-kind inputs,
            data-dependent Python control flow or ``.item()`` under vmap.
        ValueError: ``in_axes`` that does not match the arguments or is out of
            range, mapped axes of different sizes, no mapped input without
            ``axis_size``.

    Example:
        >>> import torch, ftx
        >>> def affine(w, x):        # ([b, a], [a]) -> [b]
        ...     return w @ x
        >>> w, xs = torch.ones(2, 3), torch.arange(12.0).reshape(4, 3)
        >>> ftx.vmap(affine, in_axes=(None, 0))(w, xs)      # ([b, a], [n, a]) -> [n, b]
        tensor([[ 3.,  3.],
                [12., 12.],
                [21., 21.],
                [30., 30.]])
        >>> ftx.vmap(lambda: torch.zeros(2), axis_size=3)().shape
        torch.Size([3, 2])
    """
    check_callable("vmap", fun)
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)  # a list prefix of the argument tuple, as in JAX
    if not (in_axes is None or isinstance(in_axes, int | tuple)):
        raise TypeError(
            msg("vmap", "in_axes must be an int, None, or a tuple with one entry per "
                "positional argument", describe(in_axes),
                "Wrap a per-argument pytree in a tuple, e.g. in_axes=({'w': 0},).")
        )
    check_axes("in_axes", in_axes)
    check_axes("out_axes", out_axes)
    check_count("axis_size", axis_size)
    check_count("chunk_size", chunk_size)
    if randomness not in _RANDOMNESS:
        raise ValueError(
            msg("vmap", "randomness must be 'error', 'different' or 'same'", repr(randomness),
                "Pick one of those three.")
        )
    batched = _Batched(fun, in_axes, out_axes, axis_size, chunk_size, randomness)
    n, torch_fn, direct = batched.fast_n, batched.torch_fn, batched.direct is not None

    # The fast route hands any arguments to torch.func.vmap: with one int/None per argument
    # it maps every leaf of an argument along that axis, as JAX does. What torch refuses
    # (None or non-tensor leaves in a mapped argument, mismatched sizes) raises there and
    # goes to ``fallback``, which raises the ftx error or takes the general route.

    @functools.wraps(fun)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            if n >= 0 and not kwargs and (len(args) == n if n else len(args) > 0):
                try:
                    return torch_fn(*args)  # type: ignore[no-any-return]
                except RecursionError:
                    raise
                except (RuntimeError, ValueError, IndexError) as exc:
                    return batched.fallback(exc, args, kwargs)  # type: ignore[no-any-return]
            if direct and not kwargs and batched.direct_ok(args):
                try:
                    return torch_fn(*args)  # type: ignore[no-any-return]
                except (RuntimeError, ValueError, IndexError) as exc:
                    return batched.fallback(exc, args, kwargs)  # type: ignore[no-any-return]
            return batched.general(args, kwargs)  # type: ignore[no-any-return]
        except RecursionError as e:
            _ft.raise_if_cyclic("vmap", e, arguments=(args, kwargs))

    return wrapper
