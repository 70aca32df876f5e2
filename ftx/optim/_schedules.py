"""Learning-rate schedules: pure functions ``step -> value``.

A schedule takes the update's step (``0`` for the first update) as a Python int
in eager code, or as a 0-dim tensor under ``vmap``/``grad``/``torch.compile``,
and returns a float or a tensor accordingly. Pass one as ``lr=`` to any
optimizer, or to :func:`ftx.optim.scale_by_schedule`. The values equal
``torch.optim.lr_scheduler``'s (``LinearLR``, ``CosineAnnealingLR``,
``ExponentialLR``, ``SequentialLR`` of warm-up then cosine) for a base lr.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .._internal.errors import describe
from ._base import Schedule, check_flag, check_hparam

__all__ = ["constant", "cosine_decay", "exponential_decay", "linear", "warmup_cosine"]


def _frac(step: Any, steps: int) -> Any:
    """``min(step, steps) / steps`` clamped at 0, for an int or a tensor step."""
    if isinstance(step, torch.Tensor):
        return step.clamp(0, steps) / steps
    return min(max(step, 0), steps) / steps


def _check_steps(api: str, name: str, value: Any) -> int:
    """A positive int (``TypeError`` for other kinds, ``ValueError`` for ``<= 0``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"ftx.{api}: {name} must be a positive int, got {describe(value)}. "
            f"Pass e.g. {name}=100."
        )
    if value <= 0:
        raise ValueError(
            f"ftx.{api}: {name} must be a positive int, got {value!r}. Pass e.g. {name}=100."
        )
    return value


def constant(value: float) -> Schedule:
    """The schedule that is ``value`` at every step.

    Example:
        >>> import ftx
        >>> ftx.optim.constant(0.1)(1000)
        0.1
    """
    v = check_hparam("optim.constant", "value", value)

    def schedule(step: Any) -> Any:
        return v

    return schedule


def linear(init_value: float, end_value: float, transition_steps: int) -> Schedule:
    """Linear ramp from ``init_value`` at step 0 to ``end_value`` from ``transition_steps`` on.

    Equals ``LinearLR(start_factor=init_value/lr, end_factor=end_value/lr,
    total_iters=transition_steps)`` on base lr ``lr``.

    Example:
        >>> import ftx
        >>> s = ftx.optim.linear(0.0, 1.0, 4)
        >>> [s(t) for t in range(6)]
        [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """
    api = "optim.linear"
    a = check_hparam(api, "init_value", init_value)
    b = check_hparam(api, "end_value", end_value)
    n = _check_steps(api, "transition_steps", transition_steps)

    def schedule(step: Any) -> Any:
        return a + (b - a) * _frac(step, n)

    return schedule


def cosine_decay(init_value: float, decay_steps: int, end_value: float = 0.0) -> Schedule:
    """Half a cosine from ``init_value`` (step 0) to ``end_value`` (step ``decay_steps`` on).

    Equals ``CosineAnnealingLR(T_max=decay_steps, eta_min=end_value)`` on base
    lr ``init_value`` for steps ``0..decay_steps``; after that it stays at
    ``end_value`` (torch's restarts the cosine).

    Example:
        >>> import ftx
        >>> s = ftx.optim.cosine_decay(1.0, 2)
        >>> [round(s(t), 6) for t in range(4)]
        [1.0, 0.5, 0.0, 0.0]
    """
    api = "optim.cosine_decay"
    a = check_hparam(api, "init_value", init_value)
    b = check_hparam(api, "end_value", end_value)
    n = _check_steps(api, "decay_steps", decay_steps)

    def schedule(step: Any) -> Any:
        f = _frac(step, n)
        c = torch.cos(math.pi * f) if isinstance(f, torch.Tensor) else math.cos(math.pi * f)
        return b + (a - b) * (1 + c) / 2

    return schedule


def exponential_decay(
    init_value: float, decay_rate: float, transition_steps: int = 1, staircase: bool = False
) -> Schedule:
    """``init_value * decay_rate ** (step / transition_steps)`` (floored with ``staircase``).

    With ``transition_steps=1`` this is ``ExponentialLR(gamma=decay_rate)`` on
    base lr ``init_value``; with ``staircase=True`` it is ``StepLR(step_size=
    transition_steps, gamma=decay_rate)``.

    Example:
        >>> import ftx
        >>> s = ftx.optim.exponential_decay(1.0, 0.5)
        >>> [s(t) for t in range(3)]
        [1.0, 0.5, 0.25]
    """
    api = "optim.exponential_decay"
    a = check_hparam(api, "init_value", init_value)
    r = check_hparam(api, "decay_rate", decay_rate)
    n = _check_steps(api, "transition_steps", transition_steps)

    check_flag(api, "staircase", staircase)

    def schedule(step: Any) -> Any:
        if isinstance(step, torch.Tensor):
            e = torch.floor(step / n) if staircase else step / n
            return a * torch.pow(r, e.clamp(min=0))
        e = step // n if staircase else step / n
        return a * r ** max(e, 0)

    return schedule


def warmup_cosine(
    peak_value: float,
    warmup_steps: int,
    decay_steps: int,
    init_value: float = 0.0,
    end_value: float = 0.0,
) -> Schedule:
    """Linear warm-up from ``init_value`` to ``peak_value``, then cosine decay to ``end_value``.

    ``decay_steps`` counts the warm-up too (optax's convention): the cosine runs
    over ``decay_steps - warmup_steps`` steps. Equals ``SequentialLR([LinearLR(
    init_value/peak_value, 1.0, warmup_steps), CosineAnnealingLR(decay_steps -
    warmup_steps, end_value)], milestones=[warmup_steps])`` on base lr
    ``peak_value``.

    Example:
        >>> import ftx
        >>> s = ftx.optim.warmup_cosine(1.0, warmup_steps=2, decay_steps=4)
        >>> [round(s(t), 6) for t in range(6)]
        [0.0, 0.5, 1.0, 0.5, 0.0, 0.0]
    """
    api = "optim.warmup_cosine"
    for name, value in (("peak_value", peak_value), ("init_value", init_value),
                        ("end_value", end_value)):
        check_hparam(api, name, value)
    w = _check_steps(api, "warmup_steps", warmup_steps)
    d = _check_steps(api, "decay_steps", decay_steps)
    if d <= w:
        raise ValueError(
            f"ftx.{api}: decay_steps must be greater than warmup_steps, got decay_steps={d} "
            f"and warmup_steps={w}. decay_steps counts the warm-up too."
        )
    up = linear(init_value, peak_value, w)
    down = cosine_decay(peak_value, d - w, end_value)

    def schedule(step: Any) -> Any:
        if isinstance(step, torch.Tensor):
            return torch.where(step < w, up(step), down(step - w))
        return up(step) if step < w else down(step - w)

    return schedule
