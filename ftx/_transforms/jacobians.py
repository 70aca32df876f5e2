"""Jacobians and Hessians with JAX's layout over ``torch.func.jacfwd``/``jacrev``.

Contract: ``jacfwd``, ``jacrev``, ``jacobian`` and ``hessian`` take ``fun`` and
``argnums`` (an int or a non-empty tuple of unique ints) and return a function
with ``fun``'s parameters. The result has the output's structure outside and
the differentiated input's structure inside; each leaf has shape
``out_leaf.shape + in_leaf.shape``; with a tuple ``argnums`` each output leaf
holds a tuple with one entry per argument. ``has_aux=True`` means ``fun``
returns ``(output, aux)`` and the transform returns ``(jacobian, aux)``;
``hessian`` supports it too (``torch.func.hessian`` does not).

Build time: ``fun`` callable, ``argnums``, ``has_aux``, ``mode``,
``chunk_size``. Call time: ``argnums`` in range, differentiated leaves of a
floating dtype, ``fun`` returns tensors (and a pair with ``has_aux``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal, ParamSpec, cast, overload

import torch

from .._internal import pytree as _ft
from .._internal import torch_compat as _tc
from .._internal.errors import describe, msg
from ..tree import keystr
from .validate import (
    check_callable,
    check_complex_inputs,
    check_diff_leaves,
    dense_inputs,
    has_non_tensor_leaf,
    normalize_argnums,
    numbers_to_tensors,
    resolve_argnums,
    split_aux,
)

P = ParamSpec("P")

_MODES = ("auto", "fwd", "rev")
_MAX_DECISIONS = 64


def _check_bool(api: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(msg(api, f"{name} must be a bool", describe(value), f"Pass {name}=True."))


def _real_tensor(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.is_floating_point()


def _float_tensor(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and (x.is_floating_point() or x.is_complex())


def _check_float_inputs(api: str, args: tuple[Any, ...], argnums: tuple[int, ...]) -> None:
    """Call time: differentiated leaves are floating tensors (jacobians take no allow_int;
    forward mode takes no complex inputs, as in torch.func).

    The common case (all good) walks the leaves without paths; paths only for the message.
    """
    ok = _float_tensor if api == "jacrev" else _real_tensor
    for i in argnums:
        arg = args[i]
        if ok(arg) or all(ok(x) or x is None for x in _tc.tree_leaves(arg)):
            continue
        for path, leaf in _tc.tree_leaves_with_path(arg):
            if isinstance(leaf, torch.Tensor) and leaf.is_complex() and not ok(leaf):
                where = f"argument {i}" + (f" at {keystr(path)!r}" if path else "")
                raise TypeError(
                    msg(api, "differentiated inputs must be real in forward mode"
                        if api != "jacobian" else "differentiated inputs must be real",
                        f"{leaf.dtype} for {where}",
                        "Split it into real and imaginary parts (torch.view_as_real), use "
                        "ftx.jacrev, or pass holomorphic=True for a holomorphic function.")
                )
            if isinstance(leaf, torch.Tensor) and not _float_tensor(leaf):
                where = f"argument {i}" + (f" at {keystr(path)!r}" if path else "")
                raise TypeError(
                    msg(api, "differentiated inputs must have a floating dtype",
                        f"{leaf.dtype} for {where}",
                        "Cast it with .to(torch.float64), or move it out of argnums.")
                )
        check_diff_leaves(api, args, (i,), False)  # non-tensor leaves: the shared message


def _differentiable_output(api: str, x: torch.Tensor) -> bool:
    """Real floating outputs only: torch.func's Jacobians refuse complex ones in both modes."""
    return x.is_floating_point()


