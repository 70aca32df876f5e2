"""State through containers and interop: Sequential threads BatchNorm's state; from_module
never mutates the caller's module or params and returns new buffers with split_state=True.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import torch
from torch import nn

import ftx
from ftx import nn as fnn


def flat(tree: Any) -> dict[str, torch.Tensor]:
    return dict(ftx.tree.leaves_with_path(tree))


def cnn() -> tuple[fnn.Sequential, nn.Sequential]:
    ours = fnn.Sequential(
        fnn.Conv2d(2, 4, 3, padding=1), fnn.BatchNorm2d(4), fnn.ReLU(),
        fnn.Sequential(fnn.Conv2d(4, 4, 3, bias=False), fnn.BatchNorm2d(4, affine=False)),
        fnn.Flatten(), fnn.Linear(4 * 2 * 2, 5), fnn.BatchNorm1d(5, momentum=None),
    )
    theirs = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Sequential(nn.Conv2d(4, 4, 3, bias=False), nn.BatchNorm2d(4, affine=False)),
        nn.Flatten(), nn.Linear(4 * 2 * 2, 5), nn.BatchNorm1d(5, momentum=None),
    )
    return ours, theirs


def test_params_and_state_partition_the_state_dict() -> None:
    seq, twin = cnn()
    params, state = seq.init(ftx.random.key(0)), seq.init_state()
    ours = {k: tuple(v.shape) for k, v in {**flat(params), **flat(state)}.items()}
    assert ours == {k: tuple(v.shape) for k, v in twin.state_dict().items()}
    assert sorted(state) == ["1", "3", "6"] and sorted(state["3"]) == ["1"]
    assert seq.state_shapes() == {k: tuple(v.shape) for k, v in flat(state).items()}
    assert not set(seq.param_shapes()) & set(seq.state_shapes())


def test_sequential_training_steps_then_eval_equal_the_twin(dtype: torch.dtype,
                                                            device: str) -> None:
    seq, twin = cnn()
    params = seq.init(ftx.random.key(0), dtype=dtype, device=device)
    state = seq.init_state(dtype=dtype, device=device)
    twin = twin.to(dtype=dtype, device=device).train()
    twin.load_state_dict({**flat(params), **flat(state)}, strict=True)
    t = {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {}
    g = torch.Generator().manual_seed(0)

    def loss(p: Any, s: Any, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        y, new = seq(p, x, state=s, training=True)
        return y.square().mean(), new

    for _ in range(4):
        x = torch.randn(6, 2, 4, 4, generator=g, dtype=dtype).to(device)
        grads, state = ftx.grad(loss, has_aux=True)(params, state, x)
        twin.zero_grad()
        twin(x).square().mean().backward()
        for name, p in twin.named_parameters():
            torch.testing.assert_close(flat(grads)[name], p.grad, **t, msg=name)
        params = ftx.tree.map(lambda p, gr: p - 0.05 * gr, params, grads)
        with torch.no_grad():
            for p in twin.parameters():
                p -= 0.05 * p.grad
    for name, buf in twin.named_buffers():
        torch.testing.assert_close(flat(state)[name], buf, **t, msg=name)
    x = torch.randn(3, 2, 4, 4, generator=g, dtype=dtype).to(device)
    y, same = seq(params, x, state=state, training=False)
    torch.testing.assert_close(y, twin.eval()(x), **t)
    assert ftx.tree.allclose(same, state, 0, 0)


def test_sequential_without_state() -> None:
    seq, twin = cnn()
    params = seq.init(ftx.random.key(0), dtype=torch.float64)
    twin = twin.double().train()
    twin.load_state_dict({**flat(params), **flat(seq.init_state(dtype=torch.float64))})
    x = torch.randn(4, 2, 4, 4, dtype=torch.float64)
    # no state, training: batch statistics, no running statistics kept
    torch.testing.assert_close(seq(params, x), twin(x))
    with pytest.raises(ValueError, match=r"ftx\.nn\.BatchNorm2d: state= \(the running "
                       r"statistics\) with training=False, got state=None") as info:
        seq(params, x, training=False)
    assert "raised in ftx.nn.Sequential by layer 1" in "".join(info.value.__notes__)


def test_stateless_sequential_is_unchanged_and_takes_an_empty_state() -> None:
    mlp = fnn.Sequential(fnn.Linear(3, 4), fnn.ReLU(), fnn.Linear(4, 2))
    params = mlp.init(ftx.random.key(0))
    x = torch.randn(5, 3)
    assert mlp.init_state() == {} and mlp.state_shapes() == {}
    y = mlp(params, x)
    y2, state = mlp(params, x, state={})
    assert torch.equal(y, y2) and state == {}
    assert fnn.MLP([3, 4, 2]).init_state() == {}


def test_sequential_state_errors() -> None:
    seq, _ = cnn()
    params, state = seq.init(ftx.random.key(0)), seq.init_state()
    x = torch.randn(4, 2, 4, 4)
    with pytest.raises(ValueError, match=r"ftx\.nn\.Sequential: state must hold exactly the "
                       r"paths .*got missing paths \['6\.num_batches_tracked', "
                       r"'6\.running_mean', '6\.running_var'\] and extra paths \[\]\. Build state "
                       r"with layer\.init_state\(\)"):
        seq(params, x, state={k: v for k, v in state.items() if k != "6"})
    with pytest.raises(TypeError, match=r"ftx\.nn\.Sequential: state must be a dict of tensors"):
        seq(params, x, state=[state])
    with pytest.raises(TypeError, match=r"ftx\.nn\.Sequential: training must be True or False, "
                       r"got str 'yes'"):
        seq(params, x, state=state, training="yes")
    bad = {**state, "1": {**state["1"], "running_var": torch.ones(5)}}
    with pytest.raises(ValueError, match=r"ftx\.nn\.Sequential: state\['1\.running_var'\] "
                       r"must have shape \(4,\), got shape \(5,\)"):
        seq(params, x, state=bad)
    bad = {**state, "1": {**state["1"], "running_var": torch.ones(4).double()}}
    with pytest.raises(TypeError, match=r"ftx\.nn\.BatchNorm2d: input and state must share one "
                       r"dtype") as info:
        seq(params, x, state=bad)
    assert "by layer 1" in "".join(info.value.__notes__)


def test_sequential_ensemble_under_vmap_keeps_statistics_per_member() -> None:
    seq = fnn.Sequential(fnn.Linear(3, 4), fnn.BatchNorm1d(4), fnn.Tanh(), fnn.Linear(4, 1))
    keys = ftx.random.split(ftx.random.key(1), 3)
    params = ftx.vmap(lambda k: seq.init(k, dtype=torch.float64))(keys)
    state = ftx.vmap(lambda _: seq.init_state(dtype=torch.float64))(torch.arange(3))
    twins = []
    for m in range(3):
        twin = fnn.to_module(seq, ftx.tree.map(lambda t, m=m: t[m], params)).train()
        twins.append(twin)
    step = ftx.vmap(lambda p, s, x: seq(p, x, state=s, training=True), in_axes=(0, 0, None))
    for i in range(4):
        x = torch.randn(8, 3, dtype=torch.float64) + i
        ys, state = step(params, state, x)
        for m, twin in enumerate(twins):
            torch.testing.assert_close(ys[m], twin(x))
    for m, twin in enumerate(twins):
        for name, buf in twin.named_buffers():
            torch.testing.assert_close(flat(state)[name][m], buf, msg=f"member {m} {name}")


def test_to_module_with_and_without_state() -> None:
    seq, _ = cnn()
    params = seq.init(ftx.random.key(0))
    state = ftx.tree.map(lambda t: t + 2, seq.init_state())
    module = fnn.to_module(seq, params, state)
    assert ftx.tree.allclose(fnn.state_of(module), state, 0, 0)
    assert ftx.tree.allclose(fnn.params_of(module, buffers=False), params, 0, 0)
    fresh = fnn.to_module(seq, params)  # the twin's own fresh buffers
    assert ftx.tree.allclose(fnn.state_of(fresh), seq.init_state(), 0, 0)
    with pytest.raises(ValueError, match=r"ftx\.nn\.to_module: state must be None or \{\} for "
                       r"a layer without state"):
        fnn.to_module(fnn.Linear(2, 2), fnn.Linear(2, 2).init(ftx.random.key(0)),
                      {"running_mean": torch.zeros(2)})
    with pytest.raises(ValueError, match=r"ftx\.nn\.load_params: params must hold exactly the "
                       r"module's paths"):
        fnn.to_module(seq, params, {"1": state["1"]})


# ---------------------------------------------------------------------------
# from_module: the caller's module and params are never mutated (a fuzz finding: a
# training-mode BatchNorm used to update the module's own num_batches_tracked and running
# statistics through the params_of views).


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def _unchanged(module: nn.Module, before: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, before[k]) for k, v in module.state_dict().items())


def test_from_module_training_mode_mutates_nothing() -> None:
    module = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).train()
    before = _snapshot(module)
    apply_fn, params = fnn.from_module(module)
    kept = ftx.tree.map(torch.clone, params)
    x = torch.randn(6, 3)
    y = apply_fn(params, x)
    assert _unchanged(module, before)
    assert int(module[1].num_batches_tracked) == 0
    assert ftx.tree.allclose(params, kept, 0, 0)
    torch.testing.assert_close(y, module(x))  # the same batch-statistics output


def test_from_module_split_state_returns_the_new_buffers() -> None:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, momentum=None)).double().train()
    reference = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, momentum=None)).double()
    reference.load_state_dict(module.state_dict())
    apply_fn, params, state = fnn.from_module(module, split_state=True)
    assert sorted(flat(params)) == ["0.bias", "0.weight", "1.bias", "1.weight"]
    assert sorted(flat(state)) == ["1.num_batches_tracked", "1.running_mean",
                                   "1.running_var"]
    before = _snapshot(module)
    for _ in range(3):
        x = torch.randn(5, 3, dtype=torch.float64)
        y, state = apply_fn(params, state, x)
        torch.testing.assert_close(y, reference(x))
    assert _unchanged(module, before)
    for name, buf in reference.named_buffers():
        torch.testing.assert_close(flat(state)[name], buf, msg=name)
    # differentiable in params, state as aux
    g, new = ftx.grad(lambda p: (lambda out: (out[0].sum(), out[1]))(apply_fn(p, state, x)),
                      has_aux=True)(params)
    assert int(new["1"]["num_batches_tracked"]) == 4
    assert sorted(flat(g)) == sorted(flat(params))


def test_from_module_split_state_under_vmap_over_an_ensemble() -> None:
    torch.manual_seed(0)
    modules = [nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)).train() for _ in range(3)]
    apply_fn, _, _ = fnn.from_module(modules[0], split_state=True)
    params = ftx.tree.map(lambda *t: torch.stack(t),
                          *[fnn.params_of(m, buffers=False) for m in modules])
    state = ftx.tree.map(lambda *t: torch.stack(t), *[fnn.state_of(m) for m in modules])
    copies = [nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)).train() for _ in modules]
    for c, m in zip(copies, modules):
        c.load_state_dict(m.state_dict())
    xs = torch.randn(3, 4, 3)
    ys, new = ftx.vmap(lambda p, s, x: apply_fn(p, s, x))(params, state, xs)
    for m, c in enumerate(copies):
        torch.testing.assert_close(ys[m], c(xs[m]))
        for name, buf in c.named_buffers():
            torch.testing.assert_close(flat(new)[name][m], buf)
        assert int(modules[m][1].num_batches_tracked) == 0


def test_from_module_split_state_errors() -> None:
    apply_fn, params, state = fnn.from_module(nn.BatchNorm1d(2), split_state=True)
    with pytest.raises(ValueError, match=r"ftx\.nn\.from_module\.apply: state must hold exactly "
                       r"the module's paths \['num_batches_tracked', 'running_mean', "
                       r"'running_var'\], got missing paths \['running_var'\]"):
        apply_fn(params, {k: v for k, v in state.items() if k != "running_var"},
                 torch.randn(3, 2))
    with pytest.raises(TypeError, match=r"ftx\.nn\.from_module: split_state must be True or "
                       r"False, got int 1"):
        fnn.from_module(nn.BatchNorm1d(2), split_state=1)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"ftx\.nn\.params_of: buffers must be True or False"):
        fnn.params_of(nn.BatchNorm1d(2), buffers=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"ftx\.nn\.state_of: module must be a torch\.nn"):
        fnn.state_of("bn")  # type: ignore[arg-type]


@pytest.mark.skipif(os.environ.get("FTX_LONG_TESTS", "") in ("", "0"),
                    reason="torch.compile takes about a minute on 2 CPUs; FTX_LONG_TESTS=1 runs it")
def test_stateful_train_step_under_jit_equals_eager() -> None:
    net = fnn.Sequential(fnn.Linear(8, 16), fnn.BatchNorm1d(16), fnn.ReLU(), fnn.Linear(16, 2))
    params, state = net.init(ftx.random.key(0)), net.init_state()
    x = torch.randn(32, 8)

    def step(p: Any, s: Any, xx: torch.Tensor) -> tuple[Any, Any]:
        def loss(p: Any, s: Any) -> tuple[torch.Tensor, Any]:
            y, new = net(p, xx, state=s, training=True)
            return y.square().mean(), new

        g, new = ftx.grad(loss, has_aux=True)(p, s)
        return ftx.tree.map(lambda a, b: a - 0.1 * b, p, g), new

    got = ftx.jit(step)(params, state, x)
    want = step(params, state, x)
    assert ftx.tree.allclose(got, want, 1e-5, 1e-6)
