"""Per-sample gradients of MLPs 32-32-10 and 256-256-10 at batch 256 (issue 7 case 3, issue 9).

Baseline: a Python loop of ``torch.autograd.grad`` over the 256 examples.
Peers: ``torch.func.vmap(grad)``, ``ftx.vmap(ftx.grad)``, ``ftx.jit`` of it,
``jax.vmap(jax.grad)`` eager and under ``jax.jit``. The result is a dict of
per-example gradients, each leaf ``(256, *param.shape)``. ``--quick`` uses
a batch of 32.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.func as tf

import ftx
from benchmarks import Config, case

from ._common import (
    classification_data,
    cross_entropy,
    jax_cross_entropy,
    jax_mlp_apply,
    mlp_apply,
    module_mlp,
    params_of,
    to_jax,
)

GROUP = "per_sample_grads"
BATCH = 256


def loss_one(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of one example ``x: (features,)``, ``y: ()``."""
    return cross_entropy(mlp_apply(p, x), y)


def jax_loss_one(p: dict[str, Any], x: Any, y: Any) -> Any:
    return jax_cross_entropy(jax_mlp_apply(p, x), y)


def _register(sizes: list[int]) -> None:
    name = "mlp" + "-".join(map(str, sizes)) + f"-b{BATCH}"

    def setup(cfg: Config) -> dict[str, Any]:
        p = params_of(module_mlp(sizes), cfg.device)
        n = 32 if cfg.quick else BATCH
        x, y = classification_data(n, sizes[0], sizes[-1], cfg.device)
        return {"p": p, "x": x, "y": y}

    c = case(GROUP, name, setup, baseline="python loop", rtol=1e-4, atol=1e-6)

    @c.impl("python loop")
    def _loop(i: dict[str, Any]) -> Any:
        keys = list(i["p"])
        leaves = [v.detach().requires_grad_() for v in i["p"].values()]
        x, y = i["x"], i["y"]

        def run() -> dict[str, torch.Tensor]:
            per: list[tuple[torch.Tensor, ...]] = []
            for k in range(x.shape[0]):
                loss = loss_one(dict(zip(keys, leaves)), x[k], y[k])
                per.append(torch.autograd.grad(loss, leaves))
            return {key: torch.stack([g[j] for g in per]) for j, key in enumerate(keys)}

        return run

    @c.impl("torch.func.vmap(grad)")
    def _tf(i: dict[str, Any]) -> Any:
        f = tf.vmap(tf.grad(loss_one), in_dims=(None, 0, 0))
        return lambda: f(i["p"], i["x"], i["y"])

    @c.impl("ftx.vmap(grad)")
    def _ftx(i: dict[str, Any]) -> Any:
        f = ftx.vmap(ftx.grad(loss_one), in_axes=(None, 0, 0))
        return lambda: f(i["p"], i["x"], i["y"])

    @c.impl("ftx.jit(vmap(grad))", compiled=True)
    def _ftx_jit(i: dict[str, Any]) -> Any:
        f = ftx.jit(ftx.vmap(ftx.grad(loss_one), in_axes=(None, 0, 0)))
        return lambda: f(i["p"], i["x"], i["y"])

    @c.impl("jax.vmap(grad)", requires=("jax",), jax=True)
    def _jax(i: dict[str, Any]) -> Any:
        import jax

        f = jax.vmap(jax.grad(jax_loss_one), in_axes=(None, 0, 0))
        p, x, y = to_jax((i["p"], i["x"], i["y"]))
        return lambda: f(p, x, y)

    @c.impl("jax.jit(vmap(grad))", requires=("jax",), jax=True, compiled=True)
    def _jax_jit(i: dict[str, Any]) -> Any:
        import jax

        f = jax.jit(jax.vmap(jax.grad(jax_loss_one), in_axes=(None, 0, 0)))
        p, x, y = to_jax((i["p"], i["x"], i["y"]))
        return lambda: f(p, x, y)


_register([32, 32, 10])
_register([256, 256, 10])
