"""grad, value_and_grad, jvp, vjp, linearize, hvp against torch.autograd and central differences."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ftx
from tests.helpers import central_difference_grad, central_difference_jacobian, tree_allclose

F64 = torch.float64

# Scalar functions of one tensor: (id, fun, input shape).
SCALAR_CASES: list[tuple[str, Callable[[torch.Tensor], torch.Tensor], tuple[int, ...]]] = [
    ("sin_sum", lambda x: x.sin().sum(), (5,)),
    ("quartic", lambda x: (x**4).sum() - (x**2).sum(), (3, 2)),
    ("logsumexp", lambda x: torch.logsumexp(x, dim=0), (4,)),
    ("quadratic_form",
     lambda x: x @ torch.arange(1.0, 10.0, dtype=x.dtype, device=x.device).view(3, 3) @ x, (3,)),
    ("tanh_prod", lambda x: torch.tanh(x).prod(), (4,)),
    ("norm", lambda x: torch.linalg.vector_norm(x), (6,)),
    ("scalar_in", lambda x: torch.exp(x) * x, ()),
]
# Vector functions of one tensor for jvp/vjp/linearize.
VECTOR_CASES: list[tuple[str, Callable[[torch.Tensor], torch.Tensor], tuple[int, ...]]] = [
    ("sin", torch.sin, (4,)),
    ("cube", lambda x: x**3, (2, 3)),
    ("matvec",
     lambda x: torch.arange(12.0, dtype=x.dtype, device=x.device).view(3, 4) @ x.tanh(), (4,)),
    ("softmax", lambda x: torch.softmax(x, dim=-1), (2, 5)),
    ("cumprod", lambda x: torch.cumprod(x, 0), (4,)),
    ("to_scalar", lambda x: (x**2).sum(), (3,)),
]


def _ids(cases: list[Any]) -> list[str]:
    return [c[0] for c in cases]


def _x(shape: tuple[int, ...], dtype: torch.dtype = F64, device: str = "cpu") -> torch.Tensor:
    g = torch.Generator().manual_seed(len(shape) * 7 + sum(shape))
    return (torch.rand(shape, generator=g, dtype=F64) + 0.5).to(dtype=dtype, device=device)


def _autograd_grad(f: Callable[..., torch.Tensor], *xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    ins = [x.detach().requires_grad_() for x in xs]
    return torch.autograd.grad(f(*ins), ins, allow_unused=True, materialize_grads=True)


# --------------------------------------------------------------------- grad
@pytest.mark.parametrize(("name", "f", "shape"), SCALAR_CASES, ids=_ids(SCALAR_CASES))
def test_grad_matches_autograd_and_central_differences(
    name: str, f: Callable[[torch.Tensor], torch.Tensor], shape: tuple[int, ...], device: str
) -> None:
    x = _x(shape, device=device)
    g = ftx.grad(f)(x)
    tree_allclose(g, _autograd_grad(f, x)[0], rtol=1e-10, atol=1e-12)
    tree_allclose(g.cpu(), central_difference_grad(f, x.cpu()), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("name", "f", "shape"), SCALAR_CASES, ids=_ids(SCALAR_CASES))
def test_grad_dtype_follows_input(
    name: str, f: Callable[[torch.Tensor], torch.Tensor], shape: tuple[int, ...], dtype: torch.dtype
) -> None:
    x = _x(shape, dtype=dtype)
    g = ftx.grad(f)(x)
    assert g.dtype == dtype and g.shape == x.shape
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(g, _autograd_grad(f, x)[0], rtol=tol, atol=tol)


def test_value_and_grad_value_first() -> None:
    x = _x((4,))
    value, g = ftx.value_and_grad(lambda x: (x**2).sum())(x)
    torch.testing.assert_close(value, (x**2).sum())
    torch.testing.assert_close(g, 2 * x)
    assert value.shape == () and not value.requires_grad and not g.requires_grad


def test_argnums_tuple_and_negative() -> None:
    f = lambda a, b, c: (a * b.sin() + c).sum()  # noqa: E731
    a, b, c = _x((3,)), _x((3,)) * 2, _x((3,)) * 3
    ga, gc = ftx.grad(f, argnums=(0, 2))(a, b, c)
    ref = _autograd_grad(f, a, b, c)
    torch.testing.assert_close(ga, ref[0])
    torch.testing.assert_close(gc, ref[2])
    torch.testing.assert_close(ftx.grad(f, argnums=-2)(a, b, c), ref[1])
    (only,) = ftx.grad(f, argnums=(1,))(a, b, c)
    torch.testing.assert_close(only, ref[1])


def test_pytree_arguments_leaf_by_leaf() -> None:
    params = {"w": _x((3, 2)), "b": _x((2,)), "extra": (_x((2,)), None)}

    def loss(p: dict[str, Any], x: torch.Tensor) -> torch.Tensor:
        return ((x @ p["w"] + p["b"]).tanh() * p["extra"][0]).sum()

    x = _x((4, 3))
    g = ftx.grad(loss)(params, x)
    assert list(g) == ["w", "b", "extra"] and g["extra"][1] is None
    leaves = [params["w"], params["b"], params["extra"][0]]
    ref = _autograd_grad(lambda w, b, e: loss({"w": w, "b": b, "extra": (e, None)}, x), *leaves)
    tree_allclose(g, {"w": ref[0], "b": ref[1], "extra": (ref[2], None)})


def test_unused_inputs_get_zeros_not_none() -> None:
    f = lambda x, y: (x**2).sum()  # noqa: E731
    _gx, gy = ftx.grad(f, argnums=(0, 1))(_x((2,)), _x((3, 1)))
    assert gy is not None
    torch.testing.assert_close(gy, torch.zeros(3, 1, dtype=F64))
    g = ftx.grad(lambda x: torch.tensor(1.0, dtype=F64))(_x((2,)))
    torch.testing.assert_close(g, torch.zeros(2, dtype=F64))


def test_has_aux_passes_any_pytree_through() -> None:
    def f(x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        return (x**2).sum(), {"pred": x * 2, "tag": "hello", "n": 3}

    g, aux = ftx.grad(f, has_aux=True)(_x((3,)))
    torch.testing.assert_close(g, 2 * _x((3,)))
    assert aux["tag"] == "hello" and aux["n"] == 3 and not aux["pred"].requires_grad
    (value, aux2), g2 = ftx.value_and_grad(f, 0, True)(_x((3,)))
    torch.testing.assert_close(value, (_x((3,)) ** 2).sum())
    torch.testing.assert_close(aux2["pred"], 2 * _x((3,)))
    torch.testing.assert_close(g2, g)


@pytest.mark.parametrize("int_dtype", [torch.int64, torch.int32, torch.bool], ids=str)
def test_allow_int_gives_float_zeros(int_dtype: torch.dtype) -> None:
    f = lambda x, n: (x * n.to(x.dtype)).sum()  # noqa: E731
    x, n = _x((3,)), torch.tensor([1, 0, 1]).to(int_dtype)
    gx, gn = ftx.grad(f, argnums=(0, 1), allow_int=True)(x, n)
    torch.testing.assert_close(gx, n.to(F64))
    assert gn.dtype == torch.get_default_dtype() and gn.shape == n.shape and not gn.any()


def test_keyword_arguments_are_not_differentiated() -> None:
    f = lambda x, *, scale: (scale * x**2).sum()  # noqa: E731
    s = torch.tensor(3.0, dtype=F64)
    torch.testing.assert_close(ftx.grad(f)(_x((2,)), scale=s), 6 * _x((2,)))


def test_repeated_calls_same_answer_never_backward_twice() -> None:
    w = _x((3, 3))

    def loss(x: torch.Tensor) -> torch.Tensor:
        return (w @ x).tanh().sum()

    x = _x((3,))
    for t in (ftx.grad(loss), ftx.value_and_grad(loss)):
        first = t(x)
        for _ in range(5):
            tree_allclose(t(x), first)
    _out, vjp_fn = ftx.vjp(loss, x)
    first_ct = vjp_fn(torch.tensor(1.0, dtype=F64))
    for _ in range(5):
        tree_allclose(vjp_fn(torch.tensor(1.0, dtype=F64)), first_ct)
    _y, jvp_fn = ftx.linearize(loss, x)
    t0 = jvp_fn(torch.ones(3, dtype=F64))
    for _ in range(3):
        tree_allclose(jvp_fn(torch.ones(3, dtype=F64)), t0)


def test_inputs_are_not_mutated() -> None:
    x = _x((3,))
    before = x.clone()
    ftx.grad(lambda x: (x**2).sum())(x)
    assert not x.requires_grad and x.grad is None and torch.equal(x, before)


def test_wrapper_keeps_function_metadata() -> None:
    def my_loss(x: torch.Tensor) -> torch.Tensor:
        """Docs."""
        return x.sum()

    for t in (ftx.grad, ftx.value_and_grad):
        w = t(my_loss)
        assert w.__name__ == "my_loss" and w.__doc__ == "Docs." and w.__wrapped__ is my_loss


def test_grad_of_grad_second_derivative() -> None:
    f = lambda x: x.sin() * x**2  # noqa: E731
    x = torch.tensor(0.7, dtype=F64)
    d2 = ftx.grad(ftx.grad(f))(x)
    ref = -x.sin() * x**2 + 4 * x * x.cos() + 2 * x.sin()
    torch.testing.assert_close(d2, ref)
    d3 = ftx.grad(ftx.grad(ftx.grad(lambda x: x**4)))(x)
    torch.testing.assert_close(d3, 24 * x)


# ------------------------------------------------------- jvp, vjp, linearize
@pytest.mark.parametrize(("name", "f", "shape"), VECTOR_CASES, ids=_ids(VECTOR_CASES))
def test_jvp_vjp_linearize_against_jacobian(
    name: str, f: Callable[[torch.Tensor], torch.Tensor], shape: tuple[int, ...], device: str
) -> None:
    x = _x(shape, device=device)
    jac = central_difference_jacobian(f, x.cpu()).to(device)
    jac_ag = torch.autograd.functional.jacobian(f, x)
    torch.testing.assert_close(jac_ag, jac, rtol=1e-6, atol=1e-7)
    out_shape = f(x).shape
    n_in, n_out = x.numel(), math.prod(out_shape)
    t = torch.linspace(-1, 1, n_in, dtype=F64, device=device).view(shape)
    ct = torch.linspace(1, 2, n_out, dtype=F64, device=device).view(out_shape)
    J = jac_ag.reshape(n_out, n_in)

    y, tout = ftx.jvp(f, (x,), (t,))
    torch.testing.assert_close(y, f(x))
    torch.testing.assert_close(tout, (J @ t.reshape(-1)).view(out_shape))

    y2, vjp_fn = ftx.vjp(f, x)
    torch.testing.assert_close(y2, f(x))
    (xct,) = vjp_fn(ct)
    torch.testing.assert_close(xct, (ct.reshape(-1) @ J).view(shape))

    y3, jvp_fn = ftx.linearize(f, x)
    torch.testing.assert_close(y3, f(x))
    torch.testing.assert_close(jvp_fn(t), tout)


def test_jvp_vjp_pytrees_and_several_primals() -> None:
    def f(p: dict[str, torch.Tensor], x: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        h = (p["w"] @ x).tanh()
        return h * p["b"], {"sq": (h**2).sum(), "none": None}

    p = {"w": _x((2, 3)), "b": _x((2,))}
    x = _x((3,))
    tp = {"w": torch.ones(2, 3, dtype=F64), "b": -torch.ones(2, dtype=F64)}
    tx = torch.full((3,), 0.5, dtype=F64)
    _y, t_out = ftx.jvp(f, (p, x), (tp, tx))
    # reference: central differences along the direction
    eps = 1e-6
    shift = lambda s: f(  # noqa: E731
        {k: p[k] + s * tp[k] for k in p}, x + s * tx
    )
    fd = ftx.tree.map(lambda a, b: (a - b) / (2 * eps), shift(eps), shift(-eps))
    tree_allclose(t_out, fd, rtol=1e-6, atol=1e-8)
    assert t_out[1]["none"] is None

    _out, vjp_fn = ftx.vjp(f, p, x)
    ct = (torch.tensor([1.0, -2.0], dtype=F64), {"sq": torch.tensor(0.5, dtype=F64), "none": None})
    cp, cx = vjp_fn(ct)
    assert set(cp) == {"w", "b"} and cx.shape == x.shape
    # <ct, J t> from both sides
    lhs = ftx.tree.vdot(ct, t_out)
    rhs = ftx.tree.vdot(cp, tp) + ftx.tree.vdot(cx, tx)
    torch.testing.assert_close(lhs, rhs)


def test_has_aux_for_jvp_vjp_linearize() -> None:
    f = lambda x: (x.sin(), {"c": x.cos(), "label": "aux"})  # noqa: E731
    x = _x((3,))
    _, t, aux = ftx.jvp(f, (x,), (torch.ones(3, dtype=F64),), has_aux=True)
    torch.testing.assert_close(t, x.cos())
    torch.testing.assert_close(aux["c"], x.cos())
    assert aux["label"] == "aux"
    _, vjp_fn, aux = ftx.vjp(f, x, has_aux=True)
    torch.testing.assert_close(vjp_fn(torch.ones(3, dtype=F64))[0], x.cos())
    assert aux["label"] == "aux" and not aux["c"].requires_grad
    _y, jvp_fn, aux = ftx.linearize(f, x, has_aux=True)
    torch.testing.assert_close(jvp_fn(torch.ones(3, dtype=F64)), x.cos())
    assert aux["label"] == "aux"


def test_vjp_unused_and_integer_primals_get_zeros() -> None:
    f = lambda x, y, n: x * 2  # noqa: E731
    x, y, n = _x((2,)), _x((3,)), torch.arange(4)
    _, vjp_fn = ftx.vjp(f, x, y, n)
    cx, cy, cn = vjp_fn(torch.ones(2, dtype=F64))
    torch.testing.assert_close(cx, torch.full((2,), 2.0, dtype=F64))
    torch.testing.assert_close(cy, torch.zeros(3, dtype=F64))
    assert cn.shape == (4,) and cn.is_floating_point() and not cn.any()


# --------------------------------------------------------------------- hvp
def test_hvp_matches_hessian_and_never_builds_it() -> None:
    A = torch.tensor([[2.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 4.0]], dtype=F64)
    f = lambda x: 0.5 * x @ A @ x + x.sin().sum()  # noqa: E731
    x, v = _x((3,)), torch.tensor([1.0, -1.0, 0.5], dtype=F64)
    (hv,) = ftx.hvp(f, (x,), (v,))
    H = A - torch.diag(x.sin())
    torch.testing.assert_close(hv, H @ v)


def test_hvp_several_arguments_blocks() -> None:
    f = lambda a, b: (a**2 * b).sum() + (b**3).sum()  # noqa: E731
    a, b = _x((2,)), _x((2,)) * 2
    va, vb = torch.tensor([1.0, 2.0], dtype=F64), torch.tensor([-1.0, 0.5], dtype=F64)
    ha, hb = ftx.hvp(f, (a, b), (va, vb))
    # d2f/da2 = 2b, d2f/dadb = 2a, d2f/db2 = 6b (all diagonal)
    torch.testing.assert_close(ha, 2 * b * va + 2 * a * vb)
    torch.testing.assert_close(hb, 2 * a * va + 6 * b * vb)


def test_hvp_pytree_primals() -> None:
    f = lambda p: (p["x"] ** 2 * p["y"].exp()).sum()  # noqa: E731
    p = {"x": _x((2,)), "y": _x((2,))}
    v = {"x": torch.ones(2, dtype=F64), "y": torch.zeros(2, dtype=F64)}
    (hp,) = ftx.hvp(f, (p,), (v,))
    torch.testing.assert_close(hp["x"], 2 * p["y"].exp())
    torch.testing.assert_close(hp["y"], 2 * p["x"] * p["y"].exp())


# --------------------------------------------------------- property tests
_UNARY = [torch.sin, torch.tanh, torch.exp, lambda z: z**2, lambda z: torch.log1p(z * z)]


@st.composite
def smooth_problem(draw: st.DrawFn) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor]:
    """A random composition of smooth maps with a random linear mixing, and an input."""
    n = draw(st.integers(1, 4))
    m = draw(st.integers(1, 4))
    ops = draw(st.lists(st.sampled_from(range(len(_UNARY))), min_size=1, max_size=3))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(m, n, generator=g, dtype=F64)
    x = torch.randn(n, generator=g, dtype=F64) * 0.5

    def f(x: torch.Tensor) -> torch.Tensor:
        h = W @ x
        for k in ops:
            h = _UNARY[k](h)
        return h

    return f, x


@settings(max_examples=25, deadline=None)
@given(smooth_problem(), st.integers(0, 2**16))
def test_property_ct_J_t_agrees_between_jvp_and_vjp(
    problem: tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor], seed: int
) -> None:
    f, x = problem
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(x.shape, generator=g, dtype=F64)
    y, jt = ftx.jvp(f, (x,), (t,))
    ct = torch.randn(y.shape, generator=g, dtype=F64)
    _, vjp_fn = ftx.vjp(f, x)
    (jct,) = vjp_fn(ct)
    torch.testing.assert_close(torch.vdot(ct, jt), torch.vdot(jct, t), rtol=1e-10, atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(smooth_problem(), st.integers(0, 2**16))
def test_property_hvp_equals_hessian_times_v(
    problem: tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor], seed: int
) -> None:
    f, x = problem
    scalar = lambda x: f(x).sum()  # noqa: E731
    v = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=F64)
    (hv,) = ftx.hvp(scalar, (x,), (v,))
    H = ftx.hessian(scalar)(x)
    torch.testing.assert_close(hv, H @ v, rtol=1e-9, atol=1e-10)
    # central differences (eps 1e-6) carry ~1e-7 relative error on steep functions
    # (hypothesis found |grad| ~ 740 off by 1.05e-7 relative): a tolerance they can meet
    torch.testing.assert_close(ftx.grad(scalar)(x), central_difference_grad(scalar, x),
                               rtol=1e-6, atol=1e-6)
