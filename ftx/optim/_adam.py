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

from .._internal import torch_compat as _tc
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
    check_flag,
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
        if not (isinstance(betas, tuple | list) and len(betas) == 2):  # torch accepts lists too
            raise TypeError(
                f"ftx.{api}: betas must be a pair of floats, got {betas!r}. "
                "Pass e.g. betas=(0.9, 0.999)."
            )
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
        lr = None if self.lr is None else lr_at(self.lr, k, ctx.api)
        # u = c * exp_avg / (sqrt(v) / sqrt(bc2) + eps), c = -lr / bc1 (or 1 / bc1 without lr)
        c = 1 / bc1 if lr is None else -lr / bc1
        m, v, vmax = state.exp_avg, state.exp_avg_sq, state.max_exp_avg_sq
        if ctx.fast:
            m, v, vmax, out = _fast_update(self, grads, m, v, vmax, params, c, bc2_sqrt, lr)
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


# On CPU a large tree is updated leaf by leaf: each leaf's buffers (param, grad, both
# moments, their new versions, the update) stay in the processor's caches from one kernel
# to the next, where whole-tree foreach kernels stream the model through memory once per
# kernel. Small trees (launch-bound) and GPUs use one foreach kernel per step instead.
_BIG = 1 << 20


def _fast_update(
    spec: _AdamSpec,
    grads: list[torch.Tensor],
    m: list[torch.Tensor],
    v: list[torch.Tensor],
    vmax: list[torch.Tensor] | None,
    params: list[torch.Tensor] | None,
    c: float,
    bc2_sqrt: float,
    lr: float | None,
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor] | None, list[torch.Tensor]]:
    """The eager update: ``(m, v, vmax, updates)``, all fresh buffers."""
    b1, b2, eps = spec.b1, spec.b2, spec.eps
    decay = 0.0
    if spec.wd:
        assert lr is not None
        decay = -lr * spec.wd
    if grads[0].device.type == "cpu" and sum(g.numel() for g in grads) >= _BIG:
        new_m: list[torch.Tensor] = []
        new_v: list[torch.Tensor] = []
        new_vmax: list[torch.Tensor] | None = [] if spec.amsgrad else None
        updates: list[torch.Tensor] = []
        shift: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}
        for k, g in enumerate(grads):
            mk = torch.lerp(m[k], g, 1 - b1)
            vk = torch.mul(v[k], b2)
            vk.addcmul_(g, g, value=1 - b2)
            base = vk
            if new_vmax is not None:
                assert vmax is not None
                base = torch.maximum(vmax[k], vk)
                new_vmax.append(base)
            d = torch.sqrt(base)
            if c != 0:  # torch's capturable form, in one pass: eps / c + sqrt(v) / (sqrt(bc2) c)
                key = (d.dtype, d.device)
                if key not in shift:
                    shift[key] = torch.full((), eps / c, dtype=d.dtype, device=d.device)
                torch.add(shift[key], d, alpha=1 / (bc2_sqrt * c), out=d)
                torch.div(mk, d, out=d)
            else:
                d.div_(bc2_sqrt).add_(eps)
                torch.div(mk, d, out=d)
                d.mul_(c)
            if decay:
                assert params is not None
                d.add_(params[k], alpha=decay)
            new_m.append(mk)
            new_v.append(vk)
            updates.append(d)
        return new_m, new_v, new_vmax, updates
    m = list(_tc.foreach_lerp(m, grads, 1 - b1))
    v = list(_tc.foreach_mul(v, b2))
    _tc.foreach_addcmul_(v, grads, grads, 1 - b2)
    if vmax is not None and spec.amsgrad:
        vmax = list(_tc.foreach_maximum(vmax, v))
    out = list(_tc.foreach_sqrt(vmax if vmax is not None and spec.amsgrad else v))
    if c != 0:  # torch's capturable form: den = sqrt(v) / (sqrt(bc2) * c) + eps / c, u = m / den
        _tc.foreach_div_(out, bc2_sqrt * c)
        _tc.foreach_add_(out, eps / c)
        out = list(_tc.foreach_div(m, out))
    else:
        _tc.foreach_div_(out, bc2_sqrt)
        _tc.foreach_add_(out, eps)
        out = list(_tc.foreach_div(m, out))
        _tc.foreach_mul_(out, c)
    if decay:
        assert params is not None
        _tc.foreach_add_(out, params, alpha=decay)
    return m, v, vmax, out


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
    check_flag(api, "maximize", maximize)
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
    check_flag(api, "maximize", maximize)
    parts: list[GradientTransformation] = [negate(api)] if maximize else []
    return chain(*parts, core, api=api)
