"""Convolutions: ``Conv1d``, ``Conv2d``, ``Conv3d``, ``ConvTranspose2d``, the stateless twins
of the ``torch.nn`` modules (zero padding)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

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
    ntuple,
    pair,
    split_key,
    uniform_init,
)

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose2d"]

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



def _weight_bias_init(
    api: str, shape: Shape, bias_size: int | None, key: Tensor, dtype: torch.dtype, device: Any
) -> Params:
    """torch's conv init: weight and bias from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with
    ``fan_in = prod(weight.shape[1:])``; no bias when ``bias_size`` is None."""
    check_init(api, key, dtype, device)
    kw, kb = split_key(key, 2)
    bound = kaiming_bound(math.prod(shape[1:]))
    params = {"weight": uniform_init(kw, shape, bound, dtype, device)}
    if bias_size is not None:
        params["bias"] = uniform_init(kb, (bias_size,), bound, dtype, device)
    return params

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


# ---------------------------------------------------------------------------
# Conv1d, Conv3d (one implementation for any number of spatial dims) and ConvTranspose2d.

_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}


def _padding_nd(api: str, padding: Any, stride: tuple[int, ...], n: int) -> Any:
    """``"same"``/``"valid"`` stay strings (``"same"`` needs stride 1); ints become tuples."""
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(msg(api, "padding must be 'same', 'valid' or ints", repr(padding)))
        if padding == "same" and any(s != 1 for s in stride):
            raise ValueError(msg(api, f"padding='same' needs stride 1 (as in torch.nn.Conv{n}d)",
                                 f"stride {stride}", "Use integer padding with strided "
                                 "convolutions."))
        return padding
    return ntuple(n, 0)(api, "padding", padding)


class _ConvNd(Layer):
    """Shared body of ``Conv1d`` and ``Conv3d`` (fields declared by the subclasses)."""

    _N: ClassVar[int]
    in_channels: int
    out_channels: int
    kernel_size: Any
    stride: Any
    padding: Any
    dilation: Any
    groups: int
    bias: bool

    def __post_init__(self) -> None:
        n = self._N
        check_fields(self, in_channels=POSITIVE, out_channels=POSITIVE,
                     kernel_size=ntuple(n, 1), stride=ntuple(n, 1), dilation=ntuple(n, 1),
                     groups=POSITIVE, bias=FLAG)
        object.__setattr__(self, "padding", _padding_nd(self.api, self.padding, self.stride, n))
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(msg(self.api, "groups must divide in_channels and out_channels",
                                 f"groups={self.groups}, in_channels={self.in_channels}, "
                                 f"out_channels={self.out_channels}"))
        wshape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        object.__setattr__(self, "_wshape", wshape)
        object.__setattr__(self, "_fn", {1: F.conv1d, 3: F.conv3d}[n])

    def init(
        self, key: Tensor, *, dtype: torch.dtype = torch.float32, device: Any = None
    ) -> Params:
        """Draw ``weight`` and ``bias`` from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
        shape: Shape = self._wshape  # type: ignore[attr-defined]
        return _weight_bias_init(
            self.api, shape, self.out_channels if self.bias else None, key, dtype, device
        )

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None) -> Tensor:
        """``x: (N, C_in, *spatial) -> (N, C_out, *spatial')`` (unbatched too)."""
        n = self._N
        try:
            w = params["weight"]
            b = params["bias"] if self.bias else None
            ok = (len(params) == 1 + self.bias and x.dtype == w.dtype
                  and n + 1 <= x.ndim <= n + 2 and x.shape[-n - 1] == self.in_channels
                  and w.shape == self._wshape)  # type: ignore[attr-defined]
        except (KeyError, TypeError, AttributeError, IndexError):
            ok = False
        if not ok:
            self._diagnose(params, x)
        try:
            out: Tensor = self._fn(  # type: ignore[attr-defined]
                x, w, b, self.stride, self.padding, self.dilation, self.groups)
        except (RuntimeError, TypeError) as err:
            check_params(self.api, params, self.param_shapes())
            check_dtypes(self.api, params, x)
            raise conv_failure(self.api, x, err) from err
        return out

    def param_shapes(self) -> dict[str, Shape]:
        shapes: dict[str, Shape] = {"weight": self._wshape}  # type: ignore[attr-defined]
        if self.bias:
            shapes["bias"] = (self.out_channels,)
        return shapes

    def twin(self) -> nn.Module:
        cls = {1: nn.Conv1d, 3: nn.Conv3d}[self._N]
        return cls(self.in_channels, self.out_channels, self.kernel_size, stride=self.stride,
                   padding=self.padding, dilation=self.dilation, groups=self.groups,
                   bias=self.bias)

    def _check_input(self, x: Tensor) -> None:
        n = self._N
        if not n + 1 <= x.ndim <= n + 2 or x.shape[-n - 1] != self.in_channels:
            raise input_error(
                self.api,
                f"input x must have shape (N, C, {_SPATIAL[n]}) or (C, {_SPATIAL[n]}) with "
                f"C = {self.in_channels}", x,
                "Pass channels-first input with the layer's channel count.")


