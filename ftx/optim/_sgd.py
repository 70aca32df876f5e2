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

from .._internal import torch_compat as _tc
from ._base import (
    GradientTransformation,
    PyTree,
    ScalarOrSchedule,
    _count_value,
    _Ctx,
    _Spec,
    add,
    chain,
    check_flag,
    check_hparam,
    check_lr,
    from_spec,
    new_count,
)
from ._scale import negate, scale_by_learning_rate
from ._weight_decay import add_decayed_weights

__all__ = ["TraceState", "sgd", "trace"]


class TraceState(NamedTuple):
    """Momentum state: the update count and one buffer per parameter (torch's name)."""

    step: torch.Tensor
    momentum_buffer: PyTree


class _TraceSpec(_Spec):
    state_type = TraceState
    per_param = ("momentum_buffer",)

    def __init__(self, api: str, momentum: float, dampening: float, nesterov: bool) -> None:
        self.api = api
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov

    def init_leaves(self, params: list[torch.Tensor]) -> Any:
        return TraceState(new_count(params), [torch.zeros_like(p) for p in params])

    def update_leaves(
        self, grads: list[torch.Tensor], state: Any, params: list[torch.Tensor] | None, ctx: _Ctx
    ) -> tuple[list[torch.Tensor], Any]:
        m, keep = self.momentum, 1.0 - self.dampening
        count, bufs = state.step, state.momentum_buffer
        if not grads:
            return grads, TraceState(count + 1, bufs)
        if ctx.scalars:
            if _count_value(count, ctx) == 0:
                new = [g.clone() for g in grads]
            elif ctx.fast:
                new = list(_tc.foreach_mul(bufs, m))
                _tc.foreach_add_(new, grads, alpha=keep)
            else:
                new = [add(b * m, g, keep, ctx) for b, g in zip(bufs, grads)]
        else:
            first = count == 0
            new = [
                torch.where(first, g, add(b * m, g, keep, ctx))
                for b, g in zip(bufs, grads)
            ]
        if not self.nesterov:
            out = new
        elif ctx.fast:
            out = list(_tc.foreach_add(grads, new, alpha=m))
        else:
            out = [add(g, b, m, ctx) for g, b in zip(grads, new)]
        return out, TraceState(count + 1, new)


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
        raise ValueError(
            f"ftx.{api}: nesterov=True requires momentum > 0 and dampening == 0, got "
            f"momentum={momentum!r} and dampening={dampening!r}. Set e.g. momentum=0.9, "
            "dampening=0, or nesterov=False."
        )
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
    check_hparam(api, "weight_decay", weight_decay)
    check_hparam(api, "dampening", dampening, low=-float("inf"))
    check_flag(api, "nesterov", nesterov)
    check_flag(api, "maximize", maximize)
    parts: list[GradientTransformation] = []
    if maximize:
        parts.append(negate(api))
    if weight_decay:
        parts.append(add_decayed_weights(weight_decay, api=api))
    if momentum or nesterov:
        parts.append(from_spec(_build_trace(api, momentum, dampening, nesterov)))
    parts.append(scale_by_learning_rate(rate))
    return chain(*parts, api=api)
