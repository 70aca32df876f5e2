"""``Conv2d``: 2-D convolution, the stateless twin of ``nn.Conv2d`` (zero padding)."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._internal.errors import msg
from ._base import (
    FLAG,
    POSITIVE,
    Layer,
    Params,
    Shape,
    check_dtypes,
    check_fields,
    check_init,
    check_params,
    input_error,
    kaiming_bound,
    pair,
    split_key,
    uniform_init,
)

__all__ = ["Conv2d"]

Padding = int | tuple[int, int] | str


def normalize_padding(api: str, padding: Any, stride: tuple[int, int]) -> tuple[int, int] | str:
    """``"same"``/``"valid"`` stay strings (``"same"`` needs stride 1, as in torch); ints
    become pairs."""
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(msg(api, "padding must be 'same', 'valid' or ints", repr(padding)))
        if padding == "same" and stride != (1, 1):
            raise ValueError(
                msg(
                    api,
                    "padding='same' needs stride 1 (as in torch.nn.Conv2d)",
                    f"stride {stride}",
                    "Use integer padding with strided convolutions.",
                )
            )
        return padding
    out: tuple[int, int] = pair(0)(api, "padding", padding)
    return out


def conv_failure(api: str, x: Tensor, err: Exception) -> ValueError:
    """Turn a kernel failure (input smaller than the kernel, ...) into a ``ValueError``."""
    return ValueError(
        msg(
            api,
            "input large enough for the kernel, stride and dilation",
            f"input of shape {tuple(x.shape)} (torch: {str(err).splitlines()[0]})",
            "Use a larger input or more padding.",
        )
    )


def checked_conv2d(layer: Any, params: Params, x: Tensor, channels: int, groups: int) -> Tensor:
    """``F.conv2d`` behind the layer's cheap inline checks; exact errors on the slow path.

    Shared by ``Conv2d`` and ``DepthwiseConv2d``: ``layer`` supplies ``api``,
    ``bias``, ``stride``, ``padding``, ``dilation``, ``_wshape``, ``_diagnose``,
    ``param_shapes`` and ``_check_input``.
    """
    try:
        w = params["weight"]
        b = params["bias"] if layer.bias else None
        ok = (
            len(params) == 1 + layer.bias
            and x.dtype == w.dtype
            and x.shape[-3] == channels
            and w.shape == layer._wshape
        )
    except (KeyError, TypeError, AttributeError, IndexError):
        ok = False
    if not ok:
        layer._diagnose(params, x)
    try:
        return F.conv2d(x, w, b, layer.stride, layer.padding, layer.dilation, groups)
    except (RuntimeError, TypeError) as err:
        check_params(layer.api, params, layer.param_shapes())
        check_dtypes(layer.api, params, x)
        layer._check_input(x)
        raise conv_failure(layer.api, x, err) from err


def check_conv_input(api: str, x: Tensor, channels: int) -> None:
    """Inputs are ``(N, C, H, W)`` or unbatched ``(C, H, W)`` with ``C == channels``."""
    if x.ndim not in (3, 4) or x.shape[-3] != channels:
        raise input_error(
            api,
            f"input x must have shape (N, C, H, W) or (C, H, W) with C = {channels}",
            x,
            "Pass channels-first images with the layer's channel count.",
        )


@dataclasses.dataclass(frozen=True)
class Conv2d(Layer):
    """2-D convolution, the same maths and parameters as ``nn.Conv2d``.

    Params: ``{"weight": (out_channels, in_channels // groups, kh, kw),
    "bias": (out_channels,)}``, drawn like torch's default from
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with ``fan_in = in_channels // groups * kh * kw``.

    Args:
        in_channels: input channels ``C``.
        out_channels: output channels; a multiple of ``groups``.
        kernel_size: int or ``(kh, kw)``.
        stride: int or pair.
        padding: int, pair, ``"same"`` (stride 1 only) or ``"valid"``; zeros.
        dilation: int or pair.
        groups: blocked connections; divides both channel counts.
        bias: whether to add a learned bias.

    Call ``layer(params, x)`` with ``x: (N, in_channels, H, W)`` or
    ``(in_channels, H, W)``; returns ``(N, out_channels, H', W')`` (or unbatched).

    Example:
        >>> import torch, ftx
        >>> conv = ftx.nn.Conv2d(3, 8, 3, padding="same")
        >>> params = conv.init(ftx.random.key(0))
        >>> conv(params, torch.ones(2, 3, 5, 5)).shape
        torch.Size([2, 8, 5, 5])
    """

    in_channels: int
    out_channels: int
    kernel_size: int | tuple[int, int]
    stride: int | tuple[int, int] = 1
    padding: Padding = 0
    dilation: int | tuple[int, int] = 1
    groups: int = 1
    bias: bool = True

    def __post_init__(self) -> None:
        api = self.api
        check_fields(
            self, in_channels=POSITIVE, out_channels=POSITIVE, kernel_size=pair(1),
            stride=pair(1), dilation=pair(1), groups=POSITIVE, bias=FLAG,
        )
        set_ = object.__setattr__
        set_(self, "padding", normalize_padding(api, self.padding, self.stride))  # type: ignore[arg-type]
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(
                msg(
                    api,
                    "groups must divide in_channels and out_channels",
                    f"groups={self.groups}, in_channels={self.in_channels}, "
                    f"out_channels={self.out_channels}",
                )
            )
        kh, kw = self.kernel_size  # type: ignore[misc]
        wshape = (self.out_channels, self.in_channels // self.groups, kh, kw)
        set_(self, "_wshape", wshape)

    def init(
        self, key: Tensor, *, dtype: torch.dtype = torch.float32, device: Any = None
    ) -> Params:
        """Draw ``weight`` and ``bias`` from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
        check_init(self.api, key, dtype, device)
        kw, kb = split_key(key, 2)
        shape: Shape = self._wshape  # type: ignore[attr-defined]
        bound = kaiming_bound(shape[1] * shape[2] * shape[3])
        params = {"weight": uniform_init(kw, shape, bound, dtype, device)}
        if self.bias:
            params["bias"] = uniform_init(kb, (self.out_channels,), bound, dtype, device)
        return params

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None) -> Tensor:
        """``x: (N, C_in, H, W) -> (N, C_out, H', W')`` (unbatched ``(C_in, H, W)`` too)."""
        return checked_conv2d(self, params, x, self.in_channels, self.groups)

    def param_shapes(self) -> dict[str, Shape]:
        shapes: dict[str, Shape] = {"weight": self._wshape}  # type: ignore[attr-defined]
        if self.bias:
            shapes["bias"] = (self.out_channels,)
        return shapes

    def twin(self) -> nn.Module:
        return nn.Conv2d(
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
            bias=self.bias,
        )

    def _check_input(self, x: Tensor) -> None:
        check_conv_input(self.api, x, self.in_channels)
