"""One Adam training step of an MLP (issue 7 case 5, issues 5 and 9).

MLPs 32-64-64-10 at batch 64 and 784-512-512-10 at batch 256, tanh, cross
entropy, Adam(lr=1e-3). Baseline: ``nn.Module`` + ``torch.optim.Adam`` (its
defaults). Peers: what a torch user compiles instead (``torch.compile`` of the
module's loss and of ``opt.step``, as torch's tutorials do), the functional
step ``ftx.value_and_grad`` + ``ftx.optim.adam`` + ``apply_updates``, eager
and under ``ftx.jit``, and JAX + optax, eager and under ``jax.jit``. Every
implementation starts from the same parameters; the checked result is the loss
and the parameters after the first step. ``--quick`` caps the batch at 64.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

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

GROUP = "train_step"
LR = 1e-3


def loss_fn(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return cross_entropy(mlp_apply(p, x), y)


def make_ftx_step() -> Any:
    opt = ftx.optim.adam(lr=LR)
    vg = ftx.value_and_grad(loss_fn)

    def step(p: Any, state: Any, x: torch.Tensor, y: torch.Tensor) -> Any:
        loss, g = vg(p, x, y)
        updates, state = opt.update(g, state, p)
        return loss, ftx.optim.apply_updates(p, updates), state

    return opt, step


def _register(sizes: list[int], batch: int) -> None:
    name = "mlp" + "-".join(map(str, sizes)) + f"-b{batch}"

    def setup(cfg: Config) -> dict[str, Any]:
        n = min(batch, 64) if cfg.quick else batch
        x, y = classification_data(n, sizes[0], sizes[-1], cfg.device)
        return {"sizes": sizes, "x": x, "y": y, "device": cfg.device}

    # Adam's first step moves each weight by about lr * g / (|g| + eps): where |g| is near
    # eps, float32 rounding in g (torch against XLA) changes that step by up to ~lr/10, so
    # the parameters are compared to lr/10; a wrong or missing update still differs by ~lr.
    c = case(GROUP, name, setup, baseline="nn.Module+torch.optim", rtol=1e-4, atol=LR / 10)

    @c.impl("nn.Module+torch.optim")
    def _module(i: dict[str, Any]) -> Any:
        mod = module_mlp(i["sizes"]).to(i["device"])
        opt = torch.optim.Adam(mod.parameters(), lr=LR)
        x, y = i["x"], i["y"]
        named = dict(mod.named_parameters())

        def run() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(mod(x), y)
            loss.backward()
            opt.step()
            return loss.detach(), named

        return run

    @c.impl("torch.compile(module, Adam.step)", compiled=True)
    def _module_compiled(i: dict[str, Any]) -> Any:
        mod = module_mlp(i["sizes"]).to(i["device"])
        opt = torch.optim.Adam(mod.parameters(), lr=LR)
        x, y = i["x"], i["y"]
        named = dict(mod.named_parameters())
        cmod = torch.compile(mod)

        @torch.compile
        def opt_step() -> None:
            opt.step()

        def run() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(cmod(x), y)
            loss.backward()
            opt_step()
            return loss.detach(), named

        return run

    @c.impl("ftx eager", requires=("ftx.optim.adam",))
    def _ftx(i: dict[str, Any]) -> Any:
        p = params_of(module_mlp(i["sizes"]), i["device"])
        opt, step = make_ftx_step()
        state = opt.init(p)
        return lambda: step(p, state, i["x"], i["y"])[:2]

    @c.impl("ftx.jit", requires=("ftx.optim.adam",), compiled=True)
    def _ftx_jit(i: dict[str, Any]) -> Any:
        p = params_of(module_mlp(i["sizes"]), i["device"])
        opt, step = make_ftx_step()
        jstep = ftx.jit(step)
        state = opt.init(p)
        return lambda: jstep(p, state, i["x"], i["y"])[:2]

    for jit in (False, True):

        def make_jax(i: dict[str, Any], jit: bool = jit) -> Any:
            import jax
            import optax

            p = to_jax(params_of(module_mlp(i["sizes"])))
            x, y = to_jax((i["x"], i["y"]))
            opt = optax.adam(LR, b1=0.9, b2=0.999, eps=1e-8)
            state = opt.init(p)

            def loss(p: Any, x: Any, y: Any) -> Any:
                return jax_cross_entropy(jax_mlp_apply(p, x), y)

            def step(p: Any, state: Any, x: Any, y: Any) -> Any:
                value, g = jax.value_and_grad(loss)(p, x, y)
                updates, state = opt.update(g, state, p)
                return value, optax.apply_updates(p, updates), state

            f = jax.jit(step) if jit else step
            return lambda: f(p, state, x, y)[:2]

        c.impl("jax.jit+optax" if jit else "jax+optax eager", requires=("jax", "optax"),
               jax=True, compiled=jit)(make_jax)


_register([32, 64, 64, 10], 64)
_register([784, 512, 512, 10], 256)
