"""``rmsprop`` and ``scale_by_rms``: torch.optim.RMSprop step for step.

``square_avg = alpha * square_avg + (1 - alpha) * grad**2``; centered also
tracks ``grad_avg.lerp(grad, 1 - alpha)`` and uses ``square_avg - grad_avg**2``;
``avg = sqrt(.) + eps``; with momentum ``buf = momentum * buf + grad / avg``
is the direction, otherwise ``grad / avg``. Buffers start at zero as in torch.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from .._internal import torch_compat as _tc
from ._base import (
    GradientTransformation,
    PyTree,
    ScalarOrSchedule,
    _Ctx,
    _Spec,
    addcmul,
    chain,
    check_flag,
    check_hparam,
    check_lr,
    from_spec,
)
from ._scale import negate, scale_by_learning_rate
from ._weight_decay import add_decayed_weights

__all__ = ["ScaleByRmsState", "rmsprop", "scale_by_rms"]


class ScaleByRmsState(NamedTuple):
    """RMSprop's buffers with torch.optim's names (``None`` when the option is off)."""

    square_avg: PyTree
    grad_avg: PyTree
    momentum_buffer: PyTree


class _RmsSpec(_Spec):
    state_type = ScaleByRmsState
    per_param = ("square_avg", "grad_avg", "momentum_buffer")

    def __init__(self, api: str, alpha: float, eps: float, centered: bool, momentum: float):
        self.api = api
        self.alpha = check_hparam(api, "alpha", alpha, high=1.0, high_open=False)
        self.eps = check_hparam(api, "eps", eps)
        self.centered = check_flag(api, "centered", centered)
        self.momentum = check_hparam(api, "momentum", momentum)

    def init_leaves(self, params: list[torch.Tensor]) -> Any:
        def zeros() -> list[torch.Tensor]:
            return [torch.zeros_like(p) for p in params]

        return ScaleByRmsState(
            zeros(), zeros() if self.centered else None, zeros() if self.momentum > 0 else None
        )

    def update_leaves(
        self, grads: list[torch.Tensor], state: Any, params: list[torch.Tensor] | None, ctx: _Ctx
    ) -> tuple[list[torch.Tensor], Any]:
        a, eps, mom = self.alpha, self.eps, self.momentum
        sq, ga, buf = state
        if not grads:
            return grads, state
        if ctx.fast:
            sq = list(_tc.foreach_mul(sq, a))
            _tc.foreach_addcmul_(sq, grads, grads, 1 - a)
            if self.centered:
                ga = list(_tc.foreach_lerp(ga, grads, 1 - a))
                avg = list(_tc.foreach_addcmul(sq, ga, ga, -1))
                _tc.foreach_sqrt_(avg)
            else:
                avg = list(_tc.foreach_sqrt(sq))
            _tc.foreach_add_(avg, eps)
            if mom > 0:
                buf = list(_tc.foreach_mul(buf, mom))
                _tc.foreach_addcdiv_(buf, grads, avg)
                out = buf
            else:
                out = list(_tc.foreach_div(grads, avg))
        else:
            sq = [addcmul(s * a, g, g, 1 - a, ctx) for s, g in zip(sq, grads)]
            if self.centered:
                ga = [torch.lerp(x, g, 1 - a) for x, g in zip(ga, grads)]
                avg = [torch.sqrt(addcmul(s, x, x, -1, ctx)) for s, x in zip(sq, ga)]
            else:
                avg = [torch.sqrt(s) for s in sq]
            avg = [x + eps for x in avg]
            if mom > 0:
                buf = [
                    torch.addcdiv(b * mom, g, d) if ctx.scalars else b * mom + g / d
                    for b, g, d in zip(buf, grads, avg)
                ]
                out = buf
            else:
                out = [g / d for g, d in zip(grads, avg)]
        return out, ScaleByRmsState(sq, ga, buf)


def scale_by_rms(
    alpha: float = 0.99, eps: float = 1e-8, centered: bool = False, momentum: float = 0.0
) -> GradientTransformation:
    """RMSprop's direction ``grad / (sqrt(square_avg) + eps)`` (with optional momentum).

    Example:
        >>> import torch, ftx
        >>> tx = ftx.optim.scale_by_rms(alpha=0.75, eps=0.0)
        >>> tx.update({"w": torch.tensor([2.0])}, tx.init({"w": torch.zeros(1)}))[0]
        {'w': tensor([2.])}
    """
    return from_spec(_RmsSpec("optim.scale_by_rms", alpha, eps, centered, momentum))


def rmsprop(
    lr: ScalarOrSchedule = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    """RMSprop with torch.optim.RMSprop's hyper-parameters, defaults and numbers.

    Args:
        lr: learning rate ``>= 0`` or a schedule ``step -> lr``.
        alpha: smoothing constant ``>= 0``.
        eps: ``>= 0``, added to the root.
        weight_decay: L2 penalty ``>= 0`` added to the gradient.
        momentum: momentum factor ``>= 0``.
        centered: normalise by the estimated variance instead of the second moment.
        maximize: ascend instead of descend.

    Returns:
        A ``GradientTransformation``.

    Example:
        >>> import torch, ftx
        >>> opt = ftx.optim.rmsprop(lr=0.01, alpha=0.75, eps=0.0)
        >>> params = {"w": torch.tensor([1.0])}
        >>> updates, _ = opt.update({"w": torch.tensor([4.0])}, opt.init(params), params)
        >>> ftx.optim.apply_updates(params, updates)
        {'w': tensor([0.9800])}
    """
    api = "optim.rmsprop"
    rate = check_lr(api, lr)
    core = from_spec(_RmsSpec(api, alpha, eps, centered, momentum))
    check_hparam(api, "weight_decay", weight_decay)
    check_flag(api, "maximize", maximize)
    parts: list[GradientTransformation] = [negate(api)] if maximize else []
    if weight_decay:
        parts.append(add_decayed_weights(weight_decay, api=api))
    return chain(*parts, core, scale_by_learning_rate(rate), api=api)
