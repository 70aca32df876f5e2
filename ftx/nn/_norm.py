"""``LayerNorm``: normalisation over the trailing dimensions, the twin of ``nn.LayerNorm``."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._internal.errors import describe, msg
from ._base import (
    FLAG,
    MAX_SIZE,
    Layer,
    Params,
    Shape,
    check_fields,
    check_init,
    input_error,
    real,
)

__all__ = ["LayerNorm"]


def _normalized_shape(api: str, name: str, value: Any) -> tuple[int, ...]:
    """An int or a non-empty sequence of ints, each >= 1, as a tuple."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    if isinstance(value, torch.Size):
        value = tuple(value)
    if not isinstance(value, (tuple, list)) or any(
        isinstance(s, bool) or not isinstance(s, int) for s in value
    ):
        raise TypeError(msg(api, f"{name} must be an int or a tuple of ints", describe(value)))
    if not value or min(value) < 1:
        raise ValueError(msg(api, f"{name} must be a non-empty tuple of ints >= 1",
                             describe(tuple(value))))
    if math.prod(value) > MAX_SIZE:
        raise ValueError(msg(api, f"{name} must have fewer than 2**63 elements in all "
                             "(torch's int64 sizes)", describe(tuple(value)),
                             "Pass the trailing shape of the input to normalise."))
    return tuple(int(s) for s in value)


@dataclasses.dataclass(frozen=True)
class LayerNorm(Layer):
    """Layer normalisation over the last ``len(normalized_shape)`` dimensions.

    Params (with ``elementwise_affine``): ``{"weight": normalized_shape,
    "bias": normalized_shape}``, initialised to ones and zeros as in torch
    (the key is accepted for uniformity and not used).

    Args:
        normalized_shape: int or tuple: the trailing shape to normalise over.
        eps: added to the variance.
        elementwise_affine: learn a per-element scale (and bias).
        bias: learn the bias too (with ``elementwise_affine``).

    Call ``layer(params, x)`` with ``x: (*, *normalized_shape)``; returns the same shape.

    Example:
        >>> import torch, ftx
        >>> ln = ftx.nn.LayerNorm(4)
        >>> params = ln.init(ftx.random.key(0))
        >>> ln(params, torch.arange(4.0)).round(decimals=3)
        tensor([-1.3420, -0.4470,  0.4470,  1.3420])
    """

    normalized_shape: int | tuple[int, ...]
    eps: float = 1e-5
    elementwise_affine: bool = True
    bias: bool = True

    def __post_init__(self) -> None:
        check_fields(self, normalized_shape=_normalized_shape, eps=real(0.0),
                     elementwise_affine=FLAG, bias=FLAG)
        n = (1 + self.bias) if self.elementwise_affine else 0
        object.__setattr__(self, "_n", n)

    def init(
        self, key: Tensor, *, dtype: torch.dtype = torch.float32, device: Any = None
    ) -> Params:
        """Ones for ``weight``, zeros for ``bias`` (``key`` unused, as torch draws nothing)."""
        check_init(self.api, key, dtype, device)
        shape: Shape = self.normalized_shape  # type: ignore[assignment]
        params: Params = {}
        try:
            if self.elementwise_affine:
                params["weight"] = torch.ones(shape, dtype=dtype, device=device)
                if self.bias:
                    params["bias"] = torch.zeros(shape, dtype=dtype, device=device)
        except RuntimeError as err:  # too large to allocate
            raise ValueError(msg(
                self.api, "normalized_shape must fit in memory",
                f"{shape} ({str(err).splitlines()[0] if str(err) else type(err).__name__})",
                "Pass the trailing shape of the input to normalise.",
            )) from err
        return params

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None) -> Tensor:
        """``x: (*, *normalized_shape) -> same shape``."""
        shape: Shape = self.normalized_shape  # type: ignore[assignment]
        try:
            w = params.get("weight")
            b = params.get("bias")
            ok = (
                len(params) == self._n  # type: ignore[attr-defined]
                and x.shape[x.ndim - len(shape) :] == shape
                and (w is None or (w.dtype == x.dtype and w.shape == shape))
                and (b is None or (b.dtype == x.dtype and b.shape == shape))
            )
        except (TypeError, AttributeError):
            ok = False
        if not ok:
            self._diagnose(params, x)
        try:
            return F.layer_norm(x, shape, w, b, self.eps)
        except RuntimeError as err:  # e.g. params on another device than the input
            self._diagnose(params, x, err)

    def param_shapes(self) -> dict[str, Shape]:
        shape: Shape = self.normalized_shape  # type: ignore[assignment]
        if not self.elementwise_affine:
            return {}
        return {"weight": shape, "bias": shape} if self.bias else {"weight": shape}

    def twin(self) -> nn.Module:
        return nn.LayerNorm(
            self.normalized_shape, self.eps, self.elementwise_affine, bias=self.bias
        )

    def _check_input(self, x: Tensor) -> None:
        shape: Shape = self.normalized_shape  # type: ignore[assignment]
        if x.ndim < len(shape) or tuple(x.shape[x.ndim - len(shape) :]) != shape:
            raise input_error(
                self.api,
                f"input x must have shape (*, *normalized_shape) = "
                f"(*, {', '.join(map(str, shape))})",
                x,
                "Normalise over the input's trailing dimensions.",
            )
