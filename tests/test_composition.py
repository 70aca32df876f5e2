"""Transforms compose in any order and depth, with each other and with torch.func.

vmap(grad), grad(vmap), jvp(vmap), vmap(jvp), vmap(vjp), vmap(hvp), grad(grad),
jvp(grad) and jacfwd(grad), torch.func inside ftx and ftx inside torch.func;
every result checked against a per-example loop or a closed form in float64.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

import ftx
from tests.helpers import tree_allclose

F64 = torch.float64


def _r(*shape: int, seed: int) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=F64) - 0.5


W = _r(3, 4, seed=1)
B = _r(4, seed=2)
XS = _r(5, 3, seed=3)
YS = _r(5, 4, seed=4)
PARAMS = {"w": W, "b": B}


def loss(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((torch.tanh(x @ p["w"] + p["b"]) - y) ** 2).sum()


def loop(f: Callable[..., Any], *batched: torch.Tensor) -> Any:
    """stack([f(x_i) for i]) leaf by leaf."""
    outs = [f(*(b[i] for b in batched)) for i in range(batched[0].shape[0])]
    return ftx.tree.map(lambda *xs: torch.stack(xs), *outs)


VMAPS = [pytest.param(ftx.vmap, id="ftx.vmap"), pytest.param(torch.func.vmap, id="torch.vmap")]


@pytest.mark.parametrize("vmap", VMAPS)
def test_vmap_of_grad_per_example_gradients(vmap: Callable[..., Any]) -> None:
    per_ex = vmap(ftx.grad(loss), (None, 0, 0))
    got = per_ex(PARAMS, XS, YS)
    tree_allclose(got, loop(lambda x, y: ftx.grad(loss)(PARAMS, x, y), XS, YS))
    # the mean of per-example gradients is the gradient of the summed loss / n
    full = ftx.grad(lambda p: loss(p, XS, YS) / 5)(PARAMS)
    tree_allclose(ftx.tree.map(lambda g: g.mean(0), got), full)


@pytest.mark.parametrize("vmap", VMAPS)
def test_vmap_of_value_and_grad_with_aux(vmap: Callable[..., Any]) -> None:
    def f(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> Any:
        return loss(p, x, y), {"pred": torch.tanh(x @ p["w"] + p["b"])}

    (vals, aux), g = vmap(ftx.value_and_grad(f, has_aux=True), (None, 0, 0))(PARAMS, XS, YS)
    ref = loop(lambda x, y: ftx.value_and_grad(f, has_aux=True)(PARAMS, x, y), XS, YS)
    tree_allclose(((vals, aux), g), ref)


def test_grad_of_vmap() -> None:
    def batched_loss(p: dict[str, torch.Tensor]) -> torch.Tensor:
        return ftx.vmap(lambda x, y: loss(p, x, y))(XS, YS).sum()

    tree_allclose(ftx.grad(batched_loss)(PARAMS), ftx.grad(lambda p: loss(p, XS, YS))(PARAMS))


@pytest.mark.parametrize("vmap", VMAPS)
def test_jvp_of_vmap_and_vmap_of_jvp(vmap: Callable[..., Any]) -> None:
    f = lambda x: torch.sin(x @ W)  # noqa: E731
    T = _r(5, 3, seed=9)
    _, t1 = ftx.jvp(vmap(f), (XS,), (T,))
    t2 = vmap(lambda x, t: ftx.jvp(f, (x,), (t,))[1])(XS, T)
    ref = torch.cos(XS @ W) * (T @ W)
    tree_allclose(t1, ref)
    tree_allclose(t2, ref)


@pytest.mark.parametrize("vmap", VMAPS)
def test_vmap_of_vjp_rows_of_jacobian(vmap: Callable[..., Any]) -> None:
    x = _r(3, seed=5)
    f = lambda x: torch.tanh(x @ W)  # noqa: E731
    _, vjp_fn = ftx.vjp(f, x)
    rows = vmap(lambda ct: vjp_fn(ct)[0])(torch.eye(4, dtype=F64))
    tree_allclose(rows, torch.autograd.functional.jacobian(f, x))


@pytest.mark.parametrize("vmap", VMAPS)
def test_vmap_of_hvp_gives_hessian(vmap: Callable[..., Any]) -> None:
    x = _r(3, seed=6)
    f = lambda x: (torch.tanh(x @ W) ** 2).sum()  # noqa: E731
    H = vmap(lambda v: ftx.hvp(f, (x,), (v,))[0])(torch.eye(3, dtype=F64))
    tree_allclose(H, torch.autograd.functional.hessian(f, x))
    tree_allclose(H, ftx.hessian(f)(x))


def test_grad_of_grad_and_jvp_of_grad() -> None:
    f = lambda x: torch.sin(x) * x**2  # noqa: E731
    x = torch.tensor(0.4, dtype=F64)
    d2 = -torch.sin(x) * x**2 + 4 * x * torch.cos(x) + 2 * torch.sin(x)
    tree_allclose(ftx.grad(ftx.grad(f))(x), d2)
    tree_allclose(ftx.jvp(ftx.grad(f), (x,), (torch.tensor(1.0, dtype=F64),))[1], d2)
    tree_allclose(ftx.jacfwd(ftx.grad(f))(x), d2)


def test_torch_func_inside_ftx() -> None:
    g = ftx.grad(lambda p: torch.func.grad(lambda q: loss(q, XS[0], YS[0]))(p)["b"].sum())
    ref = torch.func.grad(lambda p: torch.func.grad(lambda q: loss(q, XS[0], YS[0]))(p)["b"].sum())
    tree_allclose(g(PARAMS), ref(PARAMS))
    per_ex = ftx.vmap(torch.func.grad(loss), (None, 0, 0))(PARAMS, XS, YS)
    tree_allclose(per_ex, torch.func.vmap(torch.func.grad(loss), (None, 0, 0))(PARAMS, XS, YS))
    _, t = ftx.jvp(torch.func.grad(lambda x: (x**3).sum()), (XS[0],), (torch.ones(3, dtype=F64),))
    tree_allclose(t, 6 * XS[0])


def test_ftx_inside_torch_func() -> None:
    ref = torch.func.grad(lambda p: torch.func.grad(lambda q: loss(q, XS[0], YS[0]))(p)["w"].sum())
    got = torch.func.grad(lambda p: ftx.grad(lambda q: loss(q, XS[0], YS[0]))(p)["w"].sum())
    tree_allclose(got(PARAMS), ref(PARAMS))
    H = torch.func.jacfwd(ftx.grad(lambda x: (x.sin() * x).sum()))(XS[0])
    tree_allclose(H, torch.func.hessian(lambda x: (x.sin() * x).sum())(XS[0]))
    _, t = torch.func.jvp(lambda x: ftx.vjp(torch.sin, x)[1](x)[0], (XS[0],), (XS[1],))
    # d/dx [cos(x) * x] . t = (cos x - x sin x) t
    tree_allclose(t, (torch.cos(XS[0]) - XS[0] * torch.sin(XS[0])) * XS[1])


def test_deep_nesting_vmap_grad_grad() -> None:
    f = lambda x: (x**4).sum()  # noqa: E731
    got = ftx.vmap(ftx.grad(lambda x: ftx.grad(f)(x).sum()))(XS)
    tree_allclose(got, 12 * XS**2)


def test_torch_compile_of_grad() -> None:
    g = torch.compile(ftx.grad(lambda x: (x.sin() ** 2).sum()), backend="eager")
    x = XS[0]
    tree_allclose(g(x), 2 * x.sin() * x.cos())
