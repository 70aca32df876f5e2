"""``add_decayed_weights``: L2 weight decay folded into the gradient, as torch.optim does it."""

from __future__ import annotations

from typing import Any

import torch

from .._internal import torch_compat as _tc
from ._base import GradientTransformation, _Ctx, _Spec, add, check_hparam, from_spec

__all__ = ["add_decayed_weights"]


class _DecaySpec(_Spec):
    needs_params = True

    def __init__(self, api: str, weight_decay: float) -> None:
        self.api = api
        self.weight_decay = weight_decay

    def update_leaves(
        self, grads: list[torch.Tensor], state: Any, params: list[torch.Tensor] | None, ctx: _Ctx
    ) -> tuple[list[torch.Tensor], Any]:
        assert params is not None
        wd = self.weight_decay
        if ctx.fast and grads:
            return list(_tc.foreach_add(grads, params, alpha=wd)), state
        return [add(g, p, wd, ctx) for g, p in zip(grads, params)], state


def add_decayed_weights(weight_decay: float = 0.0, *, api: str = "optim.add_decayed_weights"
                        ) -> GradientTransformation:
    """Add ``weight_decay * params`` to the updates (``grad.add(param, alpha=weight_decay)``).

    Args:
        weight_decay: a non-negative float.

    Returns:
        A stateless ``GradientTransformation``; its ``update`` needs ``params``.

    Example:
        >>> import torch, ftx
        >>> tx = ftx.optim.add_decayed_weights(0.1)
        >>> params = {"w": torch.tensor([10.0])}
        >>> tx.update({"w": torch.tensor([1.0])}, tx.init(params), params)[0]
        {'w': tensor([2.])}
    """
    return from_spec(_DecaySpec(api, check_hparam(api, "weight_decay", weight_decay)))
