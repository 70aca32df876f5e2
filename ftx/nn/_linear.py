"""``Linear``: ``y = x @ weight.T + bias``, the stateless twin of ``nn.Linear``."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._base import (
    FLAG,
    POSITIVE,
    Layer,
    Params,
    Shape,
    check_fields,
    check_init,
    input_error,
    kaiming_bound,
    split_key,
    uniform_init,
)

__all__ = ["Linear"]


@dataclasses.dataclass(frozen=True)
class Linear(Layer):
    """A fully connected layer, the same maths and parameters as ``nn.Linear``.

    Params: ``{"weight": (out_features, in_features), "bias": (out_features,)}``
    (no ``"bias"`` when ``bias=False``), drawn like torch's default: both
    ``U(-1/sqrt(in_features), 1/sqrt(in_features))``.

    Args:
        in_features: size of the last input dimension.
        out_features: size of the last output dimension.
        bias: whether to add a learned bias.

    Call ``layer(params, x)`` with ``x: (*, in_features)``; returns
    ``(*, out_features)``.

    Example:
        >>> import torch, ftx
        >>> layer = ftx.nn.Linear(3, 2)
        >>> params = layer.init(ftx.random.key(0))
        >>> {k: tuple(v.shape) for k, v in params.items()}
        {'weight': (2, 3), 'bias': (2,)}
        >>> layer(params, torch.ones(5, 3)).shape
        torch.Size([5, 2])
    """

    in_features: int
    out_features: int
    bias: bool = True

    def __post_init__(self) -> None:
        check_fields(self, in_features=POSITIVE, out_features=POSITIVE, bias=FLAG)

    def init(
        self, key: Tensor, *, dtype: torch.dtype = torch.float32, device: Any = None
    ) -> Params:
        """Draw ``weight`` and ``bias`` from ``U(-1/sqrt(in), 1/sqrt(in))`` with ``key``."""
        check_init(self.api, key, dtype, device)
        kw, kb = split_key(key, 2)
        bound = kaiming_bound(self.in_features)
        params = {
            "weight": uniform_init(kw, (self.out_features, self.in_features), bound, dtype, device)
        }
        if self.bias:
            params["bias"] = uniform_init(kb, (self.out_features,), bound, dtype, device)
        return params

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None) -> Tensor:
        """``x: (*, in_features) -> (*, out_features)``."""
        try:
            w = params["weight"]
            b = params["bias"] if self.bias else None
            ok = (
                len(params) == 1 + self.bias
                and x.dtype == w.dtype
                and x.shape[-1] == self.in_features
                and w.shape == (self.out_features, self.in_features)
            )
        except (KeyError, TypeError, AttributeError, IndexError):
            ok = False
        if not ok:
            self._diagnose(params, x)
        try:
            return F.linear(x, w, b)
        except (RuntimeError, TypeError) as err:  # a bias of the wrong shape, dtype or kind
            self._diagnose(params, x, err)

    def param_shapes(self) -> dict[str, Shape]:
        shapes: dict[str, Shape] = {"weight": (self.out_features, self.in_features)}
        if self.bias:
            shapes["bias"] = (self.out_features,)
        return shapes

    def twin(self) -> nn.Module:
        return nn.Linear(self.in_features, self.out_features, bias=self.bias)

    def _check_input(self, x: Tensor) -> None:
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise input_error(
                self.api,
                f"input x must have shape (*, in_features) = (*, {self.in_features})",
                x,
                "Reshape the input or build the layer with the input's feature count.",
            )
