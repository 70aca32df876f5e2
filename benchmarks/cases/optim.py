"""One Adam update of a 10M-parameter tree of 100 tensors (issue 5).

Baseline: ``torch.optim.Adam(foreach=True).step()`` (in place, gradients
already in ``.grad``). Peer: the pure ``ftx.optim.adam`` update plus
``apply_updates`` from a fixed state, eager (its ``torch._foreach_*`` fast
path), and optax's Adam eager and under ``jax.jit``. 100 tensors of 100 000
elements (10 000 with ``--quick``). The checked result is the parameters after
one step from the same start.
"""

from __future__ import annotations

from typing import Any

import torch

import ftx
from benchmarks import Config, case

GROUP = "optim"
LR = 1e-3


def setup(cfg: Config) -> dict[str, Any]:
    n = 10_000 if cfg.quick else 100_000
    g = torch.Generator().manual_seed(8)
    params = {f"{k}.weight": torch.randn(n // 100, 100, generator=g).to(cfg.device)
              for k in range(100)}
    grads = {k: torch.randn(v.shape, generator=g).to(cfg.device) for k, v in params.items()}
    return {"params": params, "grads": grads}


c = case(GROUP, "adam-10M-100-tensors", setup, baseline="torch.optim.Adam(foreach)",
         rtol=1e-5, atol=1e-7, description="10M parameters in 100 tensors (1M with --quick)")


@c.impl("torch.optim.Adam(foreach)")
def _torch(i: dict[str, Any]) -> Any:
    params = {k: v.clone().requires_grad_() for k, v in i["params"].items()}
    for k, v in params.items():
        v.grad = i["grads"][k].clone()
    opt = torch.optim.Adam(params.values(), lr=LR, foreach=True)

    def run() -> dict[str, torch.Tensor]:
        opt.step()
        return params

    return run


@c.impl("ftx.optim.adam", requires=("ftx.optim.adam",))
def _ftx(i: dict[str, Any]) -> Any:
    opt = ftx.optim.adam(lr=LR)
    params, grads = i["params"], i["grads"]
    state = opt.init(params)

    def run() -> Any:
        updates, _ = opt.update(grads, state, params)
        return ftx.optim.apply_updates(params, updates)

    return run


for _jit in (False, True):

    def _make_optax(i: dict[str, Any], jit: bool = _jit) -> Any:
        import jax
        import optax

        from ._common import to_jax

        opt = optax.adam(LR, b1=0.9, b2=0.999, eps=1e-8)
        params, grads = to_jax(i["params"]), to_jax(i["grads"])
        state = opt.init(params)

        def step(grads: Any, state: Any, params: Any) -> Any:
            updates, _ = opt.update(grads, state, params)
            return optax.apply_updates(params, updates)

        f = jax.jit(step) if jit else step
        return lambda: f(grads, state, params)

    c.impl("optax.adam (jit)" if _jit else "optax.adam (eager)", requires=("jax", "optax"),
           jax=True, compiled=_jit)(_make_optax)
