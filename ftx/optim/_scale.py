"""Scaling transforms: ``scale``, ``scale_by_learning_rate``, ``scale_by_schedule``.

Each multiplies every update leaf by one factor. A constant factor keeps no
state; a schedule keeps the step count (a 0-dim ``int64`` tensor) and is
evaluated at the count before the update (``0`` for the first update), as
``torch.optim.lr_scheduler`` does when ``scheduler.step()`` follows
``optimizer.step()``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from .._internal.errors import describe, msg
from ._base import (
    EmptyState,
    GradientTransformation,
    ScalarOrSchedule,
    Schedule,
    _Elementwise,
    check_hparam,
    check_lr,
    from_spec,
    new_count,
    scheduled,
)
from ._kernels import Route

__all__ = ["ScaleByScheduleState", "scale", "scale_by_learning_rate", "scale_by_schedule"]


class ScaleByScheduleState(NamedTuple):
    """State of a scheduled scale: the number of updates done so far."""

    step: torch.Tensor


class _ScaleSpec(_Elementwise):
    def __init__(self, api: str, factor: ScalarOrSchedule, sign: float) -> None:
        self.api = api
        self.what = "lr" if sign < 0 else "scale"
        self.factor = factor
        self.sign = sign
        self.state_type = ScaleByScheduleState if callable(factor) else EmptyState

    def init_leaves(self, params: list[torch.Tensor]) -> Any:
        if callable(self.factor):
            return ScaleByScheduleState(new_count(params))
        return EmptyState()

    def coeffs(self, state: Any, route: Route) -> Any:
        if not callable(self.factor):
            return self.sign * self.factor
        k = route.count(state.step)
        return scheduled(route.api, self.what, self.factor(k), k, self.sign < 0) * self.sign

    def leaf(self, route: Route, co: Any, g: Any, bufs: tuple[Any, ...], p: Any, own: bool
             ) -> tuple[Any, tuple[Any, ...], bool]:
        return route.mul(g, co, own), bufs, True


def scale(step_size: float) -> GradientTransformation:
    """Multiply every update by ``step_size`` (stateless; any sign).

    Example:
        >>> import torch, ftx
        >>> ftx.optim.scale(-2.0).update({"w": torch.ones(2)}, ())[0]
        {'w': tensor([-2., -2.])}
    """
    size = check_hparam("optim.scale", "step_size", step_size, low=-math.inf)
    return from_spec(_ScaleSpec("optim.scale", size, 1.0))


def scale_by_learning_rate(lr: ScalarOrSchedule) -> GradientTransformation:
    """Multiply every update by ``-lr`` (a descent step); ``lr`` a number or a schedule.

    Args:
        lr: a non-negative float, or a schedule ``step -> lr``.

    Returns:
        A ``GradientTransformation``; its state counts steps when ``lr`` is a schedule.

    Example:
        >>> import torch, ftx
        >>> ftx.optim.scale_by_learning_rate(0.5).update({"w": torch.ones(2)}, ())[0]
        {'w': tensor([-0.5000, -0.5000])}
    """
    api = "optim.scale_by_learning_rate"
    return from_spec(_ScaleSpec(api, check_lr(api, lr), -1.0))


def scale_by_schedule(schedule: Schedule) -> GradientTransformation:
    """Multiply every update by ``schedule(step)``, ``step`` counting from 0.

    Example:
        >>> import torch, ftx
        >>> tx = ftx.optim.scale_by_schedule(lambda step: 1.0 / (step + 1))
        >>> state = tx.init({"w": torch.ones(1)})
        >>> for _ in range(2):
        ...     u, state = tx.update({"w": torch.ones(1)}, state)
        >>> u, int(state.step)
        ({'w': tensor([0.5000])}, 2)
    """
    if not callable(schedule):
        raise TypeError(msg(
            "optim.scale_by_schedule", "schedule must be callable step -> value",
            describe(schedule), "Use e.g. ftx.optim.cosine_decay(0.1, 1000) or ftx.optim.scale.",
        ))
    return from_spec(_ScaleSpec("optim.scale_by_schedule", schedule, 1.0))


class _NegateSpec(_Elementwise):
    """``-g``: torch.optim's ``maximize=True``."""

    def __init__(self, api: str) -> None:
        self.api = api

    def leaf(self, route: Route, co: Any, g: Any, bufs: tuple[Any, ...], p: Any, own: bool
             ) -> tuple[Any, tuple[Any, ...], bool]:
        return route.neg(g, own), bufs, True


def negate(api: str) -> GradientTransformation:
    """The transform behind ``maximize=True`` (private)."""
    return from_spec(_NegateSpec(api))
