"""``adagrad`` and ``scale_by_adagrad``: torch.optim.Adagrad step for step.

``sum = sum + grad**2`` (starting at ``initial_accumulator_value``), the
direction is ``grad / (sqrt(sum) + eps)`` and the step size at update ``k``
(from 0) is ``lr / (1 + k * lr_decay)``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from ._base import (
    GradientTransformation,
    PyTree,
    ScalarOrSchedule,
    _Elementwise,
    check_hparam,
    check_lr,
    from_spec,
    lr_at,
)
from ._kernels import Route
from ._scale import scale_by_learning_rate
from ._twin import torch_twin

__all__ = ["ScaleByAdagradState", "adagrad", "scale_by_adagrad"]


class ScaleByAdagradState(NamedTuple):
    """Adagrad's accumulator, torch.optim's name ``sum``."""

    sum: PyTree


class _AdagradSpec(_Elementwise):
    state_type = ScaleByAdagradState
    per_param = ("sum",)

    def __init__(self, api: str, initial_accumulator_value: float, eps: float) -> None:
        self.api = api
        self.init_value = check_hparam(
            api, "initial_accumulator_value", initial_accumulator_value
        )
        self.eps = check_hparam(api, "eps", eps)

    def init_leaves(self, params: list[torch.Tensor]) -> Any:
        return ScaleByAdagradState([torch.full_like(p, self.init_value) for p in params])

    def leaf(self, route: Route, co: Any, g: Any, bufs: tuple[Any, ...], p: Any, own: bool
             ) -> tuple[Any, tuple[Any, ...], bool]:
        k = route
        acc = k.addcmul(bufs[0], g, g, 1, k.donate)
        return k.div_into(g, k.adds(k.sqrt(acc), self.eps, True)), (acc,), True


def scale_by_adagrad(
    initial_accumulator_value: float = 0.0, eps: float = 1e-10
) -> GradientTransformation:
    """Adagrad's direction ``grad / (sqrt(sum of grad**2) + eps)``.

    Example:
        >>> import torch, ftx
        >>> tx = ftx.optim.scale_by_adagrad(eps=0.0)
        >>> tx.update({"w": torch.tensor([-3.0])}, tx.init({"w": torch.zeros(1)}))[0]
        {'w': tensor([-1.])}
    """
    return from_spec(_AdagradSpec("optim.scale_by_adagrad", initial_accumulator_value, eps))


def adagrad(
    lr: ScalarOrSchedule = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    """Adagrad with torch.optim.Adagrad's hyper-parameters, defaults and numbers.

    Args:
        lr: learning rate ``>= 0`` or a schedule ``step -> lr`` (then divided by
            ``1 + step * lr_decay``).
        lr_decay: ``>= 0``.
        weight_decay: L2 penalty ``>= 0`` added to the gradient.
        initial_accumulator_value: ``>= 0``, the accumulator's start.
        eps: ``>= 0``, added to the root.
        maximize: ascend instead of descend.

    Returns:
        A ``GradientTransformation``.

    Example:
        >>> import torch, ftx
        >>> opt = ftx.optim.adagrad(lr=0.5, eps=0.0)
        >>> params = {"w": torch.tensor([1.0])}
        >>> updates, _ = opt.update({"w": torch.tensor([2.0])}, opt.init(params), params)
        >>> ftx.optim.apply_updates(params, updates)
        {'w': tensor([0.5000])}
    """
    api = "optim.adagrad"
    rate = check_lr(api, lr)
    decay = check_hparam(api, "lr_decay", lr_decay)
    core = from_spec(_AdagradSpec(api, initial_accumulator_value, eps))

    def clr(step: Any) -> Any:
        return lr_at(rate, step, api) / (1 + step * decay)

    return torch_twin(api, [core, scale_by_learning_rate(clr if decay else rate)],
                      weight_decay=weight_decay, maximize=maximize)
