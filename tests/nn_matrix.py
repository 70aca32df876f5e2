"""The verification matrix for ftx.nn layers against their torch.nn twins, as reusable checks.

A :class:`Case` names an ftx layer, its twin and an input; the ``check_*`` functions
assert, for one case, dtype and device:

* ``check_forward``: the output (any pytree: ``(out, h_n)`` for recurrent layers) equals
  the twin's, the twin holding the same params (loaded by torch's own
  ``load_state_dict(strict=True)``, so the paths must be the state dict's);
* ``check_grads``: ``ftx.grad`` w.r.t. params and input equals ``backward()`` on the twin;
* ``check_ensemble``: ``ftx.vmap`` over 4 stacked params equals a loop over 4 twins;
* ``check_examples``: ``ftx.vmap`` over single examples equals the batched call;
* ``check_paths``: params paths and shapes equal ``state_dict()``;
* ``check_round_trip``: ``to_module`` computes the same, ``params_of`` gives the params
  back, ``from_module`` of the twin computes the same;
* ``check_init_law``: every param tensor lies in the stated bound, fills it and has the
  same law as torch's default init (two-sample Kolmogorov-Smirnov).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from scipy import stats
from torch import nn

import ftx
from ftx import nn as fnn


@dataclass(frozen=True)
class Case:
    id: str
    layer: Callable[[], fnn.Layer]
    twin: Callable[[], nn.Module]
    shape: tuple[int, ...]  # batched input shape
    extra: Callable[[torch.dtype, str], tuple[Any, ...]] = field(default=lambda d, v: ())
    unbatched: bool = True  # the layer takes one example without its batch dim (vmap test)
    batch_dim: int = 0


def tol(dtype: torch.dtype) -> dict[str, float]:
    if dtype == torch.float32:
        return {"rtol": 2e-5, "atol": 2e-5}
    return {"rtol": 1e-10, "atol": 1e-12}


def flat(params: Any) -> dict[str, torch.Tensor]:
    return dict(ftx.tree.leaves_with_path(params))


def setup(case: Case, dtype: torch.dtype, device: str, seed: int = 0) -> tuple[Any, Any, Any]:
    layer = case.layer()
    params = layer.init(ftx.random.key(seed), dtype=dtype, device=device)
    twin = case.twin().to(dtype=dtype, device=device).eval()
    twin.load_state_dict(flat(params), strict=True)
    return layer, params, twin


def data(case: Case, dtype: torch.dtype, device: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(case.shape, generator=g, dtype=dtype).to(device)


def assert_tree_close(a: Any, b: Any, dtype: torch.dtype, what: str = "") -> None:
    la, ta = ftx.tree.flatten(a)
    lb, tb = ftx.tree.flatten(b)
    assert ta == tb, f"{what}: structures differ {ta} != {tb}"
    for i, (x, y) in enumerate(zip(la, lb)):
        assert x.dtype == y.dtype and x.device == y.device, f"{what} leaf {i}"
        torch.testing.assert_close(x, y, **tol(dtype), msg=f"{what} leaf {i}")


def check_forward(case: Case, dtype: torch.dtype, device: str) -> None:
    layer, params, twin = setup(case, dtype, device)
    x = data(case, dtype, device)
    extra = case.extra(dtype, device)
    assert_tree_close(layer(params, x, *extra), twin(x, *extra), dtype, case.id)


def check_grads(case: Case, dtype: torch.dtype, device: str) -> None:
    layer, params, twin = setup(case, dtype, device)
    x = data(case, dtype, device)
    extra = case.extra(dtype, device)
    g = torch.Generator().manual_seed(2)
    cts = [torch.randn(t.shape, generator=g, dtype=dtype).to(device)
           for t in ftx.tree.leaves(twin(x, *extra))]

    def loss(p: Any, xx: torch.Tensor) -> torch.Tensor:
        outs = ftx.tree.leaves(layer(p, xx, *extra))
        return sum((o * c).sum() for o, c in zip(outs, cts))  # type: ignore[return-value]

    g_params, g_x = ftx.grad(loss, argnums=(0, 1))(params, x)
    xr = x.clone().requires_grad_(True)
    sum((o * c).sum() for o, c in zip(ftx.tree.leaves(twin(xr, *extra)), cts)).backward()
    torch.testing.assert_close(g_x, xr.grad, **tol(dtype))
    want = {name: p.grad for name, p in twin.named_parameters()}
    got = flat(g_params)
    assert sorted(got) == sorted(want)
    for name in want:
        torch.testing.assert_close(got[name], want[name], **tol(dtype), msg=name)


def check_ensemble(case: Case, dtype: torch.dtype, device: str) -> None:
    layer = case.layer()
    keys = ftx.random.split(ftx.random.key(3), 4)
    members = [layer.init(k, dtype=dtype, device=device) for k in keys]
    x = data(case, dtype, device)
    extra = case.extra(dtype, device)
    if members[0]:
        stacked = ftx.tree.map(lambda *ls: torch.stack(ls), *members)
        out = ftx.vmap(lambda p: layer(p, x, *extra))(stacked)
    else:
        out = ftx.vmap(lambda _: layer({}, x, *extra))(torch.arange(4))
    for i, p in enumerate(members):
        twin = case.twin().to(dtype=dtype, device=device).eval()
        twin.load_state_dict(flat(p))
        assert_tree_close(ftx.tree.map(lambda t, i=i: t[i], out), twin(x, *extra), dtype,
                          f"member {i}")


def check_examples(case: Case, dtype: torch.dtype, device: str) -> None:
    layer, params, _ = setup(case, dtype, device)
    x = data(case, dtype, device)
    per = ftx.vmap(lambda xi: layer(params, xi), in_axes=case.batch_dim,
                   out_axes=case.batch_dim)(x)
    whole = layer(params, x)
    assert_tree_close(per, whole, dtype, case.id)


def check_paths(case: Case) -> None:
    layer = case.layer()
    params = layer.init(ftx.random.key(0))
    ours = {p: tuple(v.shape) for p, v in ftx.tree.leaves_with_path(params)}
    theirs = {k: tuple(v.shape) for k, v in case.twin().state_dict().items()}
    state = {k: tuple(v.shape) for k, v in flat(layer.init_state()).items()}
    assert {**ours, **state} == theirs
    assert not set(ours) & set(state)
    assert layer.param_shapes() == ours
    assert layer.state_shapes() == state


def check_round_trip(case: Case, dtype: torch.dtype, device: str) -> None:
    layer = case.layer()
    params = layer.init(ftx.random.key(0), dtype=dtype, device=device)
    module = fnn.to_module(layer, params).eval()
    assert type(module) is type(case.twin())
    x = data(case, dtype, device)
    extra = case.extra(dtype, device)
    want = layer(params, x, *extra)
    assert_tree_close(module(x, *extra), want, dtype, "to_module")
    assert ftx.tree.allclose(fnn.params_of(module), params, 0, 0)
    apply_fn, back = fnn.from_module(module)
    assert ftx.tree.allclose(back, params, 0, 0)
    assert_tree_close(apply_fn(back, x, *extra), want, dtype, "from_module")


def check_init_law(layer: fnn.Layer, twin: Callable[[], nn.Module], bound: float,
                   dtype: torch.dtype, device: str, fills: bool = True) -> None:
    """Every param tensor of ``layer.init`` is ``U(-bound, bound)``, like torch's twin's."""
    params = flat(layer.init(ftx.random.key(0), dtype=dtype, device=device))
    torch.manual_seed(0)
    ref = dict(twin().named_parameters())
    assert sorted(params) == sorted(ref)
    for name, ours in params.items():
        theirs = ref[name].detach().double().flatten()
        assert ours.dtype == dtype and ours.device.type == device
        assert ours.shape == ref[name].shape
        o = ours.double().cpu().flatten()
        assert o.abs().max() <= bound and theirs.abs().max() <= bound, name
        n = o.numel()
        if fills:
            assert o.abs().max() > (1 - 10 / n) * bound, name  # fills the interval
        var = bound**2 / 3
        assert abs(o.mean().item()) < 5 * math.sqrt(var / n), name
        assert abs(o.var().item() / var - 1) < 5 * math.sqrt(0.8 / n) + 0.01, name
        assert stats.ks_2samp(o.numpy(), theirs.numpy()).pvalue > 1e-4, name