def _check_output_dtypes(api: str, out: Any) -> None:
    for path, leaf in _tc.tree_leaves_with_path(out):
        if isinstance(leaf, torch.Tensor) and not _differentiable_output(api, leaf):
            kind = "real floating"
            raise TypeError(
                msg(api, f"fun must return {kind} tensors",
                    f"{leaf.dtype} at output {keystr(path) or '<root>'!r}",
                    "Cast the output to a float dtype (integer outputs have no derivative)"
                    + ("; split a complex output into real and imaginary parts "
                       "(torch.view_as_real)." if leaf.is_complex() else "."))
            )


def _check_outputs(api: str, out: Any, fix: str) -> None:
    """Outputs are differentiable tensors; the path-naming checks run only when one is not."""
    if isinstance(out, torch.Tensor):
        if not _differentiable_output(api, out):
            _check_output_dtypes(api, out)
        return
    leaves = _tc.tree_leaves(out)
    if all(isinstance(x, torch.Tensor) for x in leaves):
        if not all(_differentiable_output(api, x) for x in leaves):
            _check_output_dtypes(api, out)
        return
    with_paths = _tc.tree_leaves_with_path(out)
    for path, leaf in with_paths:  # non-tensor leaves first, then None leaves
        if leaf is not None and not isinstance(leaf, torch.Tensor):
            raise TypeError(msg(api, "fun must return tensors",
                                f"{describe(leaf)} at output {keystr(path) or '<root>'!r}", fix))
    for path, leaf in with_paths:
        if leaf is None:  # torch.func cannot differentiate a None output leaf
            raise TypeError(
                msg(api, "fun must return tensors", f"None at output {keystr(path) or '<root>'!r}",
                    "Drop the None from the output, or return it through has_aux.")
            )


def _checked(api: str, fun: Callable[..., Any], has_aux: bool) -> Callable[..., Any]:
    """``fun`` with its output checked: tensors only, and a pair ``(out, aux)`` with aux."""
    fix = "ftx." + api + " differentiates tensor outputs; return tensors (aux via has_aux=True)."

    @functools.wraps(fun)
    def checked(*args: Any, **kwargs: Any) -> Any:
        out = fun(*args, **kwargs)
        if has_aux:
            out, aux = split_aux(api, out)
            _check_outputs(api, out, fix)
            if isinstance(aux, torch.Tensor) or all(
                isinstance(x, torch.Tensor) for x in _tc.tree_leaves(aux)
            ):
                return out, aux
            for path, leaf in _tc.tree_leaves_with_path(aux):
                if not isinstance(leaf, torch.Tensor):
                    raise TypeError(
                        msg(api, "aux must be a pytree of tensors",
                            f"{describe(leaf)} at aux {keystr(path) or '<root>'!r}",
                            "Return the value as a tensor, or keep it out of the function.")
                    )
            return out, aux
        _check_outputs(api, out, fix)
        return out

    return checked


def _build(
    api: str,
    make: Callable[[Callable[..., Any], int | tuple[int, ...]], Callable[..., Any]],
    fun: Callable[..., Any],
    argnums: Any,
    has_aux: bool,
    holomorphic: bool = False,
) -> Callable[..., Any]:
    """Validate at build time and return the call-time function around ``make``'s transform."""
    check_callable(api, fun)
    nums = normalize_argnums(api, argnums)
    _check_bool(api, "has_aux", has_aux)
    _check_bool(api, "holomorphic", holomorphic)
    single = isinstance(argnums, int)
    checked = _checked(api, fun, has_aux)
    fixed = make(checked, nums[0] if single else nums) if min(nums) >= 0 else None

    @_ft.cycle_safe(api)
    def call(*args: Any, **kwargs: Any) -> Any:
        resolved = resolve_argnums(api, nums, len(args))
        if any(has_non_tensor_leaf(args[i]) for i in resolved):  # Python numbers, as in JAX
            args = numbers_to_tensors(args, resolved)
        if holomorphic:
            check_complex_inputs(api, args, resolved)
            args = dense_inputs(api, args, resolved)
            return _complex_jacobian(api, make, fun, args, kwargs, resolved, single, has_aux,
                                     holomorphic=True)
        _check_float_inputs(api, args, resolved)
        args = dense_inputs(api, args, resolved)
        if api == "jacrev" and any(
            isinstance(x, torch.Tensor) and x.is_complex()
            for i in resolved for x in _tc.tree_leaves(args[i])
        ):  # torch.func.jacrev refuses complex inputs: differentiate their real views
            return _complex_jacobian(api, make, checked, args, kwargs, resolved, single,
                                     has_aux, holomorphic=False)
        if kwargs:  # keyword arguments are not differentiated (as in JAX)
            f = functools.partial(checked, **kwargs)
            return make(f, resolved[0] if single else resolved)(*args)
        if fixed is not None:
            return fixed(*args)
        return make(checked, resolved[0] if single else resolved)(*args)

    return call


