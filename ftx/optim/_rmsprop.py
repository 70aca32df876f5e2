"""``rmsprop`` and ``scale_by_rms``: torch.optim.RMSprop step for step.

``square_avg = alpha * square_avg + (1 - alpha) * grad**2``; centered also
tracks ``grad_avg.lerp(grad, 1 - alpha)`` and uses ``square_avg - grad_avg**2``;
``avg = sqrt(.) + eps``; with momentum ``buf = momentum * buf + grad / avg``
is the direction, otherwise ``grad / avg``. Buffers start at zero as in torch.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from ._base import (
    GradientTransformation,
    PyTree,
    ScalarOrSchedule,
    _Elementwise,
    check_flag,
    check_hparam,
    check_lr,
    from_spec,
)
from ._kernels import Route
from ._scale import scale_by_learning_rate
from ._twin import torch_twin

__all__ = ["ScaleByRmsState", "rmsprop", "scale_by_rms"]


class ScaleByRmsState(NamedTuple):
    """RMSprop's buffers with torch.optim's names (``None`` when the option is off)."""

    square_avg: PyTree
    grad_avg: PyTree
    momentum_buffer: PyTree


class _RmsSpec(_Elementwise):
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

    def leaf(self, route: Route, co: Any, g: Any, bufs: tuple[Any, ...], p: Any, own: bool
             ) -> tuple[Any, tuple[Any, ...], bool]:
        k, mine, a, mom = route, route.donate, self.alpha, self.momentum
        sq, ga, buf = bufs
        sq = k.addcmul(k.mul(sq, a, mine), g, g, 1 - a, True)
        if self.centered:
            ga = k.lerp(ga, g, 1 - a, mine)
            avg = k.sqrt(k.addcmul(sq, ga, ga, -1), True)
        else:
            avg = k.sqrt(sq)
        avg = k.adds(avg, self.eps, True)
        if mom > 0:
            buf = k.addcdiv(k.mul(buf, mom, mine), g, avg, True)
            return buf, (sq, ga, buf), False  # the updates are the new buffer
        return k.div_into(g, avg), (sq, ga, buf), True


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
    return torch_twin(api, [core, scale_by_learning_rate(rate)], weight_decay=weight_decay,
                      maximize=maximize)
