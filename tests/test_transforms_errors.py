"""Every error of grad/value_and_grad/jvp/vjp/linearize/hvp: kind, message form, fix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

import ftx

F64 = torch.float64
x3 = torch.ones(3, dtype=F64)
scalar = lambda x: (x**2).sum()  # noqa: E731
REVERSE = [pytest.param(ftx.grad, id="grad"), pytest.param(ftx.value_and_grad, id="value_and_grad")]


def _api(t: Callable[..., Any]) -> str:
    return str(t.__name__)


# ------------------------------------------------------------ build time
@pytest.mark.parametrize("t", REVERSE)
def test_fun_not_callable(t: Callable[..., Any]) -> None:
    with pytest.raises(TypeError, match=rf"ftx\.{_api(t)}: fun must be callable, got Tensor"):
        t(x3)


@pytest.mark.parametrize("t", REVERSE)
@pytest.mark.parametrize(
    ("argnums", "exc", "pattern"),
    [
        pytest.param(
            "0", TypeError, r"argnums must be an int or a sequence of ints, got str", id="str"
        ),
        pytest.param({0: 1}, TypeError, r"argnums must be an int or a sequence.*got dict",
                     id="dict"),
        pytest.param(True, TypeError, r"argnums must be an int or a sequence.*got bool", id="bool"),
        pytest.param((0, 1.0), TypeError, r"argnums must hold only ints, got float", id="float"),
        pytest.param((), ValueError, r"argnums must be a non-empty tuple, got \(\)", id="empty"),
        pytest.param((0, 0), ValueError, r"argnums must be unique, got \(0, 0\)", id="dup"),
    ],
)
def test_bad_argnums_at_build_time(
    t: Callable[..., Any], argnums: Any, exc: type[Exception], pattern: str
) -> None:
    with pytest.raises(exc, match=rf"ftx\.{_api(t)}: {pattern}"):
        t(scalar, argnums=argnums)


@pytest.mark.parametrize("t", REVERSE)
@pytest.mark.parametrize(
    ("argnums", "pattern"),
    [
        pytest.param(
            2,
            r"argnums must index the 2 positional argument\(s\) passed, got argnums=2",
            id="too_big",
        ),
        pytest.param(-3, r"argnums must index the 2 .*got argnums=-3", id="too_negative"),
        pytest.param((1, -1), r"argnums must name distinct arguments, got \(1, -1\)", id="alias"),
    ],
)
def test_bad_argnums_at_call_time(t: Callable[..., Any], argnums: Any, pattern: str) -> None:
    f = t(lambda a, b: (a * b).sum(), argnums=argnums)
    with pytest.raises(ValueError, match=rf"ftx\.{_api(t)}: {pattern}"):
        f(x3, x3)


# ------------------------------------------------------------ outputs
@pytest.mark.parametrize("t", REVERSE)
@pytest.mark.parametrize(
    ("fun", "exc", "pattern"),
    [
        pytest.param(
            lambda x: x, ValueError, r"scalar tensor of shape \(\), got shape \(3,\)", id="vector"
        ),
        pytest.param(lambda x: x.sum().reshape(1), ValueError, r"got shape \(1,\)", id="shape1"),
        pytest.param(
            lambda x: (x * 1j).sum(),
            TypeError,
            r"real floating scalar, got torch.complex128",
            id="complex",
        ),
        pytest.param(
            lambda x: x.sum().long(),
            TypeError,
            r"real floating scalar, got torch.int64",
            id="int_out",
        ),
        pytest.param(
            lambda x: float(x.sum()), TypeError, r"real scalar tensor.*got float", id="python_float"
        ),
    ],
)
def test_grad_needs_real_scalar_output(
    t: Callable[..., Any], fun: Callable[..., Any], exc: type[Exception], pattern: str
) -> None:
    with pytest.raises(exc, match=rf"ftx\.{_api(t)}: fun must return .*{pattern}.*jacrev.*vjp"):
        t(fun)(x3)


def test_scalar_output_error_also_under_vmap() -> None:
    with pytest.raises(ValueError, match=r"ftx\.grad: fun must return a scalar tensor of shape"):
        torch.func.vmap(ftx.grad(lambda x: x * 2))(torch.ones(2, 3))


# ------------------------------------------------------------ inputs
@pytest.mark.parametrize("t", REVERSE)
@pytest.mark.parametrize("dt", [torch.int64, torch.int32, torch.bool], ids=str)
def test_integer_inputs_need_allow_int(t: Callable[..., Any], dt: torch.dtype) -> None:
    n = torch.tensor([1, 0, 1]).to(dt)
    with pytest.raises(
        TypeError,
        match=rf"ftx\.{_api(t)}: differentiated inputs must have a floating dtype, got {dt} "
        r"for argument 0\. .*allow_int=True",
    ):
        t(lambda n: n.sum().double())(n)


def test_integer_leaf_named_by_path() -> None:
    params = {"layer": {"w": x3, "steps": torch.tensor(3)}}
    with pytest.raises(TypeError, match=r"int64 for argument 0 at 'layer\.steps'"):
        ftx.grad(lambda p: p["layer"]["w"].sum())(params)


def test_non_tensor_leaf() -> None:
    with pytest.raises(
        TypeError,
        match=r"ftx\.grad: differentiated inputs must be tensors, got "
        r"str 'a' for argument 1 at '0'",
    ):
        ftx.grad(lambda x, c: (x * c[0]).sum(), argnums=(0, 1))(x3, ["a"])


# ------------------------------------------------------------ has_aux
AUX_CALLS = [
    pytest.param(lambda f: ftx.grad(f, has_aux=True)(x3), "grad", id="grad"),
    pytest.param(
        lambda f: ftx.value_and_grad(f, has_aux=True)(x3), "value_and_grad", id="value_and_grad"
    ),
    pytest.param(lambda f: ftx.vjp(f, x3, has_aux=True), "vjp", id="vjp"),
    pytest.param(lambda f: ftx.jvp(f, (x3,), (x3,), has_aux=True), "jvp", id="jvp"),
    pytest.param(lambda f: ftx.linearize(f, x3, has_aux=True), "linearize", id="linearize"),
]


@pytest.mark.parametrize(("call", "api"), AUX_CALLS)
@pytest.mark.parametrize(
    "fun",
    [
        pytest.param(lambda x: x.sum(), id="tensor"),
        pytest.param(lambda x: (x.sum(), 1, 2), id="triple"),
    ],
)
def test_has_aux_needs_a_pair(call: Callable[..., Any], api: str, fun: Callable[..., Any]) -> None:
    with pytest.raises(
        TypeError,
        match=rf"ftx\.{api}: with has_aux=True, fun must return a pair "
        r"\(output, aux\), got .*Return `out, aux`",
    ):
        call(fun)


# ------------------------------------------------------------ jvp / linearize / hvp
JVP_LIKE = [
    pytest.param(lambda p, t: ftx.jvp(torch.sin, p, t), "jvp", id="jvp"),
    pytest.param(lambda p, t: ftx.hvp(scalar, p, t), "hvp", id="hvp"),
]


@pytest.mark.parametrize(("call", "api"), JVP_LIKE)
def test_jvp_primals_must_be_tuple(call: Callable[..., Any], api: str) -> None:
    with pytest.raises(
        TypeError,
        match=rf"ftx\.{api}: primals must be a tuple or list .*got "
        r"Tensor.*\(x,\), \(t,\)",
    ):
        call(x3, (x3,))
    with pytest.raises(TypeError, match=rf"ftx\.{api}: tangents must be a tuple or list"):
        call((x3,), x3)


@pytest.mark.parametrize(("call", "api"), JVP_LIKE)
def test_jvp_tangent_count(call: Callable[..., Any], api: str) -> None:
    with pytest.raises(
        ValueError,
        match=rf"ftx\.{api}: tangents must have one entry per primal "
        r"\(1\), got 2",
    ):
        call((x3,), (x3, x3))


@pytest.mark.parametrize(("call", "api"), JVP_LIKE)
def test_jvp_tangent_shape_dtype_structure(call: Callable[..., Any], api: str) -> None:
    with pytest.raises(
        ValueError,
        match=rf"ftx\.{api}: tangents must match the shape of primals, "
        r"got shape \(2,\) for tangents at '0' where primals "
        r"has \(3,\)",
    ):
        call((x3,), (torch.ones(2, dtype=F64),))
    with pytest.raises(
        TypeError,
        match=rf"ftx\.{api}: tangents must match the dtype of primals, "
        r"got torch.float32 for tangents at '0'.*\.to\(",
    ):
        call((x3,), (torch.ones(3),))
    with pytest.raises(
        TypeError,
        match=rf"ftx\.{api}: tangents must have the same tree structure "
        r"as primals",
    ):
        call((x3,), ((x3,),))


def test_jvp_tangent_path_in_pytree() -> None:
    p = {"a": x3, "b": torch.ones(2, dtype=F64)}
    t = {"a": x3, "b": torch.ones(5, dtype=F64)}
    with pytest.raises(ValueError, match=r"for tangents at '0\.b' where primals has \(2,\)"):
        ftx.jvp(lambda d: d["a"].sum() + d["b"].sum(), (p,), (t,))


@pytest.mark.parametrize("api", ["jvp", "linearize"])
def test_forward_mode_needs_float_primals(api: str) -> None:
    n = torch.arange(3)
    with pytest.raises(
        TypeError,
        match=rf"ftx\.{api}: primals must have a floating dtype, got "
        r"torch.int64 for primals at '0'",
    ):
        if api == "jvp":
            ftx.jvp(lambda n: n * 1.0, (n,), (n,))
        else:
            ftx.linearize(lambda n: n * 1.0, n)
    with pytest.raises(TypeError, match=rf"ftx\.{api}: primals must be tensors, got str 'a'"):
        if api == "jvp":
            ftx.jvp(lambda c: c, ("a",), ("a",))
        else:
            ftx.linearize(lambda c: c, "a")


def test_linearize_tangent_checks() -> None:
    _, jvp_fn = ftx.linearize(torch.sin, x3)
    with pytest.raises(
        ValueError,
        match=r"ftx\.linearize: tangents must have one entry per "
        r"primal \(1\), got 0",
    ):
        jvp_fn()
    with pytest.raises(ValueError, match=r"ftx\.linearize: tangents must match the shape"):
        jvp_fn(torch.ones(4, dtype=F64))


def test_hvp_needs_a_primal_and_scalar_output() -> None:
    with pytest.raises(ValueError, match=r"ftx\.hvp: primals must hold at least one argument"):
        ftx.hvp(scalar, (), ())
    with pytest.raises(ValueError, match=r"ftx\.hvp: fun must return a scalar tensor of shape"):
        ftx.hvp(torch.sin, (x3,), (x3,))


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: ftx.jvp(lambda x: [x, 1.0], (x3,), (x3,)), id="jvp"),
        pytest.param(lambda: ftx.vjp(lambda x: {"y": x, "n": "s"}, x3), id="vjp"),
        pytest.param(lambda: ftx.linearize(lambda x: (x, 2), x3), id="linearize"),
    ],
)
def test_outputs_must_be_tensors(call: Callable[[], Any]) -> None:
    with pytest.raises(
        TypeError,
        match=r"fun must return tensors, got (float|str|int) .* at "
        r"output '(1|n)'",
    ):
        call()


@pytest.mark.parametrize("api", ["jvp", "vjp", "linearize", "hvp"])
def test_forward_and_vjp_fun_not_callable(api: str) -> None:
    with pytest.raises(TypeError, match=rf"ftx\.{api}: fun must be callable, got int"):
        if api == "vjp":
            ftx.vjp(3, x3)
        elif api == "linearize":
            ftx.linearize(3, x3)
        else:
            getattr(ftx, api)(3, (x3,), (x3,))


# ------------------------------------------------------------ vjp cotangents
@pytest.mark.parametrize("route", ["fast", "func"])
def test_vjp_cotangent_checks(route: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if route == "func":
        monkeypatch.setattr("ftx._transforms.api.transform_active", lambda: True)
    _, vjp_fn = ftx.vjp(lambda x: {"y": x * 2, "s": x.sum()}, x3)
    with pytest.raises(
        TypeError,
        match=r"ftx\.vjp: cotangent must have the same tree structure "
        r"as the primal output",
    ):
        vjp_fn(x3)
    with pytest.raises(
        ValueError,
        match=r"ftx\.vjp: cotangent must match the shape of the primal "
        r"output, got shape \(2,\) for cotangent at 'y' where the "
        r"primal output has \(3,\)",
    ):
        vjp_fn({"y": torch.ones(2, dtype=F64), "s": torch.tensor(1.0, dtype=F64)})
    with pytest.raises(
        TypeError,
        match=r"ftx\.vjp: cotangent must match the dtype .*got "
        r"torch.float32 for cotangent at 's'",
    ):
        vjp_fn({"y": x3, "s": torch.tensor(1.0)})
    with pytest.raises(TypeError, match=r"ftx\.vjp: cotangent leaves must be tensors, got float"):
        vjp_fn({"y": x3, "s": 1.0})


def test_vjp_non_tensor_primal() -> None:
    with pytest.raises(TypeError, match=r"ftx\.vjp: primals must be tensors, got str 'a'"):
        ftx.vjp(lambda x, s: x, x3, "a")


def test_errors_are_never_bare_runtime_errors() -> None:
    bad: list[Callable[[], Any]] = [
        lambda: ftx.grad(lambda x: x)(x3),
        lambda: ftx.grad(scalar)(torch.arange(3)),
        lambda: ftx.vjp(lambda x: x, x3)[1](torch.ones(4, dtype=F64)),
        lambda: ftx.jvp(torch.sin, (x3,), (torch.ones(3),)),
    ]
    for call in bad:
        with pytest.raises((TypeError, ValueError)) as info:
            call()
        assert str(info.value).startswith("ftx.")
