"""``Dropout``: zero elements with probability ``p`` when, and only when, a key is passed."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn

from ._base import Layer, Params, check_empty, check_fields, check_key, kernel_error, real

__all__ = ["PROBABILITY", "Dropout"]

PROBABILITY = real(0.0, 1.0)
"""The rule for a dropout probability: a real number in ``[0, 1]``."""


@dataclasses.dataclass(frozen=True)
class Dropout(Layer):
    """Inverted dropout: ``x * mask / (1 - p)`` with ``mask ~ Bernoulli(1 - p)``.

    Active only when ``key`` is given (training); without a key it is the
    identity (evaluation). The mask comes from ``ftx.random.bernoulli(key, ...)``,
    so one key gives one mask on every device and under ``vmap``.

    Args:
        p: probability of zeroing an element, in ``[0, 1]``.

    Example:
        >>> import torch, ftx
        >>> drop = ftx.nn.Dropout(0.5)
        >>> drop({}, torch.ones(3))                       # no key: identity
        tensor([1., 1., 1.])
        >>> y = drop({}, torch.ones(1000), key=ftx.random.key(0))
        >>> sorted(set(y.tolist()))
        [0.0, 2.0]
    """

    p: float = 0.5

    def __post_init__(self) -> None:
        check_fields(self, p=PROBABILITY)

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None) -> Tensor:
        """``x: (*) -> (*)``, floating; random only with ``key`` (checked even when ``p == 0``)."""
        if type(params) is not dict or params or type(x) is not Tensor or not x.is_floating_point():
            check_empty(self, params, x, floating=True)
        if key is None:
            return x
        if self.p == 0.0:
            check_key(self.api, key)
            return x
        return dropout(x, self.p, key, self.api)

    def twin(self) -> nn.Module:
        return nn.Dropout(self.p)


def dropout(x: Tensor, p: float, key: Tensor, api: str) -> Tensor:
    """``x * mask / (1 - p)``, ``mask ~ Bernoulli(1 - p)`` drawn from ``key``."""
    from .. import random as fr

    check_key(api, key)
    if p == 1.0:
        return x * 0.0
    keep = fr.bernoulli(key.to(x.device), 1.0 - p, tuple(x.shape))
    try:
        return torch.where(keep, x * (1.0 / (1.0 - p)), 0.0)
    except (RuntimeError, NotImplementedError) as err:  # a sparse or float8 x
        kernel_error(api, x, err)
