"""Regressions from the bad-input fuzz suite (tests/fuzz): ftx.optim.

Each bad input raises ``TypeError``/``ValueError`` in the contract's form, never a raw
``OverflowError``/``AttributeError``/torch error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import torch

import ftx
from ftx import optim

FORM = re.compile(r"^ftx\.[\w.]+: .+, got .+\.", re.S)


def _sched(name: str) -> Callable[[Any], Any]:
    return {
        "linear": optim.linear(1.0, 0.0, 10),
        "cosine_decay": optim.cosine_decay(1.0, 10),
        "exponential_decay": optim.exponential_decay(1.0, 0.5, 2),
        "warmup_cosine": optim.warmup_cosine(1.0, 2, 10),
    }[name]


@pytest.mark.parametrize("make", [optim.sgd, optim.adam, optim.adamw, optim.rmsprop,
                                  optim.adagrad, optim.scale_by_learning_rate])
@pytest.mark.parametrize("lr", [10**400, -(10**400)])
def test_huge_int_lr_is_value_error(make: Callable[[Any], Any], lr: int) -> None:
    with pytest.raises(ValueError, match=FORM):
        make(lr)


def test_chain_refuses_plain_tuple_of_callables() -> None:
    with pytest.raises(TypeError, match=r"^ftx\.optim\.chain: every argument must be a "):
        optim.chain((abs, abs))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["linear", "cosine_decay", "exponential_decay",
                                  "warmup_cosine"])
@pytest.mark.parametrize(("step", "exc"), [
    ([1], TypeError), ((), TypeError), (None, TypeError), (True, TypeError), ("3", TypeError),
    (float("nan"), ValueError), (torch.ones(3).to_sparse(), TypeError),
    (torch.ones((), dtype=torch.float8_e4m3fn), TypeError),
    (torch.tensor(1 + 1j), TypeError),
])
def test_schedule_bad_step(name: str, step: Any, exc: type[Exception]) -> None:
    with pytest.raises(exc, match=FORM):
        _sched(name)(step)


@pytest.mark.parametrize("name", ["linear", "cosine_decay", "exponential_decay",
                                  "warmup_cosine"])
def test_schedule_good_steps_unchanged(name: str) -> None:
    s = _sched(name)
    for t in (0, 3, 12):
        assert s(t) == pytest.approx(float(s(torch.tensor(t))))
    assert s(10**400) == pytest.approx(s(10**6))  # clamps (or decays to 0) past the end


def test_exponential_decay_overflow_is_value_error() -> None:
    with pytest.raises(ValueError, match=r"^ftx\.optim\.exponential_decay: step must keep "):
        optim.exponential_decay(1.0, 2.0)(10**400)
    assert ftx.optim.exponential_decay(1.0, 1.0)(10**400) == 1.0
