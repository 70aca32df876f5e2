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
import numbers
from typing import Any, NoReturn

import torch

from .._internal.errors import describe, msg
from ._base import Schedule, check_flag, check_hparam

__all__ = ["constant", "cosine_decay", "exponential_decay", "linear", "warmup_cosine"]


# Tensor steps a schedule computes with: real, non-bool, dense (float8 lacks the ops).
_STEP_DTYPES = frozenset({
    torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
    torch.float16, torch.bfloat16, torch.float32, torch.float64,
})


def _bad_step(api: str, step: Any) -> NoReturn:
    """Raise the error for a step no schedule accepts (the slow path of ``_step``)."""
    fix = "Pass the update's step count: a Python int, or a 0-dim integer or float tensor."
    if isinstance(step, torch.Tensor):
        raise TypeError(msg(
            api, "step must be a dense (strided) real tensor, e.g. torch.tensor(3)",
            f"{describe(step)} with layout {step.layout}", fix,
        ))
    if isinstance(step, numbers.Real) and not isinstance(step, (bool, numbers.Integral)):
        raise ValueError(msg(api, "step must be a finite number", repr(step), fix))
    raise TypeError(msg(api, "step must be an int or a 0-dim tensor", describe(step), fix))


def _step(api: str, step: Any) -> Any:
    """``step`` if a schedule can compute with it, else raise (cheap for an int or a tensor)."""
    if type(step) is int:  # the common case
        return step
    if isinstance(step, torch.Tensor):
        if step.layout is torch.strided and step.dtype in _STEP_DTYPES:
            return step
        _bad_step(api, step)
    if isinstance(step, bool):
        _bad_step(api, step)
    if isinstance(step, numbers.Integral):
        return int(step)
    if isinstance(step, numbers.Real) and math.isfinite(float(step)):
        return float(step)
    _bad_step(api, step)


def _frac(step: Any, steps: int) -> Any:
    """``min(step, steps) / steps`` clamped at 0, for an int or a tensor step."""
    if isinstance(step, torch.Tensor):
        return step.clamp(0, steps) / steps
    return min(max(step, 0), steps) / steps


def _check_steps(api: str, name: str, value: Any) -> int:
    """A positive int (``TypeError`` for other kinds, ``ValueError`` for ``<= 0``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(msg(api, f"{name} must be a positive int", describe(value),
                            f"Pass e.g. {name}=100."))
    if value <= 0:
        raise ValueError(msg(api, f"{name} must be a positive int", repr(value),
                             f"Pass e.g. {name}=100."))
    if value >= 2**62:  # beyond torch's int64 arithmetic on tensor steps
        raise ValueError(msg(api, f"{name} must be a positive int below 2**62",
                             f"an int of {value.bit_length()} bits", f"Pass e.g. {name}=100."))
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
        return a + (b - a) * _frac(_step(api, step), n)

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
        f = _frac(_step(api, step), n)
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
        step = _step(api, step)
        if isinstance(step, torch.Tensor):
            e = torch.floor(step / n) if staircase else step / n
            return a * torch.pow(r, e.clamp(min=0))
        try:
            e = step // n if staircase else step / n
            return a * r ** max(e, 0)
        except OverflowError:  # a step too large for a float, or r ** e beyond float64
            if r <= 1.0 and step > 0:
                return a * (r if r == 1.0 else 0.0)
            raise ValueError(msg(
                api, "step must keep init_value * decay_rate ** (step / transition_steps) "
                "within float64 range", f"step of {int(step).bit_length()} bits"
                if isinstance(step, int) else repr(step),
                "Pass a smaller step, or a decay_rate <= 1.",
            )) from None

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
        raise ValueError(msg(api, "decay_steps must be greater than warmup_steps",
                             f"decay_steps={d} and warmup_steps={w}",
                             "decay_steps counts the warm-up too."))
    up = linear(init_value, peak_value, w)
    down = cosine_decay(peak_value, d - w, end_value)

    def schedule(step: Any) -> Any:
        step = _step(api, step)
        if isinstance(step, torch.Tensor):
            return torch.where(step < w, up(step), down(step - w))
        return up(step) if step < w else down(step - w)

    return schedule