# ----------------------------------------------------------------------------- complex inputs
def _check_complex_outputs(api: str, out: Any) -> None:
    for path, leaf in _tc.tree_leaves_with_path(out):
        if not (isinstance(leaf, torch.Tensor) and leaf.is_complex()):
            got = f"{leaf.dtype}" if isinstance(leaf, torch.Tensor) else describe(leaf)
            raise TypeError(
                msg(api, "fun must return complex tensors when holomorphic=True (as in JAX)",
                    f"{got} at output {keystr(path) or '<root>'!r}",
                    "Return a complex output, or drop holomorphic=True for a real one.")
            )


def _to_real(x: Any) -> Any:
    """A complex tensor as a real one with a trailing axis of 2 (real, imaginary)."""
    if isinstance(x, torch.Tensor) and x.is_complex():
        return torch.stack((x.real, x.imag), dim=-1)
    return x


def _complex_jacobian(
    api: str,
    make: Callable[[Callable[..., Any], int | tuple[int, ...]], Callable[..., Any]],
    fun: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    resolved: tuple[int, ...],
    single: bool,
    has_aux: bool,
    holomorphic: bool,
) -> Any:
    """The Jacobian with complex inputs, through their real views ``(re, im)``.

    ``make``'s (real) transform differentiates ``F(re, im) = f(re + i im)`` (with
    ``holomorphic``, the output split the same way). For a holomorphic ``f``,
    ``df/dz = dF/d re`` read as a complex number: JAX's ``holomorphic=True`` result.
    Otherwise (real outputs, ``jacrev``) the entry is ``dF/d re + i dF/d im``, torch's
    convention, the one ``ftx.grad`` follows (``grad(|z|^2)(z) = 2 z``).
    """
    diff = [_tc.tree_leaves(args[i]) for i in resolved]
    complex_in = [isinstance(x, torch.Tensor) and x.is_complex() for xs in diff for x in xs]
    in_nd = [x.dim() if isinstance(x, torch.Tensor) else 0 for xs in diff for x in xs]
    real_args = list(args)
    for i in resolved:
        real_args[i] = _tc.tree_map(_to_real, args[i])
    complex_at = {i: _tc.tree_map(lambda x: isinstance(x, torch.Tensor) and x.is_complex(),
                                  args[i]) for i in resolved}

    def back(x: Any, was_complex: bool) -> Any:
        return torch.complex(x.select(-1, 0), x.select(-1, 1)) if was_complex else x

    def real_fun(*a: Any, **kw: Any) -> Any:
        full = list(a)
        for i in resolved:
            full[i] = _tc.tree_map(back, a[i], complex_at[i])
        out = fun(*full, **kw)
        if not holomorphic:
            return out
        aux = None
        if has_aux:
            out, aux = split_aux(api, out)
        _check_complex_outputs(api, out)
        out = _tc.tree_map(_to_real, out)
        return (out, aux) if has_aux else out

    f = functools.partial(real_fun, **kwargs) if kwargs else real_fun
    result = make(f, resolved[0] if single else resolved)(*real_args)
    jac, aux = result if has_aux else (result, None)
    leaves, spec = _tc.tree_flatten(jac)
    n_in = len(complex_in)
    out_leaves = []
    for k, leaf in enumerate(leaves):
        j = k % n_in
        if not complex_in[j]:
            out_leaves.append(leaf)
            continue
        if holomorphic:
            d_re = leaf.select(-1, 0)  # dF/d re, shape out + (2,) + in
            out_nd = d_re.dim() - in_nd[j] - 1
            out_leaves.append(torch.complex(d_re.select(out_nd, 0), d_re.select(out_nd, 1)))
        else:
            out_leaves.append(torch.complex(leaf.select(-1, 0), leaf.select(-1, 1)))
    jac = _tc.tree_unflatten(out_leaves, spec)
    return (jac, aux) if has_aux else jac


