"""BatchNorm1d/BatchNorm2d, the layers with state, against nn.BatchNorm1d/nn.BatchNorm2d.

50 training steps in float64 (10 in float32 and without running statistics; forward,
gradients w.r.t. params and input, SGD on both sides) then evaluation give the twin's
outputs, gradients and buffers; the state is explicit and nothing is mutated; ensembles
under vmap keep one set of statistics per member; init, paths, interop and bad inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn

import ftx
from ftx import nn as fnn


@dataclass(frozen=True)
class BN:
    id: str
    layer: Callable[[], Any]
    twin: Callable[[], nn.Module]
    shape: tuple[int, ...]


CASES = [
    BN("bn1d", lambda: fnn.BatchNorm1d(3), lambda: nn.BatchNorm1d(3), (6, 3)),
    BN("bn1d_seq_cumulative", lambda: fnn.BatchNorm1d(3, momentum=None),
       lambda: nn.BatchNorm1d(3, momentum=None), (4, 3, 5)),
    BN("bn2d_eps_momentum", lambda: fnn.BatchNorm2d(3, eps=1e-3, momentum=0.3),
       lambda: nn.BatchNorm2d(3, eps=1e-3, momentum=0.3), (4, 3, 3, 2)),
    BN("bn2d_noaffine", lambda: fnn.BatchNorm2d(3, affine=False),
       lambda: nn.BatchNorm2d(3, affine=False), (4, 3, 2, 2)),
    BN("bn2d_untracked", lambda: fnn.BatchNorm2d(3, track_running_stats=False),
       lambda: nn.BatchNorm2d(3, track_running_stats=False), (4, 3, 2, 2)),
    BN("bn1d_untracked_noaffine_cumulative",
       lambda: fnn.BatchNorm1d(2, affine=False, track_running_stats=False, momentum=None),
       lambda: nn.BatchNorm1d(2, affine=False, track_running_stats=False, momentum=None),
       (5, 2)),
]
IDS = [c.id for c in CASES]


def tol(dtype: torch.dtype) -> dict[str, float]:
    if dtype == torch.float32:
        return {"rtol": 1e-4, "atol": 1e-5}
    return {"rtol": 1e-10, "atol": 1e-12}


def flat(tree: Any) -> dict[str, torch.Tensor]:
    return dict(ftx.tree.leaves_with_path(tree))


def twin_of(case: BN, params: Any, state: Any, dtype: torch.dtype, device: str) -> nn.Module:
    twin = case.twin().to(dtype=dtype, device=device)
    twin.load_state_dict({**flat(params), **flat(state)}, strict=True)
    return twin


def batch(case: BN, step: int, dtype: torch.dtype, device: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(100 + step)
    return (torch.randn(case.shape, generator=g, dtype=dtype) * 2 + 0.5).to(device)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fifty_training_steps_then_eval_equal_the_twin(case: BN, dtype: torch.dtype,
                                                       device: str) -> None:
    layer = case.layer()
    params = layer.init(ftx.random.key(0), dtype=dtype, device=device)
    params = ftx.tree.map(lambda t: t + 0.1 * torch.arange(t.numel(), dtype=dtype,
                                                           device=device), params)
    state = layer.init_state(dtype=dtype, device=device)
    twin = twin_of(case, params, state, dtype, device).train()
    opt = torch.optim.SGD(twin.parameters(), lr=0.1) if params else None
    ct = batch(case, -1, dtype, device)

    def loss(p: Any, x: torch.Tensor, s: Any) -> tuple[torch.Tensor, Any]:
        y, new_s = layer(p, x, state=s, training=True)
        return (y * ct).sum(), new_s

    # float64 is the reference (50 steps); float32 and the untracked layers (no running
    # statistics to accumulate) are spot checks (10 steps)
    steps = 50 if dtype == torch.float64 and layer.track_running_stats else 10
    for step in range(steps):
        x = batch(case, step, dtype, device)
        (value, new_state), (g_p, g_x) = ftx.value_and_grad(loss, argnums=(0, 1),
                                                            has_aux=True)(params, x, state)
        xr = x.clone().requires_grad_(True)
        twin.zero_grad()
        want = (twin(xr) * ct).sum()
        want.backward()
        torch.testing.assert_close(value, want.detach(), **tol(dtype))
        torch.testing.assert_close(g_x, xr.grad, **tol(dtype))
        for name, p in twin.named_parameters():
            torch.testing.assert_close(flat(g_p)[name], p.grad, **tol(dtype), msg=name)
        if opt is not None:
            opt.step()
        params = ftx.tree.map(lambda p, g: p - 0.1 * g, params, g_p)
        state = new_state
    buffers = dict(twin.named_buffers())
    assert sorted(flat(state)) == sorted(buffers)
    for name, buf in buffers.items():
        assert flat(state)[name].dtype == buf.dtype, name
        torch.testing.assert_close(flat(state)[name], buf, **tol(dtype), msg=name)
    if layer.track_running_stats:
        assert int(state["num_batches_tracked"]) == steps
    twin.eval()
    x = batch(case, 999, dtype, device)
    y, same = layer(params, x, state=state, training=False)
    assert same is state
    torch.testing.assert_close(y, twin(x), **tol(dtype))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_eval_mode_grads_equal_the_twin(case: BN, dtype: torch.dtype, device: str) -> None:
    layer = case.layer()
    params = layer.init(ftx.random.key(0), dtype=dtype, device=device)
    state = ftx.tree.map(lambda t: t + 1 if t.is_floating_point() else t + 3,
                         layer.init_state(dtype=dtype, device=device))
    twin = twin_of(case, params, state, dtype, device).eval()
    x = batch(case, 0, dtype, device)
    ct = batch(case, 1, dtype, device)
    g_p, g_x = ftx.grad(lambda p, xx: (layer(p, xx, state=state, training=False)[0] * ct).sum(),
                        argnums=(0, 1))(params, x)
    xr = x.clone().requires_grad_(True)
    (twin(xr) * ct).sum().backward()
    torch.testing.assert_close(g_x, xr.grad, **tol(dtype))
    for name, p in twin.named_parameters():
        torch.testing.assert_close(flat(g_p)[name], p.grad, **tol(dtype), msg=name)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_without_state_the_batch_statistics_are_used(case: BN) -> None:
    layer = case.layer()
    params = layer.init(ftx.random.key(0), dtype=torch.float64)
    x = batch(case, 0, torch.float64, "cpu")
    twin = case.twin().double().train()
    twin.load_state_dict({**flat(params), **twin.state_dict()} if params
                         else twin.state_dict())
    torch.testing.assert_close(layer(params, x), twin(x))
    if layer.track_running_stats:
        with pytest.raises(ValueError, match=rf"ftx\.nn\.{type(layer).__name__}: state= \(the "
                           r"running statistics\) with training=False, got state=None\. Pass "
                           r"state=layer\.init_state\(\)"):
            layer(params, x, training=False)
    else:  # no running statistics: batch statistics in evaluation too, as torch
        torch.testing.assert_close(layer(params, x, training=False), twin.eval()(x))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_init_paths_and_interop(case: BN, dtype: torch.dtype, device: str) -> None:
    layer = case.layer()
    params = layer.init(ftx.random.key(0), dtype=dtype, device=device)
    state = layer.init_state(dtype=dtype, device=device)
    ref = case.twin().to(dtype=dtype, device=device)
    # params and state partition the state dict, values equal torch's defaults
    sd = ref.state_dict()
    assert sorted({**flat(params), **flat(state)}) == sorted(sd)
    assert not set(flat(params)) & set(flat(state))
    for name, t in {**flat(params), **flat(state)}.items():
        assert t.dtype == sd[name].dtype and t.device == sd[name].device, name
        assert torch.equal(t, sd[name]), name
    assert layer.param_shapes() == {k: tuple(v.shape) for k, v in flat(params).items()}
    assert layer.state_shapes() == {k: tuple(v.shape) for k, v in flat(state).items()}
    # to_module with a trained state, and back
    x = batch(case, 0, dtype, device)
    _, trained = layer(params, x, state=state, training=True)
    module = fnn.to_module(layer, params, trained)
    assert ftx.tree.allclose(fnn.params_of(module, buffers=False), params, 0, 0)
    assert ftx.tree.allclose(fnn.state_of(module), trained, 0, 0)
    # from_module of the training-mode twin: the same step, the caller's module untouched
    apply_fn, p2, s2 = fnn.from_module(module.train(), split_state=True)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    y_mod, s_mod = apply_fn(p2, s2, x)
    y, s_new = layer(params, x, state=trained, training=True)
    torch.testing.assert_close(y_mod, y, **tol(dtype))
    assert ftx.tree.allclose(s_mod, s_new, **tol(dtype))
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())


def test_ensemble_under_vmap_keeps_one_set_of_statistics_per_member() -> None:
    layer = fnn.BatchNorm2d(3, momentum=None)
    keys = ftx.random.split(ftx.random.key(0), 4)
    members = [ftx.tree.map(lambda t, i=i: t * (1 + i), layer.init(k, dtype=torch.float64))
               for i, k in enumerate(keys)]
    params = ftx.tree.map(lambda *ts: torch.stack(ts), *members)
    state = ftx.vmap(lambda _: layer.init_state(dtype=torch.float64))(torch.arange(4))
    twin_case = BN("bn2d_cumulative", lambda: layer, lambda: nn.BatchNorm2d(3, momentum=None),
                   (5, 3, 2, 2))
    twins = [twin_of(twin_case, p, layer.init_state(dtype=torch.float64), torch.float64, "cpu")
             for p in members]
    step = ftx.vmap(lambda p, s, x: layer(p, x, state=s, training=True))
    for i in range(5):
        xs = torch.randn(4, 5, 3, 2, 2, dtype=torch.float64) * (i + 1)  # one batch per member
        ys, state = step(params, state, xs)
        for m, twin in enumerate(twins):
            torch.testing.assert_close(ys[m], twin(xs[m]))
    for m, twin in enumerate(twins):
        for name, buf in twin.named_buffers():
            torch.testing.assert_close(state[name][m], buf, msg=f"member {m} {name}")
    assert not torch.allclose(state["running_mean"][0], state["running_mean"][1])


def test_the_call_mutates_nothing() -> None:
    layer = fnn.BatchNorm1d(3)
    params = layer.init(ftx.random.key(0))
    state = layer.init_state()
    copies = ftx.tree.map(torch.clone, (params, state))
    x = torch.randn(5, 3)
    _, new = layer(params, x, state=state, training=True)
    assert ftx.tree.allclose((params, state), copies, 0, 0)
    assert new is not state and int(new["num_batches_tracked"]) == 1
    assert not new["running_mean"].requires_grad


# ---------------------------------------------------------------------------
# Bad inputs

B1 = fnn.BatchNorm1d(3)
B2 = fnn.BatchNorm2d(3)
P = B1.init(ftx.random.key(0))
S = B1.init_state()
X = torch.randn(4, 3)

BAD: list[Any] = [
    (lambda: B1(P, torch.randn(4, 5)), ValueError,
     r"ftx\.nn\.BatchNorm1d: input x must have shape \(N, C\) or \(N, C, L\) with C = 3, got "
     r"input of shape \(4, 5\)\. Batch normalisation needs a batch dimension first"),
    (lambda: B2(P, torch.randn(4, 3, 5)), ValueError,
     r"ftx\.nn\.BatchNorm2d: input x must have shape \(N, C, H, W\) with C = 3, got input of "
     r"shape \(4, 3, 5\)"),
    (lambda: B1(P, X.double(), state=S), TypeError,
     r"ftx\.nn\.BatchNorm1d: input and params must share one dtype, got input torch\.float64 "
     r"and params\['weight'\] torch\.float32"),
    (lambda: B1({"weight": P["weight"]}, X), ValueError,
     r"ftx\.nn\.BatchNorm1d: params must hold exactly the paths \['bias', 'weight'\], got "
     r"missing paths \['bias'\]"),
    (lambda: B1(P, X, state={"running_mean": S["running_mean"]}), ValueError,
     r"ftx\.nn\.BatchNorm1d: state must hold exactly the paths \['num_batches_tracked', "
     r"'running_mean', 'running_var'\], got missing paths \['num_batches_tracked', "
     r"'running_var'\] and extra paths \[\]\. Build state with layer\.init_state\(\)"),
    (lambda: B1(P, X, state={**S, "running_var": torch.ones(4)}), ValueError,
     r"ftx\.nn\.BatchNorm1d: state\['running_var'\] must have shape \(3,\), got shape \(4,\)"),
    (lambda: B1(P, X, state={**S, "running_var": torch.ones(3).double()}), TypeError,
     r"ftx\.nn\.BatchNorm1d: input and state must share one dtype, got input torch\.float32 and "
     r"state\['running_var'\] torch\.float64"),
    (lambda: B1(P, X, state={**S, "num_batches_tracked": torch.tensor(0.0)}), TypeError,
     r"ftx\.nn\.BatchNorm1d: state\['num_batches_tracked'\] must be an int64 tensor"),
    (lambda: B1(P, X, state=[1]), TypeError,
     r"ftx\.nn\.BatchNorm1d: state must be a dict of tensors \(the pytree from init_state\)"),
    (lambda: B1(P, X, training=1), TypeError,
     r"ftx\.nn\.BatchNorm1d: training must be True or False, got int 1"),
    (lambda: B1(P, torch.randn(1, 3), state=S), ValueError,
     r"ftx\.nn\.BatchNorm1d: more than one value per channel when normalising with the batch's "
     r"statistics, got input of shape \(1, 3\)"),
    (lambda: B1(P, torch.ones(4, 3, dtype=torch.int64)), TypeError,
     r"ftx\.nn\.BatchNorm1d: input x must be a floating tensor"),
    (lambda: fnn.BatchNorm1d(3)(P, X, state=S, training=False) and
     fnn.BatchNorm1d(3, track_running_stats=False)(P, X, state=S), ValueError,
     r"state must hold exactly the paths \[\], got missing paths \[\] and extra paths"),
    (lambda: fnn.BatchNorm1d(3, momentum=1.5), ValueError,
     r"ftx\.nn\.BatchNorm1d: momentum must be in \[0, 1\], got 1\.5"),
    (lambda: fnn.BatchNorm2d(3, eps=-1.0), ValueError,
     r"ftx\.nn\.BatchNorm2d: eps must be > 0, got -1\.0"),
    (lambda: fnn.BatchNorm2d(3, eps=0.0), ValueError, r"ftx\.nn\.BatchNorm2d: eps must be > 0"),
    (lambda: fnn.BatchNorm2d(0), ValueError, r"ftx\.nn\.BatchNorm2d: num_features must be >= 1"),
    (lambda: B1.init_state(dtype=torch.int64), ValueError,
     r"ftx\.nn\.BatchNorm1d: dtype must be float16, bfloat16, float32 or float64"),
]


@pytest.mark.parametrize(("fn", "exc", "match"), BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_input(fn: Callable[[], Any], exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        fn()


def test_functional_batch_norm_is_the_layer() -> None:
    x = torch.randn(6, 3, 4, 4, dtype=torch.float64)
    layer = fnn.BatchNorm2d(3, momentum=0.2, eps=1e-3)
    params, state = layer.init(ftx.random.key(0), dtype=torch.float64), layer.init_state(
        dtype=torch.float64)
    y, s = fnn.functional.batch_norm(params, x, state, momentum=0.2, eps=1e-3)
    y2, s2 = layer(params, x, state=state, training=True)
    assert torch.equal(y, y2) and ftx.tree.allclose(s, s2, 0, 0)
    torch.testing.assert_close(fnn.functional.batch_norm({}, x[:, :, 0, 0]),
                               torch.nn.functional.batch_norm(x[:, :, 0, 0], None, None,
                                                              training=True))
    with pytest.raises(ValueError, match=r"ftx\.nn\.functional\.batch_norm: input x of shape "
                       r"\(N, C, \*\)"):
        fnn.functional.batch_norm({}, torch.randn(3))