@dataclasses.dataclass(frozen=True)
class Conv1d(_ConvNd):
    """1-D convolution, the same maths and parameters as ``nn.Conv1d`` (zero padding).

    Params: ``{"weight": (out_channels, in_channels // groups, k), "bias": (out_channels,)}``
    from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, ``fan_in = in_channels // groups * k``.

    Args:
        in_channels, out_channels: channel counts (multiples of ``groups``).
        kernel_size, stride, dilation: int or 1-tuple.
        padding: int, 1-tuple, ``"same"`` (stride 1 only) or ``"valid"``.
        groups: blocked connections.
        bias: whether to add a learned bias.

    Call with ``x: (N, in_channels, L)`` or ``(in_channels, L)``.

    Example:
        >>> import torch, ftx
        >>> conv = ftx.nn.Conv1d(2, 4, 3, padding=1)
        >>> conv(conv.init(ftx.random.key(0)), torch.ones(5, 2, 7)).shape
        torch.Size([5, 4, 7])
    """

    _N: ClassVar[int] = 1
    in_channels: int
    out_channels: int
    kernel_size: int | tuple[int]
    stride: int | tuple[int] = 1
    padding: int | tuple[int] | str = 0
    dilation: int | tuple[int] = 1
    groups: int = 1
    bias: bool = True


@dataclasses.dataclass(frozen=True)
class Conv3d(_ConvNd):
    """3-D convolution, the same maths and parameters as ``nn.Conv3d`` (zero padding).

    Params: ``{"weight": (out_channels, in_channels // groups, kd, kh, kw),
    "bias": (out_channels,)}`` from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.

    Args:
        in_channels, out_channels: channel counts (multiples of ``groups``).
        kernel_size, stride, dilation: int or 3-tuple.
        padding: int, 3-tuple, ``"same"`` (stride 1 only) or ``"valid"``.
        groups: blocked connections.
        bias: whether to add a learned bias.

    Call with ``x: (N, in_channels, D, H, W)`` or ``(in_channels, D, H, W)``.

    Example:
        >>> import torch, ftx
        >>> conv = ftx.nn.Conv3d(2, 4, 3, stride=2)
        >>> conv(conv.init(ftx.random.key(0)), torch.ones(1, 2, 7, 7, 7)).shape
        torch.Size([1, 4, 3, 3, 3])
    """

    _N: ClassVar[int] = 3
    in_channels: int
    out_channels: int
    kernel_size: int | tuple[int, int, int]
    stride: int | tuple[int, int, int] = 1
    padding: int | tuple[int, int, int] | str = 0
    dilation: int | tuple[int, int, int] = 1
    groups: int = 1
    bias: bool = True