@overload
def jacfwd(
    fun: Callable[P, Any], argnums: int | tuple[int, ...] = 0, has_aux: Literal[False] = False,
    holomorphic: bool = False,
) -> Callable[P, Any]: ...
@overload
def jacfwd(
    fun: Callable[P, Any], argnums: int | tuple[int, ...], has_aux: Literal[True],
    holomorphic: bool = False,
) -> Callable[P, tuple[Any, Any]]: ...
@overload
def jacfwd(
    fun: Callable[P, Any], argnums: int | tuple[int, ...] = 0, *, has_aux: Literal[True],
    holomorphic: bool = False,
) -> Callable[P, tuple[Any, Any]]: ...
def jacfwd(
    fun: Callable[P, Any],
    argnums: int | tuple[int, ...] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
) -> Callable[P, Any]:
    """Jacobian of ``fun`` by forward mode (one JVP per input element, vectorized).

    Args:
        fun: a function of tensors/pytrees returning a tensor or a pytree of
            tensors (``(output, aux)`` with ``has_aux``).
        argnums: which positional argument(s) to differentiate.
        has_aux: ``fun`` returns ``(output, aux)``; aux is passed through.
        holomorphic: ``fun`` is holomorphic (complex differentiable): inputs and
            outputs must be complex and the result is the complex derivative
            ``df/dz``, as with JAX's ``holomorphic=True`` (computed through the
            real views of the inputs: twice the JVPs). Without it, inputs must be
            real (JAX refuses complex ones too).

    Returns:
        A function with ``fun``'s parameters returning the Jacobian: for
        ``fun: (n,) -> (m,)``, a tensor ``(m, n)``; in general output
        structure outside, input structure inside, leaves shaped
        ``out.shape + in.shape``. ``(jacobian, aux)`` with ``has_aux``.

    Example:
        >>> import torch, ftx
        >>> ftx.jacfwd(torch.sin)(torch.zeros(2))        # (2,) -> (2, 2)
        tensor([[1., 0.],
                [0., 1.]])
    """
    return functools.wraps(fun)(
        _build("jacfwd", lambda f, a: torch.func.jacfwd(f, a, has_aux=has_aux), fun, argnums,
               has_aux, holomorphic)
    )


