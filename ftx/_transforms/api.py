"""Reverse and forward mode: ``grad``, ``value_and_grad``, ``jvp``, ``vjp``, ``linearize``, ``hvp``.

Contract: JAX's signatures, argument names, return order and output layout on
top of ``torch.func``. ``fun`` and ``argnums`` are checked once, when the
transform is built; the arguments are checked cheaply at every call. At top
level (no ``torch.func`` transform active, no functorch-wrapped input) ``grad``,
``value_and_grad`` and ``vjp`` run on ``torch.autograd.grad``; under another
transform they run on ``torch.func``; both routes give the same results (see
``ftx/_transforms/reverse.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, Literal, ParamSpec, TypeVar, overload

import torch
import torch.func

from .. import tree as _tree
from .._internal import pytree as _ft
from .._internal.errors import check_bool, describe, msg
from .._internal.torch_compat import is_compiling as _is_compiling
from .._internal.torch_compat import transform_active
from . import reverse as _reverse
from .forward import Flat, flat_args, jvp_flat
from .validate import (
    Argnums,
    check_callable,
    check_complex_inputs,
    check_flat_diff_leaves,
    check_float_primals,
    check_matching,
    check_primal_list,
    has_non_tensor_leaf,
    normalize_argnums,
    numbers_to_tensors,
    output_leaves_check,
    resolve_argnums,
    split_aux,
)

P = ParamSpec("P")
A = TypeVar("A")
Tensor = torch.Tensor

__all__ = ["grad", "hvp", "jvp", "linearize", "value_and_grad", "vjp"]


def _make(
    api: str,
    fun: Callable[..., Any],
    argnums: Any,
    has_aux: bool,
    allow_int: bool,
    with_value: bool,
    holomorphic: bool = False,
) -> Callable[..., Any]:
    check_callable(api, fun)
    nums = normalize_argnums(api, argnums)
    single = isinstance(argnums, int)
    if check_bool(api, "holomorphic", holomorphic):
        return _make_holomorphic(api, fun, nums, single, has_aux, with_value)
    plans: dict[int, _reverse.CallPlan] = {}  # per number of positional arguments
    fast = _reverse.value_and_grad_fast
    slow = _reverse.value_and_grad_func
    probed = False  # has fun run once on the torch.func route? (see _reverse.needs_probe)

    def plan_for(nargs: int) -> _reverse.CallPlan:
        plan = None if _is_compiling() else plans.get(nargs)  # no cache while compiling:
        if plan is None:  # torch.compile would guard on it
            idx = resolve_argnums(api, nums, nargs)
            plan = _reverse.CallPlan(api, fun, idx, single, has_aux, allow_int, with_value)
            if not _is_compiling():
                plans[nargs] = plan
        return plan

    def general(
        plan: _reverse.CallPlan,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        leaves: list[Any],
        spec: Any,
        active: bool,
    ) -> tuple[Any, Any, list[Any], Any]:
        """Every call the fast path declined: Python numbers, first calls, transforms
        (``active``: a transform is active)."""
        nonlocal probed
        idx = plan.idx
        if not all(leaf is None or isinstance(leaf, Tensor) for leaf in leaves):
            args = numbers_to_tensors(args, idx)
            diff = args[idx[0]] if single else tuple(args[i] for i in idx)
            leaves, spec = _ft.flatten(diff)
        # no probe while compiling: torch.compile runs the torch.func route anyway
        key = None if probed or _is_compiling() else _reverse.needs_probe(fun)
        res = None
        if key is None and not active:
            probed = probed or not _is_compiling()
            res = fast(plan, args, kwargs, leaves, spec)
        if res is None:
            check_flat_diff_leaves(api, leaves, args, idx, allow_int)
            res = slow(plan, args, kwargs, leaves, spec)
            if key is not None and not _is_compiling():
                _reverse.mark_probed(key)
                probed = True
        return (*res, spec)

    @functools.wraps(fun)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return call(args, kwargs)
        except RecursionError as e:
            _ft.raise_if_cyclic(api, e, args=args)

    def call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        plan = plan_for(len(args))
        idx = plan.idx
        diff = args[idx[0]] if single else tuple(args[i] for i in idx)
        leaves, spec = _ft.flatten(diff)
        res = None
        active = transform_active()
        if probed and not active:
            res = fast(plan, args, kwargs, leaves, spec)
        if res is None:
            value, aux, flat, spec = general(plan, args, kwargs, leaves, spec, active)
        else:
            value, aux, flat = res
        grads = _ft.unflatten(spec, flat)
        if with_value:
            return ((value, aux), grads) if has_aux else (value, grads)
        return (grads, aux) if has_aux else grads

    return wrapper


def _complex_scalar_check(api: str, out: Any) -> None:
    if isinstance(out, Tensor) and out.dim() == 0 and out.is_complex():
        return
    if not isinstance(out, Tensor) or not out.is_complex():
        got = f"{out.dtype} output" if isinstance(out, Tensor) else describe(out)
        raise TypeError(
            msg(api, "fun must return a complex scalar tensor when holomorphic=True (as in JAX)",
                got, "Return a complex output of shape (), or drop holomorphic=True.")
        )
    raise ValueError(
        msg(api, "fun must return a scalar tensor of shape ()", f"shape {tuple(out.shape)}",
            "Reduce the output to one complex number, or use ftx.jacrev(holomorphic=True).")
    )


def _conj(x: Tensor) -> Tensor:
    """The conjugate as a plain tensor (no conj bit; batching rules exist for these ops)."""
    return torch.complex(x.real, -x.imag)


def _make_holomorphic(
    api: str,
    fun: Callable[..., Any],
    nums: tuple[int, ...],
    single: bool,
    has_aux: bool,
    with_value: bool,
) -> Callable[..., Any]:
    """``grad``/``value_and_grad`` of a holomorphic ``fun``: ``df/dz``, JAX's answer.

    torch's reverse mode gives ``ct * conj(df/dz)`` for a holomorphic ``f``, so the
    derivative is the conjugate of the pull-back of ``1``: one reverse pass, as in JAX.
    """

    @functools.wraps(fun)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        idx = resolve_argnums(api, nums, len(args))
        if any(has_non_tensor_leaf(args[i]) for i in idx):  # Python complex numbers
            args = numbers_to_tensors(args, idx)
        check_complex_inputs(api, args, idx)

        def at(*diff: Any) -> Any:
            full = list(args)
            for i, d in zip(idx, diff):
                full[i] = d
            out, aux = split_aux(api, fun(*full, **kwargs)) if has_aux else (
                fun(*full, **kwargs), None)
            _complex_scalar_check(api, out)
            return out, aux

        value, pull, aux = vjp(at, *(args[i] for i in idx), has_aux=True)
        grads = _tree.map(_conj, pull(torch.ones_like(value)))
        g = grads[0] if single else grads
        if with_value:
            return ((value, aux), g) if has_aux else (value, g)
        return (g, aux) if has_aux else g

    return wrapper


@overload
def grad(
    fun: Callable[P, Any],
    argnums: Argnums = 0,
    has_aux: Literal[False] = False,
    allow_int: bool = False,
    holomorphic: bool = False,
) -> Callable[P, Any]: ...


@overload
def grad(
    fun: Callable[P, tuple[Any, A]],
    argnums: Argnums,
    has_aux: Literal[True],
    allow_int: bool = False,
    holomorphic: bool = False,
) -> Callable[P, tuple[Any, A]]: ...


@overload
def grad(
    fun: Callable[P, tuple[Any, A]],
    argnums: Argnums = 0,
    *,
    has_aux: Literal[True],
    allow_int: bool = False,
    holomorphic: bool = False,
) -> Callable[P, tuple[Any, A]]: ...


def grad(
    fun: Callable[P, Any],
    argnums: Argnums = 0,
    has_aux: bool = False,
    allow_int: bool = False,
    holomorphic: bool = False,
) -> Callable[P, Any]:
    """Gradient of a real scalar function, as ``jax.grad``.

    Args:
        fun: a function whose output is a real floating tensor of shape ``()``
            (with ``has_aux=True``: a pair ``(output, aux)``).
        argnums: which positional argument(s) to differentiate: an int, or a
            non-empty tuple of unique ints. Arguments may be pytrees of tensors.
        has_aux: ``fun`` returns ``(output, aux)``; ``aux`` is passed through.
        allow_int: accept integer/bool inputs; their gradient is zeros of the
            input's shape in the default float dtype (JAX gives ``float0``).
        holomorphic: ``fun`` is holomorphic (complex differentiable): the inputs
            and the scalar output must be complex and the result is ``df/dz``,
            JAX's ``holomorphic=True``. Without it a complex input ``z = x + iy``
            of a real ``fun`` gets ``df/dx + i df/dy`` (torch's convention, the
            conjugate of JAX's answer; see the complex numbers table in the
            differentiation guide).

    Returns:
        A function with ``fun``'s arguments returning the gradient, shaped like
        the argument (a tuple of them when ``argnums`` is a tuple), or
        ``(gradient, aux)`` with ``has_aux``. Unused inputs get zeros.

    Example:
        >>> import torch, ftx
        >>> f = lambda x, y: (x ** 2 * y).sum()
        >>> ftx.grad(f)(torch.tensor([1.0, 2.0]), torch.tensor(3.0))
        tensor([ 6., 12.])
        >>> ftx.grad(f, argnums=(0, 1))(torch.tensor([1.0, 2.0]), torch.tensor(3.0))[1]
        tensor(5.)
    """
    return _make("grad", fun, argnums, has_aux, allow_int, with_value=False,
                 holomorphic=holomorphic)


@overload
def value_and_grad(
    fun: Callable[P, Any],
    argnums: Argnums = 0,
    has_aux: Literal[False] = False,
    allow_int: bool = False,
    holomorphic: bool = False,
) -> Callable[P, tuple[Tensor, Any]]: ...


@overload
def value_and_grad(
    fun: Callable[P, tuple[Any, A]],
    argnums: Argnums,
    has_aux: Literal[True],
    allow_int: bool = False,
    holomorphic: bool = False,
) -> Callable[P, tuple[tuple[Tensor, A], Any]]: ...


@overload
def value_and_grad(
    fun: Callable[P, tuple[Any, A]],
    argnums: Argnums = 0,
    *,
    has_aux: Literal[True],
    allow_int: bool = False,
    holomorphic: bool = False,
) -> Callable[P, tuple[tuple[Tensor, A], Any]]: ...


def value_and_grad(
    fun: Callable[P, Any],
    argnums: Argnums = 0,
    has_aux: bool = False,
    allow_int: bool = False,
    holomorphic: bool = False,
) -> Callable[P, Any]:
    """Value and gradient of a real scalar function, as ``jax.value_and_grad``.

    Args:
        fun, argnums, has_aux, allow_int, holomorphic: as in :func:`grad`.

    Returns:
        A function returning ``(value, grads)``, or ``((value, aux), grads)``
        with ``has_aux`` (JAX's order: the value first). ``value`` has shape ``()``.

    Example:
        >>> import torch, ftx
        >>> loss = lambda w: ((w - 1.0) ** 2).sum()
        >>> value, g = ftx.value_and_grad(loss)(torch.zeros(2))
        >>> value, g
        (tensor(2.), tensor([-2., -2.]))
    """
    return _make("value_and_grad", fun, argnums, has_aux, allow_int, with_value=True,
                 holomorphic=holomorphic)


@overload
def vjp(
    fun: Callable[..., Any], *primals: Any, has_aux: Literal[False] = False
) -> tuple[Any, Callable[[Any], tuple[Any, ...]]]: ...


@overload
def vjp(
    fun: Callable[..., Any], *primals: Any, has_aux: Literal[True]
) -> tuple[Any, Callable[[Any], tuple[Any, ...]], Any]: ...


@_ft.cycle_safe("vjp")
def vjp(fun: Callable[..., Any], *primals: Any, has_aux: bool = False) -> tuple[Any, ...]:
    """Output of ``fun`` and its pull-back (vector-Jacobian product), as ``jax.vjp``.

    Args:
        fun: a function of ``len(primals)`` positional arguments returning a
            tensor or a pytree of tensors (``(output, aux)`` with ``has_aux``).
        *primals: the point, each a tensor or a pytree of tensors.
        has_aux: ``fun`` returns ``(output, aux)``.

    Returns:
        ``(primals_out, vjp_fn)`` or ``(primals_out, vjp_fn, aux)``.
        ``vjp_fn(ct)`` takes a cotangent with ``primals_out``'s structure,
        shapes and dtypes and returns a tuple with one cotangent per primal,
        each shaped like its primal (zeros for unused or integer primals).
        ``vjp_fn`` can be called any number of times.

    Example:
        >>> import torch, ftx
        >>> x = torch.tensor([1.0, 2.0, 3.0])
        >>> y, vjp_fn = ftx.vjp(torch.sin, x)
        >>> vjp_fn(torch.ones(3))[0]  # cos(x)
        tensor([ 0.5403, -0.4161, -0.9900])
    """
    check_callable("vjp", fun)
    leaves, spec = _ft.flatten(primals)
    if not all(leaf is None or isinstance(leaf, Tensor) for leaf in leaves):
        primals = numbers_to_tensors(primals, range(len(primals)))
        check_float_primals("vjp", primals)
        leaves, spec = _ft.flatten(primals)
    if not transform_active() and _reverse.vjp_fast_ok(fun, leaves):
        out, pullback, aux = _reverse.vjp_fast(fun, primals, has_aux, leaves, spec)
    else:
        out, pullback, aux = _reverse.vjp_func(fun, primals, has_aux, leaves, spec)
        key = None if _is_compiling() else _reverse.needs_probe(fun)
        if key is not None:
            _reverse.mark_probed(key)
    return (out, pullback, aux) if has_aux else (out, pullback)


def _check_jvp_args(
    api: str, primals: Any, tangents: Any
) -> tuple[tuple[Any, ...], tuple[Any, ...], Flat | None]:
    """The checked ``(primals, tangents)`` as tuples, and their leaves when already flat."""
    flat = flat_args(primals, tangents)
    if flat is not None:  # the common case in one pass; else the naming checks
        return tuple(primals), tuple(tangents), flat
    check_primal_list(api, "primals", primals)
    check_primal_list(api, "tangents", tangents)
    if has_non_tensor_leaf(primals) or has_non_tensor_leaf(tangents):  # Python numbers
        primals = numbers_to_tensors(tuple(primals), range(len(primals)))
        tangents = numbers_to_tensors(tuple(tangents), range(len(tangents)))
    if len(primals) != len(tangents):
        raise ValueError(msg(api, f"tangents must have one entry per primal ({len(primals)})",
                             str(len(tangents)), "Pass a tangent for every primal."))
    check_float_primals(api, primals)
    check_matching(api, "tangents", "primals", tuple(tangents), tuple(primals))
    return tuple(primals), tuple(tangents), None


@overload
def jvp(
    fun: Callable[..., Any],
    primals: Sequence[Any],
    tangents: Sequence[Any],
    has_aux: Literal[False] = False,
) -> tuple[Any, Any]: ...


@overload
def jvp(
    fun: Callable[..., Any],
    primals: Sequence[Any],
    tangents: Sequence[Any],
    has_aux: Literal[True],
) -> tuple[Any, Any, Any]: ...


def jvp(
    fun: Callable[..., Any],
    primals: Sequence[Any],
    tangents: Sequence[Any],
    has_aux: bool = False,
) -> tuple[Any, ...]:
    """Output of ``fun`` and its Jacobian-vector product (forward mode), as ``jax.jvp``.

    Args:
        fun: a function of ``len(primals)`` positional arguments returning a
            tensor or a pytree of tensors (``(output, aux)`` with ``has_aux``).
        primals: tuple or list, one entry per argument (tensor or pytree).
        tangents: same structure, shapes and dtypes as ``primals``.
        has_aux: ``fun`` returns ``(output, aux)``.

    Returns:
        ``(primals_out, tangents_out)`` or ``(primals_out, tangents_out, aux)``;
        ``tangents_out`` has ``primals_out``'s structure.

    Example:
        >>> import torch, ftx
        >>> x = torch.tensor([0.0, 1.0])
        >>> y, t = ftx.jvp(torch.exp, (x,), (torch.ones(2),))
        >>> t
        tensor([1.0000, 2.7183])
    """
    # the body of _ft.cycle_safe("jvp") written out: one Python frame less per call
    try:
        check_callable("jvp", fun)
        flat = flat_args(primals, tangents)
        if flat is None:
            p, t, flat = _check_jvp_args("jvp", primals, tangents)
        else:
            p, t = tuple(primals), tuple(tangents)
        out, t_out, aux = jvp_flat("jvp", fun, p, t, has_aux, flat)
    except RecursionError as e:
        _ft.raise_if_cyclic("jvp", e, arguments=((fun, primals, tangents, has_aux), {}))
    return (out, t_out, aux) if has_aux else (out, t_out)


@overload
def linearize(
    fun: Callable[..., Any], *primals: Any, has_aux: Literal[False] = False
) -> tuple[Any, Callable[..., Any]]: ...


@overload
def linearize(
    fun: Callable[..., Any], *primals: Any, has_aux: Literal[True]
) -> tuple[Any, Callable[..., Any], Any]: ...


@_ft.cycle_safe("linearize")
def linearize(fun: Callable[..., Any], *primals: Any, has_aux: bool = False) -> tuple[Any, ...]:
    """Output of ``fun`` and its linear map ``t -> J t`` at ``primals``, as ``jax.linearize``.

    ``jvp_fn`` evaluates the Jacobian-vector product with ``torch.func.jvp``
    (it re-runs ``fun`` in forward mode at each call), so unlike
    ``torch.func.linearize`` it works under ``vmap`` and ``grad`` and takes
    ``has_aux``.

    Args:
        fun: a function of ``len(primals)`` positional arguments returning a
            tensor or a pytree of tensors (``(output, aux)`` with ``has_aux``).
        *primals: the point, each a floating tensor or a pytree of them.
        has_aux: ``fun`` returns ``(output, aux)``.

    Returns:
        ``(primals_out, jvp_fn)`` or ``(primals_out, jvp_fn, aux)``;
        ``jvp_fn(*tangents)`` (one tangent per primal, same shapes) returns
        the tangent of the output, with ``primals_out``'s structure.

    Example:
        >>> import torch, ftx
        >>> y, f_jvp = ftx.linearize(torch.sin, torch.tensor([0.0, 3.0]))
        >>> f_jvp(torch.tensor([1.0, 1.0]))
        tensor([ 1.0000, -0.9900])
    """
    check_callable("linearize", fun)
    if has_non_tensor_leaf(primals):
        primals = numbers_to_tensors(primals, range(len(primals)))
    check_float_primals("linearize", primals)
    out = fun(*primals)
    aux = None
    if has_aux:
        out, aux = split_aux("linearize", out)
    output_leaves_check("linearize", out, "Return a tensor or a pytree of tensors.")

    @_ft.cycle_safe("linearize")
    def jvp_fn(*tangents: Any) -> Any:
        p, t, flat = _check_jvp_args("linearize", primals, tangents)
        return jvp_flat("linearize", fun, p, t, has_aux, flat)[1]

    return (out, jvp_fn, aux) if has_aux else (out, jvp_fn)


@_ft.cycle_safe("hvp")
def hvp(
    fun: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]
) -> tuple[Any, ...]:
    """Hessian-vector product ``H v`` by forward-over-reverse; never forms the Hessian.

    Computes ``jvp(grad(fun, argnums=all), primals, tangents)``: one forward-mode
    pass through one reverse-mode pass, the cost of a few gradients.

    Args:
        fun: a real scalar function of ``len(primals)`` positional arguments.
        primals: tuple or list, one entry per argument (tensor or pytree).
        tangents: the vector ``v``, same structure, shapes and dtypes as ``primals``.

    Returns:
        A tuple with ``primals``' structure: entry ``i`` is
        ``sum_j H[i][j] v[j]`` where ``H[i][j]`` is the block of second
        derivatives with respect to arguments ``i`` and ``j``.

    Example:
        >>> import torch, ftx
        >>> f = lambda x: (x ** 3).sum()        # H = diag(6 x)
        >>> ftx.hvp(f, (torch.tensor([1.0, 2.0]),), (torch.tensor([1.0, 1.0]),))
        (tensor([ 6., 12.]),)
    """
    check_callable("hvp", fun)
    p, t, flat = _check_jvp_args("hvp", primals, tangents)
    if not p:
        raise ValueError(msg("hvp", "primals must hold at least one argument", "()",
                             "Pass primals=(x,)."))
    g = _make("hvp", fun, tuple(range(len(p))), False, False, with_value=False)
    out: tuple[Any, ...] = jvp_flat("hvp", g, p, t, False, flat)[1]
    return out
