"""Numerical derivative checks for users' own rules, as ``jax.test_util``.

Contract: :func:`check_grads` compares what ftx's transforms compute
(``ftx.jvp``, ``ftx.vjp``, ``ftx.linearize``) with central finite differences,
in one random direction per check (so the cost does not grow with the input or
output size), up to the given order, and raises ``AssertionError`` naming the
check (``JVP``, ``VJP of JVP``, ...), the output leaf and the numbers when they
disagree. It is JAX's ``check_grads`` (same arguments, defaults, tolerances per
dtype scaled by the number of elements, step ``eps=1e-4``), with one
difference that follows torch's complex convention: the reverse-mode check is
``Re<vjp(c), t> == Re<c, jvp(t)>`` with ftx's ``vjp`` as is, where JAX
conjugates the cotangent on both sides of its own (transposed) ``vjp``. Both
state that the reverse rule is the adjoint of the forward one.

Use it to test ``ftx.custom_vjp``/``ftx.custom_jvp`` rules: a ``custom_vjp``
rule is checked by ``modes=("rev",)`` (its forward mode differentiates ``fwd``,
not ``bwd``), a ``custom_jvp`` rule by both modes.

Example:
    >>> import torch, ftx
    >>> from ftx.test_util import check_grads
    >>> @ftx.custom_vjp
    ... def f(x):
    ...     return torch.sin(x)
    >>> f.defvjp(lambda x: (torch.sin(x), x), lambda x, g: (g * torch.cos(x),))
    >>> check_grads(f, (torch.tensor([0.5, 1.0], dtype=torch.float64),), order=1,
    ...             modes=("rev",))                          # silent: the rule is right
    >>> f.defvjp(lambda x: (torch.sin(x), x), lambda x, g: (g * torch.sin(x),))
    >>> check_grads(f, (torch.tensor([0.5, 1.0], dtype=torch.float64),), order=1,
    ...             modes=("rev",))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    AssertionError: ftx.test_util.check_grads: VJP cotangent projection: ...
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from . import tree as _tree
from ._internal.errors import check_callable, check_int, check_real, describe, msg
from ._transforms.api import jvp as _jvp
from ._transforms.api import linearize as _linearize
from ._transforms.api import vjp as _vjp

__all__ = ["check_grads", "check_jvp", "check_vjp"]

EPS = 1e-4
"""The default finite-difference step (JAX's)."""

Tolerance = float | Mapping[torch.dtype, float] | None

# JAX's default_gradient_tolerance: per dtype, multiplied by the number of elements.
_GRAD_TOL: dict[torch.dtype, float] = {
    torch.bfloat16: 1e-1,
    torch.float16: 1e-2,
    torch.float32: 2e-3,
    torch.float64: 1e-5,
    torch.complex32: 1e-2,
    torch.complex64: 1e-3,
    torch.complex128: 1e-5,
}
_MODES = ("fwd", "rev", "lin")
_API = "test_util.check_grads"


# ----------------------------------------------------------------------------- arguments
def _check_args(api: str, args: Any) -> tuple[Any, ...]:
    """``args`` as a tuple; Python floats and complex numbers become 0-d tensors (as JAX)."""
    if not isinstance(args, (tuple, list)):
        raise TypeError(msg(api, "args must be a tuple of arguments", describe(args),
                            "Pass args=(x,) with a trailing comma for one argument."))

    def conv(leaf: Any) -> Any:
        if type(leaf) in (float, complex):
            return torch.tensor(leaf)
        return leaf

    out: tuple[Any, ...] = tuple(_tree.map(conv, a) for a in args)
    for path, leaf in _tree.leaves_with_path(out):
        ok = isinstance(leaf, torch.Tensor) and (leaf.is_floating_point() or leaf.is_complex())
        if not ok:
            raise TypeError(msg(api, "args must be floating or complex tensors (pytrees of them)",
                                f"{describe(leaf)} at args.{path}",
                                "Close over integer or non-tensor inputs "
                                "(functools.partial), or convert them with .double()."))
    return out


def _check_tol(api: str, name: str, tol: Any) -> Tolerance:
    if tol is None:
        return None
    if isinstance(tol, Mapping):
        out: dict[torch.dtype, float] = {}
        for k, v in tol.items():
            if not isinstance(k, torch.dtype):
                raise TypeError(msg(api, f"{name} keys must be torch dtypes", describe(k),
                                    f"Pass e.g. {name}={{torch.float32: 1e-3}}."))
            out[k] = check_real(api, f"{name}[{k}]", v, low=0.0)
        return out
    return check_real(api, name, tol, low=0.0)


def _tol(tol: Tolerance, dtype: torch.dtype) -> float:
    """JAX's ``tolerance``: a number as is, else the dict's entry or the default for ``dtype``."""
    if tol is not None and not isinstance(tol, Mapping):
        return float(tol)
    if tol is not None and dtype in tol:
        return float(tol[dtype])
    return _GRAD_TOL.get(dtype, 0.0)


# ----------------------------------------------------------------------------- arithmetic
def _rand_like(gen: torch.Generator, x: torch.Tensor) -> torch.Tensor:
    """A standard normal direction shaped like ``x`` (complex: independent real, imaginary)."""
    r = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    if x.is_complex():
        r = torch.complex(r, torch.randn(x.shape, generator=gen, dtype=torch.float64))
    return r.to(dtype=x.dtype, device=x.device)


def _scale(tree: Any, a: float) -> Any:
    return _tree.map(lambda x: x * torch.tensor(a, dtype=x.dtype, device=x.device), tree)


def _safe_sub(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``x - y`` with ``inf - inf == 0`` (JAX's ``_safe_subtract``)."""
    return torch.where(x == y, torch.zeros((), dtype=x.dtype, device=x.device), x - y)


def numerical_jvp(
    f: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any], eps: float = EPS
) -> Any:
    """Central difference ``(f(x + eps t) - f(x - eps t)) / (2 eps)``, leaf by leaf."""
    delta = _scale(tuple(tangents), eps)
    f_pos = f(*_tree.map(torch.add, tuple(primals), delta))
    f_neg = f(*_tree.map(torch.sub, tuple(primals), delta))
    return _scale(_tree.map(_safe_sub, f_pos, f_neg), 0.5 / eps)


def _inner(xs: Any, ys: Any) -> torch.Tensor:
    """``Re sum(conj(x) * y)`` over the leaves, each leaf in its own precision."""
    parts = [
        (x.conj().reshape(-1) * y.reshape(-1)).sum().real
        for x, y in zip(_tree.leaves(xs), _tree.leaves(ys))
    ]
    if not parts:
        return torch.zeros((), dtype=torch.float64)
    total: torch.Tensor = functools.reduce(torch.add, parts)
    return total


# ----------------------------------------------------------------------------- comparison
def _fail(err_msg: str, text: str) -> AssertionError:
    return AssertionError(f"ftx.{_API}: {err_msg}: {text}")


def _check_close(got: Any, want: Any, atol: Tolerance, rtol: Tolerance, err_msg: str) -> None:
    """Leaf by leaf, ``|got - want| <= atol * n + rtol * n * |want|`` (JAX's check_close)."""
    g_leaves, g_def = _tree.flatten_with_path(got)
    w_leaves, w_def = _tree.flatten_with_path(want)
    if g_def != w_def:
        raise _fail(err_msg, f"the two results have different structures ({g_def} and {w_def})")
    for (path, a), (_, b) in zip(g_leaves, w_leaves):
        where = f"output leaf {path!r}" if path else "the output"
        if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
            raise _fail(err_msg, f"{where} must be a tensor on both sides, got {describe(a)} "
                        f"and {describe(b)}")
        if a.shape != b.shape:
            raise _fail(err_msg, f"{where} has shape {tuple(a.shape)} from autodiff and "
                        f"{tuple(b.shape)} from the reference")
        n = max(a.numel(), 1)
        at = max(_tol(atol, a.dtype), _tol(atol, b.dtype)) * n
        rt = max(_tol(rtol, a.dtype), _tol(rtol, b.dtype)) * n
        a64 = a.detach().to("cpu", torch.complex128 if a.is_complex() else torch.float64)
        b64 = b.detach().to("cpu", torch.complex128 if b.is_complex() else torch.float64)
        if a64.is_complex() != b64.is_complex():
            a64, b64 = a64.to(torch.complex128), b64.to(torch.complex128)
        same = (a64 == b64) | (a64.isnan() & b64.isnan())
        diff = torch.where(same, torch.zeros((), dtype=torch.float64), (a64 - b64).abs())
        bound = at + rt * b64.abs()
        bad = ~(diff <= bound)
        if bool(bad.any()):
            i = int(torch.argmax(torch.where(bad, diff, torch.zeros_like(diff))))
            idx = tuple(int(k) for k in torch.unravel_index(torch.tensor(i), a.shape)) \
                if a.dim() else ()
            raise _fail(
                err_msg,
                f"{where} differs beyond atol={at:.3g}, rtol={rt:.3g} (the per-element "
                f"tolerance of {a.dtype} times {n} element(s)) at {int(bad.sum())} of "
                f"{a.numel()} element(s); worst at index {idx}: autodiff "
                f"{a64.reshape(-1)[i].item():.8g}, reference {b64.reshape(-1)[i].item():.8g} "
                f"(abs diff {diff.reshape(-1)[i].item():.3g})",
            )


def _check_dtypes(xs: Any, ys: Any, err_msg: str, what: str) -> None:
    for (path, x), (_, y) in zip(_tree.leaves_with_path(xs), _tree.leaves_with_path(ys)):
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.dtype != y.dtype:
            where = f"output leaf {path!r}" if path else "the output"
            raise _fail(err_msg, f"{where}: {what} have dtypes {x.dtype} and {y.dtype}")


# ----------------------------------------------------------------------------- checks
def check_jvp(
    f: Callable[..., Any],
    f_jvp: Callable[[Any, Any], tuple[Any, Any]],
    args: Sequence[Any],
    atol: Tolerance = None,
    rtol: Tolerance = None,
    eps: float = EPS,
    err_msg: str = "",
) -> None:
    """Check a forward-mode derivative against central differences in one random direction.

    Args:
        f: the function, checked at ``f(*args)``.
        f_jvp: ``f_jvp(primals, tangents) -> (out, tangent_out)``, usually
            ``functools.partial(ftx.jvp, f)``.
        args: tuple of floating or complex tensors (pytrees of them).
        atol, rtol: a number, or a dict ``{torch.dtype: number}`` over the defaults.
        eps: the finite-difference step.
        err_msg: a prefix naming the check in the message.

    Raises:
        AssertionError: when the tangent (or the primal output) differs.
    """
    args = _check_args("test_util.check_jvp", args)
    atol = _check_tol("test_util.check_jvp", "atol", atol)
    rtol = _check_tol("test_util.check_jvp", "rtol", rtol)
    err_msg = err_msg or "JVP"
    gen = torch.Generator().manual_seed(0)
    tangent = _tree.map(functools.partial(_rand_like, gen), args)
    v_out, t_out = f_jvp(args, tangent)
    _check_dtypes(v_out, t_out, err_msg, "the primal and tangent outputs")
    v_expected = f(*args)
    _check_dtypes(v_out, v_expected, err_msg, "the primal output and f(*args)")
    t_expected = numerical_jvp(f, args, tangent, eps=eps)
    _check_close(v_out, v_expected, atol, rtol, f"{err_msg} primal")
    _check_close(t_out, t_expected, atol, rtol, f"{err_msg} tangent")


def check_vjp(
    f: Callable[..., Any],
    f_vjp: Callable[..., tuple[Any, Callable[[Any], Any]]],
    args: Sequence[Any],
    atol: Tolerance = None,
    rtol: Tolerance = None,
    eps: float = EPS,
    err_msg: str = "",
) -> None:
    """Check a reverse-mode derivative: ``Re<vjp(c), t>`` against ``Re<c, (f(x+eps t) - ...)>``.

    Args:
        f: the function, checked at ``f(*args)``.
        f_vjp: ``f_vjp(*args) -> (out, vjp_fn)``, usually ``functools.partial(ftx.vjp, f)``.
        args, atol, rtol, eps, err_msg: as in :func:`check_jvp`.

    Raises:
        AssertionError: when the projections (or the primal outputs) differ.
    """
    args = _check_args("test_util.check_vjp", args)
    atol = _check_tol("test_util.check_vjp", "atol", atol)
    rtol = _check_tol("test_util.check_vjp", "rtol", rtol)
    err_msg = err_msg or "VJP"
    gen = torch.Generator().manual_seed(0)
    v_out, vjp_fn = f_vjp(*args)
    _check_close(v_out, f(*args), atol, rtol, f"{err_msg} primal")
    tangent = _tree.map(functools.partial(_rand_like, gen), args)
    tangent_out = numerical_jvp(f, args, tangent, eps=eps)
    cotangent = _tree.map(functools.partial(_rand_like, gen), v_out)
    cotangent_out = vjp_fn(cotangent)
    ip = _inner(tangent, cotangent_out)
    ip_expected = _inner(tangent_out, cotangent)
    _check_close(ip, ip_expected, atol, rtol, f"{err_msg} cotangent projection")


def check_grads(
    f: Callable[..., Any],
    args: Sequence[Any],
    order: int,
    modes: Sequence[str] = ("fwd", "rev"),
    atol: Tolerance = None,
    rtol: Tolerance = None,
    eps: float | None = None,
) -> None:
    """Check ftx's derivatives of ``f`` against finite differences (``jax.test_util``'s).

    Each check draws one random direction (seeded, so a run is repeatable) and compares
    the transform's answer with central differences. With ``order=2`` the derivative
    functions themselves are checked again (``JVP of JVP``, ``VJP of VJP``): that is what
    catches a rule whose first derivative is right but not differentiable.

    Args:
        f: a function of ``len(args)`` positional arguments returning a tensor or a pytree of
            floating or complex tensors.
        args: tuple of the arguments, each a floating or complex tensor or a pytree of them
            (Python floats become 0-d tensors of the default dtype). Use float64 where you
            can: float32 needs the looser default tolerance and a well-scaled ``eps``.
        order: check derivatives up to this order (1, 2, ...).
        modes: ``"fwd"`` (``ftx.jvp``), ``"rev"`` (``ftx.vjp``) and/or ``"lin"``
            (``ftx.linearize``).
        atol, rtol: a number, or a dict ``{torch.dtype: number}`` overriding the defaults
            (JAX's: float64 ``1e-5``, float32 ``2e-3``, float16 ``1e-2``, bfloat16 ``1e-1``);
            either is multiplied by the number of elements of the leaf compared.
        eps: the finite-difference step (default ``1e-4``).

    Raises:
        AssertionError: when a derivative disagrees with finite differences; the message
            names the check (e.g. ``VJP of JVP cotangent projection``), the output leaf, the
            worst element and both values.
        TypeError, ValueError: for arguments of the wrong kind or value.

    Example:
        >>> import torch, ftx
        >>> x = torch.tensor([0.3, -1.2], dtype=torch.float64)
        >>> ftx.test_util.check_grads(lambda x: torch.tanh(x) * x, (x,), order=2)
    """
    check_callable(_API, "f", f)
    args = _check_args(_API, args)
    order = check_int(_API, "order", order, low=1)
    if isinstance(modes, str):
        modes = (modes,)
    if not isinstance(modes, Sequence) or not modes or any(m not in _MODES for m in modes):
        raise ValueError(msg(_API, "modes must be a non-empty sequence of 'fwd', 'rev', 'lin'",
                             describe(modes), "Pass modes=('fwd', 'rev') or one of them."))
    atol = _check_tol(_API, "atol", atol)
    rtol = _check_tol(_API, "rtol", rtol)
    step = EPS if eps is None else check_real(_API, "eps", eps, low=0.0, low_open=True)
    jvp_check = functools.partial(check_jvp, atol=atol, rtol=rtol, eps=step)
    vjp_check = functools.partial(check_vjp, atol=atol, rtol=rtol, eps=step)

    def run(fn: Callable[..., Any], xs: tuple[Any, ...], k: int, name: str) -> None:
        if "fwd" in modes:
            fwd_msg = f"JVP of {name}" if name else "JVP"
            jvp_check(fn, functools.partial(_jvp, fn), xs, err_msg=fwd_msg)
            if k > 1:
                run(functools.partial(_jvp, fn), (xs, xs), k - 1, fwd_msg)
        if "rev" in modes:
            rev_msg = f"VJP of {name}" if name else "VJP"
            vjp_check(fn, functools.partial(_vjp, fn), xs, err_msg=rev_msg)
            if k > 1:

                def f_vjp(*ys: Any) -> Any:
                    out, pull = _vjp(fn, *ys)
                    return pull(out)

                run(f_vjp, xs, k - 1, rev_msg)
        if "lin" in modes:
            lin_msg = f"LIN of {name}" if name else "LIN"
            jvp_check(fn, functools.partial(_jvp_from_lin, fn), xs, err_msg=lin_msg)
            if k > 1:
                run(functools.partial(_jvp_from_lin, fn), (xs, xs), k - 1, lin_msg)

    run(f, args, order, "")


def _jvp_from_lin(f: Callable[..., Any], primals: Any, tangents: Any) -> tuple[Any, Any]:
    out, f_lin = _linearize(f, *primals)
    return out, f_lin(*tangents)
