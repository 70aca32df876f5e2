"""Trajectory equality: every ftx.optim alias against its torch.optim twin for 200 steps."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import ftx
from tests.test_optim_cases import (
    CASE_PARAMS,
    PROBLEMS,
    TOL,
    grads_of,
    torch_trajectory,
    trajectory_errors,
)

STEPS = 200


def _scaled(hp: dict[str, Any], factor: float) -> dict[str, Any]:
    return {**hp, "lr": hp["lr"] * factor}


def _ftx_trajectory(make: Any, hp: dict[str, Any], params: Any, loss: Any, sign: float,
                    leafwise: bool = False) -> list[Any]:
    opt = make(**hp)
    state = opt.init(params)
    out = []
    for _ in range(STEPS):
        grads = grads_of(loss, params, sign)
        if leafwise:  # leaves that require grad take the differentiable leaf-by-leaf path
            p_rg = {k: v.detach().requires_grad_() for k, v in params.items()}
            updates, state = opt.update(grads, state, p_rg)
            updates = {k: v.detach() for k, v in updates.items()}
            state = ftx.tree.map(lambda x: x.detach(), state)
        else:
            updates, state = opt.update(grads, state, params)
        params = ftx.optim.apply_updates(params, updates)
        out.append(params)
    return out


def _check(case: Any, problem: str, foreach: bool | None, dtype: torch.dtype, device: str,
           leafwise: bool = False) -> None:
    _, make, cls, hp = case
    build, factor = PROBLEMS[problem]
    hp = _scaled(hp, factor)
    params, loss = build(dtype, device)
    sign = -1.0 if hp.get("maximize") else 1.0
    ref = torch_trajectory(cls, hp, params, loss, STEPS, foreach, sign)
    got = _ftx_trajectory(make, hp, params, loss, sign, leafwise)
    errs = trajectory_errors(got, ref)
    assert all(torch.isfinite(v).all() for v in ref[-1].values())
    worst = errs.max().item()
    assert worst <= TOL[dtype], f"max rel err {worst:.3e} at step {errs.argmax().item()}"


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("case", CASE_PARAMS)
def test_trajectory_matches_torch_default(case: Any, problem: str, dtype: torch.dtype,
                                          device: str) -> None:
    """torch.optim's default implementation (single-tensor on CPU), float32 and float64."""
    _check(case, problem, None, dtype, device)


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_trajectory_matches_torch_foreach(case: Any) -> None:
    """torch's multi-tensor implementation too (the default above is single-tensor on CPU)."""
    _check(case, "mlp", True, torch.float64, "cpu")


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_leafwise_path_matches_torch(case: Any) -> None:
    """The differentiable (leaf-by-leaf, out-of-place) path retraces torch too."""
    _check(case, "mlp", None, torch.float64, "cpu", leafwise=True)
