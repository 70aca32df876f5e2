"""ftx.checkpoint differentiates tensors the function closes over, as JAX's does.

Regression: gradients that reached only a closure-captured tensor were silently lost
(the autograd.Function saw the arguments only). Oracle: the same function without
checkpoint, under ftx, torch.func and torch.autograd, in float64.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
import torch
import torch.func as tf

import ftx

torch.manual_seed(0)
W = torch.randn(3, 3, dtype=torch.float64)
B = torch.randn(3, dtype=torch.float64)
X = torch.randn(3, dtype=torch.float64)


def _step(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.tanh(w @ h + b)


def _closure(wrap: Callable) -> Callable:
    def loss(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        f = wrap(lambda h: _step(h, w, b))
        return f(f(X)).sum()

    return loss


def _nested(wrap: Callable) -> Callable:
    def loss(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        params = {"w": w, "b": b}  # a pytree in the cell

        def inner(h: torch.Tensor) -> torch.Tensor:
            return _step(h, params["w"], params["b"])

        return wrap(lambda h: inner(inner(h)))(X).sum()

    return loss


def _partial(wrap: Callable) -> Callable:
    def loss(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return wrap(functools.partial(_step, w=w, b=b))(X).sum()

    return loss


BUILDERS = {"closure": _closure, "nested": _nested, "partial": _partial}


def _ident(f: Callable) -> Callable:
    return f


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize(
    "route",
    ["ftx.grad", "torch.func.grad", "autograd", "ftx.hessian", "ftx.jacfwd", "vmap(grad)"],
)
def test_closure_gradients_equal_unchecked(build: str, route: str) -> None:
    ref_loss, ck_loss = BUILDERS[build](_ident), BUILDERS[build](ftx.checkpoint)

    def run(loss: Callable) -> object:
        if route == "ftx.grad":
            return ftx.grad(loss, argnums=(0, 1))(W, B)
        if route == "torch.func.grad":
            return tf.grad(loss, argnums=(0, 1))(W, B)
        if route == "autograd":
            w, b = W.clone().requires_grad_(), B.clone().requires_grad_()
            return torch.autograd.grad(loss(w, b), (w, b))
        if route == "ftx.hessian":
            return ftx.hessian(lambda b: loss(W, b))(B)
        if route == "ftx.jacfwd":
            return ftx.jacfwd(loss, argnums=(0, 1))(W, B)
        ws = torch.stack([W, 2 * W])
        return ftx.vmap(ftx.grad(loss), in_axes=(0, None))(ws, B)

    got, want = run(ck_loss), run(ref_loss)
    assert ftx.tree.structure(got) == ftx.tree.structure(want)
    for g, r in zip(ftx.tree.leaves(got), ftx.tree.leaves(want)):
        assert float((g - r).abs().max()) < 1e-12
    # not a test that cannot fail: the gradient through the closure is not zero
    assert any(float(r.abs().max()) > 1e-3 for r in ftx.tree.leaves(want))


def test_closure_cells_are_restored() -> None:
    w = W.clone()

    def f(h: torch.Tensor) -> torch.Tensor:
        return w @ h

    g = ftx.grad(lambda x: ftx.checkpoint(f)(x).sum())(X)
    assert torch.allclose(g, W.sum(0))
    assert f.__closure__ is not None and f.__closure__[0].cell_contents is w