@dataclasses.dataclass(frozen=True)
class ConvTranspose2d(Layer):
    """2-D transposed convolution, the same maths and parameters as ``nn.ConvTranspose2d``.

    Params: ``{"weight": (in_channels, out_channels // groups, kh, kw),
    "bias": (out_channels,)}`` from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with torch's
    ``fan_in = out_channels // groups * kh * kw`` (the weight's dimension 1).

    Args:
        in_channels, out_channels: channel counts (multiples of ``groups``).
        kernel_size, stride, dilation: int or pair.
        padding: int or pair (``dilation * (kernel_size - 1) - padding`` zeros on each side).
        output_padding: extra size on one side of the output; smaller than ``stride`` or
            ``dilation`` in each dimension (as torch requires).
        groups: blocked connections.
        bias: whether to add a learned bias.

    The argument order is torch's (``groups`` and ``bias`` before ``dilation``). Call with
    ``x: (N, in_channels, H, W)`` or ``(in_channels, H, W)``; the output has
    ``H' = (H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1``.

    Example:
        >>> import torch, ftx
        >>> up = ftx.nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)
        >>> up(up.init(ftx.random.key(0)), torch.ones(1, 4, 5, 5)).shape
        torch.Size([1, 2, 10, 10])
    """

    in_channels: int
    out_channels: int
    kernel_size: int | tuple[int, int]
    stride: int | tuple[int, int] = 1
    padding: int | tuple[int, int] = 0
    output_padding: int | tuple[int, int] = 0
    groups: int = 1
    bias: bool = True
    dilation: int | tuple[int, int] = 1

    def __post_init__(self) -> None:
        check_fields(self, in_channels=POSITIVE, out_channels=POSITIVE, kernel_size=pair(1),
                     stride=pair(1), padding=pair(0), output_padding=pair(0),
                     groups=POSITIVE, bias=FLAG, dilation=pair(1))
        api = self.api
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(msg(api, "groups must divide in_channels and out_channels",
                                 f"groups={self.groups}, in_channels={self.in_channels}, "
                                 f"out_channels={self.out_channels}"))
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):  # type: ignore[arg-type]
            if op >= s and op >= d:
                raise ValueError(msg(api, "output_padding must be smaller than stride or "
                                     "dilation in each dimension (as in torch)",
                                     f"output_padding={self.output_padding}, stride="
                                     f"{self.stride}, dilation={self.dilation}",
                                     "Lower output_padding or raise the stride."))
        kh, kw = self.kernel_size  # type: ignore[misc]
        object.__setattr__(self, "_wshape",
                           (self.in_channels, self.out_channels // self.groups, kh, kw))

    def init(
        self, key: Tensor, *, dtype: torch.dtype = torch.float32, device: Any = None
    ) -> Params:
        """Draw ``weight`` and ``bias`` from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
        shape: Shape = self._wshape  # type: ignore[attr-defined]
        return _weight_bias_init(
            self.api, shape, self.out_channels if self.bias else None, key, dtype, device
        )

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None) -> Tensor:
        """``x: (N, C_in, H, W) -> (N, C_out, H', W')`` (unbatched too)."""
        try:
            w = params["weight"]
            b = params["bias"] if self.bias else None
            ok = (len(params) == 1 + self.bias and x.dtype == w.dtype and 3 <= x.ndim <= 4
                  and x.shape[-3] == self.in_channels
                  and w.shape == self._wshape)  # type: ignore[attr-defined]
        except (KeyError, TypeError, AttributeError, IndexError):
            ok = False
        if not ok:
            self._diagnose(params, x)
        try:
            return F.conv_transpose2d(x, w, b, self.stride, self.padding, self.output_padding,
                                      self.groups, self.dilation)
        except (RuntimeError, TypeError) as err:
            check_params(self.api, params, self.param_shapes())
            check_dtypes(self.api, params, x)
            raise conv_failure(self.api, x, err) from err

    def param_shapes(self) -> dict[str, Shape]:
        shapes: dict[str, Shape] = {"weight": self._wshape}  # type: ignore[attr-defined]
        if self.bias:
            shapes["bias"] = (self.out_channels,)
        return shapes

    def twin(self) -> nn.Module:
        return nn.ConvTranspose2d(self.in_channels, self.out_channels, self.kernel_size,
                                  stride=self.stride, padding=self.padding,
                                  output_padding=self.output_padding, groups=self.groups,
                                  bias=self.bias, dilation=self.dilation)

    def _check_input(self, x: Tensor) -> None:
        check_conv_input(self.api, x, self.in_channels)
