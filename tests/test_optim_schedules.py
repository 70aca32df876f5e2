"""Schedules against torch.optim.lr_scheduler, and optimizers driven by a schedule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch.optim import lr_scheduler as S

import ftx
from tests.test_optim_cases import grads_of, mlp, torch_trajectory, trajectory_errors

BASE = 0.1
N = 60


def _torch_lrs(make_sched: Callable[[torch.optim.Optimizer], Any], n: int = N) -> list[float]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=BASE)
    sched = make_sched(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


SCHEDULES = [
    pytest.param(ftx.optim.linear(BASE * 0.25, BASE, 20),
                 lambda o: S.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=20),
                 N, id="linear-up"),
    pytest.param(ftx.optim.linear(BASE, BASE * 0.1, 35),
                 lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=35),
                 N, id="linear-down"),
    pytest.param(ftx.optim.cosine_decay(BASE, N - 1, end_value=0.01),
                 lambda o: S.CosineAnnealingLR(o, T_max=N - 1, eta_min=0.01), N, id="cosine"),
    pytest.param(ftx.optim.cosine_decay(BASE, 25),
                 lambda o: S.CosineAnnealingLR(o, T_max=25), 26, id="cosine-to-T_max"),
    pytest.param(ftx.optim.exponential_decay(BASE, 0.95),
                 lambda o: S.ExponentialLR(o, gamma=0.95), N, id="exponential"),
    pytest.param(ftx.optim.exponential_decay(BASE, 0.5, transition_steps=7, staircase=True),
                 lambda o: S.StepLR(o, step_size=7, gamma=0.5), N, id="staircase"),
    pytest.param(ftx.optim.warmup_cosine(BASE, 10, N - 1, init_value=BASE * 0.01, end_value=1e-3),
                 lambda o: S.SequentialLR(o, [
                     S.LinearLR(o, start_factor=0.01, end_factor=1.0, total_iters=10),
                     S.CosineAnnealingLR(o, T_max=N - 11, eta_min=1e-3)], milestones=[10]),
                 N, id="warmup-cosine"),
    pytest.param(ftx.optim.constant(BASE), lambda o: S.ConstantLR(o, factor=1.0), N,
                 id="constant"),
]


@pytest.mark.parametrize("schedule,make_sched,horizon", SCHEDULES)
def test_schedule_matches_lr_scheduler(schedule: Any, make_sched: Any, horizon: int) -> None:
    """Equal up to ``horizon`` (torch's CosineAnnealingLR climbs again after T_max)."""
    ref = _torch_lrs(make_sched)
    got = [schedule(t) for t in range(N)]
    for t in range(horizon):
        assert got[t] == pytest.approx(ref[t], rel=1e-12, abs=1e-15), f"step {t}"
    # the same values from a tensor step (the path taken under vmap / grad / compile)
    steps = torch.arange(N, dtype=torch.float64)
    as_tensor = torch.stack([torch.as_tensor(schedule(s), dtype=torch.float64) for s in steps])
    torch.testing.assert_close(as_tensor, torch.tensor(got, dtype=torch.float64), rtol=1e-13,
                               atol=1e-16)


def test_cosine_decay_stays_at_end_value() -> None:
    s = ftx.optim.cosine_decay(1.0, 10, end_value=0.1)
    assert s(10) == pytest.approx(0.1) and s(1000) == pytest.approx(0.1)
    assert ftx.optim.linear(1.0, 0.0, 5)(-3) == 1.0


SCHEDULED = [
    pytest.param(lambda lr: ftx.optim.sgd(lr=lr, momentum=0.9), torch.optim.SGD, {"momentum": 0.9},
                 lambda o: S.SequentialLR(o, [
                     S.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=20),
                     S.CosineAnnealingLR(o, T_max=180, eta_min=0.0)], milestones=[20]),
                 ftx.optim.warmup_cosine(0.05, 20, 200, init_value=0.005), 0.05,
                 id="sgd-warmup-cosine"),
    pytest.param(lambda lr: ftx.optim.adam(lr=lr), torch.optim.Adam, {},
                 lambda o: S.CosineAnnealingLR(o, T_max=200), ftx.optim.cosine_decay(0.05, 200),
                 0.05, id="adam-cosine"),
    pytest.param(lambda lr: ftx.optim.adagrad(lr=lr, lr_decay=0.01), torch.optim.Adagrad,
                 {"lr_decay": 0.01}, lambda o: S.ExponentialLR(o, gamma=0.99),
                 ftx.optim.exponential_decay(0.05, 0.99), 0.05, id="adagrad-exponential"),
    pytest.param(lambda lr: ftx.optim.rmsprop(lr=lr), torch.optim.RMSprop, {},
                 lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.2, total_iters=100),
                 ftx.optim.linear(0.005, 0.001, 100), 0.005, id="rmsprop-linear"),
]


@pytest.mark.parametrize("make,cls,hp,make_sched,schedule,base", SCHEDULED)
def test_scheduled_optimizer_matches_torch(make: Any, cls: Any, hp: Any, make_sched: Any,
                                           schedule: Any, base: float, dtype: torch.dtype) -> None:
    """200 steps of optimizer + scheduler (torch) against the optimizer with lr=schedule."""
    params, loss = mlp(dtype, "cpu")
    ps = {k: v.clone().requires_grad_() for k, v in params.items()}
    opt = cls(list(ps.values()), lr=base, **hp)
    sched = make_sched(opt)
    ref = []
    for _ in range(200):
        opt.zero_grad()
        loss(ps).backward()
        opt.step()
        sched.step()
        ref.append({k: v.detach().clone() for k, v in ps.items()})
    fopt = make(schedule)
    state = fopt.init(params)
    got = []
    for _ in range(200):
        updates, state = fopt.update(grads_of(loss, params, 1.0), state, params)
        params = ftx.optim.apply_updates(params, updates)
        got.append(params)
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    assert trajectory_errors(got, ref).max().item() <= tol


def test_constant_lr_schedule_equals_number() -> None:
    params, loss = mlp(torch.float64, "cpu")
    ref = torch_trajectory(torch.optim.Adam, {"lr": 0.01}, params, loss, 20, None, 1.0)
    opt = ftx.optim.adam(lr=ftx.optim.constant(0.01))
    state = opt.init(params)
    for t in range(20):
        updates, state = opt.update(grads_of(loss, params, 1.0), state, params)
        params = ftx.optim.apply_updates(params, updates)
        assert trajectory_errors([params], [ref[t]]).item() <= 1e-12
