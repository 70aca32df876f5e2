"""``adam``, ``adamw`` and ``scale_by_adam``: torch.optim.Adam / AdamW step for step.

The moment updates follow torch's single-tensor and foreach code exactly:
``exp_avg.lerp(grad, 1 - beta1)``, ``exp_avg_sq * beta2 + (1 - beta2) * grad**2``,
``denom = sqrt(exp_avg_sq) / sqrt(bias_correction2) + eps`` and the update
``-(lr / bias_correction1) * exp_avg / denom``, with the bias corrections in
Python floats in eager mode (as torch does) and in float64 tensors under
transforms. The learning rate is fused into the moment transform so that the
aliases reproduce torch's rounding and make one pass less over the params.
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
    lr_at,
    new_count,
)
from ._kernels import Route
from ._twin import torch_twin

__all__ = ["ScaleByAdamState", "adam", "adamw", "scale_by_adam"]


class ScaleByAdamState(NamedTuple):
    """Adam's state with torch.optim's names; ``max_exp_avg_sq`` is ``None`` unless amsgrad."""

    step: torch.Tensor
    exp_avg: PyTree
    exp_avg_sq: PyTree
    max_exp_avg_sq: PyTree


class _AdamCoeffs(NamedTuple):
    c: Any  # -lr / bc1 (1 / bc1 without a learning rate)
    s: Any  # denominator: sqrt(v) / s + e
    e: Any
    exact: bool  # c != 0 is known: u = m / (sqrt(v) / (sqrt(bc2) c) + eps / c), torch's form
    decay: Any  # -lr * weight_decay (decoupled; used when weight_decay != 0)


class _AdamSpec(_Elementwise):
    state_type = ScaleByAdamState
    per_param = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(
        self,
        api: str,
        betas: Any,
        eps: float,
        amsgrad: bool,
        lr: ScalarOrSchedule | None,
        decoupled_weight_decay: float = 0.0,
    ) -> None:
        self.api = api
        if not (isinstance(betas, tuple | list) and len(betas) == 2):  # torch accepts lists too
            raise TypeError(msg(api, "betas must be a pair of floats", repr(betas),
                                "Pass e.g. betas=(0.9, 0.999)."))
        self.b1 = check_hparam(api, "betas[0]", betas[0], high=1.0)
        self.b2 = check_hparam(api, "betas[1]", betas[1], high=1.0)
        self.eps = check_hparam(api, "eps", eps)
        self.amsgrad = check_flag(api, "amsgrad", amsgrad)
        self.lr = None if lr is None else check_lr(api, lr)
        self.wd = check_hparam(api, "weight_decay", decoupled_weight_decay)
        self.needs_params = self.wd != 0.0

    def init_leaves(self, params: list[torch.Tensor]) -> Any:
        zeros = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]
        return ScaleByAdamState(
            new_count(params),
            zeros,
            [torch.zeros_like(p) for p in params],
            [torch.zeros_like(p) for p in params] if self.amsgrad else None,
        )

    def coeffs(self, state: Any, route: Route) -> _AdamCoeffs:
        k = route.count(state.step)  # updates done before this one
        n = k + 1
        bc1 = 1 - self.b1**n
        bc2_sqrt = (1 - self.b2**n) ** 0.5
        lr = None if self.lr is None else lr_at(self.lr, k, route.api)
        c = 1 / bc1 if lr is None else -lr / bc1
        decay = 0.0
        if self.wd:
            assert lr is not None
            decay = -lr * self.wd
        if route.scalars and c != 0:
            return _AdamCoeffs(c, bc2_sqrt * c, self.eps / c, True, decay)
        return _AdamCoeffs(c, bc2_sqrt, self.eps, False, decay)

    def leaf(self, route: Route, co: _AdamCoeffs, g: Any, bufs: tuple[Any, ...], p: Any,
             own: bool) -> tuple[Any, tuple[Any, ...], bool]:
        k, mine = route, route.donate
        m, v, vmax = bufs
        m = k.lerp(m, g, 1 - self.b1, mine)
        v = k.addcmul(k.mul(v, self.b2, mine), g, g, 1 - self.b2, True)
        if vmax is not None:
            vmax = k.maximum(vmax, v, mine)
        d = k.shift(k.sqrt(v if vmax is None else vmax), co.s, co.e, True)
        u = k.div_into(m, d)
        if not co.exact:
            u = k.mul(u, co.c, True)
        if self.wd:
            u = k.add(u, p, co.decay, True)
        return u, (m, v, vmax), True


def scale_by_adam(
    betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, amsgrad: bool = False
) -> GradientTransformation:
    """Adam's direction ``m_hat / (sqrt(v_hat) + eps)`` (no learning rate, no sign).

    Args:
        betas: ``(beta1, beta2)``, each in ``[0, 1)``.
        eps: ``>= 0``, added to ``sqrt(v_hat)``.
        amsgrad: normalise by the running maximum of ``v`` (state ``max_exp_avg_sq``).

    Returns:
        A ``GradientTransformation`` with state :class:`ScaleByAdamState`.

    Example:
        >>> import torch, ftx
        >>> tx = ftx.optim.scale_by_adam()
        >>> u, state = tx.update({"w": torch.tensor([2.0])}, tx.init({"w": torch.zeros(1)}))
        >>> u, int(state.step)
        ({'w': tensor([1.0000])}, 1)
    """
    return from_spec(_AdamSpec("optim.scale_by_adam", betas, eps, amsgrad, None))


def adam(
    lr: ScalarOrSchedule = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    """Adam with torch.optim.Adam's hyper-parameters and numbers (L2 ``weight_decay``).

    Args:
        lr: learning rate ``>= 0`` or a schedule ``step -> lr``.
        betas: ``(beta1, beta2)`` in ``[0, 1)``.
        eps: ``>= 0``.
        weight_decay: L2 penalty ``>= 0`` added to the gradient (use :func:`adamw`
            for decoupled decay).
        amsgrad: the AMSGrad variant.
        maximize: ascend instead of descend.

    Returns:
        A ``GradientTransformation``; the last entry of its state tuple is a
        :class:`ScaleByAdamState`.

    Example:
        >>> import torch, ftx
        >>> opt = ftx.optim.adam(lr=0.1)
        >>> params = {"w": torch.tensor([1.0])}
        >>> updates, state = opt.update({"w": torch.tensor([3.0])}, opt.init(params), params)
        >>> ftx.optim.apply_updates(params, updates)
        {'w': tensor([0.9000])}
    """
    api = "optim.adam"
    core = from_spec(_AdamSpec(api, betas, eps, amsgrad, check_lr(api, lr)))
    return torch_twin(api, [core], weight_decay=weight_decay, maximize=maximize)


def adamw(
    lr: ScalarOrSchedule = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    """AdamW (decoupled weight decay) with torch.optim.AdamW's defaults and numbers.

    The update is ``-lr * weight_decay * param - lr / bc1 * exp_avg / denom``;
    torch computes ``param * (1 - lr * weight_decay)`` first, which rounds
    differently in the last bit (float64 trajectories agree to ~1e-15).

    Args:
        lr: learning rate ``>= 0`` or a schedule ``step -> lr``.
        betas: ``(beta1, beta2)`` in ``[0, 1)``.
        eps: ``>= 0``.
        weight_decay: decoupled decay ``>= 0`` (default ``1e-2`` as in torch).
        amsgrad: the AMSGrad variant.
        maximize: ascend instead of descend.

    Returns:
        A ``GradientTransformation``; its ``update`` needs ``params``.

    Example:
        >>> import torch, ftx
        >>> opt = ftx.optim.adamw(lr=0.1, weight_decay=0.5)
        >>> params = {"w": torch.tensor([1.0])}
        >>> updates, _ = opt.update({"w": torch.tensor([3.0])}, opt.init(params), params)
        >>> ftx.optim.apply_updates(params, updates)
        {'w': tensor([0.8500])}
    """
    api = "optim.adamw"
    core = from_spec(_AdamSpec(api, betas, eps, amsgrad, check_lr(api, lr), weight_decay))
    return torch_twin(api, [core], maximize=maximize)