@overload
def jacrev(
    fun: Callable[P, Any], argnums: int | tuple[int, ...] = 0, has_aux: Literal[False] = False,
    holomorphic: bool = False, *, chunk_size: int | None = None,
) -> Callable[P, Any]: ...
@overload
def jacrev(
    fun: Callable[P, Any], argnums: int | tuple[int, ...], has_aux: Literal[True],
    holomorphic: bool = False, *, chunk_size: int | None = None,
) -> Callable[P, tuple[Any, Any]]: ...
@overload
def jacrev(
    fun: Callable[P, Any], argnums: int | tuple[int, ...] = 0, *, has_aux: Literal[True],
    holomorphic: bool = False, chunk_size: int | None = None,
) -> Callable[P, tuple[Any, Any]]: ...
def jacrev(
    fun: Callable[P, Any], argnums: int | tuple[int, ...] = 0, has_aux: bool = False,
    holomorphic: bool = False, *, chunk_size: int | None = None,
) -> Callable[P, Any]:
    """Jacobian of ``fun`` by reverse mode (one VJP per output element, vectorized).

    Args:
        fun: a function of tensors/pytrees returning a tensor or a pytree of
            tensors (``(output, aux)`` with ``has_aux``).
        argnums: which positional argument(s) to differentiate.
        has_aux: ``fun`` returns ``(output, aux)``; aux is passed through.
        holomorphic: ``fun`` is holomorphic: inputs and outputs must be complex
            and the result is ``df/dz``, as with JAX's ``holomorphic=True``.
            Without it, outputs must be real; a complex input ``z = x + iy`` gets
            ``df/dx + i df/dy`` (torch's convention, that of ``ftx.grad``: the
            conjugate of JAX's answer). Complex inputs are differentiated through
            their real views (``torch.func.jacrev`` refuses complex inputs).
        chunk_size: compute this many VJPs at a time (saves memory); ``None``
            does all at once.

    Returns:
        The Jacobian with the layout of :func:`jacfwd` (``(m, n)`` for
        ``(n,) -> (m,)``); ``(jacobian, aux)`` with ``has_aux``.

    Example:
        >>> import torch, ftx
        >>> ftx.jacrev(lambda x: (x ** 2).sum(0))(torch.ones(2, 3)).shape   # (2, 3) -> (3,)
        torch.Size([3, 2, 3])
    """
    if chunk_size is not None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
            raise TypeError(msg("jacrev", "chunk_size must be a positive int or None",
                                describe(chunk_size), "Pass e.g. chunk_size=16."))
        if chunk_size < 1:
            raise ValueError(msg("jacrev", "chunk_size must be a positive int or None",
                                 repr(chunk_size), "Pass e.g. chunk_size=16."))
    return functools.wraps(fun)(
        _build(
            "jacrev",
            lambda f, a: torch.func.jacrev(f, a, has_aux=has_aux, chunk_size=chunk_size),
            fun, argnums, has_aux, holomorphic,
        )
    )


def _size(tree: Any) -> int:
    return sum(x.numel() for x in _tc.tree_leaves(tree) if isinstance(x, torch.Tensor))


