"""jacfwd/jacrev/jacobian/hessian against torch.autograd.functional and central differences."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd.functional import hessian as ag_hessian
from torch.autograd.functional import jacobian as ag_jacobian

import ftx
from tests.helpers import central_difference_jacobian, tree_allclose

F64 = torch.float64

FUNS: list[tuple[str, Callable[[torch.Tensor], torch.Tensor], tuple[int, ...]]] = [
    ("sin", torch.sin, (3,)),
    ("matrix-square", lambda x: x @ x, (3, 3)),
    ("softmax", lambda x: torch.softmax(x, -1), (4,)),
    ("outer", lambda x: torch.outer(x, x.exp()), (3,)),
    ("sum-to-scalar", lambda x: (x ** 3).sum(), (2, 3)),
    ("reduce-rows", lambda x: x.tanh().sum(0), (4, 2)),
]
JAC_TRANSFORMS = {
    "jacfwd": ftx.jacfwd,
    "jacrev": ftx.jacrev,
    "jacobian-auto": ftx.jacobian,
    "jacobian-fwd": lambda f: ftx.jacobian(f, mode="fwd"),
    "jacobian-rev": lambda f: ftx.jacobian(f, mode="rev"),
    "jacrev-chunk2": lambda f: ftx.jacrev(f, chunk_size=2),
}


@pytest.mark.parametrize("name", list(JAC_TRANSFORMS))
@pytest.mark.parametrize("case", FUNS, ids=[c[0] for c in FUNS])
def test_jacobian_against_autograd_and_differences(case: Any, name: str, device: str) -> None:
    _, f, shape = case
    x = torch.randn(shape, dtype=F64, device=device)
    jac = JAC_TRANSFORMS[name](f)(x)
    torch.testing.assert_close(jac, ag_jacobian(f, x))
    torch.testing.assert_close(jac, central_difference_jacobian(f, x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("case", FUNS, ids=[c[0] for c in FUNS])
def test_hessian_against_autograd(case: Any, device: str) -> None:
    _, f, shape = case
    x = torch.randn(shape, dtype=F64, device=device)
    hess = ftx.hessian(f)(x)
    out = f(x)
    assert hess.shape == out.shape + x.shape + x.shape
    if out.dim() == 0:
        torch.testing.assert_close(hess, ag_hessian(f, x))
    ref = central_difference_jacobian(lambda y: ftx.jacrev(f)(y), x)
    torch.testing.assert_close(hess, ref, rtol=1e-6, atol=1e-6)


def test_float32(dtype: torch.dtype) -> None:
    x = torch.randn(3, dtype=dtype)
    jac = ftx.jacrev(torch.sin)(x)
    assert jac.dtype == dtype
    torch.testing.assert_close(jac, torch.diag(x.cos()))


def _two_args(p: dict[str, torch.Tensor], x: torch.Tensor) -> dict[str, Any]:
    return {"y": torch.tanh(p["w"] @ x + p["b"]), "n": (p["w"] ** 2).sum() * x.sum()}


@pytest.mark.parametrize("transform", [ftx.jacfwd, ftx.jacrev, ftx.jacobian],
                         ids=["jacfwd", "jacrev", "jacobian"])
def test_pytree_layout_and_tuple_argnums(transform: Any) -> None:
    p = {"w": torch.randn(2, 3, dtype=F64), "b": torch.randn(2, dtype=F64)}
    x = torch.randn(3, dtype=F64)
    jac = transform(_two_args, argnums=(0, 1))(p, x)
    assert set(jac) == {"y", "n"}
    jp, jx = jac["y"]
    assert jp["w"].shape == (2, 2, 3) and jp["b"].shape == (2, 2) and jx.shape == (2, 3)
    assert jac["n"][0]["w"].shape == (2, 3) and jac["n"][1].shape == (3,)
    w_ref = ag_jacobian(lambda w: _two_args({"w": w, "b": p["b"]}, x)["y"], p["w"])
    torch.testing.assert_close(jp["w"], w_ref)
    x_ref = ag_jacobian(lambda x: _two_args(p, x)["n"], x)
    torch.testing.assert_close(jac["n"][1], x_ref)
    neg = transform(_two_args, argnums=-1)(p, x)
    torch.testing.assert_close(neg["y"], jx)


def test_has_aux_everywhere() -> None:
    x = torch.randn(3, dtype=F64)

    def f(x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return (x ** 3).sum(), {"double": 2 * x}

    for transform in (ftx.jacfwd, ftx.jacrev, ftx.jacobian, ftx.hessian):
        _, aux = transform(f, has_aux=True)(x)
        torch.testing.assert_close(aux["double"], 2 * x)
    hess, _ = ftx.hessian(f, has_aux=True)(x)
    torch.testing.assert_close(hess, torch.diag(6 * x))


def test_hessian_pytree_and_tuple_argnums_layout() -> None:
    d = {"a": torch.randn(3, dtype=F64), "b": torch.randn(2, 2, dtype=F64)}
    hess = ftx.hessian(lambda d: (d["a"] ** 3).sum() * (d["b"] ** 2).sum())(d)
    assert hess["a"]["b"].shape == (3, 2, 2) and hess["b"]["a"].shape == (2, 2, 3)
    torch.testing.assert_close(hess["a"]["b"], hess["b"]["a"].permute(2, 0, 1))
    x, y = torch.randn(3, dtype=F64), torch.randn(3, dtype=F64)
    (hxx, hxy), (hyx, _) = ftx.hessian(lambda x, y: (x * y).sum() ** 2, argnums=(0, 1))(x, y)
    torch.testing.assert_close(hxx, 2 * torch.outer(y, y))
    torch.testing.assert_close(hxy, hyx.T)


def test_keyword_arguments_are_not_differentiated() -> None:
    x = torch.randn(3, dtype=F64)
    for transform in (ftx.jacfwd, ftx.jacrev, ftx.jacobian):
        out = transform(lambda x, s: x * s)(x, s=2.0)
        torch.testing.assert_close(out, 2 * torch.eye(3, dtype=F64))


def test_auto_mode_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    picked: list[str] = []
    import ftx._transforms.jacobians as jac_mod

    real_build = jac_mod._build

    def build(api: str, make: Any, fun: Any, argnums: Any, has_aux: bool) -> Any:
        call = real_build(api, make, fun, argnums, has_aux)
        kind = "fwd" if "jacfwd" in make.__code__.co_names else "rev"

        def traced(*a: Any, **k: Any) -> Any:
            picked.append(kind)
            return call(*a, **k)
        return traced

    monkeypatch.setattr(jac_mod, "_build", build)
    ftx.jacobian(lambda x: torch.outer(x, x))(torch.randn(3))
    ftx.jacobian(lambda x: x.sum(0))(torch.randn(4, 3))
    ftx.jacobian(lambda x: x * 2)(torch.randn(3))  # equal sizes: reverse
    assert picked == ["fwd", "rev", "rev"]


def test_repeated_calls_agree() -> None:
    x = torch.randn(4, dtype=F64)
    f = lambda x: torch.outer(x.sin(), x)  # noqa: E731
    for transform in (ftx.jacfwd, ftx.jacrev, ftx.jacobian, ftx.hessian):
        t = transform(f)
        first = t(x)
        for _ in range(3):
            torch.testing.assert_close(t(x), first, rtol=0, atol=0)


def test_compositions_with_vmap_and_torch_func() -> None:
    xs = torch.randn(5, 3, dtype=F64)
    g = lambda x: (x.sin() * x).sum()  # noqa: E731
    batched = ftx.vmap(ftx.hessian(g))(xs)
    torch.testing.assert_close(batched, torch.stack([ag_hessian(g, x) for x in xs]))
    fr = ftx.jacfwd(ftx.jacrev(g))(xs[0])
    torch.testing.assert_close(fr, ag_hessian(g, xs[0]))
    rf = ftx.jacrev(ftx.jacfwd(g))(xs[0])
    torch.testing.assert_close(rf, fr)
    mixed = torch.func.jacfwd(ftx.jacrev(g))(xs[0])
    torch.testing.assert_close(mixed, fr)
    inside = ftx.jacrev(torch.func.grad(g))(xs[0])
    torch.testing.assert_close(inside, fr)
    under_torch_vmap = torch.func.vmap(ftx.jacrev(torch.sin))(xs)
    torch.testing.assert_close(under_torch_vmap, torch.diag_embed(xs.cos()))


# -- property tests ---------------------------------------------------------------------------

SMOOTH: list[Callable[[torch.Tensor], torch.Tensor]] = [
    lambda x: torch.sin(x) * x.sum(),
    lambda x: torch.tanh(x).cumsum(-1),
    lambda x: torch.exp(0.3 * x) / (1 + (x ** 2).sum()),
    lambda x: torch.outer(x.flatten(), x.flatten().cos()),
]
SCALAR: list[Callable[[torch.Tensor], torch.Tensor]] = [
    lambda x: (torch.sin(x) * x).sum(),
    lambda x: torch.logsumexp(x.flatten(), 0) + (x ** 4).sum(),
    lambda x: (x.flatten().outer(x.flatten()).tanh()).sum(),
]


@settings(max_examples=20, deadline=None)
@given(fn=st.integers(0, len(SMOOTH) - 1),
       shape=st.lists(st.integers(1, 3), min_size=1, max_size=2),
       seed=st.integers(0, 2**16))
def test_property_jacfwd_equals_jacrev(fn: int, shape: list[int], seed: int) -> None:
    torch.manual_seed(seed)
    x = torch.randn(shape, dtype=F64)
    f = SMOOTH[fn]
    torch.testing.assert_close(ftx.jacfwd(f)(x), ftx.jacrev(f)(x))


@settings(max_examples=20, deadline=None)
@given(fn=st.integers(0, len(SCALAR) - 1),
       shape=st.lists(st.integers(1, 3), min_size=1, max_size=2),
       seed=st.integers(0, 2**16))
def test_property_hessian_is_jacobian_of_gradient_transposed_and_symmetric(
    fn: int, shape: list[int], seed: int
) -> None:
    torch.manual_seed(seed)
    x = torch.randn(shape, dtype=F64)
    f = SCALAR[fn]
    n = x.numel()
    hess = ftx.hessian(f)(x).reshape(n, n)
    jac_grad = ftx.jacobian(torch.func.grad(f))(x).reshape(n, n)
    torch.testing.assert_close(hess.T, jac_grad)
    torch.testing.assert_close(hess, hess.T)


def test_jacobian_of_ftx_grad_when_available() -> None:
    x = torch.randn(3, dtype=F64)
    f = SCALAR[0]
    tree_allclose(ftx.jacobian(ftx.grad(f))(x), ftx.hessian(f)(x).T)


# -- errors -------------------------------------------------------------------------------------

XV = torch.randn(3, dtype=F64)
ERRORS = [
    ("jacfwd-not-callable", lambda: ftx.jacfwd(XV), TypeError,
     r"ftx\.jacfwd: fun must be callable, got Tensor\(shape=\(3,\)"),
    ("hessian-not-callable", lambda: ftx.hessian(None), TypeError,
     r"ftx\.hessian: fun must be callable, got NoneType None"),
    ("jacrev-argnums-type", lambda: ftx.jacrev(torch.sin, argnums=1.0), TypeError,
     r"ftx\.jacrev: argnums must be an int or a sequence of ints, got float 1\.0"),
    ("jacfwd-argnums-empty", lambda: ftx.jacfwd(torch.sin, argnums=()), ValueError,
     r"ftx\.jacfwd: argnums must be a non-empty tuple, got \(\)"),
    ("hessian-argnums-duplicate", lambda: ftx.hessian(torch.sin, argnums=(0, 0)), ValueError,
     r"ftx\.hessian: argnums must be unique, got \(0, 0\)"),
    ("jacrev-argnums-range", lambda: ftx.jacrev(torch.sin, argnums=1)(XV), ValueError,
     r"ftx\.jacrev: argnums must index the 1 positional argument\(s\) passed, got argnums=1"),
    ("jacobian-argnums-range", lambda: ftx.jacobian(torch.sin, argnums=-2)(XV), ValueError,
     r"ftx\.jacobian: argnums must index the 1 positional argument\(s\) passed, got argnums=-2"),
    ("jacfwd-int-input", lambda: ftx.jacfwd(lambda x: x * 2.0)(torch.arange(3)), TypeError,
     r"ftx\.jacfwd: differentiated inputs must have a floating dtype, got torch\.int64 for "
     r"argument 0\. Cast it"),
    ("hessian-bool-leaf", lambda: ftx.hessian(lambda d: d["x"].sum())({"x": torch.ones(2) > 0}),
     TypeError, r"ftx\.hessian: differentiated inputs must have a floating dtype, got "
     r"torch\.bool for argument 0 at 'x'"),
    ("jacrev-python-int", lambda: ftx.jacrev(lambda x: x)(1), TypeError,
     r"ftx\.jacrev: differentiated inputs must be tensors, got int 1"),
    ("jacfwd-aux-not-pair", lambda: ftx.jacfwd(torch.sin, has_aux=True)(XV), TypeError,
     r"ftx\.jacfwd: with has_aux=True, fun must return a pair \(output, aux\), got "
     r"Tensor\(shape=\(3,\)"),
    ("hessian-aux-not-pair", lambda: ftx.hessian(lambda x: (x.sum(),), has_aux=True)(XV),
     TypeError, r"ftx\.hessian: with has_aux=True, fun must return a pair"),
    ("jacrev-aux-not-tensor", lambda: ftx.jacrev(lambda x: (x, {"n": 1}), has_aux=True)(XV),
     TypeError, r"ftx\.jacrev: aux must be a pytree of tensors, got int 1 at aux 'n'"),
    ("jacfwd-output-not-tensor", lambda: ftx.jacfwd(lambda x: (x, 2.0))(XV), TypeError,
     r"ftx\.jacfwd: fun must return tensors, got float 2\.0 at output '1'"),
    ("has_aux-not-bool", lambda: ftx.jacrev(torch.sin, has_aux=1), TypeError,
     r"ftx\.jacrev: has_aux must be a bool, got int 1"),
    ("jacrev-chunk", lambda: ftx.jacrev(torch.sin, chunk_size=0), ValueError,
     r"ftx\.jacrev: chunk_size must be a positive int or None, got 0"),
    ("jacobian-mode-value", lambda: ftx.jacobian(torch.sin, mode="forward"), ValueError,
     r"ftx\.jacobian: mode must be 'auto', 'fwd' or 'rev', got 'forward'"),
    ("jacobian-mode-type", lambda: ftx.jacobian(torch.sin, mode=0), TypeError,
     r"ftx\.jacobian: mode must be a str, got int 0"),
]


@pytest.mark.parametrize("make, exc, match", [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_errors(make: Callable[[], Any], exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        make()


def test_none_output_leaf_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match=r"ftx\.jacrev: fun must return tensors, got None at "
                                        r"output '1'\. Drop the None"):
        ftx.jacrev(lambda x: (x, None))(XV)


# -- hessian: the reverse half of forward-over-reverse ----------------------------------------
_XH = torch.randn(5, dtype=F64, generator=torch.Generator().manual_seed(3))
_YH = torch.randn(3, dtype=F64, generator=torch.Generator().manual_seed(4))
_WH = torch.randn(4, 5, dtype=F64, generator=torch.Generator().manual_seed(5))
HESSIAN_CASES: list[tuple[str, Callable[..., Any], tuple[Any, ...], Any, int]] = [
    # (id, fun, args, argnums, vmaps over an output basis: 0 for one-element outputs)
    ("scalar", lambda x: (x.sin() * x).sum() + (x**4).sum() / 4, (_XH,), 0, 0),
    ("shape-1", lambda x: (x**3).sum().reshape(1), (_XH,), 0, 0),
    ("shape-1x1", lambda x: (x.exp() * x).sum().reshape(1, 1), (_XH,), 0, 0),
    ("dict-out-scalar", lambda x: {"loss": (x.tanh() ** 2).sum()}, (_XH,), 0, 0),
    ("vector-out", lambda x: torch.tanh(_WH @ x), (_XH,), 0, 1),
    ("tuple-out", lambda x: ((x**2).sum(), x**3), (_XH,), 0, 1),
    ("tuple-argnums", lambda x, y: (x.sum() * y**2).sum() + x.prod(), (_XH, _YH), (0, 1), 0),
    ("second-arg", lambda x, y: (x.sum() * y**3).sum(), (_XH, _YH), 1, 0),
    ("dict-in", lambda p: (p["a"] ** 3).sum() * p["b"].exp().sum(), ({"a": _XH, "b": _YH},), 0,
     0),
    ("same-tensor-twice", lambda a, b: (a * b.sin()).sum() * a.sum(), (_XH, _XH), 0, 0),
]


@pytest.mark.parametrize("case", HESSIAN_CASES, ids=[c[0] for c in HESSIAN_CASES])
def test_hessian_matches_torch_func(case: Any) -> None:
    """Scalar, one-element, vector, tuple and dict outputs and inputs: torch.func.hessian's
    layout and values (float64)."""
    _, f, args, argnums, _ = case
    want = torch.func.hessian(f, argnums)(*args)
    got = ftx.hessian(f, argnums)(*args)
    assert ftx.tree.structure(got) == ftx.tree.structure(want)
    for a, b in zip(ftx.tree.leaves(got), ftx.tree.leaves(want), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_hessian_has_aux_both_routes() -> None:
    for out in (lambda x: (x**3).sum(), lambda x: x**3):
        h, aux = ftx.hessian(lambda x, out=out: (out(x), {"m": x.mean()}), has_aux=True)(_XH)
        torch.testing.assert_close(h, torch.func.hessian(out)(_XH), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(aux["m"], _XH.mean())
