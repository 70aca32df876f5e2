"""``add_decayed_weights``: L2 weight decay folded into the gradient, as torch.optim does it."""

from __future__ import annotations

from typing import Any

from ._base import GradientTransformation, _Elementwise, check_hparam, from_spec
from ._kernels import Route

__all__ = ["add_decayed_weights", "decayed_weights"]


class _DecaySpec(_Elementwise):
    needs_params = True

    def __init__(self, api: str, weight_decay: float) -> None:
        self.api = api
        self.weight_decay = weight_decay

    def leaf(self, route: Route, co: Any, g: Any, bufs: tuple[Any, ...], p: Any, own: bool
             ) -> tuple[Any, tuple[Any, ...], bool]:
        return route.add(g, p, self.weight_decay, own), bufs, True


def decayed_weights(api: str, weight_decay: float) -> GradientTransformation:
    """:func:`add_decayed_weights` for an alias (``weight_decay`` checked; errors name ``api``)."""
    return from_spec(_DecaySpec(api, weight_decay))


def add_decayed_weights(weight_decay: float = 0.0) -> GradientTransformation:
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
    api = "optim.add_decayed_weights"
    return decayed_weights(api, check_hparam(api, "weight_decay", weight_decay))
