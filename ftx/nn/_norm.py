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
    POSITIVE,
    Layer,
    Params,
    Shape,
    check_fields,
    check_init,
    input_error,
    optional,
    real,
)

__all__ = ["GroupNorm", "LayerNorm", "RMSNorm"]


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


@dataclasses.dataclass(frozen=True)
class RMSNorm(Layer):
    """Root-mean-square normalisation over the trailing dimensions, the twin of ``nn.RMSNorm``.

    ``y = x / sqrt(mean(x**2) + eps) * weight``, the mean over the last
    ``len(normalized_shape)`` dimensions.

    Params (with ``elementwise_affine``): ``{"weight": normalized_shape}``, ones as in
    torch (the key is accepted for uniformity and not used).

    Args:
        normalized_shape: int or tuple: the trailing shape to normalise over.
        eps: added to the mean square; ``None`` (torch's default) means
            ``torch.finfo(x.dtype).eps``.
        elementwise_affine: learn a per-element scale.

    Call ``layer(params, x)`` with ``x: (*, *normalized_shape)``; returns the same shape.

    Example:
        >>> import torch, ftx
        >>> rms = ftx.nn.RMSNorm(2)
        >>> rms(rms.init(ftx.random.key(0)), torch.tensor([3.0, 4.0])).round(decimals=4)
        tensor([0.8485, 1.1314])
    """

    normalized_shape: int | tuple[int, ...]
    eps: float | None = None
    elementwise_affine: bool = True

    def __post_init__(self) -> None:
        check_fields(self, normalized_shape=_normalized_shape, eps=optional(real(0.0)),
                     elementwise_affine=FLAG)

    def init(
        self, key: Tensor, *, dtype: torch.dtype = torch.float32, device: Any = None
    ) -> Params:
        """Ones for ``weight`` (``key`` unused, as torch draws nothing)."""
        check_init(self.api, key, dtype, device)
        if not self.elementwise_affine:
            return {}
        return {"weight": _filled(self.api, self.normalized_shape, 1.0, dtype, device)}

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None) -> Tensor:
        """``x: (*, *normalized_shape) -> same shape``."""
        shape: Shape = self.normalized_shape  # type: ignore[assignment]
        try:
            w = params.get("weight")
            ok = (
                len(params) == self.elementwise_affine
                and x.shape[x.ndim - len(shape) :] == shape
                and x.is_floating_point()
                and (w is None or (w.dtype == x.dtype and w.shape == shape))
            )
        except (TypeError, AttributeError):
            ok = False
        if not ok:
            self._diagnose(params, x)
        try:
            return F.rms_norm(x, shape, w, self.eps)
        except RuntimeError as err:  # e.g. params on another device than the input
            self._diagnose(params, x, err)

    def param_shapes(self) -> dict[str, Shape]:
        shape: Shape = self.normalized_shape  # type: ignore[assignment]
        return {"weight": shape} if self.elementwise_affine else {}

    def twin(self) -> nn.Module:
        return nn.RMSNorm(self.normalized_shape, self.eps, self.elementwise_affine)

    def _check_input(self, x: Tensor) -> None:
        _check_trailing(self.api, self.normalized_shape, x)  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True)
class GroupNorm(Layer):
    """Group normalisation, the twin of ``nn.GroupNorm``: the channels are split into
    ``num_groups`` groups, each normalised over its channels and all spatial positions.

    Params (with ``affine``): ``{"weight": (num_channels,), "bias": (num_channels,)}``,
    ones and zeros as in torch (the key is accepted for uniformity and not used).

    Args:
        num_groups: number of groups; must divide ``num_channels``.
        num_channels: the channel count ``C`` (dimension 1 of the input).
        eps: added to the variance.
        affine: learn a per-channel scale and bias.

    Call ``layer(params, x)`` with ``x: (N, C, *)``; returns the same shape.

    Example:
        >>> import torch, ftx
        >>> gn = ftx.nn.GroupNorm(2, 4)
        >>> gn(gn.init(ftx.random.key(0)), torch.arange(8.0).reshape(1, 4, 2)).shape
        torch.Size([1, 4, 2])
    """

    num_groups: int
    num_channels: int
    eps: float = 1e-5
    affine: bool = True

    def __post_init__(self) -> None:
        check_fields(self, num_groups=POSITIVE, num_channels=POSITIVE, eps=real(0.0),
                     affine=FLAG)
        if self.num_channels % self.num_groups:
            raise ValueError(msg(
                self.api, "num_groups must divide num_channels",
                f"num_groups={self.num_groups} and num_channels={self.num_channels}",
                "Pick a divisor of the channel count."))

    def init(
        self, key: Tensor, *, dtype: torch.dtype = torch.float32, device: Any = None
    ) -> Params:
        """Ones for ``weight``, zeros for ``bias`` (``key`` unused, as torch draws nothing)."""
        check_init(self.api, key, dtype, device)
        if not self.affine:
            return {}
        c = (self.num_channels,)
        return {"weight": _filled(self.api, c, 1.0, dtype, device),
                "bias": _filled(self.api, c, 0.0, dtype, device)}

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None) -> Tensor:
        """``x: (N, C, *) -> same shape``."""
        c = (self.num_channels,)
        try:
            w = params.get("weight")
            b = params.get("bias")
            ok = (
                len(params) == 2 * self.affine
                and x.ndim >= 2
                and x.shape[1] == self.num_channels
                and x.is_floating_point()
                and (w is None or (w.dtype == x.dtype and w.shape == c))
                and (b is None or (b.dtype == x.dtype and b.shape == c))
            )
        except (TypeError, AttributeError):
            ok = False
        if not ok:
            self._diagnose(params, x)
        try:
            return F.group_norm(x, self.num_groups, w, b, self.eps)
        except RuntimeError as err:
            self._diagnose(params, x, err)

    def param_shapes(self) -> dict[str, Shape]:
        c = (self.num_channels,)
        return {"weight": c, "bias": c} if self.affine else {}

    def twin(self) -> nn.Module:
        return nn.GroupNorm(self.num_groups, self.num_channels, self.eps, self.affine)

    def _check_input(self, x: Tensor) -> None:
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise input_error(
                self.api, f"input x must have shape (N, C, *) = (N, {self.num_channels}, *)", x,
                "Put the batch first and the channels second (add a batch dimension with "
                "x[None] for one example).")


def _filled(api: str, shape: Any, value: float, dtype: torch.dtype, device: Any) -> Tensor:
    try:
        return torch.full(shape, value, dtype=dtype, device=device)
    except RuntimeError as err:  # too large to allocate
        raise ValueError(msg(
            api, "the parameter shape must fit in memory",
            f"{shape} ({str(err).splitlines()[0] if str(err) else type(err).__name__})",
            "Pass the trailing shape of the input to normalise.",
        )) from err


def _check_trailing(api: str, shape: Shape, x: Tensor) -> None:
    if x.ndim < len(shape) or tuple(x.shape[x.ndim - len(shape) :]) != shape:
        raise input_error(
            api,
            f"input x must have shape (*, *normalized_shape) = (*, {', '.join(map(str, shape))})",
            x,
            "Normalise over the input's trailing dimensions.",
        )
