"""ftx.optim contract: purity, empty and None trees, structure errors, hyper-parameter errors."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, NamedTuple

import pytest
import torch

import ftx
from tests.helpers import tree_allclose

ALIASES = [
    pytest.param(lambda: ftx.optim.sgd(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
                 id="sgd"),
    pytest.param(lambda: ftx.optim.adam(lr=0.1, weight_decay=0.1, amsgrad=True), id="adam"),
    pytest.param(lambda: ftx.optim.adamw(lr=0.1, amsgrad=True), id="adamw"),
    pytest.param(lambda: ftx.optim.rmsprop(lr=0.1, momentum=0.5, centered=True), id="rmsprop"),
    pytest.param(lambda: ftx.optim.adagrad(lr=0.1, lr_decay=0.1, weight_decay=0.1), id="adagrad"),
    pytest.param(lambda: ftx.optim.chain(ftx.optim.clip_by_global_norm(1.0),
                                         ftx.optim.adam(lr=ftx.optim.cosine_decay(0.1, 10))),
                 id="clip+adam-schedule"),
]


def _params(dtype: torch.dtype = torch.float64, device: str = "cpu") -> dict[str, Any]:
    g = torch.Generator().manual_seed(0)
    return {
        "0": {"weight": torch.randn(3, 2, generator=g, dtype=dtype).to(device),
              "bias": torch.randn(3, generator=g, dtype=dtype).to(device)},
        "frozen": None,
        "scale": [torch.randn((), generator=g, dtype=dtype).to(device)],
    }


def _snapshot(tree: Any) -> Any:
    return ftx.tree.map(lambda x: x.clone(), tree)


def _same(a: Any, b: Any) -> None:
    la, ta = ftx.tree.flatten(a)
    lb, tb = ftx.tree.flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        assert torch.equal(x, y)


@pytest.mark.parametrize("make", ALIASES)
def test_update_never_mutates_inputs(make: Any, dtype: torch.dtype, device: str) -> None:
    opt = make()
    params = _params(dtype, device)
    grads = ftx.tree.map(lambda p: torch.ones_like(p) * 0.3, params)
    state = opt.init(params)
    for _ in range(3):  # the first step takes special branches (momentum), so run a few
        snap = (_snapshot(params), _snapshot(grads), _snapshot(state))
        updates, new_state = opt.update(grads, state, params)
        new_params = ftx.optim.apply_updates(params, updates)
        _same(snap[0], params)
        _same(snap[1], grads)
        _same(snap[2], state)
        assert ftx.tree.structure(new_state) == ftx.tree.structure(state)
        assert new_params["frozen"] is None and updates["frozen"] is None
        assert not torch.equal(new_params["0"]["weight"], params["0"]["weight"])
        params, state = new_params, new_state


@pytest.mark.parametrize("make", ALIASES)
def test_empty_tree(make: Any) -> None:
    opt = make()
    for empty in ({}, [], (), None, {"a": None, "b": []}):
        state = opt.init(empty)
        updates, state = opt.update(empty, state, empty)
        assert updates == empty
        assert ftx.optim.apply_updates(empty, updates) == empty
        updates, _ = opt.update(empty, state, empty)  # twice: the count moved on
        assert updates == empty


@pytest.mark.parametrize("make", ALIASES)
def test_state_mirrors_params_and_keeps_none(make: Any) -> None:
    params = _params()
    state = make().init(params)
    per_param = [s for s in ftx.tree.leaves(state, is_leaf=lambda x: isinstance(x, dict))
                 if isinstance(s, dict)]
    assert per_param, "an alias with buffers keeps params-shaped trees"
    for tree in per_param:
        assert tree["frozen"] is None
        assert ftx.tree.structure(tree) == ftx.tree.structure(params)
    assert all(isinstance(x, torch.Tensor) for x in ftx.tree.leaves(state))


def test_other_containers_namedtuple_ordereddict() -> None:
    class P(NamedTuple):
        w: torch.Tensor
        b: torch.Tensor | None

    params = OrderedDict(layer=P(torch.ones(2), None), head=[torch.zeros(1)])
    grads = OrderedDict(layer=P(torch.full((2,), 2.0), None), head=[torch.ones(1)])
    opt = ftx.optim.adam(lr=0.5)
    updates, state = opt.update(grads, opt.init(params), params)
    assert isinstance(state[-1].exp_avg, OrderedDict) and state[-1].exp_avg["layer"].b is None
    assert isinstance(updates, OrderedDict) and isinstance(updates["layer"], P)
    assert updates["layer"].b is None
    new = ftx.optim.apply_updates(params, updates)
    tree_allclose(new["layer"].w, torch.full((2,), 0.5))


def test_grads_structure_mismatch_names_paths() -> None:
    params = _params()
    opt = ftx.optim.sgd(lr=0.1)
    state = opt.init(params)
    bad = {"0": {"weight": torch.ones(3, 2), "bias": torch.ones(3)}, "frozen": None,
           "other": [torch.ones(())]}
    with pytest.raises(ValueError, match=r"ftx\.optim\.sgd\.update: grads must have the "
                       r"structure of params, got paths only in grads: \['other\.0'\], "
                       r"paths only in params: \['scale\.0'\]"):
        opt.update(bad, state, params)
    none_grad = {**ftx.tree.map(torch.ones_like, params), "scale": [None]}
    with pytest.raises(ValueError, match=r"paths only in params: \['scale\.0'\]"):
        opt.update(none_grad, state, params)
    as_tuple = {**ftx.tree.map(torch.ones_like, params), "scale": (torch.ones(()),)}
    with pytest.raises(ValueError, match=r"the same leaf paths in different containers"):
        opt.update(as_tuple, state, params)


def test_state_structure_mismatch() -> None:
    opt = ftx.optim.adam()
    params = {"a": torch.ones(2), "b": torch.ones(2)}
    state = opt.init({"a": torch.ones(2)})
    with pytest.raises(ValueError, match=r"ftx\.optim\.adam\.update: state\.exp_avg must have "
                       r"the structure of params, got paths only in state\.exp_avg: \[\], "
                       r"paths only in params: \['b'\]"):
        opt.update(params, state, params)
    with pytest.raises(TypeError, match=r"ftx\.optim\.adam\.update: state must be what this "
                       r"optimizer's init returned, got dict"):
        opt.update(params, {"a": 1}, params)
    with pytest.raises(TypeError, match=r"state must be what this optimizer's init returned"):
        ftx.optim.sgd(momentum=0.9).update(params, ftx.optim.adam().init(params), params)


def test_params_required_for_weight_decay() -> None:
    opt = ftx.optim.adamw()
    g = {"a": torch.ones(2)}
    with pytest.raises(ValueError, match=r"ftx\.optim\.adamw\.update: params are required "
                       r"by this transform \(weight decay\), got None"):
        opt.update(g, opt.init(g))
    # without weight decay params are optional
    u, _ = ftx.optim.adam(lr=1.0).update(g, ftx.optim.adam().init(g))
    tree_allclose(u, {"a": -torch.ones(2)}, rtol=1e-6)


def test_non_tensor_leaves() -> None:
    opt = ftx.optim.sgd()
    with pytest.raises(TypeError, match=r"ftx\.optim\.sgd\.init: every leaf of params must be a "
                       r"tensor, got float 1\.0 at path 'a'"):
        opt.init({"a": 1.0})
    with pytest.raises(TypeError, match=r"every leaf of grads must be a tensor, got int 3 at "
                       r"path 'b\.0'"):
        opt.update({"b": [3]}, opt.init({"b": [torch.ones(1)]}))


def test_complex_params_are_refused() -> None:
    with pytest.raises(TypeError, match=r"ftx\.optim\.adam\.init: params must be real tensors, "
                       r"got Tensor\(shape=\(2,\), dtype=torch\.complex64\) at path 'z'"):
        ftx.optim.adam().init({"z": torch.ones(2, dtype=torch.complex64)})


def test_apply_updates_errors_and_dtype() -> None:
    with pytest.raises(ValueError, match=r"ftx\.optim\.apply_updates: updates must have the "
                       r"structure of params, got paths only in updates: \['c'\]"):
        ftx.optim.apply_updates({"a": torch.ones(1)}, {"a": torch.ones(1), "c": torch.ones(1)})
    out = ftx.optim.apply_updates({"a": torch.ones(2, dtype=torch.bfloat16)},
                                  {"a": torch.full((2,), 0.5)})
    assert out["a"].dtype == torch.bfloat16
    tree_allclose(out["a"].float(), torch.full((2,), 1.5))


BAD_HPARAMS = [
    (lambda: ftx.optim.sgd(lr=-0.1), r"ftx\.optim\.sgd: lr must be >= 0\.0, got -0\.1\."),
    (lambda: ftx.optim.sgd(momentum=-1), r"ftx\.optim\.sgd: momentum must be >= 0\.0, got -1"),
    (lambda: ftx.optim.sgd(nesterov=True),
     r"ftx\.optim\.sgd: nesterov=True requires momentum > 0 and dampening == 0, got "
     r"momentum=0\.0 and dampening=0\.0"),
    (lambda: ftx.optim.sgd(momentum=0.9, dampening=0.1, nesterov=True),
     r"nesterov=True requires momentum > 0 and dampening == 0, got momentum=0\.9 and "
     r"dampening=0\.1"),
    (lambda: ftx.optim.sgd(weight_decay=-1e-3), r"weight_decay must be >= 0\.0, got -0\.001"),
    (lambda: ftx.optim.adam(lr=float("nan")), r"ftx\.optim\.adam: lr must be >= 0\.0, got nan"),
    (lambda: ftx.optim.adam(betas=(1.0, 0.999)),
     r"ftx\.optim\.adam: betas\[0\] must be in \[0\.0, 1\.0\), got 1\.0"),
    (lambda: ftx.optim.adam(betas=(0.9, -0.1)), r"betas\[1\] must be in \[0\.0, 1\.0\), got -0\.1"),
    (lambda: ftx.optim.adam(eps=-1e-8), r"ftx\.optim\.adam: eps must be >= 0\.0, got -1e-08"),
    (lambda: ftx.optim.adam(weight_decay=-1), r"adam: weight_decay must be >= 0\.0, got -1"),
    (lambda: ftx.optim.adamw(weight_decay=-1), r"adamw: weight_decay must be >= 0\.0, got -1"),
    (lambda: ftx.optim.rmsprop(alpha=-0.5),
     r"ftx\.optim\.rmsprop: alpha must be in \[0\.0, 1\.0\], got -0\.5"),
    (lambda: ftx.optim.rmsprop(momentum=-0.5), r"rmsprop: momentum must be >= 0\.0"),
    (lambda: ftx.optim.rmsprop(eps=-1.0), r"rmsprop: eps must be >= 0\.0"),
    (lambda: ftx.optim.adagrad(lr_decay=-1), r"ftx\.optim\.adagrad: lr_decay must be >= 0\.0"),
    (lambda: ftx.optim.adagrad(initial_accumulator_value=-1),
     r"adagrad: initial_accumulator_value must be >= 0\.0"),
    (lambda: ftx.optim.clip_by_global_norm(-1.0),
     r"ftx\.optim\.clip_by_global_norm: max_norm must be > 0\.0"),
    (lambda: ftx.optim.add_decayed_weights(-1.0),
     r"ftx\.optim\.add_decayed_weights: weight_decay must be >= 0\.0"),
    (lambda: ftx.optim.scale_by_learning_rate(-1.0), r"scale_by_learning_rate: lr must be >= 0"),
    (lambda: ftx.optim.linear(1.0, 0.0, 0), r"ftx\.optim\.linear: transition_steps must be a "
     r"positive int, got 0"),
    (lambda: ftx.optim.cosine_decay(1.0, 10, end_value=-1.0),
     r"cosine_decay: end_value must be >= 0\.0"),
    (lambda: ftx.optim.exponential_decay(1.0, -0.5), r"decay_rate must be >= 0\.0"),
    (lambda: ftx.optim.warmup_cosine(1.0, 10, 10), r"ftx\.optim\.warmup_cosine: decay_steps must "
     r"be greater than warmup_steps, got decay_steps=10 and warmup_steps=10"),
]


@pytest.mark.parametrize("build,pattern", BAD_HPARAMS,
                         ids=[f"bad{i}" for i in range(len(BAD_HPARAMS))])
def test_bad_hyper_parameters_raise_at_construction(build: Any, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        build()


def test_wrong_types_raise_type_error() -> None:
    with pytest.raises(TypeError, match=r"ftx\.optim\.adam: lr must be a real number, got str"):
        ftx.optim.adam(lr="0.1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"ftx\.optim\.adam: betas must be a pair of floats, "
                       r"got 0\.9"):
        ftx.optim.adam(betas=0.9)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"ftx\.optim\.chain: every argument must be a "
                       r"GradientTransformation, got int 3 at position 1"):
        ftx.optim.chain(ftx.optim.sgd(), 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"ftx\.optim\.scale_by_schedule: schedule must be "
                       r"callable"):
        ftx.optim.scale_by_schedule(0.1)  # type: ignore[arg-type]


def test_chain_with_user_transformation() -> None:
    """A hand-written GradientTransformation composes with the built-ins."""

    def init(params: Any) -> Any:
        return torch.zeros((), dtype=torch.int64)

    def update(grads: Any, state: Any, params: Any = None) -> Any:
        return ftx.tree.scale(grads, 2.0), state + 1

    double = ftx.optim.GradientTransformation(init, update)
    opt = ftx.optim.chain(double, ftx.optim.sgd(lr=0.5))
    params = {"w": torch.ones(2)}
    state = opt.init(params)
    updates, state = opt.update({"w": torch.ones(2)}, state, params)
    tree_allclose(updates, {"w": -torch.ones(2)})
    assert int(state[0]) == 1
    # chains of built-ins flatten into one chain: the state is one flat tuple
    nested = ftx.optim.chain(ftx.optim.clip_by_global_norm(1.0), ftx.optim.sgd(momentum=0.9))
    assert len(nested.init(params)) == 3


def test_clip_by_global_norm_matches_torch(dtype: torch.dtype) -> None:
    params = _params(dtype)
    for max_norm in (0.1, 1.0, 100.0):
        grads = ftx.tree.map(lambda p: p * 3, params)
        ref = [g.clone().requires_grad_() for g in ftx.tree.leaves(grads)]
        for r in ref:
            r.grad = r.detach().clone()
        torch.nn.utils.clip_grad_norm_(ref, max_norm)
        tx = ftx.optim.clip_by_global_norm(max_norm)
        out, _ = tx.update(grads, tx.init(params))
        for a, b in zip(ftx.tree.leaves(out), ref):
            torch.testing.assert_close(a, b.grad, rtol=1e-12 if dtype == torch.float64 else 1e-6,
                                       atol=0)


def test_state_round_trips_through_safetensors(tmp_path: Any) -> None:
    opt = ftx.optim.chain(ftx.optim.clip_by_global_norm(1.0),
                          ftx.optim.adam(lr=ftx.optim.warmup_cosine(0.1, 2, 10), amsgrad=True))
    params = _params()
    grads = ftx.tree.map(torch.ones_like, params)
    state = opt.init(params)
    for _ in range(3):
        _, state = opt.update(grads, state, params)
    path = tmp_path / "opt.safetensors"
    ftx.io.save(path, state)
    back = ftx.io.load(path, like=state)
    _same(back, state)
    u1, s1 = opt.update(grads, state, params)
    u2, s2 = opt.update(grads, back, params)
    _same(u1, u2)
    _same(s1, s2)
