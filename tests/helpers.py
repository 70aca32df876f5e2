"""Test helpers: central differences and pytree comparison."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

import ftx


def central_difference_grad(
    f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """Gradient of a scalar function of one tensor by central differences (use float64)."""
    x = x.detach().clone()
    g = torch.zeros_like(x)
    flat, gflat = x.view(-1), g.view(-1)
    for i in range(flat.numel()):
        old = flat[i].item()
        flat[i] = old + eps
        fp = f(x).item()
        flat[i] = old - eps
        fm = f(x).item()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return g


def central_difference_jacobian(
    f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """Jacobian with layout ``out.shape + in.shape`` by central differences (use float64)."""
    x = x.detach().clone()
    out_shape = f(x).shape
    cols = []
    flat = x.view(-1)
    for i in range(flat.numel()):
        old = flat[i].item()
        flat[i] = old + eps
        fp = f(x).detach().clone()
        flat[i] = old - eps
        fm = f(x).detach().clone()
        flat[i] = old
        cols.append(((fp - fm) / (2 * eps)).reshape(-1))
    if not cols:
        return torch.zeros(*out_shape, *x.shape, dtype=x.dtype)
    jac = torch.stack(cols, dim=-1)
    return jac.reshape(*out_shape, *x.shape)


def tree_allclose(a: Any, b: Any, rtol: float = 1e-7, atol: float = 1e-9) -> None:
    """Assert two pytrees have one structure and close leaves, naming the first bad path."""
    la, ta = ftx.tree.flatten_with_path(a)
    lb, tb = ftx.tree.flatten_with_path(b)
    assert ta == tb, f"structures differ:\n{ta}\n{tb}"
    for (path, x), (_, y) in zip(la, lb):
        xt, yt = torch.as_tensor(x), torch.as_tensor(y)
        assert xt.shape == yt.shape, f"{path}: shapes {tuple(xt.shape)} != {tuple(yt.shape)}"
        torch.testing.assert_close(
            xt, yt.to(xt.dtype), rtol=rtol, atol=atol, msg=lambda m, p=path: f"{p}: {m}"
        )
