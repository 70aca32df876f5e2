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

from ._base import (
    GradientTransformation,
    PyTree,
    ScalarOrSchedule,
    _count_value,
    _Ctx,
    _Spec,
    add,
    addcmul,
    chain,
    check_hparam,
    check_lr,
    from_spec,
    lr_at,
    new_count,
)
from ._scale import negate
from ._weight_decay import add_decayed_weights

__all__ = ["ScaleByAdamState", "adam", "adamw", "scale_by_adam"]


class ScaleByAdamState(NamedTuple):
    """Adam's state with torch.optim's names; ``max_exp_avg_sq`` is ``None`` unless amsgrad."""

    step: torch.Tensor
    exp_avg: PyTree
    exp_avg_sq: PyTree
    max_exp_avg_sq: PyTree


class _AdamSpec(_Spec):
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
        if not (isinstance(betas, tuple | list) and len(betas) == 2):
            raise TypeError(
                f"ftx.{api}: betas must be a pair of floats, got {betas!r}. "
                "Pass e.g. betas=(0.9, 0.999)."
            )
        self.b1 = check_hparam(api, "betas[0]", betas[0], high=1.0)
        self.b2 = check_hparam(api, "betas[1]", betas[1], high=1.0)
        self.eps = check_hparam(api, "eps", eps)
        self.amsgrad = bool(amsgrad)
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

    def update_leaves(
        self, grads: list[torch.Tensor], state: Any, params: list[torch.Tensor] | None, ctx: _Ctx
    ) -> tuple[list[torch.Tensor], Any]:
        b1, b2, eps = self.b1, self.b2, self.eps
        count = state.step
        k = _count_value(count, ctx)  # updates done before this one
        n = k + 1
        new_count = count + 1
        if not grads:
            return grads, ScaleByAdamState(new_count, [], [], [] if self.amsgrad else None)
        bc1 = 1 - b1**n
        bc2 = 1 - b2**n
        bc2_sqrt = bc2**0.5
        lr = None if self.lr is None else lr_at(self.lr, k)
        # u = c * exp_avg / (sqrt(v) / sqrt(bc2) + eps), c = -lr / bc1 (or 1 / bc1 without lr)
        c = 1 / bc1 if lr is None else -lr / bc1
        m, v, vmax = state.exp_avg, state.exp_avg_sq, state.max_exp_avg_sq
        if ctx.fast:
            m = list(torch._foreach_lerp(m, grads, 1 - b1))
            v = list(torch._foreach_mul(v, b2))
            torch._foreach_addcmul_(v, grads, grads, 1 - b2)
            if self.amsgrad:
                vmax = list(torch._foreach_maximum(vmax, v))
            out = list(torch._foreach_sqrt(vmax if self.amsgrad else v))
            if c != 0:
                # torch's capturable form: den = sqrt(v) / (sqrt(bc2) * c) + eps / c, u = m / den
                if sum(d.numel() for d in out) >= _BIG:  # one pass instead of two
                    _affine_(out, 1 / (bc2_sqrt * c), eps / c)
                else:
                    torch._foreach_div_(out, bc2_sqrt * c)
                    torch._foreach_add_(out, eps / c)
                _div_into(m, out)
            else:
                torch._foreach_div_(out, bc2_sqrt)
                torch._foreach_add_(out, eps)
                _div_into(m, out)
                torch._foreach_mul_(out, c)
            if self.wd:
                assert params is not None and lr is not None
                torch._foreach_add_(out, params, alpha=-lr * self.wd)
        else:
            m = [torch.lerp(a, g, 1 - b1) for a, g in zip(m, grads)]
            v = [addcmul(s * b2, g, g, 1 - b2, ctx) for s, g in zip(v, grads)]
            if self.amsgrad:
                vmax = [torch.maximum(a, b) for a, b in zip(vmax, v)]
            roots = [torch.sqrt(s) for s in (vmax if self.amsgrad else v)]
            if ctx.scalars and c != 0:
                out = [a / (r / (bc2_sqrt * c) + eps / c) for a, r in zip(m, roots)]
            else:
                out = [(a / (r / bc2_sqrt + eps)) * c for a, r in zip(m, roots)]
            if self.wd:
                assert params is not None and lr is not None
                out = [
                    add(u, p, -lr * self.wd, ctx) for u, p in zip(out, params)
                ]
        return out, ScaleByAdamState(new_count, m, v, vmax)


_BIG = 1 << 20


def _div_into(num: list[torch.Tensor], den: list[torch.Tensor]) -> None:
    """``den[i] = num[i] / den[i]`` in place (``den`` holds fresh buffers)."""
    if sum(d.numel() for d in den) >= _BIG:  # large trees: save an allocation per leaf
        for a, d in zip(num, den):
            torch.div(a, d, out=d)
    else:  # small trees: one foreach call costs less than a Python loop
        den[:] = torch._foreach_div(num, den)


def _affine_(xs: list[torch.Tensor], scale: float, shift: float) -> None:
    """``x = shift + scale * x`` in place, one pass per leaf (``torch.add(..., out=x)``)."""
    consts: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}
    for x in xs:
        key = (x.dtype, x.device)
        if key not in consts:
            consts[key] = torch.full((), shift, dtype=x.dtype, device=x.device)
        torch.add(consts[key], x, alpha=scale, out=x)


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
    rate = check_lr(api, lr)
    core = from_spec(_AdamSpec(api, betas, eps, amsgrad, rate))
    check_hparam(api, "weight_decay", weight_decay)
    parts: list[GradientTransformation] = [negate(api)] if maximize else []
    if weight_decay:
        parts.append(add_decayed_weights(weight_decay, api=api))
    return chain(*parts, core, api=api)


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
    rate = check_lr(api, lr)
    core = from_spec(_AdamSpec(api, betas, eps, amsgrad, rate, weight_decay))
    parts: list[GradientTransformation] = [negate(api)] if maximize else []
    return chain(*parts, core, api=api)
