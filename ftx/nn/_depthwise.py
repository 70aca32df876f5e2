"""``DepthwiseConv2d``: one filter bank per channel, with named-tensor input.

A 2-D depthwise convolution over named tensors (exercise 4 of
docs/tutorial_autodiff.md): ``DepthwiseConv2d(C, k, depth_multiplier=m)`` is
``nn.Conv2d(C, C * m, k, groups=C)``; its input may be a
:class:`~ftx.nn.NamedTensor` with dimensions ``N, C, H, W`` in any order.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor, nn

from ._base import (
    FLAG,
    POSITIVE,
    Layer,
    Params,
    Shape,
    check_fields,
    check_init,
    kaiming_bound,
    pair,
    split_key,
    uniform_init,
)
from ._conv import Padding, check_conv_input, checked_conv2d, normalize_padding
from ._named import NamedTensor, align

__all__ = ["DepthwiseConv2d", "unname_nchw"]

NCHW = ("N", "C", "H", "W")
CHW = ("C", "H", "W")


def unname_nchw(x: Any, api: str) -> tuple[Tensor, tuple[str, ...] | None]:
    """A plain NCHW (or CHW) tensor from ``x``, and the names to give the output.

    Plain tensors pass through (names ``None``). A :class:`NamedTensor` is aligned
    by name: four dimensions must be named ``N, C, H, W`` in any order, three
    (unbatched) ``C, H, W``.
    """
    if not isinstance(x, NamedTensor):
        return x, None
    want = CHW if len(x.names) == 3 and "N" not in x.names else NCHW
    return align(x, want, api), want


@dataclasses.dataclass(frozen=True)
class DepthwiseConv2d(Layer):
    """Depthwise 2-D convolution: ``nn.Conv2d(C, C * m, k, groups=C)``.

    Each input channel ``c`` is convolved with its own ``m = depth_multiplier``
    filters; output channel ``c * m + j`` is filter ``j`` of channel ``c``
    (TensorFlow's ``depthwise_conv2d`` layout).

    Params: ``{"weight": (C * m, 1, kh, kw), "bias": (C * m,)}``, drawn like
    torch's default with ``fan_in = kh * kw``.

    Args:
        channels: input channels ``C``.
        kernel_size: int or ``(kh, kw)``.
        depth_multiplier: filters per channel ``m``.
        stride: int or pair.
        padding: int, pair, ``"same"`` (stride 1 only) or ``"valid"``; zeros.
        dilation: int or pair.
        bias: whether to add a learned bias.

    Call ``layer(params, x)`` with ``x: (N, C, H, W)`` or ``(C, H, W)``, plain or a
    :class:`~ftx.nn.NamedTensor` named ``N, C, H, W`` in any order; returns
    ``(N, C * m, H', W')``, a ``NamedTensor`` named ``("N", "C", "H", "W")`` when
    the input was named.

    Example:
        >>> import torch, ftx
        >>> dw = ftx.nn.DepthwiseConv2d(3, 3, depth_multiplier=2, padding=1)
        >>> params = dw.init(ftx.random.key(0))
        >>> x = ftx.nn.NamedTensor(torch.ones(5, 5, 3, 2), ("H", "W", "C", "N"))
        >>> y = dw(params, x)
        >>> y.names, y.shape
        (('N', 'C', 'H', 'W'), (2, 6, 5, 5))
    """

    channels: int
    kernel_size: int | tuple[int, int]
    depth_multiplier: int = 1
    stride: int | tuple[int, int] = 1
    padding: Padding = 0
    dilation: int | tuple[int, int] = 1
    bias: bool = True

    def __post_init__(self) -> None:
        api = self.api
        check_fields(
            self, channels=POSITIVE, kernel_size=pair(1), depth_multiplier=POSITIVE,
            stride=pair(1), dilation=pair(1), bias=FLAG,
        )
        set_ = object.__setattr__
        set_(self, "padding", normalize_padding(api, self.padding, self.stride))  # type: ignore[arg-type]
        kh, kw = self.kernel_size  # type: ignore[misc]
        set_(self, "_out", self.channels * self.depth_multiplier)
        set_(self, "_wshape", (self.channels * self.depth_multiplier, 1, kh, kw))

    def init(
        self, key: Tensor, *, dtype: torch.dtype = torch.float32, device: Any = None
    ) -> Params:
        """Draw ``weight`` and ``bias`` from ``U(-1/sqrt(kh*kw), 1/sqrt(kh*kw))``."""
        check_init(self.api, key, dtype, device)
        kw, kb = split_key(key, 2)
        shape: Shape = self._wshape  # type: ignore[attr-defined]
        bound = kaiming_bound(shape[2] * shape[3])
        params = {"weight": uniform_init(kw, shape, bound, dtype, device)}
        if self.bias:
            params["bias"] = uniform_init(kb, (shape[0],), bound, dtype, device)
        return params

    def __call__(
        self, params: Params, x: Tensor | NamedTensor, *, key: Tensor | None = None
    ) -> Any:
        """``x: (N, C, H, W) -> (N, C * m, H', W')``; named in, named out."""
        t: Tensor
        names: tuple[str, ...] | None
        if isinstance(x, NamedTensor):
            t, names = unname_nchw(x, self.api)
        else:
            t, names = x, None
        y = checked_conv2d(self, params, t, self.channels, self.channels)
        return y if names is None else NamedTensor(y, names)

    def param_shapes(self) -> dict[str, Shape]:
        shapes: dict[str, Shape] = {"weight": self._wshape}  # type: ignore[attr-defined]
        if self.bias:
            shapes["bias"] = (self._wshape[0],)  # type: ignore[attr-defined]
        return shapes

    def twin(self) -> nn.Module:
        return nn.Conv2d(
            self.channels,
            self.channels * self.depth_multiplier,
            self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.channels,
            bias=self.bias,
        )

    def _check_input(self, x: Tensor) -> None:
        check_conv_input(self.api, x, self.channels)
