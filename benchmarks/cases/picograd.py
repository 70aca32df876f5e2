"""``ftx.picograd`` against a naive recursive scalar ``Var`` (issue 8).

``y = y * y`` repeated d times from ``x = 1``: the value is 1 and dy/dx is
2^d. The naive ``grad`` (``benchmarks/seed_var.py``) walks every path of the
shared graph (2^d calls); picograd sweeps it once. Depths 10, 15 and 20 (15
and 20 are full-run only), and picograd alone at depth 10 000 (the naive
recursion would exceed Python's limit there); ``torch.autograd`` on 0-d tensors is a further peer.
Each call builds the graph and takes the gradient; the result is
``(value, dy/dx)`` (at depth 10 000 the gradient overflows to ``inf`` in
float64 for everyone).
"""

from __future__ import annotations

from typing import Any

import torch

from benchmarks import Config, case
from benchmarks.seed_var import Var as NaiveVar

GROUP = "picograd"


def _setup(depth: int) -> Any:
    def setup(cfg: Config) -> dict[str, Any]:
        return {"depth": depth, "device": cfg.device}

    return setup


NAIVE = "naive recursive Var"


def _register(depth: int, naive: bool) -> None:
    base = NAIVE if naive else "ftx.picograd"
    c = case(GROUP, f"y=y*y-depth{depth}", _setup(depth), baseline=base, rtol=1e-12, atol=0.0,
             full_only=naive and depth > 10)

    if naive:

        @c.impl(NAIVE)
        def _naive(i: dict[str, Any]) -> Any:
            def run() -> tuple[float, float]:
                x = NaiveVar(1.0)
                y = x
                for _ in range(i["depth"]):
                    y = y * y
                return y.v, y.grad()[x]

            return run

    @c.impl("ftx.picograd", requires=("ftx.picograd.Var",))
    def _pico(i: dict[str, Any]) -> Any:
        from ftx.picograd import Var

        def run() -> tuple[float, float]:
            x = Var(1.0)
            y = x
            for _ in range(i["depth"]):
                y = y * y
            return y.value, y.grad()[x]

        return run

    @c.impl("torch.autograd (0-d)")
    def _torch(i: dict[str, Any]) -> Any:
        def run() -> tuple[float, float]:
            x = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
            y = x
            for _ in range(i["depth"]):
                y = y * y
            (g,) = torch.autograd.grad(y, x)
            return y.item(), g.item()

        return run


for _d in (10, 15, 20):
    _register(_d, naive=True)
_register(10_000, naive=False)
