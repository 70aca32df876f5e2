"""Top-level gradient cost against an nn.Module forward+backward (issue 2's fast path).

MLPs 3-3-2 (a tiny sigmoid MLP) and 64-256-256-10 (tanh) at batch 256, MSE
loss. Baseline: ``nn.Module`` forward + ``loss.backward()``. Peers: the same
pure function under ``torch.func.grad``, ``torch.autograd.grad`` and
``ftx.grad`` (which takes the ``torch.autograd.grad`` route at top level).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.func as tf
import torch.nn.functional as F

import ftx
from benchmarks import Config, case

from ._common import mlp_apply, module_mlp, params_of

GROUP = "fastpath"


def _register(sizes: list[int], act: str) -> None:
    name = "grad-mlp" + "-".join(map(str, sizes)) + "-b256"

    def setup(cfg: Config) -> dict[str, Any]:
        mod = module_mlp(sizes, act).to(cfg.device)
        g = torch.Generator().manual_seed(3)
        x = torch.randn(256, sizes[0], generator=g).to(cfg.device)
        y = torch.randn(256, sizes[-1], generator=g).to(cfg.device)
        return {"mod": mod, "p": params_of(mod, cfg.device), "x": x, "y": y}

    def loss(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(mlp_apply(p, x, act), y)

    c = case(GROUP, name, setup, baseline="nn.Module fwd+bwd", rtol=1e-4, atol=1e-6)

    @c.impl("nn.Module fwd+bwd")
    def _module(i: dict[str, Any]) -> Any:
        mod, x, y = i["mod"], i["x"], i["y"]
        named = list(mod.named_parameters())

        def step() -> dict[str, torch.Tensor | None]:
            for _, q in named:
                q.grad = None
            F.mse_loss(mod(x), y).backward()
            return {n: q.grad for n, q in named}

        return step

    @c.impl("torch.autograd.grad")
    def _autograd(i: dict[str, Any]) -> Any:
        p, x, y = i["p"], i["x"], i["y"]
        keys = list(p)
        leaves = [v.detach().requires_grad_() for v in p.values()]

        def step() -> dict[str, torch.Tensor]:
            gs = torch.autograd.grad(loss(dict(zip(keys, leaves)), x, y), leaves)
            return dict(zip(keys, gs))

        return step

    @c.impl("torch.func.grad")
    def _func(i: dict[str, Any]) -> Any:
        g = tf.grad(loss)
        return lambda: g(i["p"], i["x"], i["y"])

    @c.impl("ftx.grad")
    def _ftx(i: dict[str, Any]) -> Any:
        g = ftx.grad(loss)
        return lambda: g(i["p"], i["x"], i["y"])


_register([3, 3, 2], "sigmoid")
_register([64, 256, 256, 10], "tanh")
