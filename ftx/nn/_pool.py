"""``MaxPool2d``, ``AvgPool2d`` and ``AdaptiveAvgPool2d``: the twins of the ``torch.nn``
pooling modules."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from .._internal.errors import msg
from ._base import (
    FLAG,
    POSITIVE,
    Layer,
    Params,
    check_empty,
    check_fields,
    input_error,
    optional,
    pair,
)
from ._conv import conv_failure

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "MaxPool2d"]


def _pool_setup(layer: Layer, **rules: Any) -> None:
    """Shared checks: the window fields, then the flags; ``stride=None`` is the kernel size."""
    check_fields(layer, kernel_size=pair(1), stride=optional(pair(1)), padding=pair(0), **rules)
    if layer.stride is None:  # type: ignore[attr-defined]
        object.__setattr__(layer, "stride", layer.kernel_size)  # type: ignore[attr-defined]
    api = layer.api
    kh, kw = layer.kernel_size  # type: ignore[attr-defined]
    ph, pw = layer.padding  # type: ignore[attr-defined]
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError(
            msg(api, "padding must be at most half the kernel size", f"padding {(ph, pw)}")
        )


def _check_rank(layer: Layer, x: Tensor) -> None:
    if not 3 <= x.ndim <= 4:
        raise input_error(layer.api, "input x must have shape (N, C, H, W) or (C, H, W)", x)


@dataclasses.dataclass(frozen=True)
class MaxPool2d(Layer):
    """Max over ``kernel_size`` windows (params ``{}``), as ``nn.MaxPool2d``.

    Args:
        kernel_size: int or pair.
        stride: int or pair; defaults to ``kernel_size``.
        padding: implicit ``-inf`` padding, at most half the kernel.
        dilation: int or pair.
        ceil_mode: use ceil instead of floor for the output size.

    Call with ``x: (N, C, H, W)`` or ``(C, H, W)``.

    Example:
        >>> import torch, ftx
        >>> ftx.nn.MaxPool2d(2)({}, torch.arange(16.0).reshape(1, 4, 4)).tolist()
        [[[5.0, 7.0], [13.0, 15.0]]]
    """

    kernel_size: int | tuple[int, int]
    stride: int | tuple[int, int] | None = None
    padding: int | tuple[int, int] = 0
    dilation: int | tuple[int, int] = 1
    ceil_mode: bool = False

    def __post_init__(self) -> None:
        _pool_setup(self, dilation=pair(1), ceil_mode=FLAG)

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None) -> Tensor:
        """``x: (N, C, H, W) -> (N, C, H', W')``."""
        if (type(params) is not dict or params or type(x) is not Tensor
                or not 3 <= x.ndim <= 4 or not x.is_floating_point()):
            check_empty(self, params, x, floating=True)
            _check_rank(self, x)
        try:
            return F.max_pool2d(
                x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode
            )
        except RuntimeError as err:
            raise conv_failure(self.api, x, err) from err

    def twin(self) -> nn.Module:
        return nn.MaxPool2d(
            self.kernel_size, self.stride, self.padding, self.dilation, ceil_mode=self.ceil_mode
        )


@dataclasses.dataclass(frozen=True)
class AvgPool2d(Layer):
    """Mean over ``kernel_size`` windows (params ``{}``), as ``nn.AvgPool2d``.

    Args:
        kernel_size: int or pair.
        stride: int or pair; defaults to ``kernel_size``.
        padding: implicit zero padding, at most half the kernel.
        ceil_mode: use ceil instead of floor for the output size.
        count_include_pad: count padded zeros in the mean.
        divisor_override: divide by this instead of the window size.

    Call with ``x: (N, C, H, W)`` or ``(C, H, W)``.

    Example:
        >>> import torch, ftx
        >>> ftx.nn.AvgPool2d(2)({}, torch.arange(16.0).reshape(1, 4, 4)).tolist()
        [[[2.5, 4.5], [10.5, 12.5]]]
    """

    kernel_size: int | tuple[int, int]
    stride: int | tuple[int, int] | None = None
    padding: int | tuple[int, int] = 0
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: int | None = None

    def __post_init__(self) -> None:
        _pool_setup(self, ceil_mode=FLAG, count_include_pad=FLAG,
                    divisor_override=optional(POSITIVE))

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None) -> Tensor:
        """``x: (N, C, H, W) -> (N, C, H', W')``."""
        if (type(params) is not dict or params or type(x) is not Tensor
                or not 3 <= x.ndim <= 4 or not x.is_floating_point()):
            check_empty(self, params, x, floating=True)
            _check_rank(self, x)
        try:
            return F.avg_pool2d(
                x,
                self.kernel_size,
                self.stride,
                self.padding,
                self.ceil_mode,
                self.count_include_pad,
                self.divisor_override,
            )
        except RuntimeError as err:
            raise conv_failure(self.api, x, err) from err

    def twin(self) -> nn.Module:
        return nn.AvgPool2d(
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
        )


def _output_size(api: str, name: str, value: Any) -> tuple[int | None, int | None]:
    """An int, or a pair whose entries are ints >= 1 or ``None`` (keep the input's size)."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        out = tuple(None if v is None else POSITIVE(api, f"{name}[{i}]", v)
                    for i, v in enumerate(value))
        return out  # type: ignore[return-value]
    if isinstance(value, (tuple, list)):
        raise TypeError(msg(api, f"{name} must be an int or a pair of ints (or None)",
                            f"{type(value).__name__} of length {len(value)}"))
    v = POSITIVE(api, name, value)
    return (v, v)


@dataclasses.dataclass(frozen=True)
class AdaptiveAvgPool2d(Layer):
    """Average pooling to a fixed output size (params ``{}``), as ``nn.AdaptiveAvgPool2d``.

    Args:
        output_size: int or ``(H_out, W_out)``; an entry ``None`` keeps that input size.

    Call with ``x: (N, C, H, W)`` or ``(C, H, W)``; returns ``(N, C, H_out, W_out)``.

    Example:
        >>> import torch, ftx
        >>> ftx.nn.AdaptiveAvgPool2d(1)({}, torch.arange(16.0).reshape(1, 4, 4)).tolist()
        [[[7.5]]]
    """

    output_size: int | tuple[int | None, int | None]

    def __post_init__(self) -> None:
        check_fields(self, output_size=_output_size)

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None) -> Tensor:
        """``x: (N, C, H, W) -> (N, C, H_out, W_out)``."""
        if (type(params) is not dict or params or type(x) is not Tensor
                or not 3 <= x.ndim <= 4 or not x.is_floating_point()):
            check_empty(self, params, x, floating=True)
            _check_rank(self, x)
        try:
            return F.adaptive_avg_pool2d(x, self.output_size)
        except RuntimeError as err:
            raise conv_failure(self.api, x, err) from err

    def twin(self) -> nn.Module:
        return nn.AdaptiveAvgPool2d(self.output_size)
