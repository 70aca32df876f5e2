"""Donated updates: ``update(..., donate=True)`` and ``apply_updates(..., donate=True)``.

The opt-in must give the pure route's numbers bit for bit (and so torch.optim's
trajectory), write the new state and params into the old buffers (same
``data_ptr``), fall back to the pure computation where donation cannot be honoured
(autograd, transforms), and refuse inputs whose buffers share memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

import ftx
from tests.test_optim_cases import CASE_PARAMS, TOL, Tree, grads_of, mlp, trajectory_errors

GradFn = Callable[[Tree], Tree]


def small(dtype: torch.dtype) -> tuple[Tree, GradFn]:
    """The shared MLP problem: a small tree (the foreach kernels when torch has them)."""
    params, loss = mlp(dtype, "cpu")
    return params, lambda p: grads_of(loss, p, 1.0)


def big(dtype: torch.dtype) -> tuple[Tree, GradFn]:
    """2**20 + 3 elements, large enough for the leaf-by-leaf route on the CPU; the gradient
    of ``sum((w - t)**2 / 2 + (w - t)**4 / 40) + ...`` in closed form (cheaper than autograd)."""
    g = torch.Generator().manual_seed(2)
    target = torch.randn(1024, 1024, generator=g, dtype=torch.float64).to(dtype)
    params = {"w": torch.zeros(1024, 1024, dtype=dtype),
              "b": torch.tensor([0.5, -1.0, 2.0], dtype=dtype)}

    def grad_fn(p: Tree) -> Tree:
        d = p["w"] - target
        return {"w": d + d**3 * 0.1, "b": p["b"] ** 3}

    return params, grad_fn


PROBLEMS = {"small": (small, 30), "big": (big, 3)}


def _signed(grad_fn: GradFn, sign: float) -> GradFn:
    return lambda p: {k: sign * v for k, v in grad_fn(p).items()}


def _ftx_run(make: Any, hp: dict[str, Any], params: Tree, grad_fn: GradFn, steps: int,
             donate: bool) -> list[Tree]:
    opt = make(**hp)
    params = {k: v.clone() for k, v in params.items()}
    state = opt.init(params)
    out = []
    for _ in range(steps):
        grads = grad_fn(params)
        if donate:
            updates, state = opt.update(grads, state, params, donate=True)
            params = ftx.optim.apply_updates(params, updates, donate=True)
        else:
            updates, state = opt.update(grads, state, params)
            params = ftx.optim.apply_updates(params, updates)
        out.append({k: v.clone() for k, v in params.items()})
    return out


def _torch_run(cls: type, hp: dict[str, Any], params: Tree, grad_fn: GradFn, steps: int
               ) -> list[Tree]:
    """torch.optim's default (single-tensor on the CPU) implementation, ``.grad`` set by hand."""
    ps = {k: v.clone().requires_grad_() for k, v in params.items()}
    opt = cls(list(ps.values()), **hp)
    out = []
    for _ in range(steps):
        for k, g in grad_fn({k: v.detach() for k, v in ps.items()}).items():
            ps[k].grad = g
        opt.step()
        out.append({k: v.detach().clone() for k, v in ps.items()})
    return out


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("case", CASE_PARAMS)
def test_donated_trajectory_is_the_pure_one_bit_for_bit(case: Any, problem: str) -> None:
    """float64: donated == pure exactly at every step, and both retrace torch.optim."""
    _, make, cls, hp = case
    build, steps = PROBLEMS[problem]
    params, grad_fn = build(torch.float64)
    grad_fn = _signed(grad_fn, -1.0 if hp.get("maximize") else 1.0)
    pure = _ftx_run(make, hp, params, grad_fn, steps, donate=False)
    donated = _ftx_run(make, hp, params, grad_fn, steps, donate=True)
    for a, b in zip(pure, donated):
        for k in a:
            assert torch.equal(a[k], b[k]), k
    ref = _torch_run(cls, hp, params, grad_fn, steps)
    assert trajectory_errors(donated, ref).max().item() <= TOL[torch.float64]


def _ptrs(tree: Any) -> list[int]:
    return [x.data_ptr() for x in ftx.tree.leaves(tree)]


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("case", CASE_PARAMS)
def test_donation_reuses_every_buffer(case: Any, problem: str) -> None:
    _, make, _, hp = case
    build, _ = PROBLEMS[problem]
    params, grad_fn = build(torch.float32)
    opt = make(**hp)
    state = opt.init(params)
    for _ in range(2):  # the first step takes special branches (SGD's momentum copy)
        grads = grad_fn(params)
        before, p_before = _ptrs(state), _ptrs(params)
        updates, state = opt.update(grads, state, params, donate=True)
        assert _ptrs(state) == before
        new = ftx.optim.apply_updates(params, updates, donate=True)
        assert _ptrs(new) == p_before
        assert all(a is b for a, b in zip(ftx.tree.leaves(new), ftx.tree.leaves(params)))
        params = new


