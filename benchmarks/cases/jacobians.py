"""Jacobians of a wide and a tall function, and a 100-d Hessian (issue 7 case 4).

Wide: R^1000 -> R^10, tall: R^10 -> R^1000, both ``tanh(A @ x) * x.sum()``
(1000/10 scaled down to 200/10 with ``--quick``). Baseline: a hand-written
Jacobian, ``vmap`` over the rows of the identity of a ``torch.autograd.grad``
vector-Jacobian product (torch's legacy ``torch._vmap_internals.vmap``).
Hessian: ``sum(tanh(W @ x)) + sum(x**4) / 4`` in 100-d, ``torch.func.hessian``
as baseline; Hessian-vector product of the same function, ``torch.func.jvp``
of ``torch.func.grad`` as baseline. ftx eager and under ``ftx.jit``, JAX eager
and under ``jax.jit``, are the peers everywhere.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.func as tf

import ftx
from benchmarks import Config, case

from ._common import to_jax

GROUP = "jacobians"

# the legacy vmap warns on every call; its cost is what is measured, not the warning's
warnings.filterwarnings("ignore", message=r"Please use `torch.vmap`", category=FutureWarning)


BASE = "vjp per row (legacy vmap)"


def rowwise_jacobian(fun: Any, x: torch.Tensor) -> torch.Tensor:
    """Jacobian by hand: one ``torch.autograd.grad`` vjp per output row, batched by the
    legacy ``torch._vmap_internals.vmap`` over the rows of the identity."""
    from torch._vmap_internals import vmap as legacy_vmap

    x = x.detach().requires_grad_()
    y = fun(x)

    def vjp(v: torch.Tensor) -> torch.Tensor:
        return torch.autograd.grad(y, x, v)[0]

    vs = torch.eye(y.numel(), device=x.device).view(y.numel(), *y.shape)
    result = legacy_vmap(vjp)(vs)
    return result.detach()


def _register(shape: str, n_in: int, n_out: int, quick_in: int, quick_out: int) -> None:
    def setup(cfg: Config) -> dict[str, Any]:
        i, o = (quick_in, quick_out) if cfg.quick else (n_in, n_out)
        g = torch.Generator().manual_seed(5)
        a = (torch.randn(o, i, generator=g) / i**0.5).to(cfg.device)
        x = torch.randn(i, generator=g).to(cfg.device)
        return {"a": a, "x": x}

    def f(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return torch.tanh(a @ x) * x.sum()

    c = case(GROUP, f"{shape}-{n_in}to{n_out}", setup, baseline=BASE, rtol=1e-4, atol=1e-5)

    @c.impl(BASE)
    def _rowwise(i: dict[str, Any]) -> Any:
        return lambda: rowwise_jacobian(lambda x: f(x, i["a"]), i["x"])

    for label, lib, kind in (
        ("torch.func.jacfwd", tf, "jacfwd"), ("torch.func.jacrev", tf, "jacrev"),
        ("ftx.jacfwd", ftx, "jacfwd"), ("ftx.jacrev", ftx, "jacrev"),
    ):

        def make(i: dict[str, Any], lib: Any = lib, kind: str = kind) -> Any:
            j = getattr(lib, kind)(f)
            return lambda: j(i["x"], i["a"])

        c.impl(label)(make)

    @c.impl("ftx.jacobian(auto)")
    def _auto(i: dict[str, Any]) -> Any:
        j = ftx.jacobian(f, mode="auto")
        return lambda: j(i["x"], i["a"])

    for kind in ("jacfwd", "jacrev"):

        def make_jit(i: dict[str, Any], kind: str = kind) -> Any:
            j = ftx.jit(getattr(ftx, kind)(f))
            return lambda: j(i["x"], i["a"])

        c.impl(f"ftx.jit({kind})", compiled=True)(make_jit)

    for kind in ("jacfwd", "jacrev"):
        for jit in (False, True):

            def make_jax(i: dict[str, Any], kind: str = kind, jit: bool = jit) -> Any:
                import jax
                import jax.numpy as jnp

                j = getattr(jax, kind)(lambda x, a: jnp.tanh(a @ x) * x.sum())
                j = jax.jit(j) if jit else j
                x, a = to_jax((i["x"], i["a"]))
                return lambda: j(x, a)

            label = f"jax.jit({kind})" if jit else f"jax.{kind}"
            c.impl(label, requires=("jax",), jax=True, compiled=jit)(make_jax)


_register("wide", 1000, 10, 200, 10)
_register("tall", 10, 1000, 10, 200)


def _hess_setup(cfg: Config) -> dict[str, Any]:
    g = torch.Generator().manual_seed(6)
    w = (torch.randn(100, 100, generator=g) / 10).to(cfg.device)
    x = torch.randn(100, generator=g).to(cfg.device)
    return {"w": w, "x": x}


def _h(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return torch.tanh(w @ x).sum() + (x**4).sum() / 4


hc = case(GROUP, "hessian-100d", _hess_setup, baseline="torch.func.hessian", rtol=1e-4, atol=1e-5)


@hc.impl("torch.func.hessian")
def _tf_h(i: dict[str, Any]) -> Any:
    h = tf.hessian(_h)
    return lambda: h(i["x"], i["w"])


@hc.impl("ftx.hessian")
def _ftx_h(i: dict[str, Any]) -> Any:
    h = ftx.hessian(_h)
    return lambda: h(i["x"], i["w"])


@hc.impl("ftx.jit(hessian)", compiled=True)
def _ftx_jit_h(i: dict[str, Any]) -> Any:
    h = ftx.jit(ftx.hessian(_h))
    return lambda: h(i["x"], i["w"])


def _jax_h(x: Any, w: Any) -> Any:
    import jax.numpy as jnp

    return jnp.tanh(w @ x).sum() + (x**4).sum() / 4


@hc.impl("jax.hessian", requires=("jax",), jax=True)
def _jax_eager(i: dict[str, Any]) -> Any:
    import jax

    h = jax.hessian(_jax_h)
    x, w = to_jax((i["x"], i["w"]))
    return lambda: h(x, w)


@hc.impl("jax.jit(hessian)", requires=("jax",), jax=True, compiled=True)
def _jax_jit(i: dict[str, Any]) -> Any:
    import jax

    h = jax.jit(jax.hessian(_jax_h))
    x, w = to_jax((i["x"], i["w"]))
    return lambda: h(x, w)


# Hessian-vector product of the same function: forward over reverse, H v without forming H.


def _hvp_setup(cfg: Config) -> dict[str, Any]:
    out = _hess_setup(cfg)
    g = torch.Generator().manual_seed(7)
    out["v"] = torch.randn(100, generator=g).to(cfg.device)
    return out


vc = case(GROUP, "hvp-100d", _hvp_setup, baseline="torch.func.jvp(grad)", rtol=1e-4, atol=1e-5)


@vc.impl("torch.func.jvp(grad)")
def _tf_hvp(i: dict[str, Any]) -> Any:
    w, x, v = i["w"], i["x"], i["v"]
    g = tf.grad(_h)
    return lambda: tf.jvp(lambda x: g(x, w), (x,), (v,))[1]


@vc.impl("ftx.hvp")
def _ftx_hvp(i: dict[str, Any]) -> Any:
    w, x, v = i["w"], i["x"], i["v"]
    return lambda: ftx.hvp(lambda x: _h(x, w), (x,), (v,))[0]


@vc.impl("ftx.jit(hvp)", compiled=True)
def _ftx_jit_hvp(i: dict[str, Any]) -> Any:
    w, x, v = i["w"], i["x"], i["v"]

    def hvp(x: torch.Tensor, w: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return ftx.hvp(lambda x: _h(x, w), (x,), (v,))[0]  # type: ignore[no-any-return]

    f = ftx.jit(hvp)
    return lambda: f(x, w, v)


def _jax_hvp(x: Any, w: Any, v: Any) -> Any:
    import jax

    return jax.jvp(jax.grad(lambda x: _jax_h(x, w)), (x,), (v,))[1]


@vc.impl("jax.jvp(grad)", requires=("jax",), jax=True)
def _jax_hvp_eager(i: dict[str, Any]) -> Any:
    x, w, v = to_jax((i["x"], i["w"], i["v"]))
    return lambda: _jax_hvp(x, w, v)


@vc.impl("jax.jit(jvp(grad))", requires=("jax",), jax=True, compiled=True)
def _jax_hvp_jit(i: dict[str, Any]) -> Any:
    import jax

    f = jax.jit(_jax_hvp)
    x, w, v = to_jax((i["x"], i["w"], i["v"]))
    return lambda: f(x, w, v)
