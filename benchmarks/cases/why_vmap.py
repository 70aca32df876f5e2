"""Why vmap: ``x**2 / x * x**x`` elementwise, a Python loop over elements against vmap.

100 000 elements (2 000 with ``--quick``); inputs in [0.5, 1.5) so that
``x**x`` is real. The loop writes into a fresh output so that every call does
the same work.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.func as tf

import ftx
from benchmarks import Config, case

GROUP = "why_vmap"


def fun(x: torch.Tensor) -> torch.Tensor:
    return x**2 / x * x**x


def setup(cfg: Config) -> dict[str, Any]:
    n = 2_000 if cfg.quick else 100_000
    g = torch.Generator().manual_seed(4)
    return {"x": (torch.rand(n, generator=g) + 0.5).to(cfg.device)}


c = case(GROUP, "x2-over-x-times-xx-100k", setup, baseline="python loop", rtol=1e-6, atol=1e-7,
         description="x**2 / x * x**x over 100 000 elements (2 000 with --quick)")


@c.impl("python loop")
def _loop(i: dict[str, Any]) -> Any:
    x = i["x"]

    def run() -> torch.Tensor:
        out = torch.empty_like(x)
        for k in range(x.shape[0]):
            out[k] = fun(x[k])
        return out

    return run


@c.impl("torch.func.vmap")
def _tvmap(i: dict[str, Any]) -> Any:
    v = tf.vmap(fun)
    return lambda: v(i["x"])


@c.impl("ftx.vmap")
def _fvmap(i: dict[str, Any]) -> Any:
    v = ftx.vmap(fun)
    return lambda: v(i["x"])


@c.impl("plain tensor ops")
def _plain(i: dict[str, Any]) -> Any:
    return lambda: fun(i["x"])
