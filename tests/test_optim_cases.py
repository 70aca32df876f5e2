"""Shared tables for the ftx.optim tests (no tests here): problems, cases, a torch.optim runner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

import ftx

Tree = dict[str, torch.Tensor]


def quadratic(dtype: torch.dtype, device: str) -> tuple[Tree, Callable[[Tree], torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    m = torch.randn(5, 5, generator=g, dtype=torch.float64)
    a = (m @ m.T / 5 + torch.eye(5, dtype=torch.float64)).to(dtype=dtype, device=device)
    b = torch.randn(5, generator=g, dtype=torch.float64).to(dtype=dtype, device=device)

    def loss(p: Tree) -> torch.Tensor:
        x = p["x"]
        return 0.5 * x @ a @ x - b @ x

    x0 = torch.randn(5, generator=g, dtype=torch.float64).to(dtype=dtype, device=device)
    return {"x": x0}, loss


def rosenbrock(dtype: torch.dtype, device: str) -> tuple[Tree, Callable[[Tree], torch.Tensor]]:
    def loss(p: Tree) -> torch.Tensor:
        x, y = p["x"], p["y"]
        return ((1 - x) ** 2 + 100 * (y - x**2) ** 2).sum()

    t = torch.tensor
    return {"x": t([-0.5, 0.3], dtype=dtype, device=device),
            "y": t([0.5, 0.2], dtype=dtype, device=device)}, loss


def mlp(dtype: torch.dtype, device: str) -> tuple[Tree, Callable[[Tree], torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 4, generator=g, dtype=torch.float64).to(dtype=dtype, device=device)
    y = torch.randn(16, 3, generator=g, dtype=torch.float64).to(dtype=dtype, device=device)
    params = {
        "0.weight": torch.randn(8, 4, generator=g, dtype=torch.float64) / 2,
        "0.bias": torch.randn(8, generator=g, dtype=torch.float64) / 10,
        "2.weight": torch.randn(3, 8, generator=g, dtype=torch.float64) / 3,
        "2.bias": torch.randn(3, generator=g, dtype=torch.float64) / 10,
    }
    params = {k: v.to(dtype=dtype, device=device) for k, v in params.items()}

    def loss(p: Tree) -> torch.Tensor:
        h = torch.tanh(x @ p["0.weight"].T + p["0.bias"])
        return ((h @ p["2.weight"].T + p["2.bias"] - y) ** 2).mean()

    return params, loss


PROBLEMS = {"quadratic": (quadratic, 1.0), "rosenbrock": (rosenbrock, 0.1), "mlp": (mlp, 1.0)}

# (ftx factory, torch class, hyper-parameters); lr is scaled per problem.
CASES: list[tuple[str, Callable[..., Any], type, dict[str, Any]]] = [
    ("sgd", ftx.optim.sgd, torch.optim.SGD, {"lr": 0.02}),
    ("sgd-momentum", ftx.optim.sgd, torch.optim.SGD, {"lr": 0.01, "momentum": 0.9}),
    ("sgd-damp-wd", ftx.optim.sgd, torch.optim.SGD,
     {"lr": 0.01, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.01}),
    ("sgd-nesterov-max", ftx.optim.sgd, torch.optim.SGD,
     {"lr": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3, "maximize": True}),
    ("adam", ftx.optim.adam, torch.optim.Adam, {"lr": 0.01}),
    ("adam-wd", ftx.optim.adam, torch.optim.Adam,
     {"lr": 0.005, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.01}),
    ("adam-amsgrad-max", ftx.optim.adam, torch.optim.Adam,
     {"lr": 0.01, "amsgrad": True, "maximize": True}),
    ("adamw", ftx.optim.adamw, torch.optim.AdamW, {"lr": 0.01}),
    ("adamw-amsgrad", ftx.optim.adamw, torch.optim.AdamW,
     {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True, "betas": (0.5, 0.9)}),
    ("rmsprop", ftx.optim.rmsprop, torch.optim.RMSprop, {"lr": 0.003}),
    ("rmsprop-centered", ftx.optim.rmsprop, torch.optim.RMSprop,
     {"lr": 0.003, "centered": True, "eps": 1e-3}),
    ("rmsprop-mom-wd-max", ftx.optim.rmsprop, torch.optim.RMSprop,
     {"lr": 0.001, "momentum": 0.9, "centered": True, "weight_decay": 0.01, "maximize": True}),
    ("adagrad", ftx.optim.adagrad, torch.optim.Adagrad, {"lr": 0.03}),
    ("adagrad-decay-wd", ftx.optim.adagrad, torch.optim.Adagrad,
     {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.01, "initial_accumulator_value": 0.1}),
    ("adagrad-eps-max", ftx.optim.adagrad, torch.optim.Adagrad,
     {"lr": 0.05, "eps": 1e-6, "maximize": True}),
]
CASE_PARAMS = [pytest.param(c, id=c[0]) for c in CASES]
TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def grads_of(loss: Callable[[Tree], torch.Tensor], params: Tree, sign: float) -> Tree:
    """Gradient of ``sign * loss`` at detached copies of ``params``."""
    p = {k: v.detach().requires_grad_() for k, v in params.items()}
    g = torch.autograd.grad(sign * loss(p), list(p.values()))
    return dict(zip(p, g))


def torch_trajectory(cls: type, hp: dict[str, Any], params: Tree, loss: Any, steps: int,
                     foreach: bool | None, sign: float) -> list[Tree]:
    """``steps`` steps of the torch.optim twin; returns the params after each step."""
    ps = {k: v.detach().clone().requires_grad_() for k, v in params.items()}
    opt = cls(list(ps.values()), foreach=foreach, **hp)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        (sign * loss(ps)).backward()
        opt.step()
        out.append({k: v.detach().clone() for k, v in ps.items()})
    return out


def rel_err(a: Tree, b: Tree) -> float:
    """max over leaves of ``max|a - b| / max|b|``."""
    worst = 0.0
    for k in b:
        den = b[k].abs().max().item() or 1.0
        worst = max(worst, (a[k] - b[k]).abs().max().item() / den)
    return worst


def trajectory_errors(got: list[Tree], ref: list[Tree]) -> torch.Tensor:
    """Per-step relative error (as :func:`rel_err`), computed on stacked trajectories."""
    errs = []
    for k in ref[0]:
        a = torch.stack([t[k] for t in got]).flatten(1)
        b = torch.stack([t[k] for t in ref]).flatten(1)
        den = b.abs().amax(1).clamp_min(torch.finfo(b.dtype).tiny)
        errs.append((a - b).abs().amax(1) / den)
    return torch.stack(errs).amax(0)
