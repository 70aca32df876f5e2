"""A GRU over a long sequence, forward + backward (issue 16): loops that compile once.

GRU with hidden 128, input 64, batch 32, over 10, 100 and 1000 steps (``--quick``:
hidden 32, batch 8, 10/50/100 steps); the loss is the mean square of every hidden
state; the result is the gradient with respect to the four GRU parameters.

Baseline: a Python loop of ``nn.GRUCell`` with ``torch.autograd.grad``. Peers:
``torch.nn.GRU`` (the fused kernel), ``ftx.lax.scan`` eager under ``ftx.grad``,
``ftx.grad(ftx.jit(loss))`` (torch's scan operator, forward and backward compiled by
AOTAutograd, the body traced once whatever the length), ``ftx.jit(ftx.grad(loss))``
(the scan runs outside the graph: a graph break, eager loop), and
``jax.jit(jax.grad(loss))`` with ``jax.lax.scan``. A compiled implementation's first
call is its compile time (the ``first call`` column): it should not grow with the
number of steps.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import ftx
from benchmarks import Config, case

from ._common import to_jax

GROUP = "control_flow"
INPUT = 64


def gru_step(p: dict[str, torch.Tensor], h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """One ``nn.GRUCell`` step: ``h: (batch, hidden)``, ``x: (batch, input)``."""
    gi = x @ p["weight_ih"].T + p["bias_ih"]
    gh = h @ p["weight_hh"].T + p["bias_hh"]
    i_r, i_z, i_n = gi.chunk(3, 1)
    h_r, h_z, h_n = gh.chunk(3, 1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


def scan_loss(p: dict[str, torch.Tensor], xs: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    def step(h: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = gru_step(p, h, x)
        return h, h

    _, hs = ftx.lax.scan(step, h0, xs)
    return (hs * hs).mean()


def jax_loss(p: dict[str, Any], xs: Any, h0: Any) -> Any:
    import jax
    import jax.numpy as jnp

    def step(h: Any, x: Any) -> Any:
        gi = x @ p["weight_ih"].T + p["bias_ih"]
        gh = h @ p["weight_hh"].T + p["bias_hh"]
        i_r, i_z, i_n = jnp.split(gi, 3, 1)
        h_r, h_z, h_n = jnp.split(gh, 3, 1)
        r = jax.nn.sigmoid(i_r + h_r)
        z = jax.nn.sigmoid(i_z + h_z)
        n = jnp.tanh(i_n + r * h_n)
        h = (1 - z) * n + z * h
        return h, h

    _, hs = jax.lax.scan(step, h0, xs)
    return (hs * hs).mean()


def _register(steps: int, quick_steps: int) -> None:
    def setup(cfg: Config) -> dict[str, Any]:
        hidden, batch = (32, 8) if cfg.quick else (128, 32)
        t = quick_steps if cfg.quick else steps
        torch.manual_seed(0)
        cell = nn.GRUCell(INPUT, hidden).to(cfg.device)
        p = {k: v.detach().clone() for k, v in cell.state_dict().items()}
        xs = torch.randn(t, batch, INPUT, device=cfg.device)
        h0 = torch.zeros(batch, hidden, device=cfg.device)
        return {"p": p, "xs": xs, "h0": h0, "cell": cell}

    c = case(GROUP, f"gru-T{steps}", setup, baseline="python loop (nn.GRUCell)", rtol=1e-3,
             atol=1e-6, description=f"GRU over {steps} steps, forward + backward")

    @c.impl("python loop (nn.GRUCell)")
    def _loop(i: dict[str, Any]) -> Any:
        cell, xs, h0 = i["cell"], i["xs"], i["h0"]
        names = [n for n, _ in cell.named_parameters()]
        params = [q for _, q in cell.named_parameters()]

        def run() -> dict[str, torch.Tensor]:
            h, hs = h0, []
            for x in xs.unbind(0):
                h = cell(x, h)
                hs.append(h)
            loss = torch.stack(hs).pow(2).mean()
            return dict(zip(names, torch.autograd.grad(loss, params)))

        return run

    @c.impl("torch.nn.GRU")
    def _gru(i: dict[str, Any]) -> Any:
        cell, xs, h0 = i["cell"], i["xs"], i["h0"]
        gru = nn.GRU(INPUT, cell.hidden_size).to(xs.device)
        gru.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
        names = [n[:-3] for n, _ in gru.named_parameters()]
        params = [q for _, q in gru.named_parameters()]

        def run() -> dict[str, torch.Tensor]:
            hs, _ = gru(xs, h0[None])
            return dict(zip(names, torch.autograd.grad(hs.pow(2).mean(), params)))

        return run

    @c.impl("ftx.lax.scan")
    def _scan(i: dict[str, Any]) -> Any:
        g = ftx.grad(scan_loss)
        return lambda: g(i["p"], i["xs"], i["h0"])

    @c.impl("ftx.grad(jit(scan))", compiled=True)
    def _grad_jit(i: dict[str, Any]) -> Any:
        g = ftx.grad(ftx.jit(scan_loss))
        g(i["p"], i["xs"], i["h0"])  # ftx.grad's first call runs torch.func (jit eager there)
        return lambda: g(i["p"], i["xs"], i["h0"])  # so this first call is the compile

    @c.impl("ftx.jit(grad(scan))", compiled=True)
    def _jit_grad(i: dict[str, Any]) -> Any:
        g = ftx.jit(ftx.grad(scan_loss))
        return lambda: g(i["p"], i["xs"], i["h0"])

    @c.impl("jax.jit(grad(lax.scan))", requires=("jax",), jax=True, compiled=True)
    def _jax(i: dict[str, Any]) -> Any:
        import jax

        g = jax.jit(jax.grad(jax_loss))
        p, xs, h0 = to_jax((i["p"], i["xs"], i["h0"]))
        return lambda: g(p, xs, h0)


_register(10, 10)
_register(100, 50)
_register(1000, 100)
