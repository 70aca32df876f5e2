"""Wrapper cost: ftx transforms against the bare torch.func call they wrap (issue
7, case 1).

Tiny input (3 elements: the per-call overhead shows) and medium (a 256x256
MLP: the ratio should be ~1); ``jvp`` and ``jvp`` of ``grad``; ``vmap`` over a
dict argument of 4 and of 64 mapped leaves (the per-leaf cost shows). At top
level ``ftx.grad`` takes the ``torch.autograd.grad`` fast path, so its row
measures what a user gets, not only the wrapper.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.func as tf

import ftx
from benchmarks import Config, case

from ._common import mlp_apply, module_mlp, params_of

GROUP = "wrapper"


def _scalar(x: torch.Tensor) -> torch.Tensor:
    return (torch.sin(x) * x).sum()


def _vector(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(x) * x


def _tiny(cfg: Config) -> dict[str, Any]:
    return {"x": torch.tensor([0.3, -1.2, 2.0], device=cfg.device),
            "t": torch.tensor([1.0, 0.5, -2.0], device=cfg.device)}


def _dict_setup(leaves: int) -> Any:
    def setup(cfg: Config) -> dict[str, Any]:
        g = torch.Generator().manual_seed(9)
        return {"d": {f"w{k}": torch.randn(4, 3, generator=g).to(cfg.device)
                      for k in range(leaves)}}

    return setup


def _dict_fn(d: dict[str, torch.Tensor]) -> torch.Tensor:
    out = torch.zeros_like(d["w0"])
    for v in d.values():
        out = out + torch.sin(v)
    return out


def _medium(cfg: Config) -> dict[str, Any]:
    mod = module_mlp([256, 256, 256], "tanh")
    p = params_of(mod, cfg.device)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(256, generator=g).to(cfg.device)
    xs = torch.randn(256, 256, generator=g).to(cfg.device)
    return {"p": p, "x": x, "xs": xs}


def _mlp_loss(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    return (mlp_apply(p, x) ** 2).mean()


def _mlp_vec(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    return mlp_apply(p, x)


def _mlp_scalar(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    return (mlp_apply(p, x) ** 2).sum()


def _pair(name: str, setup: Any, build: Any, call: Any) -> None:
    """A case ``name`` with two implementations: ``build(torch.func)`` and ``build(ftx)``."""
    c = case(GROUP, name, setup, baseline="torch.func", rtol=1e-5, atol=1e-6)
    for label, lib in (("torch.func", tf), ("ftx", ftx)):

        def make(inputs: dict[str, Any], lib: Any = lib) -> Any:
            fn = build(lib)  # built once, outside the timed call
            return lambda: call(fn, inputs)

        c.impl(label)(make)


# tiny: a 3-element input; the transform's positional arguments are the same in both libraries
_pair("grad-tiny", _tiny, lambda T: T.grad(_scalar), lambda f, i: f(i["x"]))
_pair("vmap-tiny", _tiny, lambda T: T.vmap(torch.sin), lambda f, i: f(i["x"]))
_pair("jacrev-tiny", _tiny, lambda T: T.jacrev(_vector), lambda f, i: f(i["x"]))
_pair("hessian-tiny", _tiny, lambda T: T.hessian(_scalar), lambda f, i: f(i["x"]))

_pair("jvp-tiny", _tiny, lambda T: T.jvp,
      lambda jvp, i: jvp(_vector, (i["x"],), (i["t"],)))
_pair("jvp-grad-tiny", _tiny, lambda T: (T.jvp, T.grad(_scalar)),
      lambda f, i: f[0](f[1], (i["x"],), (i["t"],)))
# vmap over a dict argument, every leaf mapped along axis 0 (4 examples of 3 elements)
_pair("vmap-dict4-tiny", _dict_setup(4), lambda T: T.vmap(_dict_fn), lambda f, i: f(i["d"]))
_pair("vmap-dict64-tiny", _dict_setup(64), lambda T: T.vmap(_dict_fn), lambda f, i: f(i["d"]))

# medium: a 256-256-256 tanh MLP (grad and vmap over a batch of 256, jacrev/hessian of one input)
_pair("grad-mlp256", _medium, lambda T: T.grad(_mlp_loss), lambda f, i: f(i["p"], i["xs"]))
_pair("vmap-mlp256", _medium, lambda T: T.vmap(_mlp_vec, (0, None)),
      lambda f, i: f(i["xs"], i["p"]))
_pair("jacrev-mlp256", _medium, lambda T: T.jacrev(_mlp_vec), lambda f, i: f(i["x"], i["p"]))
_pair("hessian-mlp256", _medium, lambda T: T.hessian(_mlp_scalar),
      lambda f, i: f(i["x"], i["p"]))
