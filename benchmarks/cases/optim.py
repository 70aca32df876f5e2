"""One Adam update of a 10M-parameter tree of 100 tensors (issues 5 and 18).

Baseline: ``torch.optim.Adam(foreach=True).step()`` (in place, gradients
already in ``.grad``, each call one more step). Peers, all ``ftx.optim.adam``'s
update plus ``apply_updates``:

* ``ftx.optim.adam``: eager and pure, from a fixed state (new state and new
  params allocated every call);
* ``ftx.optim.adam (eager, donate=True)``: eager, ``update(..., donate=True)``
  and ``apply_updates(..., donate=True)``, each call from the last one's state
  and params (written into their buffers; only the updates are allocated);
* ``ftx.jit(adam step)``: ``step(params, state, grads) -> (params, state)``
  under ``ftx.jit``, each call from the last one's outputs;
* ``ftx.jit(adam step, donate_argnums=(0, 1))``: the same step donating params
  and state, so the compiled step may write into their buffers.

The jitted rows compile on their first call (reported as the first call, not
timed); every later call checks that dynamo compiled no new graph during it (a
recompile raises). Then optax's Adam eager and under ``jax.jit``. 100 tensors of 100 000
elements (10 000 with ``--quick``). The checked result is the parameters after
one step from the same start.
"""

from __future__ import annotations

from typing import Any

import torch

import ftx
from benchmarks import Config, case
from ftx._internal.torch_compat import dynamo_counters

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


@c.impl("ftx.optim.adam (eager, donate=True)", requires=("ftx.optim.adam",))
def _ftx_donate(i: dict[str, Any]) -> Any:
    opt = ftx.optim.adam(lr=LR)
    grads = i["grads"]
    params = {k: v.clone() for k, v in i["params"].items()}  # donated: not the shared inputs
    box = [params, opt.init(params)]

    def run() -> Any:
        updates, box[1] = opt.update(grads, box[1], box[0], donate=True)
        box[0] = ftx.optim.apply_updates(box[0], updates, donate=True)
        return box[0]

    return run


def _make_jit(i: dict[str, Any], donate: bool) -> Any:
    opt = ftx.optim.adam(lr=LR)
    grads = i["grads"]

    def step(params: Any, state: Any, grads: Any) -> Any:
        updates, state = opt.update(grads, state, params)
        return ftx.optim.apply_updates(params, updates), state

    f = ftx.jit(step, donate_argnums=(0, 1)) if donate else ftx.jit(step)
    params = {k: v.clone() for k, v in i["params"].items()}  # donated: not the shared inputs
    box = [params, opt.init(params)]
    stats = dynamo_counters()["stats"]
    calls = [0]

    def run() -> Any:
        before = stats["unique_graphs"]
        box[0], box[1] = f(box[0], box[1], grads)
        calls[0] += 1
        new = stats["unique_graphs"] - before
        if new and calls[0] > 1:  # the first call compiles; no later one may
            raise RuntimeError(f"the jitted Adam step compiled {new} new graph(s) on call "
                               f"{calls[0]}")
        return box[0]

    return run


c.impl("ftx.jit(adam step)", requires=("ftx.optim.adam",), compiled=True)(
    lambda i: _make_jit(i, False))
c.impl("ftx.jit(adam step, donate_argnums=(0, 1))", requires=("ftx.optim.adam",),
       compiled=True)(lambda i: _make_jit(i, True))


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
