"""2^20 standard normal draws: ``ftx.random.normal`` against ``torch.randn`` (issue 3).

Eager and compiled, JAX eager and under ``jax.jit``. ``torch.randn`` (global
generator) is the baseline for time; the values are checked where they must
agree: ``ftx.random.normal`` against ``jax.random.normal`` on the same key
(JAX parity) and the compiled ftx draw against the eager one.

Eager ``ftx.random.normal`` compiles its kernel once its large eager draws have taken
10 s in the process (docs/random.md, "What it costs"). The row "ftx.random.normal
(compiled route)" asks for the compile on its first call (``FTX_RANDOM_COMPILE_AFTER=0``
for that call: the compile is its first-call time), so the timed calls run the kernel;
"ftx.random.normal (op by op)" is the same call with that route off: what a program
gets before the budget is spent, or with ``FTX_RANDOM_COMPILE=0``.
"""

from __future__ import annotations

from typing import Any

import torch

import ftx
from benchmarks import Config, case

GROUP = "random"
N = 2**20


def setup(cfg: Config) -> dict[str, Any]:
    return {"n": 2**14 if cfg.quick else N, "device": cfg.device}


c = case(GROUP, "normal-2^20", setup, baseline="torch.randn", rtol=1e-5, atol=1e-6,
         description="2^20 float32 normal draws (2^14 with --quick)")


@c.impl("torch.randn")
def _randn(i: dict[str, Any]) -> Any:
    return lambda: torch.randn(i["n"], device=i["device"])


@c.impl("torch.compile(randn)", compiled=True, check=False)
def _randn_compiled(i: dict[str, Any]) -> Any:
    n, dev = i["n"], i["device"]
    f = torch.compile(lambda: torch.randn(n, device=dev))
    return f


@c.impl("jax.random.normal (jit)", requires=("jax",), jax=True, compiled=True, check=False)
def _jax(i: dict[str, Any]) -> Any:
    import jax

    n = i["n"]
    f = jax.jit(lambda k: jax.random.normal(k, (n,)))
    k = jax.random.PRNGKey(0)
    return lambda: f(k)


@c.impl("jax.random.normal (eager)", requires=("jax",), jax=True,
        ref="jax.random.normal (jit)")
def _jax_eager(i: dict[str, Any]) -> Any:
    import jax

    n = i["n"]
    k = jax.random.PRNGKey(0)
    return lambda: jax.random.normal(k, (n,))


@c.impl("ftx.random.normal (compiled route)", requires=("ftx.random.normal",),
        ref="jax.random.normal (jit)")
def _ftx(i: dict[str, Any]) -> Any:
    import os

    k = ftx.random.key(0, device=i["device"])
    n = i["n"]
    first = [True]

    def draw() -> Any:
        if not first[0]:
            return ftx.random.normal(k, (n,))
        first[0] = False
        old = os.environ.get("FTX_RANDOM_COMPILE_AFTER")
        os.environ["FTX_RANDOM_COMPILE_AFTER"] = "0"
        try:
            return ftx.random.normal(k, (n,))
        finally:
            if old is None:
                del os.environ["FTX_RANDOM_COMPILE_AFTER"]
            else:
                os.environ["FTX_RANDOM_COMPILE_AFTER"] = old

    return draw


@c.impl("ftx.random.normal (op by op)", requires=("ftx.random.normal",),
        ref="ftx.random.normal (compiled route)")
def _ftx_op_by_op(i: dict[str, Any]) -> Any:
    from ftx._internal import torch_compat

    k = ftx.random.key(0, device=i["device"])
    n = i["n"]

    def draw() -> Any:
        on = torch_compat.RANDOM_COMPILED
        torch_compat.RANDOM_COMPILED = False
        try:
            return ftx.random.normal(k, (n,))
        finally:
            torch_compat.RANDOM_COMPILED = on

    return draw


@c.impl("ftx.jit(normal)", requires=("ftx.random.normal",), compiled=True,
        ref="ftx.random.normal (compiled route)")
def _ftx_jit(i: dict[str, Any]) -> Any:
    k = ftx.random.key(0, device=i["device"])
    n = i["n"]
    f = ftx.jit(lambda key: ftx.random.normal(key, (n,)))
    return lambda: f(k)