def jacobian(
    fun: Callable[P, Any], argnums: int | tuple[int, ...] = 0, has_aux: bool = False,
    *, mode: str = "auto",
) -> Callable[P, Any]:
    """Jacobian of ``fun`` by forward or reverse mode, whichever is cheaper.

    Args:
        fun: as in :func:`jacfwd`.
        argnums: which positional argument(s) to differentiate.
        has_aux: ``fun`` returns ``(output, aux)``.
        mode: ``"fwd"`` (:func:`jacfwd`), ``"rev"`` (:func:`jacrev`) or
            ``"auto"``: forward mode when the differentiated inputs have fewer
            elements in total than the outputs, else reverse mode. The choice
            is made at call time by one probe evaluation of ``fun`` (under
            ``torch.no_grad``) and cached per input shapes.

    Returns:
        The Jacobian with the layout of :func:`jacfwd`; ``(jacobian, aux)``
        with ``has_aux``.

    Example:
        >>> import torch, ftx
        >>> ftx.jacobian(lambda x: x.outer(x))(torch.tensor([1.0, 2.0])).shape  # fwd: 2 < 4
        torch.Size([2, 2, 2])
    """
    if not isinstance(mode, str):
        raise TypeError(msg("jacobian", "mode must be a str", describe(mode),
                            "Pass mode='auto', 'fwd' or 'rev'."))
    if mode not in _MODES:
        raise ValueError(msg("jacobian", "mode must be 'auto', 'fwd' or 'rev'", repr(mode),
                             "Pick one of those three."))
    fwd = _build("jacobian", lambda f, a: torch.func.jacfwd(f, a, has_aux=has_aux), fun,
                 argnums, has_aux)
    rev = _build("jacobian", lambda f, a: torch.func.jacrev(f, a, has_aux=has_aux), fun,
                 argnums, has_aux)
    if mode != "auto":
        return functools.wraps(fun)(fwd if mode == "fwd" else rev)
    nums = normalize_argnums("jacobian", argnums)
    checked = _checked("jacobian", fun, has_aux)
    decisions: dict[tuple[Any, ...], bool] = {}

    @functools.wraps(fun)
    def auto(*args: Any, **kwargs: Any) -> Any:
        key = tuple(
            tuple(x.shape) if isinstance(x, torch.Tensor) else type(x)
            for x in _tc.tree_leaves(args)
        )
        # Under torch.compile the cache is neither read nor written: a dict that changes
        # after the first trace would fail dynamo's guards and recompile (the probe is dead
        # code in the graph).
        compiling = _tc.is_compiling()
        use_fwd = None if compiling else decisions.get(key)
        if use_fwd is None:
            resolved = resolve_argnums("jacobian", nums, len(args))
            _check_float_inputs("jacobian", args, resolved)
            with torch.no_grad():
                out = checked(*args, **kwargs)
            n_in = sum(_size(args[i]) for i in resolved)
            use_fwd = n_in < _size(out[0] if has_aux else out)
            if not compiling:
                if len(decisions) >= _MAX_DECISIONS:
                    decisions.clear()
                decisions[key] = use_fwd
        return fwd(*args, **kwargs) if use_fwd else rev(*args, **kwargs)

    return cast(Callable[P, Any], auto)


@overload
def hessian(
    fun: Callable[P, Any], argnums: int | tuple[int, ...] = 0, has_aux: Literal[False] = False
) -> Callable[P, Any]: ...
@overload
def hessian(
    fun: Callable[P, Any], argnums: int | tuple[int, ...], has_aux: Literal[True]
) -> Callable[P, tuple[Any, Any]]: ...
@overload
def hessian(
    fun: Callable[P, Any], argnums: int | tuple[int, ...] = 0, *, has_aux: Literal[True]
) -> Callable[P, tuple[Any, Any]]: ...
def hessian(
    fun: Callable[P, Any], argnums: int | tuple[int, ...] = 0, has_aux: bool = False
) -> Callable[P, Any]:
    """Hessian of ``fun`` by forward-over-reverse (``jacfwd(jacrev(fun))``, as
    ``torch.func.hessian``).

    Args:
        fun: a function returning a tensor (usually a scalar) or a pytree of
            tensors; ``(output, aux)`` with ``has_aux``.
        argnums: which positional argument(s) to differentiate.
        has_aux: ``fun`` returns ``(output, aux)``; aux is passed through.

    Returns:
        For a scalar ``fun`` of ``x: (n,)``, a tensor ``(n, n)``; in general
        leaves shaped ``out.shape + in.shape + in.shape`` with the input
        structure nested twice (``H[k1][k2]`` for dict inputs; a tuple of
        tuples with a tuple ``argnums``). ``(hessian, aux)`` with ``has_aux``.

    Example:
        >>> import torch, ftx
        >>> ftx.hessian(lambda x: (x ** 3).sum())(torch.ones(3))   # 6 * I: d2/dx2 of x**3 at 1
        tensor([[6., 0., 0.],
                [0., 6., 0.],
                [0., 0., 6.]])
    """

    def make(f: Callable[..., Any], a: int | tuple[int, ...]) -> Callable[..., Any]:
        inner = torch.func.jacrev(f, a, has_aux=has_aux)
        return torch.func.jacfwd(inner, a, has_aux=has_aux)

    return functools.wraps(fun)(_build("hessian", make, fun, argnums, has_aux))
