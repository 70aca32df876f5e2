"""``MaxPool2d`` and ``AvgPool2d``: the twins of the ``torch.nn`` pooling modules."""

from __future__ import annotations

import dataclasses

import torch.nn.functional as F
from torch import Tensor, nn

from .._errors import msg
from ._base import Layer, Params, as_pair, check_empty, input_error
from ._conv import conv_failure

__all__ = ["AvgPool2d", "MaxPool2d"]


def _pool_setup(layer: Layer, names: tuple[str, ...]) -> None:
    api = layer.api
    for name in names:
        value = getattr(layer, name)
        if name == "stride" and value is None:
            value = layer.kernel_size  # type: ignore[attr-defined]
        pair = as_pair(api, name, value)
        low = 0 if name == "padding" else 1
        if min(pair) < low:
            raise ValueError(msg(api, f"{name} must be >= {low}", str(pair)))
        object.__setattr__(layer, name, pair)
    kh, kw = layer.kernel_size  # type: ignore[attr-defined]
    ph, pw = layer.padding  # type: ignore[attr-defined]
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError(
            msg(api, "padding must be at most half the kernel size", f"padding {(ph, pw)}")
        )


def _check_rank(layer: Layer, x: Tensor) -> None:
    if not 3 <= x.ndim <= 4:
        raise input_error(layer.api, "input must have shape (N, C, H, W) or (C, H, W)", x)


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
        _pool_setup(self, ("kernel_size", "stride", "padding", "dilation"))

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None) -> Tensor:
        """``x: (N, C, H, W) -> (N, C, H', W')``."""
        if params or type(x) is not Tensor or not 3 <= x.ndim <= 4:
            check_empty(self, params, x)
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
        _pool_setup(self, ("kernel_size", "stride", "padding"))

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None) -> Tensor:
        """``x: (N, C, H, W) -> (N, C, H', W')``."""
        if params or type(x) is not Tensor or not 3 <= x.ndim <= 4:
            check_empty(self, params, x)
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