def test_transforms_and_chains_of_user_transforms_pass_donation_on() -> None:
    def twice() -> ftx.optim.GradientTransformation:  # a transformation of the user's
        def update(grads: Any, state: Any, params: Any = None) -> Any:
            return ftx.tree.map(lambda g: 2 * g, grads), state

        return ftx.optim.GradientTransformation(lambda p: (), update)

    params = {"w": torch.ones(3), "b": torch.zeros(2)}
    grads = {"w": torch.tensor([1.0, -2.0, 3.0]), "b": torch.ones(2)}
    for opt in (ftx.optim.chain(twice(), ftx.optim.adam(0.1)), ftx.optim.scale_by_adam(),
                ftx.optim.trace(0.9, nesterov=True), ftx.optim.clip_by_global_norm(1.0)):
        state = opt.init(params)
        pure = opt.update(grads, state, params)
        before = _ptrs(state)
        donated = opt.update(grads, state, params, donate=True)
        assert _ptrs(donated[1]) == before
        for a, b in zip(ftx.tree.leaves(pure), ftx.tree.leaves(donated)):
            assert torch.equal(a, b)


def test_donation_falls_back_where_it_cannot_be_honoured() -> None:
    """A leaf that requires grad (MAML) or a transform: computed out of place, inputs kept."""
    opt = ftx.optim.adamw(lr=0.1, weight_decay=0.1)
    params = {"w": torch.tensor([1.0, 2.0], requires_grad=True)}
    grads = {"w": torch.tensor([0.5, -0.5])}
    state = opt.init({"w": params["w"].detach()})
    state = opt.update(grads, state, params)[1]
    snap = ftx.tree.map(torch.clone, state)
    updates, new = opt.update(grads, state, params, donate=True)
    assert updates["w"].requires_grad  # differentiable, as without donate
    for a, b in zip(ftx.tree.leaves(snap), ftx.tree.leaves(state)):
        assert torch.equal(a.detach(), b.detach())
    assert not set(_ptrs(new)) & set(_ptrs(state))
    out = ftx.optim.apply_updates(params, updates, donate=True)
    assert out["w"] is not params["w"] and torch.equal(params["w"].detach(),
                                                       torch.tensor([1.0, 2.0]))

    plain = {"w": torch.ones(4, 2)}
    ens_state = ftx.vmap(opt.init)(plain)
    ens_snap = ftx.tree.map(torch.clone, ens_state)
    g = {"w": torch.randn(4, 2, generator=torch.Generator().manual_seed(0))}
    u1, s1 = ftx.vmap(lambda g, s, p: opt.update(g, s, p, donate=True))(g, ens_state, plain)
    u0, s0 = ftx.vmap(lambda g, s, p: opt.update(g, s, p))(g, ens_state, plain)
    for a, b in zip(ftx.tree.leaves(ens_snap), ftx.tree.leaves(ens_state)):
        assert torch.equal(a, b)
    for a, b in zip(ftx.tree.leaves((u0, s0)), ftx.tree.leaves((u1, s1))):
        assert torch.equal(a, b)


def test_apply_updates_donated_rounds_like_the_pure_route() -> None:
    params = {"w": torch.randn(5, generator=torch.Generator().manual_seed(3))}
    updates = {"w": torch.randn(5, dtype=torch.float64,
                                generator=torch.Generator().manual_seed(4)) * 1e-3}
    pure = ftx.optim.apply_updates(params, updates)
    donated = ftx.optim.apply_updates({"w": params["w"].clone()}, updates, donate=True)
    assert donated["w"].dtype == torch.float32 and torch.equal(pure["w"], donated["w"])


def test_donate_errors() -> None:
    opt = ftx.optim.adam(lr=0.1)
    params = {"a": torch.ones(2), "b": torch.ones(3)}
    grads = {"a": torch.ones(2), "b": torch.ones(3)}
    state = opt.init(params)
    with pytest.raises(TypeError, match=r"ftx\.optim\.adam\.update: donate must be True or "
                       r"False, got int 1"):
        opt.update(grads, state, params, donate=1)
    with pytest.raises(TypeError, match=r"ftx\.optim\.apply_updates: donate must be True"):
        ftx.optim.apply_updates(params, grads, donate="yes")
    # a state buffer that is also a grad
    shared = {"a": state[-1].exp_avg["a"], "b": torch.ones(3)}
    with pytest.raises(ValueError, match=r"ftx\.optim\.adam\.update: with donate=True no "
                       r"buffer of state may share memory .* got state\.exp_avg at path 'a' "
                       r"sharing memory with grads at path 'a'"):
        opt.update(shared, state, params, donate=True)
    # two buffers of one state that share memory
    s = state[-1]
    twin = (*state[:-1], s._replace(exp_avg_sq={"a": s.exp_avg["a"], "b": s.exp_avg_sq["b"]}))
    with pytest.raises(ValueError, match=r"got state\.exp_avg at path 'a' sharing memory with "
                       r"state\.exp_avg_sq at path 'a'"):
        opt.update(grads, twin, params, donate=True)
    assert torch.equal(state[-1].exp_avg["a"], torch.zeros(2))  # nothing was written
    tied = torch.ones(2)
    with pytest.raises(ValueError, match=r"ftx\.optim\.apply_updates: with donate=True every "
                       r"leaf of params must own its memory, got the leaves at paths 'a' and "
                       r"'b' sharing memory"):
        ftx.optim.apply_updates({"a": tied, "b": tied}, {"a": tied * 0, "b": tied * 0},
                                donate=True)
    p = {"a": torch.ones(2)}
    with pytest.raises(ValueError, match=r"no leaf of updates may share memory with params"):
        ftx.optim.apply_updates(p, {"a": p["a"]}, donate=True)
    assert torch.equal(p["a"], torch.ones(2))
