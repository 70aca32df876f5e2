"""``sgd`` and its momentum transform ``trace``: torch.optim.SGD step for step.

``sgd(lr, momentum, dampening, weight_decay, nesterov, maximize)`` is the chain
``[negate if maximize] -> [add_decayed_weights] -> [trace] ->
scale_by_learning_rate(lr)``, the op order of ``torch.optim.SGD``: on the first
step the momentum buffer is a copy of the gradient, then
``buf = momentum * buf + (1 - dampening) * grad``; Nesterov adds
``momentum * buf`` to the gradient.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from .._internal.errors import msg
from ._base import (
    GradientTransformation,
    PyTree,
    ScalarOrSchedule,
    _Elementwise,
    check_flag,
    check_hparam,
    check_lr,
    from_spec,
    new_count,
)
from ._kernels import Route
from ._scale import scale_by_learning_rate
from ._twin import torch_twin

__all__ = ["TraceState", "sgd", "trace"]


class TraceState(NamedTuple):
    """Momentum state: the update count and one buffer per parameter (torch's name)."""

    step: torch.Tensor
    momentum_buffer: PyTree


class _TraceSpec(_Elementwise):
    state_type = TraceState
    per_param = ("momentum_buffer",)

    def __init__(self, api: str, momentum: float, dampening: float, nesterov: bool) -> None:
        self.api = api
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov

    def init_leaves(self, params: list[torch.Tensor]) -> Any:
        return TraceState(new_count(params), [torch.zeros_like(p) for p in params])

    def coeffs(self, state: Any, route: Route) -> Any:
        """Whether this is the first update: a bool (eager) or a 0-d bool tensor."""
        if route.scalars:
            return route.count(state.step) == 0
        return state.step == 0

    def leaf(self, route: Route, first: Any, g: Any, bufs: tuple[Any, ...], p: Any, own: bool
             ) -> tuple[Any, tuple[Any, ...], bool]:
        k, m, keep = route, self.momentum, 1.0 - self.dampening
        (buf,) = bufs
        if first is True:  # torch: the buffer starts as a copy of the gradient
            new = k.copy(buf, g, k.donate)
        elif first is False:
            new = k.add(k.mul(buf, m, k.donate), g, keep, True)
        else:
            new = k.where(first, g, k.add(k.mul(buf, m), g, keep))
        if self.nesterov:
            return k.add(g, new, m, own), (new,), True
        return new, (new,), False  # the updates are the new buffer: not the chain's to overwrite


def trace(
    momentum: float, dampening: float = 0.0, nesterov: bool = False
) -> GradientTransformation:
    """Heavy-ball momentum as in ``torch.optim.SGD`` (buffer = first grad, then EMA-like sum).

    Args:
        momentum: momentum factor, ``>= 0``.
        dampening: ``>= 0``; the gradient enters the buffer times ``1 - dampening``.
        nesterov: return ``grad + momentum * buf`` instead of ``buf``.

    Returns:
        A ``GradientTransformation`` with state :class:`TraceState`.

    Example:
        >>> import torch, ftx
        >>> tx = ftx.optim.trace(0.5)
        >>> state = tx.init({"w": torch.zeros(1)})
        >>> for _ in range(2):
        ...     u, state = tx.update({"w": torch.ones(1)}, state)
        >>> u
        {'w': tensor([1.5000])}
    """
    api = "optim.trace"
    return from_spec(_build_trace(api, momentum, dampening, nesterov))


def _build_trace(api: str, momentum: float, dampening: float, nesterov: bool) -> _TraceSpec:
    m = check_hparam(api, "momentum", momentum)
    d = check_hparam(api, "dampening", dampening, low=-float("inf"))
    check_flag(api, "nesterov", nesterov)
    if nesterov and (m <= 0 or d != 0):
        raise ValueError(msg(
            api, "nesterov=True requires momentum > 0 and dampening == 0",
            f"momentum={momentum!r} and dampening={dampening!r}",
            "Set e.g. momentum=0.9, dampening=0, or nesterov=False.",
        ))
    return _TraceSpec(api, m, d, bool(nesterov))


def sgd(
    lr: ScalarOrSchedule = 1e-3,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    """Stochastic gradient descent with torch.optim.SGD's hyper-parameters and numbers.

    Args:
        lr: learning rate ``>= 0`` or a schedule ``step -> lr``.
        momentum: momentum factor ``>= 0`` (0 keeps no buffer).
        dampening: dampening for momentum.
        weight_decay: L2 penalty ``>= 0`` added to the gradient.
        nesterov: Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
        maximize: ascend instead of descend.

    Returns:
        A ``GradientTransformation`` (a :func:`chain`; its state is a tuple).

    Example:
        >>> import torch, ftx
        >>> opt = ftx.optim.sgd(lr=0.1, momentum=0.9)
        >>> params = {"w": torch.tensor([1.0])}
        >>> state = opt.init(params)
        >>> for _ in range(2):
        ...     updates, state = opt.update({"w": torch.tensor([1.0])}, state, params)
        ...     params = ftx.optim.apply_updates(params, updates)
        >>> params
        {'w': tensor([0.7100])}
    """
    api = "optim.sgd"
    rate = check_lr(api, lr)
    check_hparam(api, "momentum", momentum)
    check_hparam(api, "dampening", dampening, low=-float("inf"))
    check_flag(api, "nesterov", nesterov)
    core: list[GradientTransformation] = []
    if momentum or nesterov:
        core.append(from_spec(_build_trace(api, momentum, dampening, nesterov)))
    core.append(scale_by_learning_rate(rate))
    return torch_twin(api, core, weight_decay=weight_decay, maximize=maximize)
